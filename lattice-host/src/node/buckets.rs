//! Actors' key-value buckets on the lattice's JetStream: one bucket per
//! actor, `lattice-{lattice}-kv-{actor}`, on file storage, opened (or
//! made) at the actor's first `kv` operation on this host.

use std::collections::HashMap;
use std::sync::Mutex;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use lattice::abi::{KvEntry, KvRequest, MAX_KV_KEYS};
use lattice::{Error, ErrorKind};

use crate::runtime::kv::{Buckets, MAX_VALUE, Reply, conflict, too_many_keys};
use crate::runtime::network::Boxed;

/// The key-value bucket of `actor` in `lattice`.
pub(crate) fn actor_bucket(lattice: &str, actor: &str) -> String {
    format!("lattice-{lattice}-kv-{actor}")
}

/// The lattice's actor buckets, as this host opened them.
pub(crate) struct KvBuckets {
    js: jetstream::Context,
    lattice: String,
    open: Mutex<HashMap<String, kv::Store>>,
}

impl KvBuckets {
    pub(crate) fn new(nats: async_nats::Client, lattice: &str) -> KvBuckets {
        KvBuckets {
            js: jetstream::new(nats),
            lattice: lattice.to_owned(),
            open: Mutex::default(),
        }
    }

    async fn bucket(&self, actor: &str) -> Result<kv::Store, Error> {
        if let Some(store) = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(actor)
        {
            return Ok(store.clone());
        }
        let name = actor_bucket(&self.lattice, actor);
        let store = match self.js.get_key_value(&name).await {
            Ok(store) => store,
            Err(_) => {
                let config = kv::Config {
                    bucket: name.clone(),
                    description: format!(
                        "Lattice `{}`: the key-value bucket of actor `{actor}`",
                        self.lattice
                    ),
                    history: 1,
                    max_value_size: MAX_VALUE as i32,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                };
                match self.js.create_key_value(config).await {
                    Ok(store) => store,
                    // Another host made it meanwhile.
                    Err(e) => self.js.get_key_value(&name).await.map_err(|_| {
                        Error::new(
                            ErrorKind::Transport,
                            format!(
                                "cannot open `{actor}`'s key-value bucket {name}: {e}; the kv \
                                 import needs a NATS server with JetStream"
                            ),
                        )
                    })?,
                }
            }
        };
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(actor.to_owned(), store.clone());
        Ok(store)
    }
}

fn failed(actor: &str, what: &str, key: &str, e: &dyn std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Transport,
        format!("kv {what} {key:?} of `{actor}`'s bucket failed: {e}"),
    )
}

impl Buckets for KvBuckets {
    fn run<'a>(&'a self, actor: &'a str, request: KvRequest) -> Boxed<'a, Result<Reply, Error>> {
        Box::pin(async move {
            let bucket = self.bucket(actor).await?;
            match request {
                KvRequest::Get { key } => {
                    let entry = bucket
                        .entry(key.as_str())
                        .await
                        .map_err(|e| failed(actor, "get", &key, &e))?;
                    Ok(Reply::Entry(entry.and_then(|e| {
                        (e.operation == kv::Operation::Put).then(|| KvEntry {
                            value: e.value.to_vec(),
                            revision: e.revision,
                        })
                    })))
                }
                KvRequest::Set { key, value } => bucket
                    .put(key.as_str(), value.into())
                    .await
                    .map(Reply::Revision)
                    .map_err(|e| failed(actor, "set", &key, &e)),
                KvRequest::CompareAndSet {
                    key,
                    value,
                    revision: Some(expected),
                } => bucket
                    .update(key.as_str(), value.into(), expected)
                    .await
                    .map(Reply::Revision)
                    .map_err(|e| match e.kind() {
                        kv::UpdateErrorKind::WrongLastRevision => {
                            conflict(actor, &key, Some(expected))
                        }
                        _ => failed(actor, "compare_and_set", &key, &e),
                    }),
                KvRequest::CompareAndSet {
                    key,
                    value,
                    revision: None,
                } => bucket
                    .create(key.as_str(), value.into())
                    .await
                    .map(Reply::Revision)
                    .map_err(|e| match e.kind() {
                        kv::CreateErrorKind::AlreadyExists => conflict(actor, &key, None),
                        _ => failed(actor, "compare_and_set", &key, &e),
                    }),
                KvRequest::Delete { key } => bucket
                    .delete(key.as_str())
                    .await
                    .map(|()| Reply::Done)
                    .map_err(|e| failed(actor, "delete", &key, &e)),
                KvRequest::Keys { prefix } => {
                    let mut all = bucket
                        .keys()
                        .await
                        .map_err(|e| failed(actor, "keys", &prefix, &e))?;
                    let mut keys = Vec::new();
                    while let Some(key) = all.next().await {
                        let key = key.map_err(|e| failed(actor, "keys", &prefix, &e))?;
                        if key.starts_with(&prefix) {
                            if keys.len() == MAX_KV_KEYS {
                                return Err(too_many_keys(actor, &prefix));
                            }
                            keys.push(key);
                        }
                    }
                    keys.sort_unstable();
                    Ok(Reply::Keys(keys))
                }
            }
        })
    }
}
