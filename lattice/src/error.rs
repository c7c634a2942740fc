//! The one error type of lattice calls.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with a call. Stable on the wire as a [status](Self::status)
/// number and a [name](Self::as_str).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Nobody is subscribed to the subject: the actor is not running.
    NoResponders,
    /// The call's deadline passed before a reply came.
    TimedOut,
    /// A value could not be encoded.
    Encode,
    /// A message or request could not be decoded or is not valid: malformed
    /// MessagePack or JSON, the wrong shape, a malformed NATS header block,
    /// a field out of its range (the message names the field).
    Decode,
    /// The actor implements the contract but has no such method.
    UnknownMethod,
    /// The actor does not implement the contract.
    UnknownContract,
    /// Caller and actor were built against different versions of the contract.
    ContractMismatch,
    /// The actor panicked; the message carries the panic message.
    ActorPanicked,
    /// The actor trapped (e.g. `unreachable`, out-of-bounds, stack overflow).
    ActorTrapped,
    /// The actor hit a limit: memory, fuel or its deadline.
    LimitExceeded,
    /// The host is saturated; try again later or elsewhere.
    Overloaded,
    /// The caller may not make this call.
    Unauthorized,
    /// The payload exceeds the allowed size.
    PayloadTooLarge,
    /// NATS failed: not connected, connection lost, publish failed.
    Transport,
    /// A name (lattice, actor, contract, method) breaks the naming rule.
    InvalidName,
    /// The module is not a lattice actor this host can run.
    InvalidModule,
    /// The thing asked for (an actor, a host) is not there.
    NotFound,
    /// The thing to create (an actor name on a host) exists already.
    AlreadyExists,
    /// A keyed actor's activation is no longer its key's owner: another
    /// saved newer state. The call's changes were not saved.
    Conflict,
    /// An error from the remote side whose kind this version does not know.
    Remote,
}

impl ErrorKind {
    /// Every kind, in status order.
    pub const ALL: [ErrorKind; 20] = [
        ErrorKind::Decode,
        ErrorKind::Unauthorized,
        ErrorKind::UnknownMethod,
        ErrorKind::ContractMismatch,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::InvalidModule,
        ErrorKind::PayloadTooLarge,
        ErrorKind::InvalidName,
        ErrorKind::Conflict,
        ErrorKind::Overloaded,
        ErrorKind::Remote,
        ErrorKind::UnknownContract,
        ErrorKind::Transport,
        ErrorKind::NoResponders,
        ErrorKind::TimedOut,
        ErrorKind::LimitExceeded,
        ErrorKind::ActorPanicked,
        ErrorKind::ActorTrapped,
        ErrorKind::Encode,
    ];

    /// The numeric status sent in the [`STATUS`](crate::headers::STATUS) header.
    pub const fn status(self) -> u16 {
        match self {
            ErrorKind::Decode => 400,
            ErrorKind::Unauthorized => 403,
            ErrorKind::UnknownMethod => 404,
            ErrorKind::ContractMismatch => 409,
            ErrorKind::NotFound => 410,
            ErrorKind::AlreadyExists => 412,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::InvalidModule => 415,
            ErrorKind::InvalidName => 422,
            ErrorKind::Conflict => 423,
            ErrorKind::Overloaded => 429,
            ErrorKind::Remote => 500,
            ErrorKind::UnknownContract => 501,
            ErrorKind::Transport => 502,
            ErrorKind::NoResponders => 503,
            ErrorKind::TimedOut => 504,
            ErrorKind::LimitExceeded => 507,
            ErrorKind::ActorPanicked => 520,
            ErrorKind::ActorTrapped => 521,
            ErrorKind::Encode => 530,
        }
    }

    /// The kind for a status; unknown statuses are [`ErrorKind::Remote`].
    pub fn from_status(status: u16) -> ErrorKind {
        ErrorKind::ALL
            .into_iter()
            .find(|k| k.status() == status)
            .unwrap_or(ErrorKind::Remote)
    }

