//! The actor's own key-value bucket: values shared by all its instances,
//! on every host, that outlive them.
//!
//! On a lattice the bucket is the JetStream key-value bucket
//! `lattice-{lattice}-kv-{actor}` (file storage); a host that has not
//! joined a lattice keeps it in memory. Every actor has one, keyed or not;
//! it suits stateless actors that share state. Each operation is one round
//! trip to the bucket, made while the actor's call waits (the host runs the
//! actor on fibers).
//!
//! ```ignore
//! use lattice_actor::kv;
//!
//! let visits = kv::get("visits")?.map_or(0, |e| u64::from_le_bytes(e.value.try_into().unwrap()));
//! kv::set("visits", &(visits + 1).to_le_bytes())?;
//! ```
//!
//! Keys follow the rule of keyed actors' keys: 1 to 256 bytes from
//! `[A-Za-z0-9_=.-]`, not starting or ending with `.` (`invalid_name`
//! otherwise). Values are at most 1 MiB (`payload_too_large`). For a value
//! that several callers change, read it with [`get`] and write it back with
//! [`compare_and_set`], retrying on `conflict`.

pub use lattice::abi::KvEntry as Entry;
use lattice::abi::KvRequest;
use lattice::{Error, codec};
use serde::de::DeserializeOwned;

fn op<R: DeserializeOwned>(request: &KvRequest) -> Result<R, Error> {
    let request = codec::encode(request)?;
    let reply = crate::sys::kv(&request)?;
    codec::decode(&reply)
}

/// The value of `key` and its revision, or `None` if it holds nothing.
pub fn get(key: &str) -> Result<Option<Entry>, Error> {
    op(&KvRequest::Get { key: key.into() })
}

/// Sets `key` to `value`, whatever it held; returns the new revision.
pub fn set(key: &str, value: &[u8]) -> Result<u64, Error> {
    op(&KvRequest::Set {
        key: key.into(),
        value: value.into(),
    })
}

/// Sets `key` to `value` only if its revision is still `revision` (`None`:
/// only if it holds nothing); returns the new revision. A key changed
/// since is the error `conflict` (423), and nothing is written.
pub fn compare_and_set(key: &str, value: &[u8], revision: Option<u64>) -> Result<u64, Error> {
    op(&KvRequest::CompareAndSet {
        key: key.into(),
        value: value.into(),
        revision,
    })
}

/// Deletes `key`; deleting a key that holds nothing is not an error.
pub fn delete(key: &str) -> Result<(), Error> {
    op(&KvRequest::Delete { key: key.into() })
}

/// The keys that start with `prefix` (empty: all), sorted; at most
/// [`MAX_KEYS`], beyond which it is the error `payload_too_large`.
pub fn keys(prefix: &str) -> Result<Vec<String>, Error> {
    op(&KvRequest::Keys {
        prefix: prefix.into(),
    })
}

/// The most keys [`keys`] returns.
pub const MAX_KEYS: usize = lattice::abi::MAX_KV_KEYS;
