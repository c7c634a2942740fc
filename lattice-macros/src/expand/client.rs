//! `TraitClient`: the native async client over NATS (feature `client`).

use proc_macro2::TokenStream;
use quote::quote;

use super::{args_value, client_docs, contract_descriptor, method_descriptor, params, reply_type};
use crate::ast::Contract;

pub(super) fn expand(contract: &Contract) -> TokenStream {
    let krate = &contract.krate;
    let vis = &contract.vis;
    let ident = &contract.ident;
    let client = contract.client_ident();
    let doc = format!(
        "The native async client of [`{ident}`]: calls an actor implementing `{}` across the lattice over NATS.",
        contract.name
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
            pub async fn #name(&self, #params) -> ::core::result::Result<#ret, #krate::Error> {
                self.inner
                    .call::<_, #reply>(#descriptor, #method_descriptor, &#args)
                    .await
                    #unwrap
            }
        }
    });
    quote! {
        #krate::__private::cfg_client! {
            #[doc = #doc]
            #[derive(::core::clone::Clone, ::core::fmt::Debug)]
            #vis struct #client {
                inner: #krate::ActorClient,
            }

            // The argument count is the contract's.
            #[allow(clippy::too_many_arguments)]
            impl #client {
                /// A client of the actor named `actor` in lattice `lattice`, over the NATS connection `nats`;
                /// `actor/key` addresses one activation of a keyed actor (see [`keyed`](Self::keyed)).
                pub fn new(
                    nats: #krate::__private::async_nats::Client,
                    lattice: &str,
                    actor: &str,
                ) -> ::core::result::Result<Self, #krate::Error> {
                    ::core::result::Result::Ok(Self { inner: #krate::ActorClient::connect(nats, lattice, actor)? })
                }

                /// A client of the activation of the keyed actor `actor` for `key`:
                /// the address `actor/key`.
                pub fn keyed(
                    nats: #krate::__private::async_nats::Client,
                    lattice: &str,
                    actor: &str,
                    key: &str,
                ) -> ::core::result::Result<Self, #krate::Error> {
                    let address = ::std::format!("{actor}/{key}");
                    ::core::result::Result::Ok(Self { inner: #krate::ActorClient::connect(nats, lattice, &address)? })
                }

                /// A client of the actor named `actor`, sharing `client`'s connection and defaults.
                pub fn from_client(client: &#krate::Client, actor: &str) -> ::core::result::Result<Self, #krate::Error> {
                    ::core::result::Result::Ok(Self { inner: client.actor(actor)? })
                }

                /// Sets the deadline of every call made with this client.
                pub fn with_timeout(self, timeout: ::core::time::Duration) -> Self {
                    Self { inner: self.inner.with_timeout(timeout) }
                }

                /// Sets the W3C trace context sent with every call.
                pub fn with_traceparent(self, traceparent: impl ::core::convert::Into<::std::string::String>) -> Self {
                    Self { inner: self.inner.with_traceparent(traceparent) }
                }

                /// The actor called.
                pub fn actor(&self) -> &str {
                    self.inner.actor()
                }

                /// The untyped client underneath.
                pub fn inner(&self) -> &#krate::ActorClient {
                    &self.inner
                }

                #(#methods)*
            }
        }
    }
}
