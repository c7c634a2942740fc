//! Keyed actors' state: where it is kept, and each key's activation.
//!
//! A keyed actor (`export!(keyed …)`, see [`lattice::key`]) has one state
//! per key. The host runs each key's calls one at a time, in arrival order
//! (its [`Activation`]'s turn): before a call it gives the instance the
//! key's state, and after a call of a `&mut self` method it saves the state
//! the instance hands back, fenced by the revision it loaded
//! (compare-and-set), before the reply leaves. A save against a newer
//! revision fails with `conflict`: the activation no longer owns its key,
//! and it forgets what it had.
//!
//! Where the state is kept is the [`StateStore`] the host is given: the
//! lattice's JetStream key-value bucket once the host joins a lattice (the
//! node gives it), in the host's memory until then.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lattice::{Error, ErrorKind};

use super::network::Boxed;

/// A saved state and its revision.
pub(crate) type Saved = (Vec<u8>, u64);

/// Where keyed actors' states are kept.
pub(crate) trait StateStore: Send + Sync + 'static {
    /// The last saved state of `actor`'s `key`, with its revision; `None`
    /// for a key never saved.
    fn load<'a>(&'a self, actor: &'a str, key: &'a str) -> Boxed<'a, Result<Option<Saved>, Error>>;

    /// Saves `state` for `actor`'s `key` if its revision is still
    /// `expected` (`None`: the key must not exist): the new revision, or a
    /// `conflict` error when another saved first.
    fn save<'a>(
        &'a self,
        actor: &'a str,
        key: &'a str,
        state: Vec<u8>,
        expected: Option<u64>,
    ) -> Boxed<'a, Result<u64, Error>>;
}

/// The error of a save against a newer revision.
pub(crate) fn conflict(actor: &str, key: &str, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "the activation of `{actor}/{key}` is stale: {why}; the call's changes were not \
             saved, and the next call loads the newer state"
        ),
    )
}

/// States in the host's memory: for a host that has not joined a lattice.
#[derive(Default)]
pub(crate) struct MemoryStore {
    states: Mutex<HashMap<(String, String), Saved>>,
    revision: std::sync::atomic::AtomicU64,
}

impl StateStore for MemoryStore {
    fn load<'a>(&'a self, actor: &'a str, key: &'a str) -> Boxed<'a, Result<Option<Saved>, Error>> {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let found = states.get(&(actor.to_owned(), key.to_owned())).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn save<'a>(
        &'a self,
        actor: &'a str,
        key: &'a str,
        state: Vec<u8>,
        expected: Option<u64>,
    ) -> Boxed<'a, Result<u64, Error>> {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let id = (actor.to_owned(), key.to_owned());
        let current = states.get(&id).map(|(_, revision)| *revision);
        let result = if current == expected {
            let revision = self
                .revision
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            states.insert(id, (state, revision));
            Ok(revision)
        } else {
            Err(conflict(
                actor,
                key,
                format_args!("it loaded revision {expected:?}, the store holds {current:?}"),
            ))
        };
        Box::pin(std::future::ready(result))
    }
}

/// One key's activation on this host: its turn (a lock: one call at a time,
/// in arrival order) and the state it last loaded or saved.
#[derive(Default)]
pub(crate) struct Activation {
    /// The state and its revision (`None`: never saved), once loaded.
    pub(crate) state: Option<(Vec<u8>, Option<u64>)>,
    /// When its last call ended.
    pub(crate) last_used: Option<std::time::Instant>,
}

/// The activations of one keyed actor, by key.
#[derive(Default)]
pub(crate) struct Activations {
    keys: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Activation>>>>,
}

/// Past this many activations, those no call holds are let go of.
const KEEP: usize = 4096;

/// Past this many bytes of states kept by one actor's activations, the
/// sweeper lets go of the least recently used.
const KEEP_BYTES: usize = 64 << 20;

impl Activations {
    /// How many keys have an activation here.
    pub(crate) fn len(&self) -> usize {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Forgets every activation (calls holding one finish with it).
    pub(crate) fn clear(&self) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Lets go of the activations no call holds or waits for that were
    /// last used before `cutoff` (idle: their next call loads the state
    /// again), and, while the states kept pass [`KEEP_BYTES`], of the least
    /// recently used of the others. How many it let go of. For the
    /// hibernation sweeper; never waits.
    pub(crate) fn let_go_idle(&self, cutoff: std::time::Instant) -> usize {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let before = keys.len();
        // (last used, bytes, key) of those kept that could go.
        let mut idle = Vec::new();
        let mut bytes = 0;
        keys.retain(|key, activation| {
            if Arc::strong_count(activation) > 1 {
                return true;
            }
            let Ok(held) = activation.try_lock() else {
                return true;
            };
            let size = held.state.as_ref().map_or(0, |(state, _)| state.len());
            match held.last_used {
                Some(used) if used >= cutoff => {
                    bytes += size;
                    idle.push((used, size, key.clone()));
                    true
                }
                _ => false,
            }
        });
        if bytes > KEEP_BYTES {
            idle.sort_unstable();
            for (_, size, key) in idle {
                if bytes <= KEEP_BYTES {
                    break;
                }
                keys.remove(&key);
                bytes -= size;
            }
        }
        before - keys.len()
    }

    /// The activation of `key`, made if there is none.
    pub(crate) fn of(&self, key: &str) -> Arc<tokio::sync::Mutex<Activation>> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = keys.get(key) {
            return found.clone();
        }
        if keys.len() >= KEEP {
            keys.retain(|_, a| Arc::strong_count(a) > 1);
        }
        let made = Arc::new(tokio::sync::Mutex::new(Activation::default()));
        keys.insert(key.to_owned(), made.clone());
        made
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_fences_by_revision() {
        let store = MemoryStore::default();
        assert_eq!(store.load("t", "a").await.unwrap(), None);
        let first = store.save("t", "a", vec![1], None).await.unwrap();
        let err = store.save("t", "a", vec![2], None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict);
        let second = store.save("t", "a", vec![3], Some(first)).await.unwrap();
        assert!(second > first);
        let err = store
            .save("t", "a", vec![4], Some(first))
            .await
            .unwrap_err();
        assert!(err.message().contains("stale"), "{err}");
        assert_eq!(store.load("t", "a").await.unwrap(), Some((vec![3], second)));
    }
}
