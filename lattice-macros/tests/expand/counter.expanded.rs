// @generated from the contract next to this file by `#[lattice::contract]`.
// Regenerate: LATTICE_BLESS=1 cargo test -p lattice-macros golden

pub trait Counter {
    /// Adds `by` and returns the new total.
    fn add(&mut self, by: u64) -> u64;
    /// Returns the total.
    fn get(&self) -> u64;
    fn rename(&mut self, name: String) -> Result<(), CounterError>;
    fn reset(&mut self);
}
///The arguments of [`Counter::add`], as carried on the wire: a map keyed by argument name.
#[derive(
    ::lattice::__private::serde::Serialize,
    ::lattice::__private::serde::Deserialize
)]
#[serde(crate = "::lattice::__private::serde")]
pub struct CounterAddArgs {
    ///The `by` argument.
    pub by: u64,
}
///The arguments of [`Counter::get`], as carried on the wire: a map keyed by argument name.
#[derive(
    ::lattice::__private::serde::Serialize,
    ::lattice::__private::serde::Deserialize
)]
#[serde(crate = "::lattice::__private::serde")]
pub struct CounterGetArgs {}
///The arguments of [`Counter::rename`], as carried on the wire: a map keyed by argument name.
#[derive(
    ::lattice::__private::serde::Serialize,
    ::lattice::__private::serde::Deserialize
)]
#[serde(crate = "::lattice::__private::serde")]
pub struct CounterRenameArgs {
    ///The `name` argument.
    pub name: String,
}
///The arguments of [`Counter::reset`], as carried on the wire: a map keyed by argument name.
#[derive(
    ::lattice::__private::serde::Serialize,
    ::lattice::__private::serde::Deserialize
)]
#[serde(crate = "::lattice::__private::serde")]
pub struct CounterResetArgs {}
const _: () = {
    fn schema() -> ::lattice::ContractSchema {
        #[allow(unused_imports)]
        use ::lattice::schema::{ViaJsonSchema as _, ViaName as _};
        #[allow(unused_mut, unused_variables)]
        let mut collector = ::lattice::schema::Collector::new();
        let methods = ::std::vec![
            ::lattice::MethodSchema { args : ::std::vec![(&& ::lattice::schema::Probe:: <
            u64 > ::new("u64")).schema(& mut collector, false)], returns : (&&
            ::lattice::schema::Probe:: < u64 > ::new("u64")).schema(& mut collector,
            false), }, ::lattice::MethodSchema { args : ::std::vec![], returns : (&&
            ::lattice::schema::Probe:: < u64 > ::new("u64")).schema(& mut collector,
            false), }, ::lattice::MethodSchema { args : ::std::vec![(&&
            ::lattice::schema::Probe:: < String > ::new("String")).schema(& mut
            collector, false)], returns : (&& ::lattice::schema::Probe:: < Result < (),
            CounterError > > ::new("Result<(), CounterError>")).schema(& mut collector,
            true), }, ::lattice::MethodSchema { args : ::std::vec![], returns :
            ::lattice::schema::unit(), }
        ];
        ::lattice::ContractSchema {
            methods,
            types: collector.finish(),
        }
    }
    const METHODS: &[::lattice::MethodDescriptor] = &[
        ::lattice::MethodDescriptor {
            name: "add",
            docs: "Adds `by` and returns the new total.",
            args: &[
                ::lattice::ArgDescriptor {
                    name: "by",
                    ty: "u64",
                    bytes: false,
                },
            ],
            returns: "u64",
            returns_bytes: false,
            returns_result: false,
            mutating: true,
            idempotent: false,
            oneway: false,
            timeout_ms: ::core::option::Option::None,
        },
        ::lattice::MethodDescriptor {
            name: "get",
            docs: "Returns the total.",
            args: &[],
            returns: "u64",
            returns_bytes: false,
            returns_result: false,
            mutating: false,
            idempotent: true,
            oneway: false,
            timeout_ms: ::core::option::Option::Some(500u64),
        },
        ::lattice::MethodDescriptor {
            name: "rename",
            docs: "",
            args: &[
                ::lattice::ArgDescriptor {
                    name: "name",
                    ty: "String",
                    bytes: false,
                },
            ],
            returns: "Result<(), CounterError>",
            returns_bytes: false,
            returns_result: true,
            mutating: true,
            idempotent: false,
            oneway: false,
            timeout_ms: ::core::option::Option::None,
        },
        ::lattice::MethodDescriptor {
            name: "reset",
            docs: "",
            args: &[],
            returns: "()",
            returns_bytes: false,
            returns_result: false,
            mutating: true,
            idempotent: false,
            oneway: true,
            timeout_ms: ::core::option::Option::None,
        },
    ];
    #[automatically_derived]
    impl ::lattice::Contract for dyn Counter {
        const DESCRIPTOR: &'static ::lattice::ContractDescriptor = &::lattice::ContractDescriptor {
            name: "counter",
            version: 1u32,
            fingerprint: ::lattice::__private::fingerprint(METHODS),
            docs: "",
            methods: METHODS,
            schema,
        };
    }
};
const _: () = {
    #[automatically_derived]
    impl<__A: Counter + ?::core::marker::Sized> ::lattice::Dispatch<__A>
    for dyn Counter {
        fn dispatch(
            __actor: &mut __A,
            __call: ::lattice::Invocation<'_>,
            __out: &mut ::std::vec::Vec<u8>,
        ) -> ::core::result::Result<(), ::lattice::Error> {
            let __contract = <Self as ::lattice::Contract>::DESCRIPTOR;
            ::lattice::__private::check_fingerprint(__contract, __call.fingerprint)?;
            match __call.method {
                "add" => {
                    let __args: CounterAddArgs = ::lattice::__private::decode_method_args(
                        __call.payload,
                        __contract,
                        &__contract.methods[0usize],
                    )?;
                    let __ret = <__A as Counter>::add(__actor, __args.by);
                    ::lattice::__private::encode_into(&__ret, __out)
                }
                "get" => {
                    let CounterGetArgs {} = ::lattice::__private::decode_method_args(
                        __call.payload,
                        __contract,
                        &__contract.methods[1usize],
                    )?;
                    let __ret = <__A as Counter>::get(__actor);
                    ::lattice::__private::encode_into(&__ret, __out)
                }
                "rename" => {
                    let __args: CounterRenameArgs = ::lattice::__private::decode_method_args(
                        __call.payload,
                        __contract,
                        &__contract.methods[2usize],
                    )?;
                    let __ret = <__A as Counter>::rename(__actor, __args.name);
                    ::lattice::__private::encode_into(&__ret, __out)
                }
                "reset" => {
                    let CounterResetArgs {} = ::lattice::__private::decode_method_args(
                        __call.payload,
                        __contract,
                        &__contract.methods[3usize],
                    )?;
                    let __ret = <__A as Counter>::reset(__actor);
                    ::lattice::__private::encode_into(&__ret, __out)
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
///Calls an actor implementing [`Counter`] from inside another actor. Calls are synchronous for the guest; the host makes them over the lattice.
#[derive(::core::clone::Clone)]
pub struct CounterGuestClient<T = ::lattice::__private::HostTransport> {
    inner: ::lattice::__private::GuestStub<T>,
}
impl CounterGuestClient {
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
impl<T: ::lattice::__private::GuestTransport> CounterGuestClient<T> {
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
    /**Adds `by` and returns the new total.

Errors are those of the call (transport, deadline, actor failures); the method itself cannot fail.*/
    pub fn add(&self, by: u64) -> ::core::result::Result<u64, ::lattice::Error> {
        self.inner
            .call::<
                _,
                u64,
            >(
                <dyn Counter as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Counter as ::lattice::Contract>::DESCRIPTOR.methods[0usize],
                &CounterAddArgs { by },
            )
    }
    /**Returns the total.

Errors are those of the call (transport, deadline, actor failures); the method itself cannot fail.*/
    pub fn get(&self) -> ::core::result::Result<u64, ::lattice::Error> {
        self.inner
            .call::<
                _,
                u64,
            >(
                <dyn Counter as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Counter as ::lattice::Contract>::DESCRIPTOR.methods[1usize],
                &CounterGetArgs {},
            )
    }
    /**Calls [`Counter::rename`] on the actor.

Errors are those of the call (transport, deadline, actor failures); the method's own error is the inner `Result`.*/
    pub fn rename(
        &self,
        name: String,
    ) -> ::core::result::Result<Result<(), CounterError>, ::lattice::Error> {
        self.inner
            .call::<
                _,
                Result<(), CounterError>,
            >(
                <dyn Counter as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Counter as ::lattice::Contract>::DESCRIPTOR.methods[2usize],
                &CounterRenameArgs { name },
            )
    }
    /**Calls [`Counter::reset`] on the actor.

Errors are those of the call (transport, deadline, actor failures); the method itself cannot fail.*/
    pub fn reset(&self) -> ::core::result::Result<(), ::lattice::Error> {
        self.inner
            .call::<
                _,
                (),
            >(
                <dyn Counter as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Counter as ::lattice::Contract>::DESCRIPTOR.methods[3usize],
                &CounterResetArgs {},
            )
    }
}
impl<T> ::core::fmt::Debug for CounterGuestClient<T> {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        ::core::fmt::Debug::fmt(&self.inner, f)
    }
}

// ---- inside `::lattice::__private::cfg_client! { ... }`: only with the native client ----

///The native async client of [`Counter`]: calls an actor implementing `counter` across the lattice over NATS.
#[derive(::core::clone::Clone, ::core::fmt::Debug)]
pub struct CounterClient {
    inner: ::lattice::ActorClient,
}
#[allow(clippy::too_many_arguments)]
impl CounterClient {
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
    /**Adds `by` and returns the new total.

Errors are those of the call (transport, deadline, actor failures); the method itself cannot fail.*/
    pub async fn add(&self, by: u64) -> ::core::result::Result<u64, ::lattice::Error> {
        self.inner
            .call::<
                _,
                u64,
            >(
                <dyn Counter as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Counter as ::lattice::Contract>::DESCRIPTOR.methods[0usize],
                &CounterAddArgs { by },
            )
            .await
    }
    /**Returns the total.

Errors are those of the call (transport, deadline, actor failures); the method itself cannot fail.*/
    pub async fn get(&self) -> ::core::result::Result<u64, ::lattice::Error> {
        self.inner
            .call::<
                _,
                u64,
            >(
                <dyn Counter as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Counter as ::lattice::Contract>::DESCRIPTOR.methods[1usize],
                &CounterGetArgs {},
            )
            .await
    }
    /**Calls [`Counter::rename`] on the actor.

Errors are those of the call (transport, deadline, actor failures); the method's own error is the inner `Result`.*/
    pub async fn rename(
        &self,
        name: String,
    ) -> ::core::result::Result<Result<(), CounterError>, ::lattice::Error> {
        self.inner
            .call::<
                _,
                Result<(), CounterError>,
            >(
                <dyn Counter as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Counter as ::lattice::Contract>::DESCRIPTOR.methods[2usize],
                &CounterRenameArgs { name },
            )
            .await
    }
    /**Calls [`Counter::reset`] on the actor.

Errors are those of the call (transport, deadline, actor failures); the method itself cannot fail.*/
    pub async fn reset(&self) -> ::core::result::Result<(), ::lattice::Error> {
        self.inner
            .call::<
                _,
                (),
            >(
                <dyn Counter as ::lattice::Contract>::DESCRIPTOR,
                &<dyn Counter as ::lattice::Contract>::DESCRIPTOR.methods[3usize],
                &CounterResetArgs {},
            )
            .await
    }
}
