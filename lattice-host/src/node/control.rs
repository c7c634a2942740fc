//! The control interface over NATS, and heartbeats.
//!
//! Requests and replies are JSON, so that any NATS tool can drive a host.
//! Errors carry the `Lattice-Status` header and a JSON `{kind, message}` body.
//!
//! | subject | op | request | reply |
//! | --- | --- | --- | --- |
//! | `lattice.{l}.ctl.ping` | every host answers | none | [`HostSummary`] |
//! | `lattice.{l}.ctl.inventory` | every host answers | none | [`Inventory`] |
//! | `lattice.{l}.ctl.describe` | hosts running the actor answer | [`DescribeRequest`] | [`ActorEntry`] |
//! | `lattice.{l}.ctl.host.{id}.ping` | | none | [`HostSummary`] |
//! | `lattice.{l}.ctl.host.{id}.inventory` | | none | [`Inventory`] |
//! | `lattice.{l}.ctl.host.{id}.start` | start an actor | [`StartRequest`] | [`ActorEntry`] |
//! | `lattice.{l}.ctl.host.{id}.stop` | stop an actor | [`StopRequest`] | `{}` |
//! | `lattice.{l}.ctl.host.{id}.scale` | change its instance limit | [`ScaleRequest`] | [`ActorEntry`] |
//! | `lattice.{l}.ctl.host.{id}.update` | swap its module | [`UpdateRequest`] | [`ActorEntry`] |
//! | `lattice.{l}.ctl.host.{id}.labels` | read or change labels | [`LabelsRequest`] (optional) | labels |
//! | `lattice.{l}.ctl.host.{id}.stop_host` | stop the host | none | `{}` |
//!
//! The lattice-wide subjects take only the operations that read
//! ([`LATTICE_WIDE_OPS`]); the others, sent there, get `unknown_method`
//! naming the host's own subject. Every request with a reply subject gets a
//! reply: a malformed body or header block, an unknown operation, a reply
//! too large for the server, each a typed error.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::{HeaderMap, Message};
use futures_util::StreamExt;
use lattice::{Error, ErrorKind, headers};
use serde::{Deserialize, Serialize};

use crate::node::Node;
use crate::runtime::host::{Host, HostInner};
use crate::runtime::options::ActorLimits;

pub use crate::node::control_client::ControlClient;
pub use crate::runtime::inventory::{ActorEntry, HostSummary, Inventory, LabelsRequest, VERSION};

/// The most actors listed by name in a heartbeat; beyond that it carries
/// counts only, so that it stays far below NATS's `max_payload`.
pub const HEARTBEAT_ACTORS: usize = 200;

/// A request to start an actor, from a module file on the host's disk or
/// from the module's bytes in the request (exactly one of the two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// The name to run it under.
    pub name: String,
    /// The path of the module file on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The module's bytes in base64 (standard alphabet, padded): the module
    /// travels in the request, which must then fit in the server's
    /// `max_payload` (1 MiB by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Limits; defaults where left out.
    #[serde(default)]
    pub limits: LimitsRequest,
}

/// Encodes module bytes for the `module` field of a start or update request.
pub fn encode_module(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The module a start or update request names: `path` on the host or
/// `module` inline, exactly one of them.
async fn load_module(
    host: &Host,
    path: Option<&str>,
    module: Option<&str>,
) -> Result<Vec<u8>, Error> {
    use base64::Engine as _;
    let options = host.inner().options();
    match (path, module) {
        (Some(path), None) => {
            let path = in_module_dir(options.module_dir.as_deref(), path)?;
            crate::runtime::module::read_file(&path, options.max_module_size).await
        }
        (None, Some(b64)) => {
            // Base64 takes 4 bytes for every 3.
            if b64.len() / 4 * 3 > options.max_module_size {
                return Err(Error::new(
                    ErrorKind::PayloadTooLarge,
                    format!(
                        "the module is about {} bytes; this host loads modules of at most {} bytes",
                        b64.len() / 4 * 3,
                        options.max_module_size
                    ),
                ));
            }
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Decode,
                        format!("`module` is not valid base64: {e}"),
                    )
                })
        }
        _ => Err(Error::new(
            ErrorKind::Decode,
            "give exactly one of `path` (a module file on the host) and `module` (its bytes, base64)",
        )),
    }
}

