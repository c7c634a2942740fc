//! Deployments: actors declared once for the whole lattice, which every
//! host keeps running on the hosts placement gives them, with no leader.
//!
//! - [`spec`]: the deployment as stored, and the manifest users write.
//! - [`placement`]: the one deterministic function every host computes.
//! - [`store`]: the JetStream key-value bucket and object store they live in.
//! - [`reconcile`]: each host's half: which replicas are its own, kept running.
//! - [`status`](mod@status): desired against running, for `lattice get deployments`.

pub mod placement;
pub mod reconcile;
pub mod spec;
pub mod status;
pub mod store;

pub use placement::{HostView, Plan, place};
pub use reconcile::{DeployedActor, HostDeployments};
pub use spec::{Deployment, Manifest, ManifestActor, ModuleSource, Spread};
pub use status::{DeploymentStatus, status};
pub use store::Stores;
