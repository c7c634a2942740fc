//! The native async client over NATS (feature `client`).
//!
//! A [`Client`] is a NATS connection bound to a lattice id. Generated
//! `…Client` types wrap an [`ActorClient`]: the client plus the name of the
//! actor called and per-call options.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! #[lattice::contract(version = 1)]
//! pub trait Counter {
//!     fn add(&mut self, by: u64) -> u64;
//! }
//!
//! let nats = async_nats::connect("nats://127.0.0.1:4222").await?;
//! let counter = CounterClient::new(nats, "default", "counter")?;
//! let total = counter.add(5).await?;
//! # Ok(()) }
//! ```

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_nats::{HeaderMap, HeaderName, RequestErrorKind, Subject};
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::contract::{ContractDescriptor, MethodDescriptor};
use crate::error::{Error, ErrorKind};
use crate::headers;
use crate::names::{NameKind, validate};
use crate::prefix::{self, CallPrefix};
use crate::{buffer, codec};

/// A NATS connection bound to a lattice.
#[derive(Clone, Debug)]
pub struct Client {
    nats: async_nats::Client,
    lattice: Arc<str>,
    /// `lattice.{lattice}.rpc.`: the start of every RPC subject of the lattice.
    rpc_prefix: Arc<str>,
    timeout: Duration,
}

