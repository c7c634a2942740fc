//! Serving actors on NATS: a queue subscription per core (up to
//! [`MAX_LOOPS`]) per actor, bounded concurrency, typed error replies,
//! draining on stop, lifecycle events.
//!
//! A call runs inside the task of the subscription that received it until
//! it first has to wait: most calls finish there, with no task of their own
//! (a task per message woke another worker thread per call and cost more
//! CPU than the call itself; the `decompose` section of the `lattice` bench
//! measures it). A call that waits (a busy guest yielding at an epoch tick,
//! a call to another actor over NATS) goes on on a task of its own, so that
//! it no longer holds up the loop's short calls; that task first runs when
//! the loop next waits for a message (or uses up tokio's budget), and from
//! then on on any worker.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::{HeaderMap, Message, Subject, Subscriber};
use futures_util::{FutureExt, StreamExt};
use lattice::prefix::CallPrefix;
use lattice::{Error, ErrorKind, headers};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::node::Node;
use crate::node::deploy::placement::{HostView, rank};
use crate::runtime::host::{Call, HostInner};

/// A call's place among the host's calls in progress, given back on drop.
pub(crate) struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long a stopping subscription waits for the server's last messages:
/// a round trip to the server, unless the connection is down.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// The most subscriptions (and serving loops) of one actor on one host.
pub(crate) const MAX_LOOPS: usize = 4;

/// The subscription tasks of one actor.
pub(crate) struct Serving {
    loops: Vec<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Serving {
    /// Unsubscribes, so that new calls go to other hosts, and waits for the
    /// loops to end; calls that were waiting finish on their own tasks.
    pub(crate) async fn stop(self) {
        let mut tasks = Vec::with_capacity(self.loops.len());
        for (stop, task) in self.loops {
            let _ = stop.send(());
            tasks.push(task);
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Subscribes `actor` on the lattice, queue group = the actor's name: one
/// subscription per core, up to [`MAX_LOOPS`].
pub(crate) async fn serve(
    host: &Arc<HostInner>,
    node: &Arc<Node>,
    actor: &str,
) -> Result<Serving, Error> {
    let subject = lattice::subject::rpc_filter(host.lattice(), actor)?;
    let failed = |e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::Transport,
            format!("cannot subscribe to {subject}: {e}"),
        )
    };
    let count = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_LOOPS);
    let mut subs = Vec::with_capacity(count);
    for _ in 0..count {
        let sub = node
            .nats
            .queue_subscribe(subject.clone(), actor.to_owned())
            .await
            .map_err(|e| failed(&e).with_source(e))?;
        subs.push(sub);
    }
    let names = Names::after(&subject, actor, false);
    let mut subs: Vec<(Subscriber, Names)> = subs.into_iter().map(|s| (s, names)).collect();
    // A keyed actor also takes, on a subject of this host's own, the calls
    // to its keys that other hosts forward here (see `forward`).
    if host.actor(actor).is_some_and(|a| a.keyed) {
        let direct = direct_filter(host.lattice(), host.host_id(), actor);
        let sub = node
            .nats
            .subscribe(direct.clone())
            .await
            .map_err(|e| failed(&e).with_source(e))?;
        subs.push((sub, Names::after(&direct, actor, true)));
    }
    // Make sure the server has the subscriptions before callers are told
    // the actor runs.
    barrier(node, &node.nats).await?;
    let loops = subs
        .into_iter()
        .map(|(sub, names)| {
            let (stop, stopped) = oneshot::channel();
            let task = tokio::spawn(serve_loop(
                Arc::downgrade(host),
                Arc::downgrade(node),
                sub,
                names,
                stopped,
            ));
            (stop, task)
        })
        .collect();
    Ok(Serving { loops })
}

/// Where the names are in the subjects a subscription delivers: nats-server
/// delivers only subjects that match its filter,
/// `lattice.{lattice}.rpc.{actor}.>`, so the actor's name is at the same
/// place in each, and the contract and method follow it. The call reads
/// them there instead of scanning the fixed part again (about 100
/// instructions a call).
#[derive(Debug, Clone, Copy)]
struct Names {
    /// Where the actor's name starts; it ends at the `.` at `after`.
    actor: usize,
    after: usize,
    /// The subscription is this host's own subject of a keyed actor: its
    /// calls were routed here, and run here.
    direct: bool,
}

impl Names {
    /// The places in subjects that match `filter`, which ends `.{actor}.>`.
    fn after(filter: &str, actor: &str, direct: bool) -> Names {
        let after = filter.len().saturating_sub(2);
        Names {
            actor: after.saturating_sub(actor.len()),
            after,
            direct,
        }
    }

