//! Each host's half of deployments: it watches the desired state and the
//! live hosts, computes with [`place`] which replicas are its own, and
//! starts, updates, scales and stops its deployed actors to match. Every
//! host runs the same function on the same inputs, so there is no leader,
//! and nothing changes while nothing changes.
//!
//! - Live hosts: this host, and every host whose heartbeat arrived within
//!   three of its intervals (a host that stops says so at once).
//! - A replica that moves away is kept until the hosts it moves to run it
//!   (their heartbeats say so), or [`RELEASE_GRACE`] has passed: make
//!   before break.
//! - A deployed actor that stops (a trap on load, `lattice stop`) is
//!   started again; one that fails to start is retried with backoff, and
//!   its error is what `lattice get deployments` shows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use lattice::{Error, ErrorKind};
use serde::{Deserialize, Serialize};

use super::placement::{HostView, place};
use super::spec::Deployment;
use super::store::{self, Stores};
use crate::node::Node;
use crate::node::control::Heartbeat;
use crate::runtime::host::{Host, HostInner};
use crate::runtime::network::Network;

/// How long a replica that moved away is kept for its new hosts to start.
pub const RELEASE_GRACE: Duration = Duration::from_secs(10);

/// How many heartbeat intervals without a beat make a host dead.
pub const MISSED_BEATS: u32 = 3;

/// The first wait before a failed start is tried again; it doubles up to
/// [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// How long the host waits before trying JetStream again when the server
/// has none.
const STORE_RETRY: Duration = Duration::from_secs(10);

/// What one host says of deployments: the `deployments` control operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostDeployments {
    /// The host's id.
    pub host: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Whether it follows the lattice's deployments; `false` when its NATS
    /// server has no JetStream (then `error` says why).
    pub enabled: bool,
    /// Why deployments are off on this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The hosts it counts as live, itself included.
    #[serde(default)]
    pub live_hosts: Vec<String>,
    /// Its deployed actors.
    #[serde(default)]
    pub actors: Vec<DeployedActor>,
}

/// One deployed actor on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedActor {
    /// The actor's name (the deployment's).
    pub name: String,
    /// The module it runs, or failed to run.
    pub digest: String,
    /// The replicas this host holds.
    pub replicas: u32,
    /// `running`, `releasing` (moved away, kept until its new hosts run
    /// it) or `failed`.
    pub state: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Starts following the lattice's deployments: in the background, so that
/// joining never waits for JetStream.
pub(crate) fn start(node: &Arc<Node>, host: &Arc<HostInner>) {
    tokio::spawn(follow(Arc::downgrade(node), Arc::downgrade(host)));
}

async fn follow(node: Weak<Node>, host: Weak<HostInner>) {
    let mut said = false;
    loop {
        let (Some(n), Some(h)) = (node.upgrade(), host.upgrade()) else {
            return;
        };
        if h.is_stopping() {
            return;
        }
        let stores = Stores::open(&n.nats, h.lattice()).await;
        drop((n, h));
        match stores {
            Ok(stores) => {
                said = false;
                match Follower::new(node.clone(), host.clone()) {
                    Some(follower) => follower.run(stores).await,
                    None => return,
                }
            }
            Err(e) => {
                if !said {
                    tracing::info!(error = %e, "deployments are off until JetStream answers");
                    said = true;
                }
                if let Some(n) = node.upgrade() {
                    n.deployments
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .error = Some(e.message().to_owned());
                }
            }
        }
        tokio::time::sleep(STORE_RETRY).await;
    }
}

struct Peer {
    labels: BTreeMap<String, String>,
    seen: Instant,
    interval: Duration,
    actors: BTreeSet<String>,
}

struct Owned {
    digest: String,
    replicas: u32,
    spec: Deployment,
    /// Since when placement gives it to other hosts.
    lost_since: Option<Instant>,
}

struct Failure {
    digest: String,
    error: String,
    retry_at: Instant,
    backoff: Duration,
}

struct Follower {
    node: Weak<Node>,
    host: Weak<HostInner>,
    me: String,
    desired: BTreeMap<String, Deployment>,
    peers: HashMap<String, Peer>,
    owned: BTreeMap<String, Owned>,
    failures: BTreeMap<String, Failure>,
}

/// Why the follower's loop ended: the host stops, or the watch broke and
/// must be made again.
enum End {
    Stopping,
    Broken(String),
}

impl Follower {
    fn new(node: Weak<Node>, host: Weak<HostInner>) -> Option<Follower> {
        let me = host.upgrade()?.host_id().to_owned();
        Some(Follower {
            node,
            host,
            me,
            desired: BTreeMap::new(),
            peers: HashMap::new(),
            owned: BTreeMap::new(),
            failures: BTreeMap::new(),
        })
    }