/// Where `path` (relative to the module directory, or absolute inside it)
/// is, if the host has a module directory and `path` stays inside it. The
/// answer is the same whether or not a file outside exists, so that the
/// control subjects tell nobody which files the host has.
fn in_module_dir(dir: Option<&std::path::Path>, path: &str) -> Result<std::path::PathBuf, Error> {
    use std::path::Component;
    let Some(dir) = dir else {
        return Err(Error::new(
            ErrorKind::Unauthorized,
            "this host reads no module files on a control request; send the module's bytes \
             (`module`; `lattice start` does unless given --on-host), or start the host with \
             a module directory (`lattice up --module-dir DIR`, HostOptions::module_dir)",
        ));
    };
    let outside = || {
        Error::new(
            ErrorKind::Unauthorized,
            format!(
                "`path` must name a file inside this host's module directory, {}",
                dir.display()
            ),
        )
    };
    let requested = std::path::Path::new(path);
    let relative = if requested.is_absolute() {
        requested.strip_prefix(dir).map_err(|_| outside())?
    } else {
        requested
    };
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(outside());
    }
    let joined = dir.join(relative);
    // Symbolic links inside the directory may not lead out of it.
    let (Ok(real_dir), Ok(real)) = (dir.canonicalize(), joined.canonicalize()) else {
        return Ok(joined); // not there: reading it says so
    };
    if !real.starts_with(&real_dir) {
        return Err(outside());
    }
    Ok(real)
}

/// A request to change an actor's instance limit on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    /// The actor's name.
    pub name: String,
    /// How many instances may run at once (at least 1).
    pub max_instances: u32,
}

/// A request to swap the module of a running actor, dropping no call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// The actor's name.
    pub name: String,
    /// The path of the module file on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The module's bytes in base64 (standard alphabet, padded): the module
    /// travels in the request, which must then fit in the server's
    /// `max_payload` (1 MiB by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// New limits; the actor keeps its own where this is left out.
    #[serde(default)]
    pub limits: Option<LimitsRequest>,
}

/// Limits in a [`StartRequest`]; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsRequest {
    /// Bytes of linear memory.
    pub max_memory: Option<u64>,
    /// The per-call deadline in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Fuel per call.
    pub fuel: Option<u64>,
    /// The largest payload in bytes.
    pub max_payload: Option<usize>,
    /// Instances at once.
    pub max_instances: Option<u32>,
    /// `false`: the actor's calls run on fibers, never inline (see
    /// [`ActorLimits::inline`]). Absent: as the host decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<bool>,
}

impl LimitsRequest {
    pub(crate) fn apply(&self) -> ActorLimits {
        let mut limits = ActorLimits::new().fuel(self.fuel);
        if let Some(v) = self.max_memory {
            limits = limits.max_memory(v);
        }
        if let Some(v) = self.timeout_ms {
            limits = limits.timeout(Duration::from_millis(v));
        }
        if let Some(v) = self.max_payload {
            limits = limits.max_payload(v);
        }
        if let Some(v) = self.max_instances {
            limits = limits.max_instances(v);
        }
        if let Some(v) = self.inline {
            limits = limits.inline(v);
        }
        limits
    }
}

/// A request for what an actor implements, as read from its running module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescribeRequest {
    /// The actor's name.
    pub name: String,
}

/// A request to stop an actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopRequest {
    /// The actor's name.
    pub name: String,
}

/// A heartbeat: who the host is and what it runs, summarized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The host's id.
    pub host: String,
    /// The lattice.
    pub lattice: String,
    /// The host's version.
    pub version: String,
    /// Milliseconds since it started.
    pub uptime_ms: u64,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// How many actors it runs.
    pub actor_count: usize,
    /// Instance limits of the first [`HEARTBEAT_ACTORS`] actors: keyed actors
    /// first (keyed calls are routed by them), then by name.
    pub actors: BTreeMap<String, u32>,
    /// Whether `actors` lists only some of them (ask `inventory` for all).
    pub truncated: bool,
    /// How often the host beats, in milliseconds: it counts as gone after
    /// three intervals without a beat.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
}

fn default_interval_ms() -> u64 {
    1000
}

impl Heartbeat {
    /// Summarizes `actors` (name, instance limit) into a heartbeat.
    pub(crate) fn summarize(
        summary: HostSummary,
        actors: impl IntoIterator<Item = (String, u32)>,
        interval: Duration,
    ) -> Heartbeat {
        let mut listed = BTreeMap::new();
        let mut count = 0;
        for (name, instances) in actors {
            count += 1;
            if listed.len() < HEARTBEAT_ACTORS {
                listed.insert(name, instances);
            }
        }
        Heartbeat {
            host: summary.host,
            lattice: summary.lattice,
            version: summary.version,
            uptime_ms: summary.uptime_ms,
            labels: summary.labels,
            actor_count: count,
            truncated: count > listed.len(),
            actors: listed,
            interval_ms: interval.as_millis().try_into().unwrap_or(u64::MAX),
        }
    }
}

