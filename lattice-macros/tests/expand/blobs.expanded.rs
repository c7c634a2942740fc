// @generated from the contract next to this file by `#[lattice::contract]`.
// Regenerate: LATTICE_BLESS=1 cargo test -p lattice-macros golden

/// Stores blobs.
trait Blobs {
    fn put(
        &mut self,
        key: String,
        data: Vec<u8>,
        meta: Option<Vec<u8>>,
    ) -> Result<u64, String>;
    fn get(&self, key: String) -> Vec<u8>;
    fn r#type(&self, r#ref: bytes::Bytes) -> Option<Vec<u8>>;
}
///The arguments of [`Blobs::put`], as carried on the wire: a map keyed by argument name.
#[derive(
    ::lattice::__private::serde::Serialize,
    ::lattice::__private::serde::Deserialize
)]
#[serde(crate = "::lattice::__private::serde")]
struct BlobsPutArgs {
    ///The `key` argument.
    pub key: String,
    ///The `data` argument.
    #[serde(with = "::lattice::__private::serde_bytes")]
    pub data: Vec<u8>,
    ///The `meta` argument.
    #[serde(with = "::lattice::__private::serde_bytes")]
    pub meta: Option<Vec<u8>>,
}
///The arguments of [`Blobs::get`], as carried on the wire: a map keyed by argument name.
#[derive(
    ::lattice::__private::serde::Serialize,
    ::lattice::__private::serde::Deserialize
)]
#[serde(crate = "::lattice::__private::serde")]
struct BlobsGetArgs {
    ///The `key` argument.
    pub key: String,
}
///The arguments of [`Blobs::type`], as carried on the wire: a map keyed by argument name.
#[derive(
    ::lattice::__private::serde::Serialize,
    ::lattice::__private::serde::Deserialize
)]
#[serde(crate = "::lattice::__private::serde")]
struct BlobsTypeArgs {
    ///The `ref` argument.
    pub r#ref: bytes::Bytes,
}
const _: () = {
    fn schema() -> ::lattice::ContractSchema {
        #[allow(unused_imports)]
        use ::lattice::schema::{ViaJsonSchema as _, ViaName as _};
        #[allow(unused_mut, unused_variables)]
        let mut collector = ::lattice::schema::Collector::new();
        let methods = ::std::vec![
            ::lattice::MethodSchema { args : ::std::vec![(&& ::lattice::schema::Probe:: <
            String > ::new("String")).schema(& mut collector, false), collector
            .bytes("Vec<u8>", false, false), collector.bytes("Option<Vec<u8>>", true,
            false)], returns : (&& ::lattice::schema::Probe:: < Result < u64, String > >
            ::new("Result<u64, String>")).schema(& mut collector, true), },
            ::lattice::MethodSchema { args : ::std::vec![(&& ::lattice::schema::Probe:: <
            String > ::new("String")).schema(& mut collector, false)], returns :
            collector.bytes("Vec<u8>", false, true), }, ::lattice::MethodSchema { args :
            ::std::vec![collector.bytes("bytes::Bytes", false, false)], returns :
            collector.bytes("Option<Vec<u8>>", true, true), }
        ];
        ::lattice::ContractSchema {
            methods,
            types: collector.finish(),
        }
    }
    const METHODS: &[::lattice::MethodDescriptor] = &[
        ::lattice::MethodDescriptor {
            name: "put",
            docs: "",
            args: &[
                ::lattice::ArgDescriptor {
                    name: "key",
                    ty: "String",
                    bytes: false,
                },
                ::lattice::ArgDescriptor {
                    name: "data",
                    ty: "Vec<u8>",
                    bytes: true,
                },
                ::lattice::ArgDescriptor {
                    name: "meta",
                    ty: "Option<Vec<u8>>",
                    bytes: true,
                },
            ],
            returns: "Result<u64, String>",
            returns_bytes: false,
            returns_result: true,
            mutating: true,
            idempotent: false,
            oneway: false,
            timeout_ms: ::core::option::Option::None,
        },
        ::lattice::MethodDescriptor {
            name: "get",
            docs: "",
            args: &[
                ::lattice::ArgDescriptor {
                    name: "key",
                    ty: "String",
                    bytes: false,
                },
            ],
            returns: "Vec<u8>",
            returns_bytes: true,
            returns_result: false,
            mutating: false,
            idempotent: false,
            oneway: false,
            timeout_ms: ::core::option::Option::None,
        },
        ::lattice::MethodDescriptor {
            name: "type",
            docs: "",
            args: &[
                ::lattice::ArgDescriptor {
                    name: "ref",
                    ty: "bytes::Bytes",
                    bytes: true,
                },
            ],
            returns: "Option<Vec<u8>>",
            returns_bytes: true,
            returns_result: false,
            mutating: false,
            idempotent: false,
            oneway: false,
            timeout_ms: ::core::option::Option::None,
        },
    ];
    #[automatically_derived]
    impl ::lattice::Contract for dyn Blobs {
        const DESCRIPTOR: &'static ::lattice::ContractDescriptor = &::lattice::ContractDescriptor {
            name: "blob-store",
            version: 4u32,
            fingerprint: ::lattice::__private::fingerprint(METHODS),
            docs: "Stores blobs.",
            methods: METHODS,
            schema,
        };
    }
};
const _: () = {
    #[automatically_derived]
    impl<__A: Blobs + ?::core::marker::Sized> ::lattice::Dispatch<__A> for dyn Blobs {
        fn dispatch(
            __actor: &mut __A,
            __call: ::lattice::Invocation<'_>,
            __out: &mut ::std::vec::Vec<u8>,
        ) -> ::core::result::Result<(), ::lattice::Error> {
            let __contract = <Self as ::lattice::Contract>::DESCRIPTOR;
            ::lattice::__private::check_fingerprint(__contract, __call.fingerprint)?;
            match __call.method {
                "put" => {
                    let __args: BlobsPutArgs = ::lattice::__private::decode_method_args(
                        __call.payload,
                        __contract,
                        &__contract.methods[0usize],
                    )?;
                    let __ret = <__A as Blobs>::put(
                        __actor,
                        __args.key,
                        __args.data,
                        __args.meta,
                    );
                    ::lattice::__private::encode_into(&__ret, __out)
                }
                "get" => {
                    let __args: BlobsGetArgs = ::lattice::__private::decode_method_args(
                        __call.payload,
                        __contract,
                        &__contract.methods[1usize],
                    )?;
                    let __ret = <__A as Blobs>::get(__actor, __args.key);
                    ::lattice::__private::encode_into(
                        &::lattice::__private::Bin(&__ret),
                        __out,
                    )
                }
                "type" => {
                    let __args: BlobsTypeArgs = ::lattice::__private::decode_method_args(
                        __call.payload,
                        __contract,
                        &__contract.methods[2usize],
                    )?;
                    let __ret = <__A as Blobs>::r#type(__actor, __args.r#ref);
                    ::lattice::__private::encode_into(
                        &::lattice::__private::Bin(&__ret),
                        __out,
                    )
                }
                __other => {
                    ::core::result::Result::Err(
                        ::lattice::__private::unknown_method(__contract, __other),
                    )
                }
            }
        }
    }
};
///Calls an actor implementing [`Blobs`] from inside another actor. Calls are synchronous for the guest; the host makes them over the lattice.
#[derive(::core::clone::Clone)]
struct BlobsGuestClient<T = ::lattice::__private::HostTransport> {
    inner: ::lattice::__private::GuestStub<T>,
}
impl BlobsGuestClient {
    /// A client of the actor named `actor`, through the host the calling actor runs on.
    pub fn new(actor: &str) -> ::core::result::Result<Self, ::lattice::Error> {
        ::core::result::Result::Ok(Self {
            inner: ::lattice::__private::GuestStub::new(
                ::lattice::__private::HostTransport,
                actor,
            )?,
        })
    }
}
#[allow(clippy::too_many_arguments)]
impl<T: ::lattice::__private::GuestTransport> BlobsGuestClient<T> {
    /// A client of the actor named `actor` through `transport`.
    pub fn with_transport(
        transport: T,
        actor: &str,
    ) -> ::core::result::Result<Self, ::lattice::Error> {
        ::core::result::Result::Ok(Self {
            inner: ::lattice::__private::GuestStub::new(transport, actor)?,
        })
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
    /**Calls [`Blobs::put`] on the actor.

Errors are those of the call (transport, deadline, actor failures); the method's own error is the inner `Result`.*/
    pub fn put(
        &self,
        key: String,
        data: Vec<u8>,
        meta: Option<Vec<u8>>,
    ) -> ::core::result::Result<Result<u64, String>, ::lattice::Error> {
        self.inner
            .call::<
                _,
                Result<u64, String>,
            >(
                <dyn Blobs as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Blobs as ::lattice::Contract>::DESCRIPTOR.methods[0usize],
                &BlobsPutArgs { key, data, meta },
            )
    }
    /**Calls [`Blobs::get`] on the actor.

Errors are those of the call (transport, deadline, actor failures); the method itself cannot fail.*/
    pub fn get(&self, key: String) -> ::core::result::Result<Vec<u8>, ::lattice::Error> {
        self.inner
            .call::<
                _,
                ::lattice::__private::Bin<Vec<u8>>,
            >(
                <dyn Blobs as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Blobs as ::lattice::Contract>::DESCRIPTOR.methods[1usize],
                &BlobsGetArgs { key },
            )
            .map(|__bin: ::lattice::__private::Bin<Vec<u8>>| __bin.0)
    }
    /**Calls [`Blobs::type`] on the actor.

Errors are those of the call (transport, deadline, actor failures); the method itself cannot fail.*/
    pub fn r#type(
        &self,
        r#ref: bytes::Bytes,
    ) -> ::core::result::Result<Option<Vec<u8>>, ::lattice::Error> {
        self.inner
            .call::<
                _,
                ::lattice::__private::Bin<Option<Vec<u8>>>,
            >(
                <dyn Blobs as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Blobs as ::lattice::Contract>::DESCRIPTOR.methods[2usize],
                &BlobsTypeArgs { r#ref },
            )
            .map(|__bin: ::lattice::__private::Bin<Option<Vec<u8>>>| __bin.0)
    }
}
impl<T> ::core::fmt::Debug for BlobsGuestClient<T> {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        ::core::fmt::Debug::fmt(&self.inner, f)
    }
}

