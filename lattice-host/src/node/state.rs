//! Keyed actors' states in the lattice's JetStream key-value bucket
//! `lattice-{lattice}-state`, one key `{actor}.{key}` each: durable (file
//! storage), and fenced by revision, so that an activation that no longer
//! owns its key can never overwrite newer state.

use async_nats::jetstream::{self, kv};
use lattice::{Error, ErrorKind};
use tokio::sync::OnceCell;

use crate::runtime::network::Boxed;
use crate::runtime::state::{Saved, StateStore, conflict};

/// The state bucket of `lattice`.
pub(crate) fn state_bucket(lattice: &str) -> String {
    format!("lattice-{lattice}-state")
}

/// The largest state saved: JetStream's default largest message.
const MAX_STATE: i32 = 1 << 20;

/// The lattice's state bucket, opened (or made) at the first keyed call.
pub(crate) struct KvStates {
    js: jetstream::Context,
    lattice: String,
    bucket: OnceCell<kv::Store>,
}

impl KvStates {
    pub(crate) fn new(nats: async_nats::Client, lattice: &str) -> KvStates {
        KvStates {
            js: jetstream::new(nats),
            lattice: lattice.to_owned(),
            bucket: OnceCell::new(),
        }
    }

    async fn bucket(&self) -> Result<&kv::Store, Error> {
        self.bucket
            .get_or_try_init(|| async {
                let name = state_bucket(&self.lattice);
                if let Ok(store) = self.js.get_key_value(&name).await {
                    return Ok(store);
                }
                let config = kv::Config {
                    bucket: name.clone(),
                    description: format!("Lattice `{}`: keyed actors' states", self.lattice),
                    history: 1,
                    max_value_size: MAX_STATE,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                };
                match self.js.create_key_value(config).await {
                    Ok(store) => Ok(store),
                    // Another host made it meanwhile.
                    Err(e) => self.js.get_key_value(&name).await.map_err(|_| {
                        Error::new(
                            ErrorKind::Transport,
                            format!(
                                "cannot open the lattice's state bucket {name}: {e}; keyed actors \
                                 need a NATS server with JetStream"
                            ),
                        )
                    }),
                }
            })
            .await
    }
}

fn entry_key(actor: &str, key: &str) -> String {
    format!("{actor}.{key}")
}

impl StateStore for KvStates {
    fn load<'a>(&'a self, actor: &'a str, key: &'a str) -> Boxed<'a, Result<Option<Saved>, Error>> {
        Box::pin(async move {
            let bucket = self.bucket().await?;
            let entry = bucket.entry(entry_key(actor, key)).await.map_err(|e| {
                Error::new(
                    ErrorKind::Transport,
                    format!("cannot load the state of `{actor}/{key}`: {e}"),
                )
            })?;
            Ok(match entry {
                Some(entry) if entry.operation == kv::Operation::Put => {
                    Some((entry.value.to_vec(), entry.revision))
                }
                _ => None,
            })
        })
    }

    fn save<'a>(
        &'a self,
        actor: &'a str,
        key: &'a str,
        state: Vec<u8>,
        expected: Option<u64>,
    ) -> Boxed<'a, Result<u64, Error>> {
        Box::pin(async move {
            let bucket = self.bucket().await?;
            let id = entry_key(actor, key);
            let size = state.len();
            match expected {
                Some(revision) => bucket
                    .update(&id, state.into(), revision)
                    .await
                    .map_err(|e| match e.kind() {
                        kv::UpdateErrorKind::WrongLastRevision => conflict(
                            actor,
                            key,
                            format_args!("it loaded revision {revision}, and another saved since"),
                        ),
                        _ => transport(actor, key, size, &e),
                    }),
                None => bucket
                    .create(&id, state.into())
                    .await
                    .map_err(|e| match e.kind() {
                        kv::CreateErrorKind::AlreadyExists => {
                            conflict(actor, key, "it found no state, and another saved one since")
                        }
                        _ => transport(actor, key, size, &e),
                    }),
            }
        })
    }
}

fn transport(actor: &str, key: &str, size: usize, e: &dyn std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Transport,
        format!("cannot save the state of `{actor}/{key}` ({size} bytes): {e}"),
    )
}
