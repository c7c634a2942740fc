//! `TraitGuestClient`: calls from inside an actor to another actor.

use proc_macro2::TokenStream;
use quote::quote;

use super::{args_value, client_docs, contract_descriptor, method_descriptor, params, reply_type};
use crate::ast::Contract;

pub(super) fn expand(contract: &Contract) -> TokenStream {
    let krate = &contract.krate;
    let vis = &contract.vis;
    let ident = &contract.ident;
    let client = contract.guest_client_ident();
    let doc = format!(
        "Calls an actor implementing [`{ident}`] from inside another actor. \
         Calls are synchronous for the guest; the host makes them over the lattice."
    );
    let descriptor = contract_descriptor(contract);
    let methods = contract.methods.iter().enumerate().map(|(index, method)| {
        let name = &method.ident;
        let docs = client_docs(method, ident);
        let params = params(method);
        let args = args_value(method);
        let method_descriptor = method_descriptor(contract, index);
        let (reply, unwrap) = reply_type(contract, method);
        let ret = match &method.output.ty {
            Some(ty) => quote!(#ty),
            None => quote!(()),
        };
        quote! {
            #docs
            pub fn #name(&self, #params) -> ::core::result::Result<#ret, #krate::Error> {
                self.inner.call::<_, #reply>(#descriptor, #method_descriptor, &#args) #unwrap
            }
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone)]
        #vis struct #client<T = #krate::__private::HostTransport> {
            inner: #krate::__private::GuestStub<T>,
        }

        impl #client {
            /// A client of the actor named `actor`, through the host the calling actor runs on.
            pub fn new(actor: &str) -> ::core::result::Result<Self, #krate::Error> {
                ::core::result::Result::Ok(Self {
                    inner: #krate::__private::GuestStub::new(#krate::__private::HostTransport, actor)?,
                })
            }
        }

        // The argument count is the contract's.
            #[allow(clippy::too_many_arguments)]
            impl<T: #krate::__private::GuestTransport> #client<T> {
            /// A client of the actor named `actor` through `transport`.
            pub fn with_transport(transport: T, actor: &str) -> ::core::result::Result<Self, #krate::Error> {
                ::core::result::Result::Ok(Self { inner: #krate::__private::GuestStub::new(transport, actor)? })
            }

            /// Sets the deadline of every call made with this client.
            pub fn with_timeout(mut self, timeout: ::core::time::Duration) -> Self {
                self.inner.set_timeout(timeout);
                self
            }

            /// The actor called.
            pub fn actor(&self) -> &str {
                self.inner.actor()
            }

            #(#methods)*
        }

        impl<T> ::core::fmt::Debug for #client<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Debug::fmt(&self.inner, f)
            }
        }
    }
}