// ---- inside `::lattice::__private::cfg_client! { ... }`: only with the native client ----

///The native async client of [`Blobs`]: calls an actor implementing `blob-store` across the lattice over NATS.
#[derive(::core::clone::Clone, ::core::fmt::Debug)]
struct BlobsClient {
    inner: ::lattice::ActorClient,
}
#[allow(clippy::too_many_arguments)]
impl BlobsClient {
    /// A client of the actor named `actor` in lattice `lattice`, over the NATS connection `nats`;
    /// `actor/key` addresses one activation of a keyed actor (see [`keyed`](Self::keyed)).
    pub fn new(
        nats: ::lattice::__private::async_nats::Client,
        lattice: &str,
        actor: &str,
    ) -> ::core::result::Result<Self, ::lattice::Error> {
        ::core::result::Result::Ok(Self {
            inner: ::lattice::ActorClient::connect(nats, lattice, actor)?,
        })
    }
    /// A client of the activation of the keyed actor `actor` for `key`:
    /// the address `actor/key`.
    pub fn keyed(
        nats: ::lattice::__private::async_nats::Client,
        lattice: &str,
        actor: &str,
        key: &str,
    ) -> ::core::result::Result<Self, ::lattice::Error> {
        let address = ::std::format!("{actor}/{key}");
        ::core::result::Result::Ok(Self {
            inner: ::lattice::ActorClient::connect(nats, lattice, &address)?,
        })
    }
    /// A client of the actor named `actor`, sharing `client`'s connection and defaults.
    pub fn from_client(
        client: &::lattice::Client,
        actor: &str,
    ) -> ::core::result::Result<Self, ::lattice::Error> {
        ::core::result::Result::Ok(Self {
            inner: client.actor(actor)?,
        })
    }
    /// Sets the deadline of every call made with this client.
    pub fn with_timeout(self, timeout: ::core::time::Duration) -> Self {
        Self {
            inner: self.inner.with_timeout(timeout),
        }
    }
    /// Sets the W3C trace context sent with every call.
    pub fn with_traceparent(
        self,
        traceparent: impl ::core::convert::Into<::std::string::String>,
    ) -> Self {
        Self {
            inner: self.inner.with_traceparent(traceparent),
        }
    }
    /// The actor called.
    pub fn actor(&self) -> &str {
        self.inner.actor()
    }
    /// The untyped client underneath.
    pub fn inner(&self) -> &::lattice::ActorClient {
        &self.inner
    }
    /**Calls [`Blobs::put`] on the actor.

Errors are those of the call (transport, deadline, actor failures); the method's own error is the inner `Result`.*/
    pub async fn put(
        &self,
        key: String,
        data: Vec<u8>,
        meta: Option<Vec<u8>>,
    ) -> ::core::result::Result<Result<u64, String>, ::lattice::Error> {
        self.inner
            .call::<
                _,
                Result<u64, String>,
            >(
                <dyn Blobs as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Blobs as ::lattice::Contract>::DESCRIPTOR.methods[0usize],
                &BlobsPutArgs { key, data, meta },
            )
            .await
    }
    /**Calls [`Blobs::get`] on the actor.

Errors are those of the call (transport, deadline, actor failures); the method itself cannot fail.*/
    pub async fn get(
        &self,
        key: String,
    ) -> ::core::result::Result<Vec<u8>, ::lattice::Error> {
        self.inner
            .call::<
                _,
                ::lattice::__private::Bin<Vec<u8>>,
            >(
                <dyn Blobs as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Blobs as ::lattice::Contract>::DESCRIPTOR.methods[1usize],
                &BlobsGetArgs { key },
            )
            .await
            .map(|__bin: ::lattice::__private::Bin<Vec<u8>>| __bin.0)
    }
    /**Calls [`Blobs::type`] on the actor.

Errors are those of the call (transport, deadline, actor failures); the method itself cannot fail.*/
    pub async fn r#type(
        &self,
        r#ref: bytes::Bytes,
    ) -> ::core::result::Result<Option<Vec<u8>>, ::lattice::Error> {
        self.inner
            .call::<
                _,
                ::lattice::__private::Bin<Option<Vec<u8>>>,
            >(
                <dyn Blobs as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Blobs as ::lattice::Contract>::DESCRIPTOR.methods[2usize],
                &BlobsTypeArgs { r#ref },
            )
            .await
            .map(|__bin: ::lattice::__private::Bin<Option<Vec<u8>>>| __bin.0)
    }
}
