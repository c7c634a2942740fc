//! The guest ABI: how a host and an actor module talk.
//!
//! An actor is a core wasm module for `wasm32-wasip1`. The actor SDK
//! implements the guest half; `lattice-host` the host half. Both take the
//! names and numbers from here.
//!
//! # Exports (guest)
//!
//! | export | signature | meaning |
//! | --- | --- | --- |
//! | `memory` | memory | the guest's linear memory |
//! | [`ALLOC`] | `(size: i32) -> i32` | allocates `size` bytes for the host to write into |
//! | [`FREE`] | `(ptr: i32, size: i32)` | frees what [`ALLOC`] returned |
//! | [`DISPATCH`] | `(input: i32, contract_len: i32, method_len: i32, payload_len: i32, fingerprint: i64) -> i64` | one call |
//! | [`DESCRIBE`] | `() -> i64` | the contracts the actor implements |
//! | [`INPUT`] | `() -> i64` | optional: a buffer of the module's own for the input |
//!
//! `input` holds the contract name, the method name and the payload, back to
//! back. `fingerprint` is the caller's contract fingerprint, or 0 for none.
//! The result is a [packed reply](unpack): the address and length of the
//! reply in guest memory, and whether it is an error (a MessagePack
//! `{kind, message}`, see [`Error::to_wire`](crate::Error::to_wire)) or the
//! method's encoded return value. The reply stays valid until the next call
//! into the instance. One host-to-guest call per invocation: the host writes
//! the input into a buffer it keeps per instance. That is the buffer
//! [`INPUT`] names when the module exports it and the input fits (a static
//! buffer, at the same place in every instance of the module, which the
//! host asks for once per module), else one it allocated with [`ALLOC`].
//!
//! [`DESCRIBE`] returns a packed reply holding a MessagePack array of
//! [`ContractDescriptor`](crate::ContractDescriptor)s
//! (decoded by the host as [`ContractInfo`](crate::ContractInfo)).
//!
//! The custom section [`VERSION_SECTION`] holds the ABI [`VERSION`] as four
//! little-endian bytes, so a host can check a module before compiling it.
//!
//! # Imports (host), module [`IMPORT_MODULE`]
//!
//! | import | signature | meaning |
//! | --- | --- | --- |
//! | [`CALL`] | `(actor, actor_len, contract, contract_len, method, method_len, payload, payload_len: i32, version: i32, fingerprint: i64, timeout_ms: i64, flags: i32) -> i64` | calls another actor; returns a packed reply length (address 0) |
//! | [`TAKE_REPLY`] | `(ptr: i32)` | copies the pending reply of the last [`CALL`] or [`PUBLISH`] to `ptr` |
//! | [`PUBLISH`] | `(subject, subject_len, payload, payload_len: i32) -> i64` | publishes an event; a packed reply length: an error, or 0 |
//! | [`LOG`] | `(level: i32, msg: i32, msg_len: i32)` | logs a line through the host's `tracing` |
//! | [`LOG_ENABLED`] | `(level: i32) -> i32` | 1 if a line at `level` would be recorded, else 0 |
//! | [`PANIC`] | `(msg: i32, msg_len: i32)` | records the panic message before the guest traps |
//! | [`KV`] | `(request: i32, request_len: i32) -> i64` | an operation on the actor's key-value bucket, a MessagePack [`KvRequest`]; returns a packed reply length (address 0), see [`KvRequest`] for each reply |
//!
//! `timeout_ms` 0 means "the caller's own deadline". `flags` bit 0 is
//! [`CALL_ONEWAY`], bit 1 [`CALL_IDEMPOTENT`].

/// The ABI version this crate speaks.
///
/// Version 2 added the [`LOG_ENABLED`] import; a version-1 module (which
/// does not import it) still runs on a version-2 host.
pub const VERSION: u32 = 2;
/// The oldest ABI version a host of this crate still runs.
pub const OLDEST_VERSION: u32 = 1;
/// The custom section holding the ABI version.
pub const VERSION_SECTION: &str = "lattice_abi";

/// Guest export: allocate.
pub const ALLOC: &str = "lattice_alloc";
/// Guest export: free.
pub const FREE: &str = "lattice_free";
/// Guest export: dispatch one call.
pub const DISPATCH: &str = "lattice_dispatch";
/// Guest export: describe the implemented contracts.
pub const DESCRIBE: &str = "lattice_describe";
/// Export, optional: `() -> i64`, the address and length of a buffer the
/// host may write each call's input into, packed as a reply is (its error
/// bit clear). The buffer must be at the same address in every instance
/// (a static), and the module must use it for nothing else. With it a
/// fresh instance serves its first calls without an [`ALLOC`] call.
pub const INPUT: &str = "lattice_input";
/// Guest export: the linear memory.
pub const MEMORY: &str = "memory";

