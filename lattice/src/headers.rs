//! NATS header names of the wire protocol.
//!
//! Requests from the generated clients carry the contract fingerprint and the
//! time budget in the [call prefix](crate::prefix), not in headers, and
//! [`TRACEPARENT`] when the caller has a trace context; the subject names the
//! contract and the method. Hand-written clients may send [`FINGERPRINT`] and
//! [`TIMEOUT_MS`] instead of a prefix, and [`CONTRACT`], which hosts check
//! against the subject. Replies that are errors carry [`STATUS`]; their body
//! is a MessagePack map `{kind, message}` (see
//! [`Error::to_wire`](crate::Error::to_wire)). A reply without [`STATUS`] (or
//! with status `200`) is a success whose body is the method's MessagePack
//! encoded return value.

/// The contract's wire name, e.g. `counter`: optional, checked against the
/// subject when present.
pub const CONTRACT: &str = "Lattice-Contract";
/// The contract fingerprint the caller was built against: 16 lowercase hex
/// digits. A mismatch is answered with a `contract_mismatch` error. Read only
/// from calls without a [call prefix](crate::prefix).
pub const FINGERPRINT: &str = "Lattice-Fingerprint";
/// The caller's remaining time budget in milliseconds, as decimal text. Read
/// only from calls without a [call prefix](crate::prefix).
///
/// A relative budget (like gRPC's `grpc-timeout`) rather than an absolute
/// deadline, so hosts need no synchronized clocks: the receiver turns it into a
/// local deadline on arrival, and passes the remainder on to nested calls.
pub const TIMEOUT_MS: &str = "Lattice-Timeout-Ms";
/// The key of a call to a keyed actor (see [`key`](crate::key)): the
/// activation it goes to. Clients send it for an address `actor/key`.
pub const KEY: &str = "Lattice-Key";
/// W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// On error replies: the numeric status of the error kind (see
/// [`ErrorKind::status`](crate::ErrorKind::status)).
pub const STATUS: &str = "Lattice-Status";
/// The status of a successful reply, when a status is sent at all.
pub const STATUS_OK: u16 = 200;