    /// The actor, contract and method named by `subject`, if it has the
    /// filter's shape and exactly two names after the actor's.
    fn of<'s>(&self, subject: &'s str) -> Option<(&'s str, &'s str, &'s str)> {
        let actor = subject.get(self.actor..self.after)?;
        let rest = subject.get(self.after..)?.strip_prefix('.')?;
        let mut tokens = split_dots(rest);
        match (tokens.next(), tokens.next(), tokens.next()) {
            (Some(contract), Some(method), None) => Some((actor, contract, method)),
            _ => None,
        }
    }
}

async fn serve_loop(
    host: std::sync::Weak<HostInner>,
    node: std::sync::Weak<Node>,
    mut sub: Subscriber,
    names: Names,
    mut stopped: oneshot::Receiver<()>,
) {
    // The future of the call being polled for the first time lives in this
    // slot. A call that finishes on that poll (most do) leaves the slot to
    // the next one, so the common path allocates nothing per call (a call's
    // future is about 2 KiB: boxing each one cost more than the rest of
    // the loop's work). A call that has to wait takes the slot with it to a
    // task of its own, and the loop makes a new slot.
    let mut slot = Box::pin(None);
    // Once stopping: the latest the subscription's last messages arrive.
    let mut drained_by: Option<tokio::time::Instant> = None;
    loop {
        // Polled only once draining (the branch's condition below).
        let drain_deadline = async {
            if let Some(deadline) = drained_by {
                tokio::time::sleep_until(deadline).await;
            }
        };
        tokio::select! {
            biased;
            _ = &mut stopped, if drained_by.is_none() => {
                // Drain: the server stops sending, and the calls it sent
                // before it read the UNSUB (some still on their way) are
                // answered here; the subscription ends at the server's
                // PONG to the PING sent after the UNSUB (see
                // lattice-host/vendor/async-nats/LATTICE.md).
                if !matches!(tokio::time::timeout(DRAIN_DEADLINE, sub.drain()).await, Ok(Ok(()))) {
                    break;
                }
                drained_by = Some(tokio::time::Instant::now() + DRAIN_DEADLINE);
            }
            () = drain_deadline, if drained_by.is_some() => {
                tracing::warn!("an actor's subscription did not drain within {DRAIN_DEADLINE:?}; stopping it");
                break;
            }
            message = sub.next() => {
                let (Some(message), Some(host), Some(node)) = (message, host.upgrade(), node.upgrade()) else { break };
                let Some((message, permit)) = admit(&host, &node, message).await else { continue };
                slot.set(Some(call_caught(host, node, message, names, permit)));
                // First poll here (see the module docs). The actor's drain
                // waits for the calls that go on on their own tasks: those
                // running hold its permits, and those queued for a busy
                // instance are served before the drain's own acquire.
                let first = std::future::poll_fn(|cx| {
                    std::task::Poll::Ready(slot.as_mut().as_pin_mut().map(|call| call.poll(cx)))
                })
                .await;
                if let Some(std::task::Poll::Pending) = first {
                    let mut waiting = std::mem::replace(&mut slot, Box::pin(None));
                    tokio::spawn(async move {
                        if let Some(call) = waiting.as_mut().as_pin_mut() {
                            call.await;
                        }
                    });
                } else {
                    // Finished (the slot is never empty here): clear it for
                    // the next call.
                    slot.set(None);
                }
            }
        }
    }
}