/// Custom section of a keyed actor (`export!(keyed …)`): its presence says
/// the module keeps one state per key, which the host loads before each
/// call and saves after each call that can change it, through
/// [`DISPATCH`] with the reserved contract [`STATE_CONTRACT`].
pub const KEYED_SECTION: &str = "lattice_keyed";
/// Custom section of a signed module: a token (JWT, ed25519 nkey
/// signature) of the module's claims, written by `lattice sign` and checked
/// by hosts (see `lattice_host::claims`).
pub const CLAIMS_SECTION: &str = "lattice_claims";
/// The reserved contract of a keyed actor's state (no contract name can
/// start with `$`): method [`STATE_LOAD`] takes the state's MessagePack
/// bytes (empty: `Default`) and makes it the actor's; method
/// [`STATE_SAVE`] replies with the actor's state as MessagePack.
pub const STATE_CONTRACT: &str = "$state";
/// See [`STATE_CONTRACT`].
pub const STATE_LOAD: &str = "load";
/// See [`STATE_CONTRACT`].
pub const STATE_SAVE: &str = "save";

/// The module name of host imports.
pub const IMPORT_MODULE: &str = "lattice";
/// Host import: call another actor.
pub const CALL: &str = "call";
/// Host import: take the pending reply.
pub const TAKE_REPLY: &str = "take_reply";
/// Host import: publish an event.
pub const PUBLISH: &str = "publish";
/// Host import: log.
pub const LOG: &str = "log";
/// Host import: whether the host records log lines at a level, so that a guest
/// formats no line nobody reads.
pub const LOG_ENABLED: &str = "log_enabled";
/// Host import: record a panic message.
pub const PANIC: &str = "panic";

/// Host import: an operation on the actor's own key-value bucket.
pub const KV: &str = "kv";

/// An operation of the [`KV`] import on the calling actor's bucket,
/// MessagePack-encoded (a map with one entry, the operation's name). Keys
/// follow the rule of keyed actors' keys (see
/// [`validate_key`](crate::key::validate_key)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvRequest {
    /// The value of `key` and its revision: `Option<KvEntry>`.
    Get {
        /// The key.
        key: String,
    },
    /// Sets `key` to `value`, whatever it held: the new revision, `u64`.
    Set {
        /// The key.
        key: String,
        /// The value.
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// Sets `key` to `value` only if its revision is `revision` (`None`:
    /// only if it holds nothing): the new revision, `u64`, or the error
    /// `conflict`.
    CompareAndSet {
        /// The key.
        key: String,
        /// The value.
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        /// The revision the key must be at, or `None` for none.
        revision: Option<u64>,
    },
    /// Deletes `key` (nothing if it holds nothing): `()`.
    Delete {
        /// The key.
        key: String,
    },
    /// The keys that start with `prefix`, sorted: `Vec<String>`, at most
    /// [`MAX_KV_KEYS`] (more is the error `payload_too_large`).
    Keys {
        /// The prefix; empty for every key.
        prefix: String,
    },
}

/// A value of the [`KV`] import and its revision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KvEntry {
    /// The value.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// Its revision: it grows with every change of the bucket.
    pub revision: u64,
}

/// The most keys one [`KvRequest::Keys`] returns.
pub const MAX_KV_KEYS: usize = 10_000;

/// [`CALL`] flag: the call is oneway (no reply awaited).
pub const CALL_ONEWAY: i32 = 1;
/// [`CALL`] flag: the method is idempotent (the host may retry it).
pub const CALL_IDEMPOTENT: i32 = 2;

const ERROR_BIT: u64 = 1 << 63;
const LEN_MASK: u64 = (1 << 31) - 1;

/// The largest reply length that can be packed: 2 GiB - 1.
pub const MAX_PACKED_LEN: u32 = LEN_MASK as u32;

/// Packs a reply location: `ptr` in the low 32 bits, `len` in bits 32..63,
/// bit 63 set for an error.
pub const fn pack(ptr: u32, len: u32, is_error: bool) -> u64 {
    let mut packed = (ptr as u64) | (((len as u64) & LEN_MASK) << 32);
    if is_error {
        packed |= ERROR_BIT;
    }
    packed
}

/// Unpacks a reply location into `(ptr, len, is_error)`.
pub const fn unpack(packed: u64) -> (u32, u32, bool) {
    (
        packed as u32,
        ((packed >> 32) & LEN_MASK) as u32,
        packed & ERROR_BIT != 0,
    )
}

/// Log levels of the [`LOG`] import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(i32)]
pub enum LogLevel {
    /// Very verbose.
    Trace = 0,
    /// Verbose.
    Debug = 1,
    /// Informational.
    Info = 2,
    /// Something may be wrong.
    Warn = 3,
    /// Something is wrong.
    Error = 4,
}

impl LogLevel {
    /// The level for a number; unknown numbers are [`LogLevel::Info`].
    pub fn from_i32(level: i32) -> LogLevel {
        match level {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips() {
        for (ptr, len, err) in [
            (0, 0, false),
            (8, 5, true),
            (u32::MAX, MAX_PACKED_LEN, false),
            (1, MAX_PACKED_LEN, true),
        ] {
            assert_eq!(unpack(pack(ptr, len, err)), (ptr, len, err));
        }
    }
}
