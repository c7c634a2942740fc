//! Serving actors on NATS: one queue subscription per actor, bounded
//! concurrency, typed error replies, draining on stop, lifecycle events.

use std::sync::Arc;
use std::time::Duration;

use async_nats::{HeaderMap, Message, Subscriber};
use futures_util::StreamExt;
use lattice::{Error, ErrorKind, headers};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;

use crate::host::{Call, HostInner};

/// The host's connection to a lattice.
pub(crate) struct Connected {
    pub(crate) nats: async_nats::Client,
    pub(crate) client: lattice::Client,
    pub(crate) inflight: Arc<Semaphore>,
}

/// The subscription task of one actor.
pub(crate) struct Serving {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Serving {
    /// Unsubscribes, so that new calls go to other hosts, and waits for the
    /// loop to end; calls already taken are finished by their own tasks.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Subscribes `actor` on the lattice, queue group = the actor's name.
pub(crate) async fn serve(
    host: &Arc<HostInner>,
    connected: &Connected,
    actor: &str,
) -> Result<Serving, Error> {
    let subject = lattice::subject::rpc_filter(host.lattice(), actor)?;
    let sub = connected
        .nats
        .queue_subscribe(subject.clone(), actor.to_owned())
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Transport,
                format!("cannot subscribe to {subject}: {e}"),
            )
            .with_source(e)
        })?;
    // Make sure the server has the subscription before callers are told the
    // actor runs.
    connected.nats.flush().await.map_err(|e| {
        Error::new(
            ErrorKind::Transport,
            format!("cannot subscribe to {subject}: {e}"),
        )
        .with_source(e)
    })?;
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(serve_loop(Arc::downgrade(host), sub, stopped));
    Ok(Serving { stop, task })
}

async fn serve_loop(
    host: std::sync::Weak<HostInner>,
    mut sub: Subscriber,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stopped => {
                let _ = sub.unsubscribe().await;
                return;
            }
            message = sub.next() => {
                let (Some(message), Some(host)) = (message, host.upgrade()) else { return };
                accept(host, message).await;
            }
        }
    }
}

/// Takes one message: runs it on a task of its own if the host has room,
/// else answers `overloaded` at once.
async fn accept(host: Arc<HostInner>, message: Message) {
    let Some(connected) = host.connected() else {
        return;
    };
    match connected.inflight.clone().try_acquire_owned() {
        Ok(permit) => {
            tokio::spawn(async move {
                handle(&host, message).await;
                drop(permit);
            });
        }
        Err(_) => {
            let error = Error::new(
                ErrorKind::Overloaded,
                format!(
                    "host {} is running {} calls, its limit; try again or another host",
                    host.host_id(),
                    host.options().max_inflight
                ),
            );
            if let Some(reply) = message.reply {
                send_error(&connected.nats, reply, &error).await;
            }
        }
    }
}

/// Runs one call from NATS and replies.
async fn handle(host: &Arc<HostInner>, message: Message) {
    let Some(connected) = host.connected() else {
        return;
    };
    host.stats
        .calls_from_nats
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let result = run(host, &message).await;
    let Some(reply) = message.reply else {
        // A oneway call: nobody waits for the result.
        if let Err(e) = result {
            tracing::debug!(subject = %message.subject, error = %e, "oneway call failed");
        }
        return;
    };
    match result {
        Ok(body) => {
            if let Err(e) = connected.nats.publish(reply.clone(), body.into()).await {
                let error = match e.kind() {
                    async_nats::client::PublishErrorKind::MaxPayloadExceeded => Error::new(
                        ErrorKind::PayloadTooLarge,
                        format!("the reply does not fit the NATS server's max_payload: {e}"),
                    ),
                    _ => Error::new(ErrorKind::Transport, format!("cannot send the reply: {e}")),
                };
                send_error(&connected.nats, reply, &error).await;
            }
        }
        Err(error) => send_error(&connected.nats, reply, &error).await,
    }
}

/// Validates a call from the wire and invokes the actor.
async fn run(host: &Arc<HostInner>, message: &Message) -> Result<Vec<u8>, Error> {
    let bad = |what: String| Error::new(ErrorKind::Decode, what);
    let tokens: Vec<&str> = message.subject.split('.').collect();
    let [_, _, _, actor, contract, method] = tokens.as_slice() else {
        return Err(Error::new(
            ErrorKind::InvalidName,
            format!(
                "{:?} is not a call subject: expected lattice.{{lattice}}.rpc.{{actor}}.{{contract}}.{{method}}",
                message.subject.as_str()
            ),
        ));
    };
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().trim().to_owned())
    };
    let fingerprint = match header(headers::FINGERPRINT) {
        None => None,
        Some(text) => Some(u64::from_str_radix(&text, 16).map_err(|_| {
            bad(format!(
                "malformed {} header {text:?}: expected 16 hex digits",
                headers::FINGERPRINT
            ))
        })?),
    };
    let timeout = match header(headers::TIMEOUT_MS) {
        None => None,
        Some(text) => Some(Duration::from_millis(text.parse::<u64>().map_err(
            |_| {
                bad(format!(
                    "malformed {} header {text:?}: expected milliseconds",
                    headers::TIMEOUT_MS
                ))
            },
        )?)),
    };
    if let Some(named) = header(headers::CONTRACT)
        && named != *contract
    {
        return Err(bad(format!(
            "the {} header names contract {named:?} but the subject names {contract:?}",
            headers::CONTRACT
        )));
    }
    let traceparent = header(headers::TRACEPARENT);
    let mut call = Call::new(actor, contract, method, &message.payload);
    if let Some(fp) = fingerprint {
        call = call.fingerprint(fp);
    }
    if let Some(timeout) = timeout {
        call = call.timeout(timeout);
    }
    call.traceparent = traceparent.as_deref();
    host.invoke(call, None).await
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

/// Publishes a host event on `lattice.{lattice}.evt.{host}.{kind}` as JSON.
pub(crate) async fn emit(host: &HostInner, kind: &str, body: serde_json::Value) {
    let Some(connected) = host.connected() else {
        return;
    };
    let Ok(subject) = lattice::subject::EventSubject::new(host.lattice(), host.host_id(), kind)
    else {
        return;
    };
    let payload = serde_json::to_vec(&body).unwrap_or_default();
    if let Err(e) = connected
        .nats
        .publish(subject.to_string(), payload.into())
        .await
    {
        tracing::warn!(error = %e, kind, "cannot publish an event");
    }
}
