//! Every actor's own key-value bucket, the `kv` import (see
//! [`lattice::abi::KvRequest`]): values shared by all the actor's
//! instances, on every host, that outlive them.
//!
//! Where the buckets are is the [`Buckets`] the host is given: JetStream
//! key-value buckets once the host joins a lattice (the node gives them),
//! the host's memory until then. The import checks each request (keys,
//! value sizes) before it reaches either, and bounds it by the calling
//! actor's deadline.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;

use lattice::abi::{KvEntry, KvRequest, MAX_KV_KEYS};
use lattice::{Error, ErrorKind};

use super::network::Boxed;

/// The largest value: JetStream's default largest message.
pub(crate) const MAX_VALUE: usize = 1 << 20;

/// What an operation returns, encoded for the guest by [`run`].
#[derive(Debug)]
pub(crate) enum Reply {
    /// `get`.
    Entry(Option<KvEntry>),
    /// `set`, `compare_and_set`: the new revision.
    Revision(u64),
    /// `delete`.
    Done,
    /// `keys`.
    Keys(Vec<String>),
}

/// Where actors' buckets are.
pub(crate) trait Buckets: Send + Sync + 'static {
    /// Runs a checked `request` on `actor`'s bucket.
    fn run<'a>(&'a self, actor: &'a str, request: KvRequest) -> Boxed<'a, Result<Reply, Error>>;
}

/// Runs a guest's encoded request on `actor`'s bucket in `buckets`, by
/// `deadline`: the encoded reply, or a typed error.
pub(crate) async fn run(
    buckets: &dyn Buckets,
    actor: &str,
    request: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, Error> {
    let request: KvRequest = lattice::codec::decode(request).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            format!("a kv request the host cannot read: {}", e.message()),
        )
    })?;
    check(&request)?;
    let what = describe(&request);
    let reply = tokio::time::timeout_at(deadline, buckets.run(actor, request))
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::TimedOut,
                format!("kv {what} of `{actor}` did not finish by the call's deadline"),
            )
        })??;
    match reply {
        Reply::Entry(entry) => lattice::codec::encode(&entry),
        Reply::Revision(revision) => lattice::codec::encode(&revision),
        Reply::Done => lattice::codec::encode(&()),
        Reply::Keys(keys) => lattice::codec::encode(&keys),
    }
}

fn describe(request: &KvRequest) -> String {
    match request {
        KvRequest::Get { key } => format!("get {key:?}"),
        KvRequest::Set { key, .. } => format!("set {key:?}"),
        KvRequest::CompareAndSet { key, .. } => format!("compare_and_set {key:?}"),
        KvRequest::Delete { key } => format!("delete {key:?}"),
        KvRequest::Keys { prefix } => format!("keys {prefix:?}"),
    }
}

/// Checks keys (the rule of keyed actors' keys) and value sizes.
fn check(request: &KvRequest) -> Result<(), Error> {
    match request {
        KvRequest::Get { key } | KvRequest::Delete { key } => lattice::key::validate_key(key),
        KvRequest::Set { key, value } | KvRequest::CompareAndSet { key, value, .. } => {
            lattice::key::validate_key(key)?;
            if value.len() > MAX_VALUE {
                return Err(Error::new(
                    ErrorKind::PayloadTooLarge,
                    format!(
                        "a kv value of {} bytes for {key:?}: values are at most {MAX_VALUE} bytes",
                        value.len()
                    ),
                ));
            }
            Ok(())
        }
        // Any prefix of a valid key: its bytes follow the rule.
        KvRequest::Keys { prefix } if prefix.is_empty() => Ok(()),
        KvRequest::Keys { prefix } => lattice::key::validate_key(prefix.trim_end_matches('.'))
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidName,
                    format!("the prefix {prefix:?} can start no key: {}", e.message()),
                )
            }),
    }
}

/// The error of a `compare_and_set` against a changed key.
pub(crate) fn conflict(actor: &str, key: &str, expected: Option<u64>) -> Error {
    let expected = match expected {
        Some(revision) => format!("at revision {revision}"),
        None => "absent".to_owned(),
    };
    Error::new(
        ErrorKind::Conflict,
        format!(
            "kv compare_and_set of {key:?} in `{actor}`'s bucket: the key is no longer \
             {expected}; nothing was written (read it again and retry)"
        ),
    )
}

/// The error of a `keys` that matches too many.
pub(crate) fn too_many_keys(actor: &str, prefix: &str) -> Error {
    Error::new(
        ErrorKind::PayloadTooLarge,
        format!(
            "more than {MAX_KV_KEYS} keys of `{actor}`'s bucket start with {prefix:?}; \
             list them by longer prefixes"
        ),
    )
}

/// Buckets in the host's memory: for a host that has not joined a lattice.
#[derive(Default)]
pub(crate) struct MemoryBuckets {
    buckets: Mutex<HashMap<String, BTreeMap<String, KvEntry>>>,
    revision: AtomicU64,
}

impl Buckets for MemoryBuckets {
    fn run<'a>(&'a self, actor: &'a str, request: KvRequest) -> Boxed<'a, Result<Reply, Error>> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(actor.to_owned()).or_default();
        let next = || self.revision.fetch_add(1, Ordering::Relaxed) + 1;
        let reply = match request {
            KvRequest::Get { key } => Ok(Reply::Entry(bucket.get(&key).cloned())),
            KvRequest::Set { key, value } => {
                let revision = next();
                bucket.insert(key, KvEntry { value, revision });
                Ok(Reply::Revision(revision))
            }
            KvRequest::CompareAndSet {
                key,
                value,
                revision: expected,
            } => {
                if bucket.get(&key).map(|e| e.revision) == expected {
                    let revision = next();
                    bucket.insert(key, KvEntry { value, revision });
                    Ok(Reply::Revision(revision))
                } else {
                    Err(conflict(actor, &key, expected))
                }
            }
            KvRequest::Delete { key } => {
                bucket.remove(&key);
                Ok(Reply::Done)
            }
            KvRequest::Keys { prefix } => {
                let keys: Vec<String> = bucket
                    .range(prefix.clone()..)
                    .map(|(k, _)| k)
                    .take_while(|k| k.starts_with(&prefix))
                    .take(MAX_KV_KEYS + 1)
                    .cloned()
                    .collect();
                if keys.len() > MAX_KV_KEYS {
                    Err(too_many_keys(actor, &prefix))
                } else {
                    Ok(Reply::Keys(keys))
                }
            }
        };
        Box::pin(std::future::ready(reply))
    }
}
