//! `impl<A: Trait> Dispatch<A> for dyn Trait`: decode, invoke, encode.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::{Bytes, Contract};

pub(super) fn expand(contract: &Contract) -> TokenStream {
    let krate = &contract.krate;
    let ident = &contract.ident;
    let arms = contract.methods.iter().enumerate().map(|(index, m)| {
        let name = &m.name;
        let method = &m.ident;
        let args_ident = &m.args_ident;
        let fields = m.args.iter().map(|a| {
            let field = &a.ident;
            quote!(__args.#field)
        });
        let ret = if m.output.bytes == Bytes::Wrapped {
            quote!(&#krate::__private::Bin(&__ret))
        } else {
            quote!(&__ret)
        };
        let decode = if m.args.is_empty() {
            // Still decoded, so that a malformed payload is an error.
            quote!(let #args_ident {} = #krate::__private::decode_method_args(__call.payload, __contract, &__contract.methods[#index])?;)
        } else {
            quote!(let __args: #args_ident = #krate::__private::decode_method_args(__call.payload, __contract, &__contract.methods[#index])?;)
        };
        quote! {
            #name => {
                #decode
                let __ret = <__A as #ident>::#method(__actor, #(#fields),*);
                #krate::__private::encode_into(#ret, __out)
            }
        }
    });
    quote! {
        const _: () = {
            #[automatically_derived]
            impl<__A: #ident + ?::core::marker::Sized> #krate::Dispatch<__A> for dyn #ident {
                fn dispatch(
                    __actor: &mut __A,
                    __call: #krate::Invocation<'_>,
                    __out: &mut ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<(), #krate::Error> {
                    let __contract = <Self as #krate::Contract>::DESCRIPTOR;
                    #krate::__private::check_fingerprint(__contract, __call.fingerprint)?;
                    match __call.method {
                        #(#arms)*
                        __other => ::core::result::Result::Err(#krate::__private::unknown_method(__contract, __other)),
                    }
                }
            }
        };
    }
}