    /// The kind's wire name, e.g. `unknown_method`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NoResponders => "no_responders",
            ErrorKind::TimedOut => "timed_out",
            ErrorKind::Encode => "encode",
            ErrorKind::Decode => "decode",
            ErrorKind::UnknownMethod => "unknown_method",
            ErrorKind::UnknownContract => "unknown_contract",
            ErrorKind::ContractMismatch => "contract_mismatch",
            ErrorKind::ActorPanicked => "actor_panicked",
            ErrorKind::ActorTrapped => "actor_trapped",
            ErrorKind::LimitExceeded => "limit_exceeded",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::Transport => "transport",
            ErrorKind::InvalidName => "invalid_name",
            ErrorKind::InvalidModule => "invalid_module",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Remote => "remote",
        }
    }

    /// The kind for a wire name.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether retrying the same call elsewhere may succeed (the call was not
    /// delivered, or the host was busy). Only idempotent methods are retried on
    /// [`TimedOut`](Self::TimedOut).
    pub const fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::NoResponders | ErrorKind::Overloaded)
    }

    fn describe(self) -> &'static str {
        match self {
            ErrorKind::NoResponders => "no responders",
            ErrorKind::TimedOut => "timed out",
            ErrorKind::Encode => "encode error",
            ErrorKind::Decode => "decode error",
            ErrorKind::UnknownMethod => "unknown method",
            ErrorKind::UnknownContract => "unknown contract",
            ErrorKind::ContractMismatch => "contract mismatch",
            ErrorKind::ActorPanicked => "actor panicked",
            ErrorKind::ActorTrapped => "actor trapped",
            ErrorKind::LimitExceeded => "limit exceeded",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::PayloadTooLarge => "payload too large",
            ErrorKind::Transport => "transport error",
            ErrorKind::InvalidName => "invalid name",
            ErrorKind::InvalidModule => "invalid module",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Remote => "remote error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The error of every lattice operation: a [kind](ErrorKind), a message
/// that says what happened (and, where it can, what to do), and a source chain.
///
/// Errors cross the wire: [`to_wire`](Self::to_wire) and
/// [`from_wire`](Self::from_wire) keep the kind and the message, so a client in
/// any language sees the error the actor's host raised.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The MessagePack body of an error reply.
#[derive(Serialize, Deserialize)]
struct WireError<'a> {
    kind: Cow<'a, str>,
    message: Cow<'a, str>,
}

/// The longest error message in bytes. Messages often quote what they
/// refused (a string where a struct was expected, a guest's panic message),
/// and an error reply must fit in the NATS server's `max_payload` however
/// large that was: a longer message keeps its beginning and its end (where
/// serde says what it expected) around a note of how much was left out.
pub const MAX_ERROR_MESSAGE: usize = 1024;

/// Of a message longer than [`MAX_ERROR_MESSAGE`], the bytes kept from its end.
const KEPT_TAIL: usize = 256;

