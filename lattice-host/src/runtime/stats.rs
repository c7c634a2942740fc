//! Counters of each method of each actor: calls, errors, time. The node
//! reports them (`$SRV.STATS`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use lattice::{ContractInfo, Error};

/// Counters of one method of one actor.
#[derive(Debug)]
pub(crate) struct MethodStats {
    pub(crate) contract: String,
    pub(crate) method: String,
    pub(crate) requests: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) nanos: AtomicU64,
    pub(crate) last_error: Mutex<String>,
}

/// Counters of every method of an actor.
#[derive(Debug)]
pub(crate) struct ActorStats {
    pub(crate) started: SystemTime,
    pub(crate) methods: Vec<MethodStats>,
}

impl ActorStats {
    pub(crate) fn new(contracts: &[ContractInfo]) -> ActorStats {
        ActorStats {
            started: SystemTime::now(),
            methods: contracts
                .iter()
                .flat_map(|c| {
                    c.methods.iter().map(|m| MethodStats {
                        contract: c.name.clone(),
                        method: m.name.clone(),
                        requests: AtomicU64::new(0),
                        errors: AtomicU64::new(0),
                        nanos: AtomicU64::new(0),
                        last_error: Mutex::new(String::new()),
                    })
                })
                .collect(),
        }
    }

    /// Counts one call of `contract.method` (unknown methods are not counted).
    pub(crate) fn record(
        &self,
        contract: &str,
        method: &str,
        took: Duration,
        error: Option<&Error>,
    ) {
        let Some(stats) = self
            .methods
            .iter()
            .find(|m| m.method == method && m.contract == contract)
        else {
            return;
        };
        stats.requests.fetch_add(1, Ordering::Relaxed);
        stats.nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if let Some(error) = error {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            *stats.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
                format!("{}:{error}", error.status());
        }
    }
}
