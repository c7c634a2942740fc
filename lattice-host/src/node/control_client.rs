//! A typed client of the control interface: what the `lattice` CLI uses, and
//! what a Rust program operating a lattice uses.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use lattice::{Error, ErrorKind, headers};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::node::control::{
    ActorEntry, DescribeRequest, HostSummary, Inventory, LabelsRequest, ScaleRequest, StartRequest,
    StopRequest, UpdateRequest,
};

/// Drives the hosts of one lattice over NATS.
///
/// ```no_run
/// # async fn run(nats: async_nats::Client) -> Result<(), lattice::Error> {
/// use lattice_host::control::ControlClient;
/// let control = ControlClient::new(nats, "default")?;
/// for host in control.ping().await? {
///     println!("{} runs {} actors", host.host, host.actors);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ControlClient {
    nats: async_nats::Client,
    lattice: String,
    timeout: Duration,
    wait: Duration,
}

impl ControlClient {
    /// A client of the lattice `lattice` over `nats`.
    pub fn new(nats: async_nats::Client, lattice: &str) -> Result<Self, Error> {
        lattice::names::validate(lattice::names::NameKind::Lattice, lattice)?;
        Ok(ControlClient {
            nats,
            lattice: lattice.to_owned(),
            timeout: Duration::from_secs(10),
            wait: Duration::from_millis(1000),
        })
    }

    /// How long a request to one host may take. Default: 10 s (starting an
    /// actor compiles its module).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a lattice-wide request gathers replies. It ends earlier once
    /// replies stop coming (200 ms after the last one). Default: 1 s.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// What every host deploys (its follower's report), sorted by host id.
    /// A host that answers with an error (one older than deployments) is
    /// left out: it follows none.
    pub async fn deployments(&self) -> Result<Vec<crate::node::deploy::HostDeployments>, Error> {
        let mut all: Vec<crate::node::deploy::HostDeployments> =
            self.gather_with("deployments", true).await?;
        all.sort_by(|a, b| a.host.cmp(&b.host));
        Ok(all)
    }

    /// Every host's summary, sorted by host id.
    pub async fn ping(&self) -> Result<Vec<HostSummary>, Error> {
        let mut hosts: Vec<HostSummary> = self.gather("ping").await?;
        hosts.sort_by(|a, b| a.host.cmp(&b.host));
        Ok(hosts)
    }

    /// Every host's inventory, sorted by host id.
    pub async fn inventory(&self) -> Result<Vec<Inventory>, Error> {
        let mut all: Vec<Inventory> = self.gather("inventory").await?;
        all.sort_by(|a, b| a.host.cmp(&b.host));
        Ok(all)
    }

    /// The actor `name` as the first host running it describes it: its
    /// contracts, read from the running module. `NoResponders` if no host
    /// answers within the wait (hosts not running it stay silent).
    pub async fn describe(&self, name: &str) -> Result<ActorEntry, Error> {
        lattice::names::validate(lattice::names::NameKind::Actor, name)?;
        let body = serde_json::to_vec(&DescribeRequest {
            name: name.to_owned(),
        })
        .map_err(|e| Error::new(ErrorKind::Encode, e.to_string()))?;
        let mut first = self.scatter("describe", body).await?;
        match tokio::time::timeout(self.wait, first.next()).await {
            Ok(Some(message)) if !no_responders(&message) => decode(&message),
            _ => Err(Error::new(
                ErrorKind::NoResponders,
                format!(
                    "no host in lattice `{}` runs an actor named `{name}`",
                    self.lattice
                ),
            )),
        }
    }

    /// Starts an actor on `host`.
    pub async fn start(&self, host: &str, request: &StartRequest) -> Result<ActorEntry, Error> {
        self.request(self.host_subject(host, "start")?, request)
            .await
    }

    /// Stops the actor `name` on `host`.
    pub async fn stop(&self, host: &str, name: &str) -> Result<(), Error> {
        let _: serde_json::Value = self
            .request(
                self.host_subject(host, "stop")?,
                &StopRequest {
                    name: name.to_owned(),
                },
            )
            .await?;
        Ok(())
    }

    /// Sets the instance limit of `name` on `host`.
    pub async fn scale(
        &self,
        host: &str,
        name: &str,
        max_instances: u32,
    ) -> Result<ActorEntry, Error> {
        self.request(
            self.host_subject(host, "scale")?,
            &ScaleRequest {
                name: name.to_owned(),
                max_instances,
            },
        )
        .await
    }

    /// Swaps the module of an actor on `host`, dropping no call.
    pub async fn update(&self, host: &str, request: &UpdateRequest) -> Result<ActorEntry, Error> {
        self.request(self.host_subject(host, "update")?, request)
            .await
    }

    /// Changes the labels of `host`; returns them after the change.
    pub async fn labels(
        &self,
        host: &str,
        change: &LabelsRequest,
    ) -> Result<BTreeMap<String, String>, Error> {
        self.request(self.host_subject(host, "labels")?, change)
            .await
    }

    /// Stops `host`: it drains its actors' calls and leaves the lattice.
    pub async fn stop_host(&self, host: &str) -> Result<(), Error> {
        let _: serde_json::Value = self
            .request(
                self.host_subject(host, "stop_host")?,
                &serde_json::json!({}),
            )
            .await?;
        Ok(())
    }

