//! What the runtime needs from the layer that puts it on a network, and
//! nothing else: the node implements [`Network`] and gives it to the
//! runtime when the host joins a lattice. A runtime without one runs every
//! call in process.

use std::future::Future;
use std::pin::Pin;

use lattice::Error;

/// A boxed future, as the trait's methods return.
pub(crate) type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The runtime's way out: calls to actors elsewhere, actors' events, and
/// the news that an actor starts or stops, so that the layer above serves
/// it or stops serving it.
pub(crate) trait Network: Send + Sync + 'static {
    /// A guest's call to an actor this host does not run (or that it may
    /// not call in process): over the network, within the call's timeout.
    fn call<'a>(&'a self, call: lattice::RawCall<'a>) -> Boxed<'a, Result<bytes::Bytes, Error>>;

    /// Publishes an event an actor published, `subject` relative to the
    /// lattice. The future waits for room in the connection's queue; it
    /// is ready at once when there is room.
    fn publish(&self, subject: &str, payload: bytes::Bytes) -> Boxed<'static, Result<(), Error>>;

    /// The actor `name` was started (or the host just joined and runs it):
    /// serve its calls. An error undoes the start.
    fn serve<'a>(&'a self, name: &'a str) -> Boxed<'a, Result<(), Error>>;

    /// The actor `name` stops: take no more calls for it, and answer those
    /// already on their way. Bounded.
    fn unserve<'a>(&'a self, name: &'a str) -> Boxed<'a, ()>;

    /// What this host runs changed (an actor started or stopped): tell the
    /// other hosts now, rather than at the next heartbeat, so that they
    /// route keyed calls by the same view as soon as possible. Not waited on.
    fn announce(&self);

    /// A host event (`actor_started`, `actor_failed`, ...), as JSON. Bounded.
    fn event<'a>(&'a self, kind: &'a str, body: serde_json::Value) -> Boxed<'a, ()>;

    /// Sends what the connection holds, before the host stops. Bounded.
    fn flush(&self) -> Boxed<'_, ()>;
}
