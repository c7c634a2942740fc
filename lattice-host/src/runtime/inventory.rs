//! What a host is and runs, as the control interface reports it: plain
//! data, read off the runtime.

use std::collections::BTreeMap;

use lattice::ContractInfo;
use serde::{Deserialize, Serialize};

/// The version of this host, as sent in pings and heartbeats.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a host answers to a ping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSummary {
    /// The host's id.
    pub host: String,
    /// The lattice it belongs to.
    pub lattice: String,
    /// Its version.
    pub version: String,
    /// Milliseconds since it started.
    pub uptime_ms: u64,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// How many actors it runs.
    pub actors: usize,
}

/// One actor in an inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorEntry {
    /// The actor's name.
    pub name: String,
    /// The sha256 of its module.
    pub digest: String,
    /// The contracts it implements.
    pub contracts: Vec<ContractInfo>,
    /// Its instance limit on this host.
    pub max_instances: u32,
    /// Its warm, idle instances.
    pub idle_instances: usize,
    /// How many of those hibernate (see
    /// [`HostOptions::hibernate_after`](crate::HostOptions::hibernate_after)).
    /// Absent from hosts older than this field.
    #[serde(default)]
    pub hibernating_instances: usize,
    /// Whether its calls run inline, without a fiber (see
    /// [`HostOptions::inline_calls`](crate::HostOptions::inline_calls)).
    /// Absent from hosts older than this field.
    #[serde(default)]
    pub inline: bool,
    /// Whether it is a keyed actor (one state per key).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keyed: bool,
    /// For a keyed actor, the keys with an activation on this host.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub activations: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Everything a host runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The host's id.
    pub host: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its actors, by name.
    pub actors: Vec<ActorEntry>,
}

/// Changes to a host's labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsRequest {
    /// Labels to set.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Labels to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}