    /// The largest message the server takes, for sending modules inline.
    pub fn max_payload(&self) -> usize {
        self.nats.server_info().max_payload
    }

    fn host_subject(&self, host: &str, op: &str) -> Result<String, Error> {
        lattice::names::validate(lattice::names::NameKind::Host, host)?;
        Ok(format!(
            "{}.{}.ctl.host.{host}.{op}",
            lattice::subject::ROOT,
            self.lattice
        ))
    }

    async fn request<T: DeserializeOwned>(
        &self,
        subject: String,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        let payload = serde_json::to_vec(body).map_err(|e| {
            Error::new(ErrorKind::Encode, format!("cannot encode the request: {e}"))
        })?;
        let request = async_nats::Request::new()
            .payload(payload.into())
            .timeout(Some(self.timeout));
        let reply = self
            .nats
            .send_request(subject.clone(), request)
            .await
            .map_err(|e| {
                if e.kind() == async_nats::RequestErrorKind::NoResponders {
                    return Error::new(
                        ErrorKind::NoResponders,
                        format!(
                            "no host answers on {subject}: is the host id right, and is it \
                             up in lattice `{}`? (`lattice get hosts` lists them)",
                            self.lattice
                        ),
                    )
                    .with_source(e);
                }
                let kind = match e.kind() {
                    async_nats::RequestErrorKind::TimedOut => ErrorKind::TimedOut,
                    async_nats::RequestErrorKind::MaxPayloadExceeded => ErrorKind::PayloadTooLarge,
                    _ => ErrorKind::Transport,
                };
                Error::new(kind, format!("{subject}: {e}")).with_source(e)
            })?;
        decode(&reply)
    }

    /// Sends a lattice-wide request; the replies come on the subscription.
    async fn scatter(&self, op: &str, body: Vec<u8>) -> Result<async_nats::Subscriber, Error> {
        let transport = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Transport,
                format!("cannot send a control request: {e}"),
            )
        };
        let subject = format!("{}.{}.ctl.{op}", lattice::subject::ROOT, self.lattice);
        let inbox = self.nats.new_inbox();
        let replies = self
            .nats
            .subscribe(inbox.clone())
            .await
            .map_err(|e| transport(&e))?;
        self.nats
            .publish_with_reply(subject, inbox, body.into())
            .await
            .map_err(|e| transport(&e))?;
        self.nats.flush().await.map_err(|e| transport(&e))?;
        Ok(replies)
    }

    async fn gather<T: DeserializeOwned>(&self, op: &str) -> Result<Vec<T>, Error> {
        self.gather_with(op, false).await
    }

    /// Gathers every host's reply to `op`; with `skip_errors`, a host's
    /// error reply is left out rather than failing the whole.
    async fn gather_with<T: DeserializeOwned>(
        &self,
        op: &str,
        skip_errors: bool,
    ) -> Result<Vec<T>, Error> {
        let mut replies = self.scatter(op, Vec::new()).await?;
        let deadline = tokio::time::Instant::now() + self.wait;
        let quiet = Duration::from_millis(200);
        let mut all = Vec::new();
        loop {
            let until = if all.is_empty() {
                deadline
            } else {
                deadline.min(tokio::time::Instant::now() + quiet)
            };
            match tokio::time::timeout_at(until, replies.next()).await {
                // The server's own answer when no host listens: a lattice
                // with no hosts has none to list.
                Ok(Some(message)) if no_responders(&message) => break,
                Ok(Some(message)) => match decode(&message) {
                    Ok(reply) => all.push(reply),
                    Err(_) if skip_errors => {}
                    Err(e) => return Err(e),
                },
                Ok(None) | Err(_) => break,
            }
        }
        Ok(all)
    }
}

/// Whether `message` is NATS's own status reply saying that nobody was
/// subscribed to the request's subject.
fn no_responders(message: &async_nats::Message) -> bool {
    message.status == Some(async_nats::StatusCode::NO_RESPONDERS)
}

/// A control reply: its JSON body, or the typed error it carries.
fn decode<T: DeserializeOwned>(message: &async_nats::Message) -> Result<T, Error> {
    if let Some(status) = message.status {
        // A status from the server itself (no responders, a timeout), not
        // from a host: it has no body to read.
        let kind = if no_responders(message) {
            ErrorKind::NoResponders
        } else {
            ErrorKind::from_status(status.as_u16())
        };
        let what = message.description.as_deref().unwrap_or("no description");
        return Err(Error::new(
            kind,
            format!("the NATS server answered with status {status} ({what})"),
        ));
    }
    let status = message
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::STATUS))
        .and_then(|v| v.as_str().trim().parse::<u16>().ok());
    if let Some(status) = status {
        #[derive(serde::Deserialize)]
        struct Body {
            kind: String,
            message: String,
        }
        let body: Option<Body> = serde_json::from_slice(&message.payload).ok();
        let kind = body
            .as_ref()
            .and_then(|b| ErrorKind::from_name(&b.kind))
            .unwrap_or_else(|| ErrorKind::from_status(status));
        let text = body.map_or_else(
            || String::from_utf8_lossy(&message.payload).into_owned(),
            |b| b.message,
        );
        return Err(Error::new(kind, text));
    }
    serde_json::from_slice(&message.payload).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            format!("a control reply is not what this client expects: {e}"),
        )
    })
}
