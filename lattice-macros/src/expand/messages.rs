//! One arguments struct per method, e.g. `CounterAddArgs { by: u64 }`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::{Bytes, Contract};

pub(super) fn expand(contract: &Contract) -> TokenStream {
    let krate = &contract.krate;
    let vis = &contract.vis;
    let serde_path = format!("{}::__private::serde", quote!(#krate)).replace(' ', "");
    let serde_bytes_path = format!("{}::__private::serde_bytes", quote!(#krate)).replace(' ', "");
    let structs = contract.methods.iter().map(|method| {
        let ident = &method.args_ident;
        let doc = format!(
            "The arguments of [`{}::{}`], as carried on the wire: a map keyed by argument name.",
            contract.ident, method.name
        );
        let fields = method.args.iter().map(|arg| {
            let field = &arg.ident;
            let ty = &arg.ty;
            let doc = format!("The `{}` argument.", arg.name);
            let with =
                (arg.bytes == Bytes::Wrapped).then(|| quote!(#[serde(with = #serde_bytes_path)]));
            quote! {
                #[doc = #doc]
                #with
                pub #field: #ty
            }
        });
        quote! {
            #[doc = #doc]
            #[derive(#krate::__private::serde::Serialize, #krate::__private::serde::Deserialize)]
            #[serde(crate = #serde_path)]
            #vis struct #ident {
                #(#fields,)*
            }
        }
    });
    quote!(#(#structs)*)
}