impl Client {
    /// The deadline of a call when neither the call nor the method sets one.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// Binds `nats` to the lattice `lattice`.
    pub fn new(nats: async_nats::Client, lattice: &str) -> Result<Self, Error> {
        validate(NameKind::Lattice, lattice)?;
        Ok(Client {
            nats,
            lattice: lattice.into(),
            rpc_prefix: format!("{}.{lattice}.rpc.", crate::subject::ROOT).into(),
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// Sets the default deadline of calls made through this client
    /// (default [`Client::DEFAULT_TIMEOUT`]); a method's `timeout` attribute
    /// and per-call options take precedence.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The NATS connection.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// The lattice id.
    pub fn lattice(&self) -> &str {
        &self.lattice
    }

    /// A client for calls to `actor`, or to one activation of a keyed actor
    /// (`counter/alice`, see [`key`](crate::key)).
    pub fn actor(&self, actor: &str) -> Result<ActorClient, Error> {
        crate::key::validate_address(actor)?;
        Ok(ActorClient {
            client: self.clone(),
            actor: actor.into(),
            options: CallOptions::default(),
            subjects: Arc::default(),
        })
    }

    /// The subject of a call, after checking the names that make it.
    fn rpc_subject(&self, actor: &str, contract: &str, method: &str) -> Result<Subject, Error> {
        // `counter/alice`: the subject names the actor; the key travels in
        // a header.
        crate::key::validate_address(actor)?;
        let actor = crate::key::split(actor).0;
        validate(NameKind::Contract, contract)?;
        validate(NameKind::Method, method)?;
        Ok(rpc_subject(&self.rpc_prefix, actor, contract, method))
    }

    /// Calls `method` of `contract` on `actor` with an encoded arguments map
    /// and returns the encoded reply (empty for oneway methods).
    ///
    /// The deadline is, in order: `options.timeout`, the method's `timeout`
    /// attribute, the client's default.
    pub async fn call_raw(
        &self,
        actor: &str,
        contract: &'static ContractDescriptor,
        method: &'static MethodDescriptor,
        payload: Bytes,
        options: &CallOptions,
    ) -> Result<Bytes, Error> {
        self.call_descriptor(actor, contract, method, Body::Args(payload), options, None)
            .await
    }

    /// A plain function returning `send`'s future, rather than an `async fn`
    /// awaiting it: one future layer less in every call's future.
    fn call_descriptor<'a>(
        &'a self,
        actor: &'a str,
        contract: &'static ContractDescriptor,
        method: &'static MethodDescriptor,
        body: Body,
        options: &'a CallOptions,
        subject: Option<Subject>,
    ) -> impl Future<Output = Result<Bytes, Error>> + 'a {
        let call = RawCall {
            actor,
            contract: contract.name,
            method: method.name,
            fingerprint: Some(contract.fingerprint),
            // `send` takes the arguments from `body`.
            payload: Bytes::new(),
            idempotent: method.idempotent,
            oneway: method.oneway,
            timeout: options
                .timeout
                .or(method.timeout_ms.map(Duration::from_millis)),
            traceparent: options.traceparent.as_deref(),
        };
        self.send(call, body, subject)
    }

    /// Makes a call described by names rather than descriptors (the host uses
    /// it for calls from guests; bridges use it for calls built from JSON).
    ///
    /// Idempotent calls are retried on no-responders, overload and timeouts
    /// until the deadline passes: each attempt gets half of the remaining time
    /// (at least 100 ms), so that a host that died with the request still
    /// leaves time for another to answer.
    pub async fn request(&self, call: RawCall<'_>) -> Result<Bytes, Error> {
        let args = Body::Args(call.payload.clone());
        self.send(call, args, None).await
    }

    /// Sends `call` with the arguments in `body` (not `call.payload`), on
    /// `subject` when the caller has it built and checked already (an
    /// [`ActorClient`]'s cache), else on one built here from the checked
    /// names.
    async fn send(
        &self,
        call: RawCall<'_>,
        body: Body,
        subject: Option<Subject>,
    ) -> Result<Bytes, Error> {
        let RawCall {
            actor,
            contract,
            method,
            ..
        } = call;
        if let Some(traceparent) = call.traceparent {
            check_header_value(headers::TRACEPARENT, traceparent)?;
        }
        let mut subject = match subject {
            Some(subject) => subject,
            None => self.rpc_subject(actor, contract, method)?,
        };
        let timeout = call.timeout.unwrap_or(self.timeout);
        // The subject names the contract and method; the call prefix, 18
        // bytes before the arguments, carries the fingerprint and the time
        // budget (see `prefix`: a header would cost both ends a header-map
        // parse per hop). A trace context, when there is one, is a header.
        let mut body = body;
        let mut body_for = |budget: Duration| {
            let prefix = CallPrefix {
                fingerprint: call.fingerprint,
                budget_ms: Some(u32::try_from(budget.as_millis()).unwrap_or(u32::MAX)),
            }
            .encode();
            match std::mem::replace(&mut body, Body::Args(Bytes::new())) {
                // The generated clients' first attempt: the prefix goes into
                // the room left for it, and the arguments are not copied.
                Body::Room(mut room) => {
                    room[..prefix::LEN].copy_from_slice(&prefix);
                    let sent = room.freeze();
                    body = Body::Args(sent.slice(prefix::LEN..));
                    sent
                }
                Body::Args(args) => {
                    let sent = buffer::build(|sent| {
                        sent.reserve(prefix::LEN + args.len());
                        sent.extend_from_slice(&prefix);
                        sent.extend_from_slice(&args);
                    });
                    body = Body::Args(args);
                    sent
                }
            }
        };
        let key = crate::key::split(actor).1;
        let traceparent = (call.traceparent.is_some() || key.is_some()).then(|| {
            let mut headers = HeaderMap::new();
            if let Some(traceparent) = call.traceparent {
                headers.insert(TRACEPARENT, traceparent);
            }
            if let Some(key) = key {
                headers.insert(headers::KEY, key);
            }
            headers
        });
        let what = || format!("{contract}.{method} on actor `{actor}`");

        if call.oneway {
            let body = body_for(timeout);
            let sent = match traceparent {
                Some(headers) => self.nats.publish_with_headers(subject, headers, body).await,
                None => self.nats.publish(subject, body).await,
            };
            return match sent {
                Ok(()) => Ok(Bytes::new()),
                Err(e) => Err(match e.kind() {
                    async_nats::client::PublishErrorKind::MaxPayloadExceeded => {
                        Error::new(ErrorKind::PayloadTooLarge, format!("{}: {e}", what()))
                    }
                    _ => Error::new(ErrorKind::Transport, format!("{}: {e}", what())),
                }
                .with_source(e)),
            };
        }

        let deadline = Instant::now() + timeout;
        let mut backoff = Duration::from_millis(10);
        let mut last: Option<Error> = None;
        // The first attempt has the whole timeout: no second clock read.
        let mut remaining = timeout;
        loop {
            if remaining.is_zero() {
                // Retries ran out of time: the last failure says why.
                return Err(match last {
                    Some(e) if e.kind() != ErrorKind::TimedOut => e,
                    _ => Error::new(
                        ErrorKind::TimedOut,
                        format!("{} got no reply within {timeout:?}", what()),
                    ),
                });
            }
            let attempt = if call.idempotent {
                (remaining / 2)
                    .max(Duration::from_millis(100))
                    .min(remaining)
            } else {
                remaining
            };
            // Each attempt states its own budget. A call that is not retried
            // has one attempt: it takes the subject rather than sharing it
            // (the first share of a subject allocates).
            let attempt_subject = if call.idempotent {
                subject.clone()
            } else {
                std::mem::replace(&mut subject, Subject::from_static(""))
            };
            let mut request = async_nats::Request::new()
                .payload(body_for(attempt))
                .timeout(Some(attempt));
            if let Some(headers) = &traceparent {
                request = request.headers(headers.clone());
            }
            let result = match self.nats.send_request(attempt_subject, request).await {
                Ok(message) => reply_result(message),
                Err(e) => Err(self.request_error(e, actor, &what(), attempt)),
            };
            match result {
                // Another host may answer: try again within the deadline.
                Err(e) if call.idempotent && e.kind() == ErrorKind::TimedOut => last = Some(e),
                Err(e) if call.idempotent && e.kind().is_retryable() => {
                    last = Some(e);
                    let pause = backoff.min(deadline.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(pause).await;
                    backoff = (backoff * 2).min(Duration::from_millis(250));
                }
                Err(e) if e.kind() == ErrorKind::TimedOut => {
                    return Err(Error::new(
                        ErrorKind::TimedOut,
                        format!("{} got no reply within {timeout:?}", what()),
                    ));
                }
                other => return other,
            }
            remaining = deadline.saturating_duration_since(Instant::now());
        }
    }

    fn request_error(
        &self,
        e: async_nats::RequestError,
        actor: &str,
        what: &str,
        timeout: Duration,
    ) -> Error {
        let (kind, message) = match e.kind() {
            RequestErrorKind::NoResponders => (
                ErrorKind::NoResponders,
                format!(
                    "no actor named `{actor}` is running in lattice `{}` (calling {what}); \
                     start it on a host, or check the lattice id and actor name",
                    self.lattice
                ),
            ),
            RequestErrorKind::TimedOut => (
                ErrorKind::TimedOut,
                format!("{what} got no reply within {timeout:?}"),
            ),
            RequestErrorKind::MaxPayloadExceeded => (
                ErrorKind::PayloadTooLarge,
                format!(
                    "{what}: {e}; the NATS server's max_payload is {} bytes",
                    self.nats.server_info().max_payload
                ),
            ),
            _ => (ErrorKind::Transport, format!("{what}: {e}")),
        };
        Error::new(kind, message).with_source(e)
    }
}

const TRACEPARENT: HeaderName = HeaderName::from_static(headers::TRACEPARENT);

/// `{prefix}{actor}.{contract}.{method}`, where the prefix is
/// `lattice.{lattice}.rpc.`: built in one exact-size allocation, without the
/// formatting machinery, as it is made per call.
fn rpc_subject(prefix: &str, actor: &str, contract: &str, method: &str) -> Subject {
    let parts = [prefix, actor, ".", contract, ".", method];
    let mut subject = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|part| subject.push_str(part));
    Subject::from(subject)
}

/// Refuses a header value that async-nats would refuse by panicking: one
/// with a line break, which would end the header early on the wire.
fn check_header_value(name: &str, value: &str) -> Result<(), Error> {
    if value.contains(['\r', '\n']) {
        return Err(Error::new(
            ErrorKind::Encode,
            format!("the {name} header value {value:?} contains a line break"),
        ));
    }
    Ok(())
}

/// A fresh W3C trace context: version 00, random trace and span ids, sampled.
pub fn new_traceparent() -> String {
    format!(
        "00-{:016x}{:016x}-{:016x}-01",
        fastrand::u64(1..),
        fastrand::u64(..),
        fastrand::u64(1..)
    )
}

/// One call described by names: what [`Client::request`] sends.
#[derive(Debug, Clone)]
pub struct RawCall<'a> {
    /// The actor called.
    pub actor: &'a str,
    /// The contract's wire name.
    pub contract: &'a str,
    /// The method's wire name.
    pub method: &'a str,
    /// The contract fingerprint the caller was built against.
    pub fingerprint: Option<u64>,
    /// The MessagePack arguments map.
    pub payload: Bytes,
    /// Whether the call may be retried.
    pub idempotent: bool,
    /// Whether no reply is awaited.
    pub oneway: bool,
    /// The deadline; the client's default when `None`.
    pub timeout: Option<Duration>,
    /// The W3C trace context to propagate, if the caller has one; a value
    /// with a line break fails the call with [`ErrorKind::Encode`].
    pub traceparent: Option<&'a str>,
}

