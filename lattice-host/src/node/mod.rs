//! The node: what puts a [runtime](crate::runtime) on a lattice. Serving
//! its actors' calls from NATS, guests' calls to actors on other hosts,
//! the control interface, heartbeats, `$SRV` discovery and events. It
//! depends on the runtime, never the other way round: the runtime reaches
//! it only through the [`Network`](crate::runtime::network::Network) the
//! node gives it when the host joins.

pub(crate) mod buckets;
pub mod control;
pub(crate) mod control_client;
pub mod deploy;
pub(crate) mod discovery;
pub(crate) mod serve;
pub(crate) mod state;

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use lattice::{Error, ErrorKind};

use crate::runtime::host::{Host, HostInner};
use crate::runtime::network::{Boxed, Network};
use serve::Serving;

/// How long a shutdown waits for the NATS connection to send what it holds.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);

/// A host on a lattice: its NATS connection, the client its guests call
/// other hosts with, and what it serves.
pub(crate) struct Node {
    /// Itself, for the serving loops it starts.
    me: Weak<Node>,
    host: Weak<HostInner>,
    pub(crate) nats: async_nats::Client,
    pub(crate) client: lattice::Client,
    /// Calls from NATS in progress on this host, against `max_inflight`:
    /// a counter, as no call waits for room (one beyond the limit is
    /// answered `overloaded` at once); a tokio semaphore took its waiters'
    /// lock at every release: with its permit's `Arc`, about 200
    /// instructions a call (callgrind).
    pub(crate) inflight: Arc<AtomicUsize>,
    /// The subscriptions of each actor served.
    serving: Mutex<HashMap<String, Serving>>,
    lattice: String,
    host_id: String,
    /// The other live hosts and the actors each runs (from heartbeats, as
    /// the deployments' follower sees them): where keyed calls are routed.
    pub(crate) members:
        std::sync::RwLock<std::collections::BTreeMap<String, std::collections::BTreeSet<String>>>,
    /// Wakes the heartbeat before its interval: what the host runs changed.
    pub(crate) beat_now: Arc<tokio::sync::Notify>,
    /// What this host deploys, as its follower of the lattice's
    /// deployments last reported it.
    pub(crate) deployments: Mutex<deploy::reconcile::HostDeployments>,
}

impl Node {
    pub(crate) fn lattice(&self) -> &str {
        &self.lattice
    }

    pub(crate) fn host_id(&self) -> &str {
        &self.host_id
    }
}

impl Network for Node {
    fn call<'a>(&'a self, call: lattice::RawCall<'a>) -> Boxed<'a, Result<bytes::Bytes, Error>> {
        Box::pin(self.client.request(call))
    }

    fn publish(&self, subject: &str, payload: bytes::Bytes) -> Boxed<'static, Result<(), Error>> {
        let full = format!("{}.{}.pub.{subject}", lattice::subject::ROOT, self.lattice);
        let nats = self.nats.clone();
        Box::pin(async move {
            nats.publish(full, payload)
                .await
                .map_err(|e| Error::new(ErrorKind::Transport, format!("cannot publish: {e}")))
        })
    }

    fn serve<'a>(&'a self, name: &'a str) -> Boxed<'a, Result<(), Error>> {
        Box::pin(async move {
            let (Some(host), Some(node)) = (self.host.upgrade(), self.me.upgrade()) else {
                return Err(Error::new(
                    ErrorKind::Transport,
                    "the host is shutting down",
                ));
            };
            let serving = serve::serve(&host, &node, name).await?;
            self.serving
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_owned(), serving);
            Ok(())
        })
    }

    fn unserve<'a>(&'a self, name: &'a str) -> Boxed<'a, ()> {
        Box::pin(async move {
            let serving = self
                .serving
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
            if let Some(serving) = serving {
                serving.stop().await;
            }
        })
    }

    fn announce(&self) {
        self.beat_now.notify_one();
    }

    fn event<'a>(&'a self, kind: &'a str, body: serde_json::Value) -> Boxed<'a, ()> {
        Box::pin(serve::emit(self, kind, body))
    }

    fn flush(&self) -> Boxed<'_, ()> {
        Box::pin(async move {
            // Bounded: with the server away, a flush waits for it forever.
            if tokio::time::timeout(SHUTDOWN_FLUSH, self.nats.flush())
                .await
                .is_err()
            {
                tracing::warn!(
                    "the NATS connection did not flush within {SHUTDOWN_FLUSH:?}; stopping without it"
                );
            }
        })
    }
}

impl Host {
    /// Joins the lattice over `nats`: every running actor, and every actor
    /// started from now on, is served on its subjects (queue group = the
    /// actor's name, so that the hosts running an actor share its calls), and
    /// calls from guests to actors elsewhere go over NATS.
    pub async fn join(&self, nats: async_nats::Client) -> Result<(), Error> {
        let inner = self.inner();
        let client = lattice::Client::new(nats.clone(), inner.lattice())?;
        let node = Arc::new_cyclic(|me| Node {
            me: me.clone(),
            host: Arc::downgrade(inner),
            nats,
            client,
            inflight: Arc::new(AtomicUsize::new(0)),
            serving: Mutex::default(),
            lattice: inner.lattice().to_owned(),
            host_id: inner.host_id().to_owned(),
            members: Default::default(),
            beat_now: Arc::default(),
            deployments: Mutex::new(deploy::reconcile::HostDeployments {
                host: inner.host_id().to_owned(),
                labels: self.labels(),
                ..Default::default()
            }),
        });
        inner.set_network(node.clone())?;
        // Keyed actors' states, in the lattice's key-value bucket from now on.
        inner.set_state_store(Arc::new(state::KvStates::new(
            node.nats.clone(),
            inner.lattice(),
        )));
        // Actors' key-value buckets, in the lattice's JetStream.
        inner.set_buckets(Arc::new(buckets::KvBuckets::new(
            node.nats.clone(),
            inner.lattice(),
        )));
        for name in self.actor_names() {
            node.serve(&name).await?;
        }
        control::start(&node, inner).await?;
        deploy::reconcile::start(&node, inner);
        discovery::start(inner, &node.nats).await?;
        serve::barrier(&node, &node.nats).await?;
        tracing::info!(lattice = %node.lattice, host = %node.host_id, "joined the lattice");
        serve::emit(
            &node,
            "host_started",
            serde_json::json!({ "host": node.host_id, "actors": self.actor_names() }),
        )
        .await;
        Ok(())
    }
}