/// Takes one message if the host has room for another call, else answers
/// `overloaded` at once.
async fn admit(
    host: &Arc<HostInner>,
    node: &Node,
    message: Message,
) -> Option<(Message, Admitted)> {
    // Taken first, then given back if over: two calls racing for the last
    // place may both be refused, never both admitted.
    let before = node.inflight.fetch_add(1, Ordering::Relaxed);
    let admitted = Admitted(node.inflight.clone());
    if before < host.options().max_inflight {
        return Some((message, admitted));
    }
    drop(admitted);
    let error = Error::new(
        ErrorKind::Overloaded,
        format!(
            "host {} is running {} calls, its limit; try again or another host",
            host.host_id(),
            host.options().max_inflight
        ),
    );
    if let Some(reply) = message.reply {
        send_error(&node.nats, reply, &error).await;
    }
    None
}

/// One admitted call, to its end: a bug of ours that panics fails this
/// call, not the loop that serves the actor.
async fn call_caught(
    host: Arc<HostInner>,
    node: Arc<Node>,
    mut message: Message,
    names: Names,
    permit: Admitted,
) {
    // The message stays here, borrowed by the call, so that a panic can name
    // its subject (a clone of a subject read off the wire is an allocation).
    let reply = message.reply.take();
    if std::panic::AssertUnwindSafe(handle(&host, &node, &message, names, reply))
        .catch_unwind()
        .await
        .is_err()
    {
        let subject = &message.subject;
        tracing::error!(%subject, "a call panicked in the host; the caller times out");
    }
    drop(permit);
}

/// Runs one call from NATS and replies to `reply`, the message's own.
async fn handle(
    host: &Arc<HostInner>,
    node: &Node,
    message: &Message,
    names: Names,
    reply: Option<Subject>,
) {
    host.stats
        .calls_from_nats
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // A call to a key another host owns goes there, answered from there.
    if !names.direct
        && message.headers.is_some()
        && let Some(owner) = owner_elsewhere(host, node, message, names)
    {
        forward(host, node, message, names, reply, &owner).await;
        return;
    }
    let result = run(host, message, names).await;
    let Some(reply) = reply else {
        // A oneway call: nobody waits for the result.
        if let Err(e) = result {
            tracing::debug!(subject = %message.subject, error = %e, "oneway call failed");
        }
        return;
    };
    let max_payload = node.nats.max_payload();
    match result {
        // Checked here, as async-nats checks it, so that a reply too large
        // for the server still has its subject for the error reply, and
        // one that fits is sent without a copy of it.
        Ok(body) if body.len() > max_payload => {
            let error = Error::new(
                ErrorKind::PayloadTooLarge,
                format!(
                    "the reply is {} bytes, more than the NATS server's max_payload of \
                     {max_payload}; return less per call, or raise max_payload",
                    body.len()
                ),
            );
            send_error(&node.nats, reply, &error).await;
        }
        Ok(body) => {
            if let Err(e) = node.nats.publish(reply, body).await {
                // The connection closed, or the server's limit fell since
                // the check: the caller times out.
                tracing::warn!(subject = %message.subject, error = %e, "cannot send a reply");
            }
        }
        Err(error) => send_error(&node.nats, reply, &error).await,
    }
}

/// The filter of a host's own subject for a keyed actor:
/// `lattice.{lattice}.key.{host}.{actor}.>`.
fn direct_filter(lattice: &str, host: &str, actor: &str) -> String {
    format!("{}.{lattice}.key.{host}.{actor}.>", lattice::subject::ROOT)
}

/// The host that owns the key of a call to a keyed actor, when it is not
/// this one: the first of the live hosts running the actor (this one and
/// those whose heartbeats list it) ranked by rendezvous hashing of
/// `actor/key`, the same function every host computes.
fn owner_elsewhere(
    host: &Arc<HostInner>,
    node: &Node,
    message: &Message,
    names: Names,
) -> Option<String> {
    let key = message.headers.as_ref()?.get(headers::KEY)?.as_str();
    let (actor, _, _) = names.of(&message.subject)?;
    if !host.actor(actor)?.keyed {
        return None;
    }
    let members = node.members.read().unwrap_or_else(|e| e.into_inner());
    let empty = std::collections::BTreeMap::new();
    let mut views: Vec<HostView<'_>> = members
        .iter()
        .filter(|(_, actors)| actors.contains(actor))
        .map(|(id, _)| HostView { id, labels: &empty })
        .collect();
    let me = host.host_id();
    views.push(HostView {
        id: me,
        labels: &empty,
    });
    let owner = *rank(&format!("{actor}/{key}"), &views).first()?;
    (owner != me).then(|| owner.to_owned())
}