/// `message`, at most [`MAX_ERROR_MESSAGE`] bytes long.
fn bounded(message: Cow<'static, str>) -> Cow<'static, str> {
    if message.len() <= MAX_ERROR_MESSAGE {
        return message;
    }
    let floor = |mut i: usize| {
        while !message.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let ceil = |mut i: usize| {
        while !message.is_char_boundary(i) {
            i += 1;
        }
        i
    };
    // The note is at most 48 bytes: " [... 18446744073709551615 bytes left out ...] ".
    let head = floor(MAX_ERROR_MESSAGE - KEPT_TAIL - 48);
    let tail = ceil(message.len() - KEPT_TAIL);
    let left_out = tail - head;
    Cow::Owned(format!(
        "{} [... {left_out} bytes left out ...] {}",
        &message[..head],
        &message[tail..]
    ))
}

impl Error {
    /// An error of `kind` with `message`, cut to [`MAX_ERROR_MESSAGE`] bytes.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            message: bounded(message.into()),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The status number sent on the wire.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// Encodes the error reply body: a MessagePack map `{kind, message}`.
    pub fn to_wire(&self) -> Vec<u8> {
        let body = WireError {
            kind: Cow::Borrowed(self.kind.as_str()),
            message: Cow::Borrowed(&self.message),
        };
        // A map of two strings always encodes.
        rmp_serde::to_vec_named(&body).unwrap_or_default()
    }

    /// Decodes an error reply from its status header (if any) and body.
    ///
    /// The kind named in the body wins; then the status; a body that cannot be
    /// decoded still yields an error of the status's kind, with the raw body
    /// (lossily as UTF-8) as its message.
    pub fn from_wire(status: Option<u16>, body: &[u8]) -> Error {
        let by_status = status.map(ErrorKind::from_status);
        match rmp_serde::from_slice::<WireError<'_>>(body) {
            Ok(wire) => {
                let kind = ErrorKind::from_name(&wire.kind)
                    .or(by_status)
                    .unwrap_or(ErrorKind::Remote);
                let message =
                    if kind == ErrorKind::Remote && ErrorKind::from_name(&wire.kind).is_none() {
                        format!("{} ({})", wire.message, wire.kind)
                    } else {
                        wire.message.into_owned()
                    };
                Error::new(kind, message)
            }
            Err(_) => Error::new(
                by_status.unwrap_or(ErrorKind::Remote),
                format!(
                    "error reply with an undecodable body: {:?}",
                    String::from_utf8_lossy(&body[..body.len().min(256)])
                ),
            ),
        }
    }

    pub(crate) fn encode(
        what: impl fmt::Display,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::new(ErrorKind::Encode, format!("could not encode {what}: {e}")).with_source(e)
    }

    pub(crate) fn decode(
        what: impl fmt::Display,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::new(ErrorKind::Decode, format!("could not decode {what}: {e}")).with_source(e)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for Error {
    /// Errors are equal when kind and message are; sources are not compared.
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl From<crate::names::NameError> for Error {
    fn from(e: crate::names::NameError) -> Self {
        Error::new(ErrorKind::InvalidName, e.to_string()).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_bounded_and_keep_both_ends() {
        let short = "invalid type: string \"hi\", expected u64";
        assert_eq!(Error::new(ErrorKind::Decode, short).message(), short);
        let exact = "x".repeat(MAX_ERROR_MESSAGE);
        assert_eq!(
            Error::new(ErrorKind::Decode, exact.clone()).message(),
            exact
        );
        for filler in ["a", "é", "日本", "🦀"] {
            let quoted = filler.repeat(1 << 20);
            let long = format!("invalid type: string \"{quoted}\", expected struct Args");
            let error = Error::new(ErrorKind::Decode, long.clone());
            let message = error.message();
            assert!(
                message.len() <= MAX_ERROR_MESSAGE,
                "{} bytes",
                message.len()
            );
            assert!(message.starts_with("invalid type: string \""), "{message}");
            assert!(message.ends_with("\", expected struct Args"), "{message}");
            assert!(message.contains("bytes left out"), "{message}");
            assert!(error.to_wire().len() < MAX_ERROR_MESSAGE + 64);
        }
    }

    #[test]
    fn statuses_and_names_are_unique_and_round_trip() {
        let mut statuses: Vec<u16> = ErrorKind::ALL.iter().map(|k| k.status()).collect();
        statuses.sort_unstable();
        statuses.dedup();
        assert_eq!(statuses.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_status(kind.status()), kind);
            assert_eq!(ErrorKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(ErrorKind::from_status(299), ErrorKind::Remote);
    }

    #[test]
    fn wire_round_trip_keeps_kind_and_message() {
        for kind in ErrorKind::ALL {
            let err = Error::new(kind, format!("something about {kind}"));
            let back = Error::from_wire(Some(err.status()), &err.to_wire());
            assert_eq!(back, err);
            // The body alone is enough.
            assert_eq!(Error::from_wire(None, &err.to_wire()), err);
        }
    }

    #[test]
    fn wire_body_is_a_plain_map() {
        let err = Error::new(ErrorKind::UnknownMethod, "no method `x`");
        let value: rmpv::Value = rmpv::decode::read_value(&mut &err.to_wire()[..]).unwrap();
        let map = value.as_map().unwrap();
        assert_eq!(map[0].0.as_str(), Some("kind"));
        assert_eq!(map[0].1.as_str(), Some("unknown_method"));
        assert_eq!(map[1].0.as_str(), Some("message"));
    }

    #[test]
    fn unknown_kinds_and_garbage_bodies_still_decode() {
        let body = rmp_serde::to_vec_named(&WireError {
            kind: "from_the_future".into(),
            message: "hi".into(),
        })
        .unwrap();
        let err = Error::from_wire(Some(599), &body);
        assert_eq!(err.kind(), ErrorKind::Remote);
        assert!(err.message().contains("from_the_future"));

        let err = Error::from_wire(Some(504), b"\xc1 not msgpack");
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(err.message().contains("undecodable"));
    }

    #[test]
    fn display_says_kind_then_message() {
        let err = Error::new(ErrorKind::TimedOut, "counter.add took longer than 2s");
        assert_eq!(
            err.to_string(),
            "timed out: counter.add took longer than 2s"
        );
    }
}
