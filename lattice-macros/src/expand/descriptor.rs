//! `impl Contract for dyn Trait`: the contract described as data.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Contract;

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
    quote! {
        const _: () = {
            const METHODS: &[#krate::MethodDescriptor] = &[#(#methods),*];

            #[automatically_derived]
            impl #krate::Contract for dyn #ident {
                const DESCRIPTOR: &'static #krate::ContractDescriptor = &#krate::ContractDescriptor {
                    name: #name,
                    version: #version,
                    fingerprint: #krate::__private::fingerprint(METHODS),
                    docs: #docs,
                    methods: METHODS,
                };
            }
        };
    }
}
