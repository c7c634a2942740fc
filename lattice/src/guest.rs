//! Calls from inside an actor to other actors.
//!
//! The generated `…GuestClient` types call through a [`GuestTransport`].
//! [`HostTransport`], the default transport of every guest client, calls the
//! host's `call` import in a wasm module (a process-wide transport given to
//! [`install`] takes its place). Tests and in-process uses pass their own
//! transport with `with_transport`.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::contract::{ContractDescriptor, MethodDescriptor};
use crate::error::Error;

/// One outgoing call from a guest.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingCall<'a> {
    /// The actor called.
    pub actor: &'a str,
    /// The contract.
    pub contract: &'static ContractDescriptor,
    /// The method; `method.oneway` says whether a reply is awaited.
    pub method: &'static MethodDescriptor,
    /// The MessagePack arguments map.
    pub payload: &'a [u8],
    /// The deadline the caller asked for, if any; the host caps it by the
    /// caller's own remaining deadline.
    pub timeout: Option<Duration>,
}

/// Carries calls out of a guest.
pub trait GuestTransport {
    /// Makes the call and returns the reply body (empty for oneway calls).
    fn call(&self, call: OutgoingCall<'_>) -> Result<Vec<u8>, Error>;
}

impl<T: GuestTransport + ?Sized> GuestTransport for &T {
    fn call(&self, call: OutgoingCall<'_>) -> Result<Vec<u8>, Error> {
        (**self).call(call)
    }
}

static INSTALLED: OnceLock<&'static (dyn GuestTransport + Send + Sync)> = OnceLock::new();

/// Installs a process-wide transport behind [`HostTransport`], in place of
/// the host's `call` import; returns `false` if one was installed already.
pub fn install(transport: &'static (dyn GuestTransport + Send + Sync)) -> bool {
    INSTALLED.set(transport).is_ok()
}

/// The default transport of guest clients: in a wasm module, the host's
/// [`abi::CALL`](crate::abi::CALL) import (or the transport given to
/// [`install`]).
///
/// The import is declared in this crate (`guest/sys.rs`), with the clients
/// that use it, rather than in the actor SDK: a module then imports `call`
/// only when it makes calls, and a host runs the calls of a module without
/// such imports on its own thread, without a fiber (see the book's guest-ABI
/// chapter).
#[derive(Debug, Clone, Copy, Default)]
pub struct HostTransport;

impl GuestTransport for HostTransport {
    fn call(&self, call: OutgoingCall<'_>) -> Result<Vec<u8>, Error> {
        match INSTALLED.get() {
            Some(transport) => transport.call(call),
            #[cfg(target_family = "wasm")]
            None => sys::call(&call),
            #[cfg(not(target_family = "wasm"))]
            None => Err(Error::new(
                crate::error::ErrorKind::Transport,
                format!(
                    "cannot call {}.{} on actor `{}`: no guest transport is installed; \
                     guest clients work inside an actor built with the actor SDK, \
                     or with a transport given to `with_transport`",
                    call.contract.name, call.method.name, call.actor
                ),
            )),
        }
    }
}

/// Reads the reply the host announced with `packed` (of [`abi::PUBLISH`])
/// through [`abi::TAKE_REPLY`], for its error only. For the actor SDK.
///
/// [`abi::PUBLISH`]: crate::abi::PUBLISH
/// [`abi::TAKE_REPLY`]: crate::abi::TAKE_REPLY
#[cfg(target_family = "wasm")]
#[doc(hidden)]
pub fn take_reply(packed: u64) -> Result<(), Error> {
    sys::take_reply(packed).map(keep_reply_buffer)
}

/// Reads the reply the host announced with `packed` through
/// [`abi::TAKE_REPLY`]: its bytes, or its error. For the actor SDK.
///
/// [`abi::TAKE_REPLY`]: crate::abi::TAKE_REPLY
#[cfg(target_family = "wasm")]
#[doc(hidden)]
pub fn take_reply_bytes(packed: u64) -> Result<Vec<u8>, Error> {
    sys::take_reply(packed)
}

#[cfg(target_family = "wasm")]
mod sys;

thread_local! {
    /// The encoding buffer of guest calls, reused from call to call.
    static ARGS: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    /// The buffer the next reply is copied into, reused from call to call
    /// (an allocation and a free of the guest's allocator cost about 300
    /// instructions, a tenth of a call's work in the guest).
    static REPLY: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The largest buffer kept for the next call: a buffer a large call grew
/// goes back to the allocator rather than being held for this use alone.
const KEPT_BUFFER: usize = 64 << 10;

/// Keeps `buffer` for the next call's arguments (see [`KEPT_BUFFER`]).
fn keep_args_buffer(buffer: Vec<u8>) {
    if buffer.capacity() <= KEPT_BUFFER {
        ARGS.set(buffer);
    }
}

/// An empty buffer for a reply, with room for `len` bytes.
#[cfg(target_family = "wasm")]
fn reply_buffer(len: usize) -> Vec<u8> {
    let mut buffer = REPLY.take();
    buffer.clear();
    buffer.reserve(len);
    buffer
}

/// Keeps a decoded reply's buffer for the next reply (see [`KEPT_BUFFER`]).
fn keep_reply_buffer(buffer: Vec<u8>) {
    if buffer.capacity() <= KEPT_BUFFER {
        REPLY.set(buffer);
    }
}

/// The shared part of every generated guest client: which actor, over which
/// transport, with which deadline.
#[derive(Clone)]
pub struct GuestStub<T> {
    actor: String,
    transport: T,
    timeout: Option<Duration>,
}

impl<T> fmt::Debug for GuestStub<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestStub")
            .field("actor", &self.actor)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<T: GuestTransport> GuestStub<T> {
    /// A stub for `actor`, or for one key of a keyed actor (`counter/alice`);
    /// fails if the name or the key breaks its rule.
    pub fn new(transport: T, actor: &str) -> Result<Self, Error> {
        crate::key::validate_address(actor)?;
        Ok(GuestStub {
            actor: actor.to_owned(),
            transport,
            timeout: None,
        })
    }

    /// The actor called.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Sets the deadline of each call.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = Some(timeout);
    }

    /// Encodes `args`, calls `method` and decodes the reply as `R`.
    pub fn call<A: Serialize, R: DeserializeOwned>(
        &self,
        contract: &'static ContractDescriptor,
        method: &'static MethodDescriptor,
        args: &A,
    ) -> Result<R, Error> {
        // The arguments are encoded into a buffer kept for the next call
        // (taken out of its cell for the call, so that a transport that
        // calls back in finds an empty one rather than a borrowed one).
        let mut payload = ARGS.take();
        payload.clear();
        if let Err(e) = codec::encode_into(args, &mut payload) {
            keep_args_buffer(payload);
            return Err(e);
        }
        let timeout = self
            .timeout
            .or(method.timeout_ms.map(Duration::from_millis));
        let reply = self.transport.call(OutgoingCall {
            actor: &self.actor,
            contract,
            method,
            payload: &payload,
            timeout,
        });
        keep_args_buffer(payload);
        let reply = reply?;
        if method.oneway {
            // Oneway methods return `()`, which decodes from nil.
            return codec::decode(&[0xc0]);
        }
        let value = codec::decode_as(
            &reply,
            &format_args!("the reply of {}.{}", contract.name, method.name),
        );
        keep_reply_buffer(reply);
        value
    }
}