impl<'a> RawCall<'a> {
    /// A call of `contract.method` on `actor` with a MessagePack arguments
    /// map: not idempotent, awaiting a reply, the client's default deadline,
    /// no version or fingerprint check.
    pub fn new(actor: &'a str, contract: &'a str, method: &'a str, payload: Bytes) -> Self {
        RawCall {
            actor,
            contract,
            method,
            fingerprint: None,
            payload,
            idempotent: false,
            oneway: false,
            timeout: None,
            traceparent: None,
        }
    }
}

/// The arguments of a call on their way to the wire.
enum Body {
    /// The encoded arguments map alone.
    Args(Bytes),
    /// [`prefix::LEN`] bytes of room for the call prefix, then the encoded
    /// arguments map, in the thread's [`buffer`] arena.
    Room(BytesMut),
}

/// Turns a reply message into its body or the error it carries.
fn reply_result(message: async_nats::Message) -> Result<Bytes, Error> {
    let status = message
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::STATUS))
        .map(|v| v.as_str().trim().parse::<u16>().unwrap_or(0));
    match status {
        None | Some(headers::STATUS_OK) => Ok(message.payload),
        Some(status) => Err(Error::from_wire(Some(status), &message.payload)),
    }
}

/// Options of a call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallOptions {
    /// The deadline; overrides the method's and the client's default.
    pub timeout: Option<Duration>,
    /// A W3C `traceparent` to propagate. A value with a line break fails
    /// the call with [`ErrorKind::Encode`] before anything is sent.
    pub traceparent: Option<String>,
}