/// Sends a call on to the host that owns its key, on that host's own
/// subject, with the caller's reply subject: the owner answers the caller.
async fn forward(
    host: &Arc<HostInner>,
    node: &Node,
    message: &Message,
    names: Names,
    reply: Option<Subject>,
    owner: &str,
) {
    let Some((actor, contract, method)) = names.of(&message.subject) else {
        return;
    };
    let subject = format!(
        "{}.{}.key.{owner}.{actor}.{contract}.{method}",
        lattice::subject::ROOT,
        host.lattice()
    );
    let headers = message.headers.clone().unwrap_or_default();
    let payload = message.payload.clone();
    let sent = match reply {
        Some(reply) => {
            node.nats
                .publish_with_reply_and_headers(subject, reply, headers, payload)
                .await
        }
        None => {
            node.nats
                .publish_with_headers(subject, headers, payload)
                .await
        }
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, owner, "cannot forward a keyed call to its owner");
    }
}

/// The tokens of a subject: a byte loop. `str::split('.')` set up a
/// `memchr` per token, about 130 instructions each (callgrind), for each
/// of the two or three a call reads.
fn split_dots(subject: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(subject);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.bytes().position(|b| b == b'.') {
            Some(dot) => {
                rest = Some(&current[dot + 1..]);
                Some(&current[..dot])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Validates a call from the wire and invokes the actor.
async fn run(
    host: &Arc<HostInner>,
    message: &Message,
    names: Names,
) -> Result<bytes::Bytes, Error> {
    let bad = |what: String| Error::new(ErrorKind::Decode, what);
    header_block(message)?;
    let Some((actor, contract, method)) = names.of(&message.subject) else {
        return Err(Error::new(
            ErrorKind::InvalidName,
            format!(
                "{:?} is not a call subject: expected lattice.{{lattice}}.rpc.{{actor}}.{{contract}}.{{method}}",
                message.subject.as_str()
            ),
        ));
    };
    // The call prefix (what the generated clients send) or, from clients
    // that send none, the headers carry the fingerprint and the budget.
    let (prefix, args) = CallPrefix::split(&message.payload)?;
    // One pass over the headers: looking each name up would parse it into
    // a `HeaderName` and hash it, per header, per call.
    let (mut fingerprint, mut timeout, mut named, mut traceparent, mut key) =
        (None, None, None, None, None);
    for (name, values) in message.headers.iter().flat_map(|h| h.iter()) {
        let Some(value) = values.first().map(|v| v.as_str().trim()) else {
            continue;
        };
        match AsRef::<str>::as_ref(name) {
            headers::FINGERPRINT => fingerprint = Some(value),
            headers::TIMEOUT_MS => timeout = Some(value),
            headers::CONTRACT => named = Some(value),
            headers::TRACEPARENT => traceparent = Some(value),
            headers::KEY => key = Some(value),
            _ => {}
        }
    }
    if let Some(named) = named
        && named != contract
    {
        return Err(bad(format!(
            "the {} header names contract {named:?} but the subject names {contract:?}",
            headers::CONTRACT
        )));
    }
    let (fingerprint, timeout) = match prefix {
        Some(prefix) => (
            prefix.fingerprint,
            prefix.budget_ms.map(|ms| Duration::from_millis(ms.into())),
        ),
        None => (
            fingerprint
                .map(|text| {
                    u64::from_str_radix(text, 16).map_err(|_| {
                        bad(format!(
                            "malformed {} header {text:?}: expected 16 hex digits",
                            headers::FINGERPRINT
                        ))
                    })
                })
                .transpose()?,
            timeout
                .map(|text| {
                    text.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                        bad(format!(
                            "malformed {} header {text:?}: expected milliseconds",
                            headers::TIMEOUT_MS
                        ))
                    })
                })
                .transpose()?,
        ),
    };
    let mut call = Call::new(actor, contract, method, args);
    if let Some(fp) = fingerprint {
        call = call.fingerprint(fp);
    }
    if let Some(timeout) = timeout {
        call = call.timeout(timeout);
    }
    call.traceparent = traceparent;
    call.key = key;
    host.invoke(call, None).await
}

/// Refuses a message whose NATS header block was not well formed: the NATS
/// client (patched, see `lattice-host/vendor/async-nats/LATTICE.md`)
/// delivers it without headers, saying what was wrong in its description.
pub(crate) fn header_block(message: &Message) -> Result<(), Error> {
    match (&message.headers, &message.description) {
        (None, Some(why)) => Err(Error::new(
            ErrorKind::Decode,
            format!(
                "the message's NATS header block is not well formed ({why}); it must start \
                 with the line `NATS/1.0` and hold `Name: value` lines of UTF-8"
            ),
        )),
        _ => Ok(()),
    }
}

/// Replies with an error: the status header and the `{kind, message}` body.
pub(crate) async fn send_error(
    nats: &async_nats::Client,
    reply: async_nats::Subject,
    error: &Error,
) {
    let mut headers = HeaderMap::new();
    headers.insert(headers::STATUS, error.status().to_string());
    if let Err(e) = nats
        .publish_with_headers(reply, headers, error.to_wire().into())
        .await
    {
        tracing::warn!(error = %e, "cannot send an error reply");
    }
}

/// Returns once the server has read everything this connection sent
/// before (its SUBs above all): a request on the same connection, which the
/// server answers (or, with nobody subscribed, says so) only after it.
/// async-nats's `flush` only writes the socket: a client on another
/// connection could still find no subscriber.
pub(crate) async fn barrier(node: &Node, nats: &async_nats::Client) -> Result<(), Error> {
    let subject = format!(
        "{}.{}.ctl.host.{}.ping",
        lattice::subject::ROOT,
        node.lattice(),
        node.host_id()
    );
    let request = async_nats::Request::new().timeout(Some(Duration::from_secs(5)));
    match nats.send_request(subject, request).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
        Err(e) => Err(Error::new(
            ErrorKind::Transport,
            format!("the NATS server did not confirm the host's subscriptions: {e}"),
        )
        .with_source(e)),
    }
}

