//! `impl Contract for dyn Trait`: the contract described as data.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::{Bytes, Contract};

pub(super) fn expand(contract: &Contract) -> TokenStream {
    let krate = &contract.krate;
    let ident = &contract.ident;
    let name = &contract.name;
    let version = contract.version;
    let docs = &contract.docs;
    let methods = contract.methods.iter().map(|m| {
        let name = &m.name;
        let docs = &m.docs;
        let args = m.args.iter().map(|a| {
            let name = &a.name;
            let ty = &a.ty_text;
            let bytes = a.bytes.is_bytes();
            quote!(#krate::ArgDescriptor { name: #name, ty: #ty, bytes: #bytes })
        });
        let returns = &m.output.ty_text;
        let returns_bytes = m.output.bytes.is_bytes();
        let returns_result = m.output.result;
        let mutating = m.mutating;
        let idempotent = m.idempotent;
        let oneway = m.oneway;
        let timeout_ms = match m.timeout_ms {
            Some(ms) => quote!(::core::option::Option::Some(#ms)),
            None => quote!(::core::option::Option::None),
        };
        quote! {
            #krate::MethodDescriptor {
                name: #name,
                docs: #docs,
                args: &[#(#args),*],
                returns: #returns,
                returns_bytes: #returns_bytes,
                returns_result: #returns_result,
                mutating: #mutating,
                idempotent: #idempotent,
                oneway: #oneway,
                timeout_ms: #timeout_ms,
            }
        }
    });
    let schemas = contract.methods.iter().map(|m| {
        let args = m
            .args
            .iter()
            .map(|a| schema_of(krate, Some(&a.ty), &a.ty_text, a.bytes, Place::Arg));
        let place = if m.output.result {
            Place::ResultReply
        } else {
            Place::Reply
        };
        let returns = schema_of(
            krate,
            m.output.ty.as_ref(),
            &m.output.ty_text,
            m.output.bytes,
            place,
        );
        quote! {
            #krate::MethodSchema {
                args: ::std::vec![#(#args),*],
                returns: #returns,
            }
        }
    });
    quote! {
        const _: () = {
            fn schema() -> #krate::ContractSchema {
                #[allow(unused_imports)]
                use #krate::schema::{ViaJsonSchema as _, ViaName as _};
                #[allow(unused_mut, unused_variables)]
                let mut collector = #krate::schema::Collector::new();
                let methods = ::std::vec![#(#schemas),*];
                #krate::ContractSchema { methods, types: collector.finish() }
            }

            const METHODS: &[#krate::MethodDescriptor] = &[#(#methods),*];

            #[automatically_derived]
            impl #krate::Contract for dyn #ident {
                const DESCRIPTOR: &'static #krate::ContractDescriptor = &#krate::ContractDescriptor {
                    name: #name,
                    version: #version,
                    fingerprint: #krate::__private::fingerprint(METHODS),
                    docs: #docs,
                    methods: METHODS,
                    schema,
                };
            }
        };
    }
}

/// Where a type appears.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Arg,
    Reply,
    /// A reply of `Result<T, E>`.
    ResultReply,
}

/// The schema of one argument or return: bytes as the JSON mapping reads or
/// writes them, other types through their `JsonSchema` if they have one (chosen by
/// autoref), by name otherwise. A `Result` is inlined: it is the shape of
/// the reply, not a type of the user's.
fn schema_of(
    krate: &syn::Path,
    ty: Option<&syn::Type>,
    text: &str,
    bytes: Bytes,
    place: Place,
) -> TokenStream {
    let inline = place == Place::ResultReply;
    match ty {
        None => quote!(#krate::schema::unit()),
        Some(_) if bytes.is_bytes() => {
            let optional = text.starts_with("Option<") || text.contains("::Option<");
            let reply = place != Place::Arg;
            quote!(collector.bytes(#text, #optional, #reply))
        }
        Some(ty) => {
            quote!((&&#krate::schema::Probe::<#ty>::new(#text)).schema(&mut collector, #inline))
        }
    }
}