    fn parts(&self) -> Option<(Arc<Node>, Host)> {
        let node = self.node.upgrade()?;
        let inner = self.host.upgrade()?;
        if inner.is_stopping() {
            return None;
        }
        Some((node, Host::from_inner(inner)))
    }

    async fn run(mut self, stores: Stores) {
        loop {
            match self.follow(&stores).await {
                End::Stopping => return,
                End::Broken(why) => {
                    tracing::warn!(why, "the deployments watch broke; watching again");
                    tokio::time::sleep(FIRST_RETRY).await;
                }
            }
        }
    }

    async fn follow(&mut self, stores: &Stores) -> End {
        let Some((node, host)) = self.parts() else {
            return End::Stopping;
        };
        let lattice = host.inner().lattice().to_owned();
        let beats = format!("{}.{lattice}.evt.*.heartbeat", lattice::subject::ROOT);
        let stops = format!("{}.{lattice}.evt.*.host_stopped", lattice::subject::ROOT);
        let (mut beats, mut stops) = match (
            node.nats.subscribe(beats).await,
            node.nats.subscribe(stops).await,
        ) {
            (Ok(b), Ok(s)) => (b, s),
            (Err(e), _) | (_, Err(e)) => return End::Broken(e.to_string()),
        };
        // The hosts already up, at once rather than at their next beat: a
        // host that starts alone in its view would claim every replica.
        self.greet(&node, &host).await;
        // The desired state as it is, then every change after it.
        let last = match stores.kv.status().await {
            Ok(status) => status.info.state.last_sequence,
            Err(e) => return End::Broken(e.to_string()),
        };
        match stores.list().await {
            Ok(all) => self.desired = all.into_iter().map(|d| (d.name.clone(), d)).collect(),
            Err(e) => return End::Broken(e.message().to_owned()),
        }
        let mut watch = match stores.kv.watch_all_from_revision(last + 1).await {
            Ok(w) => w,
            Err(e) => return End::Broken(e.to_string()),
        };
        let interval = host.inner().options().heartbeat;
        drop((node, host));
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_tick = Instant::now();
        self.reconcile(stores).await;
        loop {
            let dirty = tokio::select! {
                entry = watch.next() => match entry {
                    Some(Ok(entry)) => self.desire(entry),
                    Some(Err(e)) => return End::Broken(e.to_string()),
                    None => return End::Broken("the watch ended".into()),
                },
                Some(message) = beats.next() => self.beat(&message.payload),
                Some(message) = stops.next() => {
                    let host = message.subject.split('.').nth(3).unwrap_or_default();
                    self.peers.remove(host).is_some()
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    // Asleep ourselves (a paused process, an overloaded
                    // machine): the others did not miss their beats.
                    if now.duration_since(last_tick) > interval * MISSED_BEATS {
                        for peer in self.peers.values_mut() {
                            peer.seen = now;
                        }
                    }
                    last_tick = now;
                    self.expire(now) || self.due(now)
                }
            };
            if self.parts().is_none() {
                return End::Stopping;
            }
            if dirty {
                self.reconcile(stores).await;
            }
        }
    }

    /// Learns the hosts already up from a lattice-wide ping.
    async fn greet(&mut self, node: &Node, host: &Host) {
        let control = crate::node::control_client::ControlClient::new(
            node.nats.clone(),
            host.inner().lattice(),
        )
        .map(|c| c.wait(Duration::from_millis(500)));
        let Ok(control) = control else { return };
        let interval = host.inner().options().heartbeat;
        if let Ok(hosts) = control.ping().await {
            let now = Instant::now();
            for summary in hosts {
                if summary.host == self.me {
                    continue;
                }
                self.peers.entry(summary.host).or_insert(Peer {
                    labels: summary.labels,
                    seen: now,
                    interval,
                    actors: BTreeSet::new(),
                });
            }
        }
    }