/// How long a host waits to hand an event to its NATS connection.
const EVENT_DEADLINE: Duration = Duration::from_secs(1);

/// Publishes a host event on `lattice.{lattice}.evt.{host}.{kind}` as JSON.
pub(crate) async fn emit(node: &Node, kind: &str, body: serde_json::Value) {
    let Ok(subject) = lattice::subject::EventSubject::new(node.lattice(), node.host_id(), kind)
    else {
        return;
    };
    let payload = serde_json::to_vec(&body).unwrap_or_default();
    // With the server away the client's queue fills, and a publish waits
    // for room: an event is not worth holding up a stop for.
    let publish = node.nats.publish(subject.to_string(), payload.into());
    match tokio::time::timeout(EVENT_DEADLINE, publish).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, kind, "cannot publish an event"),
        Err(_) => tracing::warn!(
            kind,
            "an event was not sent: the NATS connection is not taking messages"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{Names, split_dots};

    #[test]
    fn names_are_read_where_the_filter_puts_them() {
        let filter = lattice::subject::rpc_filter("default", "echo").unwrap();
        let names = Names::after(&filter, "echo", false);
        let of = |subject: &'static str| names.of(subject);
        assert_eq!(
            of("lattice.default.rpc.echo.echo.echo_bytes"),
            Some(("echo", "echo", "echo_bytes"))
        );
        assert_eq!(
            of("lattice.default.rpc.echo.cödé.ö"),
            Some(("echo", "cödé", "ö"))
        );
        // The filter lets through any number of tokens after the actor's
        // name; a call has exactly two.
        assert_eq!(of("lattice.default.rpc.echo.echo"), None);
        assert_eq!(of("lattice.default.rpc.echo.echo.m.extra"), None);
        assert_eq!(of("lattice.default.rpc.echo"), None);
        assert_eq!(of(""), None);
    }

    #[test]
    fn split_dots_splits_as_str_split_does() {
        for subject in [
            "lattice.default.rpc.echo.echo.echo_bytes",
            "",
            ".",
            "..a..",
            "no-dots",
            "trailing.",
            ".leading",
            "ünï.cödé.ö",
        ] {
            let ours: Vec<&str> = split_dots(subject).collect();
            let std: Vec<&str> = subject.split('.').collect();
            assert_eq!(ours, std, "{subject:?}");
        }
    }
}