/// A [`Client`] aimed at one actor: what generated clients are made of.
#[derive(Clone, Debug)]
pub struct ActorClient {
    client: Client,
    actor: Arc<str>,
    options: CallOptions,
    /// The subjects of the methods of the first contract called, built and
    /// checked once and shared by the clones (`None`: its names are not
    /// valid, and each call reports it). A subject is otherwise built and
    /// its three names checked per call, about 500 instructions.
    subjects: Arc<OnceLock<Option<Subjects>>>,
}

/// The subjects of one contract's methods on one actor.
#[derive(Debug)]
struct Subjects {
    contract: &'static ContractDescriptor,
    /// In the order of `contract.methods`.
    methods: Box<[Subject]>,
}

impl ActorClient {
    /// The subject of `method` of `contract`, from the cache when `contract`
    /// is the one it holds.
    fn subject(
        &self,
        contract: &'static ContractDescriptor,
        method: &'static MethodDescriptor,
    ) -> Option<Subject> {
        let cached = self.subjects.get_or_init(|| {
            let methods = contract
                .methods
                .iter()
                .map(|m| self.client.rpc_subject(&self.actor, contract.name, m.name))
                .collect::<Result<_, _>>()
                .ok()?;
            Some(Subjects { contract, methods })
        });
        let cached = cached.as_ref()?;
        if !std::ptr::eq(cached.contract, contract) {
            return None;
        }
        let at = contract
            .methods
            .iter()
            .position(|m| std::ptr::eq(m, method))?;
        cached.methods.get(at).cloned()
    }

    /// A client of `actor` in `lattice` over the NATS connection `nats`.
    pub fn connect(nats: async_nats::Client, lattice: &str, actor: &str) -> Result<Self, Error> {
        Client::new(nats, lattice)?.actor(actor)
    }

