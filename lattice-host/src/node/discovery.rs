//! Discovery with stock NATS tooling: every running actor answers the NATS
//! micro service protocol (`$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`, each also
//! with a service name, and a name and id), in its standard JSON shapes.
//!
//! The service name is the actor's name, the id is `{host}_{actor}`, and each
//! contract method is an endpoint whose subject is its RPC subject. INFO
//! carries the contracts in full in its metadata (`contracts`, JSON), so that
//! `nats micro info ACTOR` shows methods, argument names and types, docs and
//! fingerprints. STATS counts requests, errors and processing time per method.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use lattice::{Error, ErrorKind};
use serde::Serialize;

use crate::runtime::host::{Actor, Host, HostInner};

#[derive(Serialize)]
struct Ping<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    id: String,
    version: String,
    metadata: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Info<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    id: String,
    version: String,
    description: String,
    metadata: BTreeMap<String, String>,
    endpoints: Vec<EndpointInfo>,
}

#[derive(Serialize)]
struct EndpointInfo {
    name: String,
    subject: String,
    queue_group: String,
    metadata: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Stats<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    id: String,
    version: String,
    started: String,
    metadata: BTreeMap<String, String>,
    endpoints: Vec<EndpointStats>,
}

#[derive(Serialize)]
struct EndpointStats {
    name: String,
    subject: String,
    queue_group: String,
    num_requests: u64,
    num_errors: u64,
    processing_time: u64,
    average_processing_time: u64,
    last_error: String,
}

/// Answers `$SRV` requests for the actors of a host that joined a lattice.
pub(crate) async fn start(host: &Arc<HostInner>, nats: &async_nats::Client) -> Result<(), Error> {
    let mut sub = nats.subscribe("$SRV.>").await.map_err(|e| {
        Error::new(
            ErrorKind::Transport,
            format!("cannot subscribe to $SRV.>: {e}"),
        )
        .with_source(e)
    })?;
    let weak = Arc::downgrade(host);
    let nats = nats.clone();
    tokio::spawn(async move {
        while let Some(message) = sub.next().await {
            let Some(inner) = weak.upgrade() else { return };
            if inner.is_stopping() {
                return;
            }
            let Some(reply) = message.reply.clone() else {
                continue;
            };
            let host = Host::from_inner(inner);
            for body in answers(&host, &message.subject) {
                if let Err(e) = nats.publish(reply.clone(), body.into()).await {
                    tracing::warn!(error = %e, "cannot answer a $SRV request");
                }
            }
        }
    });
    Ok(())
}

/// The replies to one `$SRV` request: one per matching actor.
fn answers(host: &Host, subject: &str) -> Vec<Vec<u8>> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let (verb, name, id) = match tokens.as_slice() {
        ["$SRV", verb] => (*verb, None, None),
        ["$SRV", verb, name] => (*verb, Some(*name), None),
        ["$SRV", verb, name, id] => (*verb, Some(*name), Some(*id)),
        _ => return Vec::new(),
    };
    host.inner()
        .actors_snapshot()
        .into_iter()
        .filter(|a| name.is_none_or(|n| n == &*a.name))
        .filter(|a| id.is_none_or(|i| i == service_id(host, a)))
        .filter_map(|actor| answer(host, &actor, verb))
        .collect()
}

fn service_id(host: &Host, actor: &Actor) -> String {
    format!("{}_{}", host.id(), actor.name)
}

fn version(actor: &Actor) -> String {
    format!("{}.0.0", actor.contracts.first().map_or(0, |c| c.version))
}

fn metadata(host: &Host, actor: &Actor) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("lattice".to_owned(), host.inner().lattice().to_owned()),
        ("host".to_owned(), host.id().to_owned()),
        ("digest".to_owned(), actor.digest.clone()),
    ])
}

fn rpc_subject(host: &Host, actor: &Actor, contract: &str, method: &str) -> String {
    format!(
        "{}.{}.rpc.{}.{contract}.{method}",
        lattice::subject::ROOT,
        host.inner().lattice(),
        actor.name
    )
}

fn answer(host: &Host, actor: &Actor, verb: &str) -> Option<Vec<u8>> {
    let name = &*actor.name;
    let body = match verb {
        "PING" => serde_json::to_vec(&Ping {
            kind: "io.nats.micro.v1.ping_response",
            name,
            id: service_id(host, actor),
            version: version(actor),
            metadata: metadata(host, actor),
        }),
        "INFO" => {
            let mut meta = metadata(host, actor);
            meta.insert(
                "contracts".into(),
                serde_json::to_string(&actor.contracts).unwrap_or_default(),
            );
            let endpoints = actor
                .contracts
                .iter()
                .flat_map(|c| {
                    c.methods.iter().map(move |m| EndpointInfo {
                        name: format!("{}.{}", c.name, m.name),
                        subject: rpc_subject(host, actor, &c.name, &m.name),
                        queue_group: name.to_owned(),
                        metadata: BTreeMap::from([
                            ("fingerprint".to_owned(), c.fingerprint.clone()),
                            // Exactly what the fingerprint hashes.
                            ("signature".to_owned(), m.signature()),
                            ("docs".to_owned(), m.docs.clone()),
                            ("idempotent".to_owned(), m.idempotent.to_string()),
                            ("oneway".to_owned(), m.oneway.to_string()),
                        ]),
                    })
                })
                .collect();
            serde_json::to_vec(&Info {
                kind: "io.nats.micro.v1.info_response",
                name,
                id: service_id(host, actor),
                version: version(actor),
                description: actor
                    .contracts
                    .iter()
                    .map(|c| c.docs.as_str())
                    .filter(|d| !d.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n"),
                metadata: meta,
                endpoints,
            })
        }
        "STATS" => {
            let endpoints = actor
                .stats
                .methods
                .iter()
                .map(|m| {
                    let requests = m.requests.load(Ordering::Relaxed);
                    let nanos = m.nanos.load(Ordering::Relaxed);
                    EndpointStats {
                        name: format!("{}.{}", m.contract, m.method),
                        subject: rpc_subject(host, actor, &m.contract, &m.method),
                        queue_group: name.to_owned(),
                        num_requests: requests,
                        num_errors: m.errors.load(Ordering::Relaxed),
                        processing_time: nanos,
                        average_processing_time: nanos.checked_div(requests).unwrap_or(0),
                        last_error: m
                            .last_error
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .clone(),
                    }
                })
                .collect();
            serde_json::to_vec(&Stats {
                kind: "io.nats.micro.v1.stats_response",
                name,
                id: service_id(host, actor),
                version: version(actor),
                started: humantime::format_rfc3339_millis(actor.stats.started).to_string(),
                metadata: metadata(host, actor),
                endpoints,
            })
        }
        _ => return None,
    };
    body.ok()
}