    /// Takes a change of the desired state: whether anything changed.
    fn desire(&mut self, entry: kv::Entry) -> bool {
        match entry.operation {
            kv::Operation::Put => match store::decode(&entry.key, &entry.value) {
                Ok(d) => self.desired.insert(entry.key, d.clone()) != Some(d),
                Err(e) => {
                    tracing::warn!(error = %e, "a deployment in the bucket is not valid; ignored");
                    false
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => {
                self.desired.remove(&entry.key).is_some()
            }
        }
    }

    /// Takes a heartbeat: whether the live hosts, their labels, or what
    /// they run changed.
    fn beat(&mut self, payload: &[u8]) -> bool {
        let Ok(beat) = serde_json::from_slice::<Heartbeat>(payload) else {
            return false;
        };
        if beat.host == self.me {
            return false;
        }
        let actors: BTreeSet<String> = beat.actors.into_keys().collect();
        let interval = Duration::from_millis(beat.interval_ms.clamp(10, 60_000));
        let now = Instant::now();
        match self.peers.get_mut(&beat.host) {
            Some(peer) => {
                peer.seen = now;
                peer.interval = interval;
                let changed = peer.labels != beat.labels || peer.actors != actors;
                peer.labels = beat.labels;
                peer.actors = actors;
                changed
            }
            None => {
                // A host new to us: it does not know what we run yet, and
                // keyed calls are routed by it; tell it now.
                if let Some(node) = self.node.upgrade() {
                    node.beat_now.notify_one();
                }
                self.peers.insert(
                    beat.host,
                    Peer {
                        labels: beat.labels,
                        seen: now,
                        interval,
                        actors,
                    },
                );
                true
            }
        }
    }

    /// Forgets hosts that missed their beats: whether any did.
    fn expire(&mut self, now: Instant) -> bool {
        let before = self.peers.len();
        self.peers.retain(|id, peer| {
            let alive = now.duration_since(peer.seen) <= peer.interval * MISSED_BEATS;
            if !alive {
                tracing::info!(host = %id, "a host missed its heartbeats; placing without it");
            }
            alive
        });
        self.peers.len() != before
    }

    /// Whether a retry or a release is due.
    fn due(&self, now: Instant) -> bool {
        self.failures.values().any(|f| f.retry_at <= now)
            || self.owned.values().any(|o| o.lost_since.is_some())
    }

    async fn reconcile(&mut self, stores: &Stores) {
        let Some((node, host)) = self.parts() else {
            return;
        };
        self.share_members(&node, &host);
        let labels = host.labels();
        let mut views: Vec<HostView<'_>> = self
            .peers
            .iter()
            .map(|(id, p)| HostView {
                id,
                labels: &p.labels,
            })
            .collect();
        views.push(HostView {
            id: &self.me,
            labels: &labels,
        });
        // What this host should hold, and where each deployment goes.
        let mut mine: BTreeMap<String, u32> = BTreeMap::new();
        let mut elsewhere: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, d) in &self.desired {
            let plan = place(d, &views);
            let n = plan.on(&self.me);
            if n > 0 {
                mine.insert(name.clone(), n);
            }
            elsewhere.insert(
                name.clone(),
                plan.hosts.into_keys().filter(|h| *h != self.me).collect(),
            );
        }
        let live: Vec<String> = views.iter().map(|v| v.id.to_owned()).collect();
        drop(views);
        let now = Instant::now();

        // Deployed actors someone stopped: started again below.
        self.owned.retain(|name, _| host.actor(name).is_some());

        for (name, replicas) in &mine {
            let d = self.desired[name].clone();
            if let Some(f) = self.failures.get(name)
                && f.digest == d.module
                && f.retry_at > now
            {
                continue;
            }
            let result = match self.owned.get_mut(name) {
                None if host.actor(name).is_some() => Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "an actor `{name}` started by hand runs on this host; stop it \
                         (`lattice stop {name} --host {}`) for the deployment to take its place",
                        self.me
                    ),
                )),
                None => self.start(&node, &host, stores, &d, *replicas).await,
                Some(o) if o.digest != d.module || o.spec.limits != d.limits => {
                    o.lost_since = None;
                    update(&host, stores, &d, *replicas).await
                }
                Some(o) if o.replicas != *replicas => {
                    o.lost_since = None;
                    host.scale_actor(name, instances(&d, *replicas))
                        .await
                        .map(drop)
                }
                Some(o) => {
                    o.lost_since = None;
                    Ok(())
                }
            };
            match result {
                Ok(()) => {
                    self.failures.remove(name);
                    self.owned.insert(
                        name.clone(),
                        Owned {
                            digest: d.module.clone(),
                            replicas: *replicas,
                            spec: d.clone(),
                            lost_since: None,
                        },
                    );
                }
                Err(e) => self.failed(&node, &d, e).await,
            }
        }

        // Replicas this host no longer holds.
        let gone: Vec<String> = self
            .owned
            .keys()
            .filter(|name| !mine.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            let release = match self.desired.get(&name) {
                None => Some("undeployed"),
                Some(_) => {
                    let owned = self.owned.get_mut(&name).expect("listed above");
                    let since = *owned.lost_since.get_or_insert(now);
                    let taken = elsewhere.get(&name).is_some_and(|hosts| {
                        hosts
                            .iter()
                            .all(|h| self.peers.get(h).is_some_and(|p| p.actors.contains(&name)))
                    });
                    if taken {
                        Some("moved to other hosts")
                    } else if now.duration_since(since) >= RELEASE_GRACE {
                        Some("moved to other hosts (they did not confirm in time)")
                    } else {
                        None
                    }
                }
            };
            if let Some(reason) = release {
                self.owned.remove(&name);
                if let Err(e) = host.stop_actor(&name).await
                    && e.kind() != ErrorKind::NotFound
                {
                    tracing::warn!(actor = %name, error = %e, "cannot stop a deployed actor");
                }
                node.event(
                    "deployment_stopped",
                    serde_json::json!({ "host": self.me, "name": name, "reason": reason }),
                )
                .await;
            }
        }
        self.failures
            .retain(|name, f| self.desired.get(name).is_some_and(|d| d.module == f.digest));
        self.report(&node, &labels, live);
    }

    /// Hands the live hosts and their actors to the node, for routing calls
    /// to keyed actors; when they changed, keys' activations load their
    /// state again (a key may have moved and come back).
    fn share_members(&self, node: &Node, host: &Host) {
        let members: BTreeMap<String, BTreeSet<String>> = self
            .peers
            .iter()
            .map(|(id, p)| (id.clone(), p.actors.clone()))
            .collect();
        let mut shared = node.members.write().unwrap_or_else(|e| e.into_inner());
        if *shared != members {
            *shared = members;
            drop(shared);
            host.inner().forget_activations();
        }
    }

    async fn start(
        &self,
        node: &Node,
        host: &Host,
        stores: &Stores,
        d: &Deployment,
        replicas: u32,
    ) -> Result<(), Error> {
        let (module, limits) = fetch(host, stores, d, replicas).await?;
        host.start_actor(&d.name, module, limits).await?;
        tracing::info!(actor = %d.name, digest = %d.module, replicas, "deployed actor started");
        node.event(
            "deployment_started",
            serde_json::json!({
                "host": self.me, "name": d.name, "digest": d.module, "replicas": replicas,
            }),
        )
        .await;
        Ok(())
    }

    async fn failed(&mut self, node: &Node, d: &Deployment, e: Error) {
        let backoff = match self.failures.get(&d.name) {
            Some(f) if f.digest == d.module => (f.backoff * 2).min(MAX_RETRY),
            _ => FIRST_RETRY,
        };
        tracing::warn!(actor = %d.name, error = %e, retry_in = ?backoff, "a deployed actor failed");
        node.event(
            "deployment_failed",
            serde_json::json!({
                "host": self.me, "name": d.name, "digest": d.module,
                "error": e.message(), "kind": e.kind().as_str(),
            }),
        )
        .await;
        self.failures.insert(
            d.name.clone(),
            Failure {
                digest: d.module.clone(),
                error: e.message().to_owned(),
                retry_at: Instant::now() + backoff,
                backoff,
            },
        );
    }

    fn report(&self, node: &Node, labels: &BTreeMap<String, String>, mut live: Vec<String>) {
        live.sort();
        let mut actors: Vec<DeployedActor> = self
            .owned
            .iter()
            .map(|(name, o)| DeployedActor {
                name: name.clone(),
                digest: o.digest.clone(),
                replicas: o.replicas,
                state: if o.lost_since.is_some() {
                    "releasing".into()
                } else {
                    "running".into()
                },
                error: None,
            })
            .collect();
        for (name, f) in &self.failures {
            if self.owned.get(name).is_some_and(|o| o.digest == f.digest) {
                continue;
            }
            actors.push(DeployedActor {
                name: name.clone(),
                digest: f.digest.clone(),
                replicas: 0,
                state: "failed".into(),
                error: Some(f.error.clone()),
            });
        }
        *node.deployments.lock().unwrap_or_else(|e| e.into_inner()) = HostDeployments {
            host: self.me.clone(),
            labels: labels.clone(),
            enabled: true,
            error: None,
            live_hosts: live,
            actors,
        };
    }
}

/// The instances a host holding `replicas` runs: the deployment's limit
/// for each.
fn instances(d: &Deployment, replicas: u32) -> u32 {
    d.limits
        .apply()
        .max_instances
        .saturating_mul(replicas.max(1))
}

async fn update(host: &Host, stores: &Stores, d: &Deployment, replicas: u32) -> Result<(), Error> {
    let (module, limits) = fetch(host, stores, d, replicas).await?;
    host.update_actor(&d.name, module, Some(limits)).await?;
    Ok(())
}

/// The deployment's module from the lattice's store (as large as this
/// host takes), and the limits of a host holding `replicas` of it.
async fn fetch(
    host: &Host,
    stores: &Stores,
    d: &Deployment,
    replicas: u32,
) -> Result<(Vec<u8>, crate::ActorLimits), Error> {
    let max = host.inner().options().max_module_size;
    let module = stores.download(&d.module, max).await?;
    Ok((
        module,
        d.limits.apply().max_instances(instances(d, replicas)),
    ))
}