/// Subscribes the control subjects of a host that joined a lattice and
/// starts its heartbeat.
pub(crate) async fn start(node: &Arc<Node>, host: &Arc<HostInner>) -> Result<(), Error> {
    let nats = &node.nats;
    let lattice = host.lattice().to_owned();
    let all = lattice::subject::control_filter(&lattice)?;
    let mine = format!(
        "{}.{lattice}.ctl.host.{}.*",
        lattice::subject::ROOT,
        host.host_id()
    );
    for subject in [all, mine] {
        let mut sub = nats.subscribe(subject.clone()).await.map_err(|e| {
            Error::new(
                ErrorKind::Transport,
                format!("cannot subscribe to {subject}: {e}"),
            )
            .with_source(e)
        })?;
        let (weak, node) = (Arc::downgrade(host), Arc::downgrade(node));
        tokio::spawn(async move {
            while let Some(message) = sub.next().await {
                let (Some(inner), Some(node)) = (weak.upgrade(), node.upgrade()) else {
                    return;
                };
                // A host that is shutting down leaves the control plane.
                if inner.is_stopping() {
                    return;
                }
                tokio::spawn(handle(node, inner, message));
            }
        });
    }
    nats.flush()
        .await
        .map_err(|e| Error::new(ErrorKind::Transport, format!("cannot subscribe: {e}")))?;
    tokio::spawn(heartbeat(Arc::downgrade(node), Arc::downgrade(host)));
    Ok(())
}

async fn heartbeat(node: Weak<Node>, weak: Weak<HostInner>) {
    let Some(beat_now) = node.upgrade().map(|node| node.beat_now.clone()) else {
        return;
    };
    loop {
        let (Some(node), Some(inner)) = (node.upgrade(), weak.upgrade()) else {
            return;
        };
        if inner.is_stopping() {
            return;
        }
        let interval = inner.options().heartbeat;
        let host = Host::from_inner(inner);
        let beat = Heartbeat::summarize(host.summary(), host.actor_limits(), interval);
        let body = serde_json::to_value(&beat).unwrap_or_default();
        crate::node::serve::emit(&node, "heartbeat", body).await;
        drop((host, node));
        // Every interval, or at once when what the host runs changed.
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = beat_now.notified() => {}
        }
    }
}

/// The operations of the lattice-wide subjects, `lattice.{l}.ctl.{op}`:
/// those that only read. Whatever changes a host is sent to that host's own
/// subject, so that NATS permissions can tell the two apart and one message
/// never starts, updates or stops something on every host at once.
pub const LATTICE_WIDE_OPS: [&str; 4] = ["ping", "inventory", "describe", "deployments"];

/// The operations of a host's own subjects, `lattice.{l}.ctl.host.{id}.{op}`.
pub const HOST_OPS: [&str; 10] = [
    "ping",
    "inventory",
    "describe",
    "deployments",
    "start",
    "stop",
    "scale",
    "update",
    "labels",
    "stop_host",
];

async fn handle(node: Arc<Node>, inner: Arc<HostInner>, message: Message) {
    let Some(reply) = message.reply.clone() else {
        return;
    };
    let Some(op) = message.subject.rsplit('.').next().map(str::to_owned) else {
        return;
    };
    // `lattice.{l}.ctl.{op}`: four tokens; a host's own subject has six.
    let lattice_wide = message.subject.split('.').count() == 4;
    let host = Host::from_inner(inner);
    let result = match crate::node::serve::header_block(&message) {
        Err(e) => Err(e),
        Ok(()) if lattice_wide && !LATTICE_WIDE_OPS.contains(&op.as_str()) => {
            Err(not_lattice_wide(&host, &op))
        }
        Ok(()) => {
            if op == "stop_host" {
                // From now on the host answers no other request.
                host.inner().begin_stopping();
            }
            if op == "deployments" {
                // The node's, not the runtime's: what it deploys here.
                let report = node
                    .deployments
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                serde_json::to_value(report).map_err(|e| {
                    Error::new(ErrorKind::Encode, format!("cannot encode the reply: {e}"))
                })
            } else {
                run(&host, &op, &message.payload).await
            }
        }
    };
    // Lattice-wide, only the hosts that run the actor answer a describe;
    // a request that is not valid gets its error from every host.
    if op == "describe"
        && lattice_wide
        && result
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::NotFound)
    {
        return;
    }
    let (headers, bytes) = reply_body(result, node.nats.max_payload());
    if let Err(e) = node
        .nats
        .publish_with_headers(reply, headers, bytes.into())
        .await
    {
        tracing::warn!(error = %e, "cannot answer a control request");
    }
    if op == "stop_host" && !lattice_wide {
        host.shutdown().await;
    }
}

/// The error for an operation sent to the lattice-wide subject that only a
/// host's own subject takes (or that does not exist).
fn not_lattice_wide(host: &Host, op: &str) -> Error {
    if HOST_OPS.contains(&op) {
        Error::new(
            ErrorKind::UnknownMethod,
            format!(
                "`{op}` is sent to one host, on lattice.{}.ctl.host.{{host_id}}.{op}; the \
                 lattice-wide control subjects take only {}",
                host.inner().lattice(),
                LATTICE_WIDE_OPS.join(", ")
            ),
        )
    } else {
        unknown_op(op)
    }
}