    /// The actor called.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The lattice client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sets the deadline of each call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Sets the W3C trace context sent with each call.
    pub fn with_traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.options.traceparent = Some(traceparent.into());
        self
    }

    /// Encodes `args`, calls `method` and decodes the reply as `R`.
    pub async fn call<A: Serialize, R: DeserializeOwned>(
        &self,
        contract: &'static ContractDescriptor,
        method: &'static MethodDescriptor,
        args: &A,
    ) -> Result<R, Error> {
        // The arguments go after room for the call prefix, so that the first
        // attempt sends this buffer as it is.
        let room = buffer::try_build(|room| {
            room.resize(prefix::LEN, 0);
            codec::encode_into_bytes(args, room)
        })?;
        let subject = self.subject(contract, method);
        let reply = self
            .client
            .call_descriptor(
                &self.actor,
                contract,
                method,
                Body::Room(room),
                &self.options,
                subject,
            )
            .await?;
        if method.oneway {
            return codec::decode(&[0xc0]);
        }
        codec::decode_as(
            &reply,
            &format_args!("the reply of {}.{}", contract.name, method.name),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::RpcSubject;

    #[test]
    fn the_rpc_subject_is_the_wire_protocols() {
        let subject = rpc_subject("lattice.prod.rpc.", "counter", "counter", "add");
        let expected = RpcSubject::new("prod", "counter", "counter", "add").expect("valid names");
        assert_eq!(subject.as_str(), expected.to_string());
    }

    const fn method(name: &'static str) -> MethodDescriptor {
        crate::contract::test_method(name, &[], "()")
    }

    static GOOD: ContractDescriptor = ContractDescriptor {
        name: "store",
        version: 1,
        fingerprint: 1,
        docs: "",
        methods: &[method("get"), method("put")],
        schema: crate::ContractSchema::default,
    };

    /// A hand-made descriptor whose method name would add a subject token.
    static BAD: ContractDescriptor = ContractDescriptor {
        name: "store",
        version: 1,
        fingerprint: 1,
        docs: "",
        methods: &[method("get.all")],
        schema: crate::ContractSchema::default,
    };

    #[test]
    fn an_actor_client_builds_each_subject_once_and_checks_its_names() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            // A client that has not connected (nothing listens there): no
            // call below reaches NATS.
            let nats = async_nats::ConnectOptions::new()
                .retry_on_initial_connect()
                .connect("127.0.0.1:9")
                .await
                .unwrap();
            let client = Client::new(nats, "prod").unwrap().actor("kv").unwrap();
            let get = client.subject(&GOOD, &GOOD.methods[0]).unwrap();
            assert_eq!(get.as_str(), "lattice.prod.rpc.kv.store.get");
            let put = client.clone().subject(&GOOD, &GOOD.methods[1]).unwrap();
            assert_eq!(put.as_str(), "lattice.prod.rpc.kv.store.put");
            // Another contract through the same client: built per call.
            assert!(client.subject(&BAD, &BAD.methods[0]).is_none());
            // A bad name in the cached contract is refused, never sent.
            let fresh = Client::new(client.client().nats().clone(), "prod")
                .unwrap()
                .actor("kv")
                .unwrap();
            assert!(fresh.subject(&BAD, &BAD.methods[0]).is_none());
            let err = fresh
                .call::<(), ()>(&BAD, &BAD.methods[0], &())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidName, "{err}");
            // A keyed address: the subject names the actor alone.
            let keyed = Client::new(client.client().nats().clone(), "prod")
                .unwrap()
                .actor("kv/alice")
                .unwrap();
            let get = keyed.subject(&GOOD, &GOOD.methods[0]).unwrap();
            assert_eq!(get.as_str(), "lattice.prod.rpc.kv.store.get");
            let err = Client::new(client.client().nats().clone(), "prod")
                .unwrap()
                .actor("kv/a b")
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidName, "{err}");
            assert!(err.message().contains("key"), "{err}");
        });
    }

    #[test]
    fn a_header_value_with_a_line_break_is_a_typed_error() {
        assert!(check_header_value(headers::TRACEPARENT, &new_traceparent()).is_ok());
        for bad in ["00-a\r\nInjected: 1", "line\nbreak", "cr\r"] {
            let err = check_header_value(headers::TRACEPARENT, bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Encode, "{bad:?}");
            assert!(err.message().contains("line break"), "{err}");
        }
    }
}
