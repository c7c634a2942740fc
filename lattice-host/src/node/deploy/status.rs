//! The state of each deployment, from the desired state and what the hosts
//! report: what `lattice get deployments` shows.

use serde::{Deserialize, Serialize};

use super::placement::{HostView, place};
use super::reconcile::HostDeployments;
use super::spec::Deployment;

/// One deployment: desired against running, and an honest status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStatus {
    /// The actor's name.
    pub name: String,
    /// The module's sha256.
    pub module: String,
    /// Replicas asked for; for a daemon, the matching live hosts.
    pub desired: u32,
    /// Replicas running the deployment's module.
    pub running: u32,
    /// `deployed`, `reconciling`, `waiting` (for hosts) or `failed`.
    pub status: String,
    /// Why it is not deployed: the requirement no host meets, or the error
    /// and the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The hosts running it.
    pub hosts: Vec<String>,
    /// The deployment as declared.
    pub deployment: Deployment,
}

impl DeploymentStatus {
    /// Whether every replica runs the deployment's module.
    pub fn is_deployed(&self) -> bool {
        self.status == "deployed"
    }
}

/// The status of each of `desired` from the hosts' `reports`.
pub fn status(desired: &[Deployment], reports: &[HostDeployments]) -> Vec<DeploymentStatus> {
    let following: Vec<&HostDeployments> = reports.iter().filter(|r| r.enabled).collect();
    let views: Vec<HostView<'_>> = following
        .iter()
        .map(|r| HostView {
            id: &r.host,
            labels: &r.labels,
        })
        .collect();
    desired
        .iter()
        .map(|d| {
            let plan = place(d, &views);
            let wanted = if d.daemon {
                plan.placed()
            } else {
                d.replicas()
            };
            let mut running = 0;
            let mut hosts = Vec::new();
            let mut failures = Vec::new();
            for report in &following {
                for actor in report.actors.iter().filter(|a| a.name == d.name) {
                    if actor.digest != d.module {
                        continue;
                    }
                    match actor.state.as_str() {
                        "running" => {
                            running += actor.replicas;
                            hosts.push(report.host.clone());
                        }
                        "failed" => failures.push(format!(
                            "on host {}: {}",
                            report.host,
                            actor.error.as_deref().unwrap_or("no reason given")
                        )),
                        _ => {}
                    }
                }
            }
            let (status, reason) = if following.is_empty() {
                (
                    "waiting",
                    Some(if reports.is_empty() {
                        "no live host".to_owned()
                    } else {
                        "no live host follows deployments (their NATS server has no JetStream)"
                            .to_owned()
                    }),
                )
            } else if !failures.is_empty() && running < wanted {
                ("failed", Some(failures.join("; ")))
            } else if running >= wanted && wanted > 0 {
                ("deployed", None)
            } else if let Some((count, why)) = plan.waiting.first() {
                let count = if d.daemon {
                    String::new()
                } else {
                    format!("{count} replicas: ")
                };
                ("waiting", Some(format!("{count}{why}")))
            } else {
                ("reconciling", None)
            };
            DeploymentStatus {
                name: d.name.clone(),
                module: d.module.clone(),
                desired: wanted,
                running,
                status: status.to_owned(),
                reason,
                hosts,
                deployment: d.clone(),
            }
        })
        .collect()
}