fn unknown_op(op: &str) -> Error {
    let shown: String = op.chars().take(64).collect();
    Error::new(
        ErrorKind::UnknownMethod,
        format!(
            "unknown control operation {shown:?}; the operations are {}",
            HOST_OPS.join(", ")
        ),
    )
}

/// The headers and JSON body of a control reply; an error reply (the
/// `Lattice-Status` header and `{kind, message}`) when the result is an
/// error or too large for the server.
fn reply_body(
    result: Result<serde_json::Value, Error>,
    max_payload: usize,
) -> (HeaderMap, Vec<u8>) {
    let error = |e: &Error| {
        let mut headers = HeaderMap::new();
        headers.insert(headers::STATUS, e.status().to_string());
        let body = serde_json::json!({ "kind": e.kind().as_str(), "message": e.message() });
        (headers, serde_json::to_vec(&body).unwrap_or_default())
    };
    match result {
        Ok(body) => {
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            // Room for the reply subject and the headers, as the server counts them.
            if bytes.len() + 1024 > max_payload {
                return error(&Error::new(
                    ErrorKind::PayloadTooLarge,
                    format!(
                        "the reply is {} bytes, more than the NATS server's max_payload of \
                         {max_payload} allows",
                        bytes.len()
                    ),
                ));
            }
            (HeaderMap::new(), bytes)
        }
        Err(e) => error(&e),
    }
}

fn parse<T: serde::de::DeserializeOwned>(op: &str, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            format!("the `{op}` request is not valid: {e}; see the book's \"Operating hosts\" chapter for its shape"),
        )
    })
}

async fn run(host: &Host, op: &str, body: &[u8]) -> Result<serde_json::Value, Error> {
    let json = |v: serde_json::Result<serde_json::Value>| {
        v.map_err(|e| Error::new(ErrorKind::Encode, format!("cannot encode the reply: {e}")))
    };
    match op {
        "ping" => json(serde_json::to_value(host.summary())),
        "inventory" => json(serde_json::to_value(host.inventory())),
        "describe" => {
            let request: DescribeRequest = parse(op, body)?;
            json(serde_json::to_value(entry(host, &request.name)?))
        }
        "start" => {
            let request: StartRequest = parse(op, body)?;
            lattice::names::validate(lattice::names::NameKind::Actor, &request.name)?;
            let module =
                load_module(host, request.path.as_deref(), request.module.as_deref()).await?;
            host.start_actor(&request.name, module, request.limits.apply())
                .await?;
            json(serde_json::to_value(entry(host, &request.name)?))
        }
        "scale" => {
            let request: ScaleRequest = parse(op, body)?;
            host.scale_actor(&request.name, request.max_instances)
                .await?;
            json(serde_json::to_value(entry(host, &request.name)?))
        }
        "update" => {
            let request: UpdateRequest = parse(op, body)?;
            let module =
                load_module(host, request.path.as_deref(), request.module.as_deref()).await?;
            host.update_actor(
                &request.name,
                module,
                request.limits.as_ref().map(LimitsRequest::apply),
            )
            .await?;
            json(serde_json::to_value(entry(host, &request.name)?))
        }
        "stop" => {
            let request: StopRequest = parse(op, body)?;
            host.stop_actor(&request.name).await?;
            Ok(serde_json::json!({}))
        }
        "labels" => {
            let request: LabelsRequest = if body.is_empty() {
                LabelsRequest::default()
            } else {
                parse(op, body)?
            };
            json(serde_json::to_value(host.update_labels(request)?))
        }
        "stop_host" => Ok(serde_json::json!({})),
        other => Err(unknown_op(other)),
    }
}

fn entry(host: &Host, name: &str) -> Result<ActorEntry, Error> {
    host.inventory()
        .actors
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no actor named `{name}` is running on this host"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_stay_small_with_many_actors() {
        let summary = HostSummary {
            host: "h1".into(),
            lattice: "default".into(),
            version: VERSION.into(),
            uptime_ms: 1,
            labels: BTreeMap::from([("zone".into(), "eu-1".into())]),
            actors: 10_000,
        };
        let actors = (0..10_000).map(|i| (format!("actor-with-a-fairly-long-name-{i:05}"), 8));
        let beat = Heartbeat::summarize(summary, actors, Duration::from_secs(1));
        assert_eq!(beat.actor_count, 10_000);
        assert!(beat.truncated);
        assert_eq!(beat.actors.len(), HEARTBEAT_ACTORS);
        let size = serde_json::to_vec(&beat).unwrap().len();
        assert!(
            size < 16 << 10,
            "a heartbeat of {size} bytes; NATS's default max_payload is 1 MiB"
        );
    }
}
