//! Code generation: pure functions from a validated [`Contract`] to tokens,
//! one file per generated piece.
//!
//! Generated code names only absolute paths (the `lattice` crate as found in
//! the user's `Cargo.toml`, `::core`, `::std`), puts trait impls in
//! `const _: () = { ... };` and marks them `#[automatically_derived]`.

mod client;
mod descriptor;
mod dispatch;
mod guest;
mod messages;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::{Contract, Method};

/// Everything the macro emits for a valid contract.
pub(crate) fn contract(contract: &Contract) -> TokenStream {
    let item = &contract.item;
    let messages = messages::expand(contract);
    let descriptor = descriptor::expand(contract);
    let dispatch = dispatch::expand(contract);
    let client = client::expand(contract);
    let guest = guest::expand(contract);
    quote! {
        #item
        #messages
        #descriptor
        #dispatch
        #client
        #guest
    }
}

/// `&<dyn Trait as Contract>::DESCRIPTOR.methods[index]`.
fn method_descriptor(contract: &Contract, index: usize) -> TokenStream {
    let krate = &contract.krate;
    let ident = &contract.ident;
    quote!(&<dyn #ident as #krate::Contract>::DESCRIPTOR.methods[#index])
}

/// `<dyn Trait as Contract>::DESCRIPTOR`.
fn contract_descriptor(contract: &Contract) -> TokenStream {
    let krate = &contract.krate;
    let ident = &contract.ident;
    quote!(<dyn #ident as #krate::Contract>::DESCRIPTOR)
}

/// `ArgsType { a, b }`: the arguments struct built from same-named locals.
fn args_value(method: &Method) -> TokenStream {
    let args_ident = &method.args_ident;
    let fields = method.args.iter().map(|a| &a.ident);
    quote!(#args_ident { #(#fields),* })
}

/// The parameters of a client method: `a: A, b: B`.
fn params(method: &Method) -> TokenStream {
    let params = method.args.iter().map(|a| {
        let ident = &a.ident;
        let ty = &a.ty;
        quote!(#ident: #ty)
    });
    quote!(#(#params),*)
}

/// The decoded reply type and how to turn it into the method's return value.
fn reply_type(contract: &Contract, method: &Method) -> (TokenStream, TokenStream) {
    let krate = &contract.krate;
    let ty = match &method.output.ty {
        Some(ty) => quote!(#ty),
        None => quote!(()),
    };
    if method.output.bytes == crate::ast::Bytes::Wrapped {
        (
            quote!(#krate::__private::Bin<#ty>),
            quote!(.map(|__bin: #krate::__private::Bin<#ty>| __bin.0)),
        )
    } else {
        (ty, quote!())
    }
}

/// The doc attribute of a generated client method.
fn client_docs(method: &Method, trait_ident: &syn::Ident) -> TokenStream {
    let name = &method.name;
    let mut text = if method.docs.is_empty() {
        format!("Calls [`{trait_ident}::{name}`] on the actor.")
    } else {
        method.docs.clone()
    };
    text.push_str("\n\nErrors are those of the call (transport, deadline, actor failures); ");
    if method.output.result {
        text.push_str("the method's own error is the inner `Result`.");
    } else {
        text.push_str("the method itself cannot fail.");
    }
    quote!(#[doc = #text])
}
