//! The commands that operate a running lattice: start, stop, scale, update,
//! get, describe, call, watch.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use lattice_host::control::{
    ActorEntry, ControlClient, Inventory, LimitsRequest, StartRequest, UpdateRequest,
};
use serde::Serialize;

use crate::connect::NatsArgs;
use crate::output::{self, Output};

/// What every command knows.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) nats: NatsArgs,
    pub(crate) lattice: String,
    pub(crate) output: Output,
}

impl Context {
    pub(crate) async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        self.nats.connect(&self.nats.url(), "lattice cli").await
    }

    pub(crate) async fn control(&self, wait: Duration) -> anyhow::Result<ControlClient> {
        Ok(ControlClient::new(self.connect().await?, &self.lattice)?.wait(wait))
    }
}

/// How long lattice-wide requests gather replies.
#[derive(Debug, Clone, Args)]
pub(crate) struct Wait {
    /// How long to wait for hosts to answer.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    wait: Duration,
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The name to run the actor under.
    name: String,
    /// The module: a .wasm file here, sent to the host (or, with --on-host, a path on the host).
    module: PathBuf,
    /// The host to start it on. Default: the host running the fewest actors
    /// (every host with --all-hosts).
    #[arg(long, conflicts_with = "all_hosts")]
    host: Option<String>,
    /// Start it on every host.
    #[arg(long)]
    all_hosts: bool,
    /// MODULE is a path on the host's disk: the host reads it.
    #[arg(long)]
    on_host: bool,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    wait: Wait,
}

#[derive(Debug, Args)]
pub(crate) struct LimitArgs {
    /// Instances that may run at once on each host.
    #[arg(long)]
    max_instances: Option<u32>,
    /// The longest a call may run.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// Bytes of linear memory per instance.
    #[arg(long)]
    max_memory: Option<u64>,
    /// The largest request or reply, in bytes.
    #[arg(long)]
    max_payload: Option<usize>,
    /// Fuel per call (hosts must run with fuel metering).
    #[arg(long)]
    fuel: Option<u64>,
    /// Run the actor's calls on fibers, never inline (for actors that
    /// compute for long stretches).
    #[arg(long)]
    no_inline: bool,
}

impl LimitArgs {
    pub(crate) fn request(&self) -> LimitsRequest {
        LimitsRequest {
            max_memory: self.max_memory,
            timeout_ms: self
                .timeout
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            fuel: self.fuel,
            max_payload: self.max_payload,
            max_instances: self.max_instances,
            inline: self.no_inline.then_some(false),
        }
    }

    fn given(&self) -> bool {
        self.request() != LimitsRequest::default()
    }
}

#[derive(Debug, Args)]
pub(crate) struct DownArgs {
    /// The hosts to stop; default: every host of the lattice.
    hosts: Vec<String>,
    #[command(flatten)]
    wait: Wait,
}

#[derive(Debug, Args)]
pub(crate) struct StopArgs {
    /// The actor.
    name: String,
    /// Stop it on this host only.
    #[arg(long)]
    host: Option<String>,
    #[command(flatten)]
    wait: Wait,
}

#[derive(Debug, Args)]
pub(crate) struct ScaleArgs {
    /// The actor.
    name: String,
    /// Instances that may run at once on each host.
    max_instances: u32,
    /// Scale it on this host only.
    #[arg(long)]
    host: Option<String>,
    #[command(flatten)]
    wait: Wait,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    /// The actor.
    name: String,
    /// The new module (see `start`).
    module: PathBuf,
    /// Update it on this host only; default: every host running it, one after another.
    #[arg(long)]
    host: Option<String>,
    /// MODULE is a path on the host's disk.
    #[arg(long)]
    on_host: bool,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    wait: Wait,
}

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    #[command(subcommand)]
    what: Get,
    #[command(flatten)]
    wait: Wait,
}

#[derive(Debug, Subcommand)]
enum Get {
    /// The hosts of the lattice.
    Hosts,
    /// Every actor on every host.
    #[command(alias = "actors")]
    Inventory,
    /// Each deployment: desired against running replicas, and its status.
    Deployments,
}

#[derive(Debug, Args)]
pub(crate) struct DescribeArgs {
    /// The actor.
    name: String,
}

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The actor, or ACTOR/KEY for one key of a keyed actor.
    actor: String,
    /// CONTRACT.METHOD, or just METHOD when only one of the actor's contracts has it.
    method: String,
    /// The arguments: a JSON object by name, an array in order, or `-` to read them from stdin.
    #[arg(default_value = "{}")]
    args: String,
    /// The call's deadline; default: the method's, else 10 s.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Also print heartbeats.
    #[arg(long)]
    heartbeats: bool,
    /// Stop after this many events.
    #[arg(long)]
    count: Option<usize>,
    /// Stop after this long.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
}

/// One actor on one host, as commands print it.
#[derive(Debug, Serialize)]
struct Placed {
    host: String,
    #[serde(flatten)]
    actor: ActorEntry,
}

fn print_placed(ctx: &Context, placed: &[Placed]) {
    match ctx.output {
        Output::Json => output::json(&placed),
        Output::Table => output::table(
            &[
                "host",
                "actor",
                "contracts",
                "instances",
                "idle",
                "calls",
                "digest",
            ],
            placed
                .iter()
                .map(|p| {
                    vec![
                        p.host.clone(),
                        if p.actor.keyed {
                            format!("{} (keyed: {} active)", p.actor.name, p.actor.activations)
                        } else {
                            p.actor.name.clone()
                        },
                        p.actor
                            .contracts
                            .iter()
                            .map(|c| format!("{} v{}", c.name, c.version))
                            .collect::<Vec<_>>()
                            .join(", "),
                        p.actor.max_instances.to_string(),
                        match p.actor.hibernating_instances {
                            0 => p.actor.idle_instances.to_string(),
                            asleep => format!("{} ({asleep} asleep)", p.actor.idle_instances),
                        },
                        if p.actor.inline { "inline" } else { "fibers" }.to_owned(),
                        output::short(&p.actor.digest),
                    ]
                })
                .collect(),
        ),
    }
}

/// Runs `op` on each host in turn; stops at the first error.
async fn on_each<F, Fut>(hosts: Vec<String>, op: F) -> anyhow::Result<Vec<Placed>>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<ActorEntry, lattice::Error>>,
{
    let mut placed = Vec::with_capacity(hosts.len());
    for host in hosts {
        let actor = op(host.clone()).await?;
        placed.push(Placed { host, actor });
    }
    Ok(placed)
}

/// The hosts running `name`, or `host` alone if given.
async fn hosts_running(
    control: &ControlClient,
    name: &str,
    host: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    if let Some(host) = host {
        return Ok(vec![host.to_owned()]);
    }
    let hosts: Vec<String> = control
        .inventory()
        .await?
        .into_iter()
        .filter(|i| i.actors.iter().any(|a| a.name == name))
        .map(|i| i.host)
        .collect();
    if hosts.is_empty() {
        return Err(lattice::Error::new(
            lattice::ErrorKind::NotFound,
            format!(
                "no host runs an actor named `{name}`; `lattice get inventory` lists what runs"
            ),
        )
        .into());
    }
    Ok(hosts)
}

/// The module for a start or update request: read here and sent inline, or
/// a path the host reads.
fn module_source(
    control: &ControlClient,
    path: &std::path::Path,
    on_host: bool,
) -> anyhow::Result<(Option<String>, Option<String>)> {
    if on_host {
        return Ok((Some(path.display().to_string()), None));
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the module {}", path.display()))?;
    let inline = lattice_host::control::encode_module(&bytes);
    // Room for the rest of the request.
    if inline.len() + 4096 > control.max_payload() {
        bail!(
            "{} is {} bytes, too large to send in a request (the server's max_payload is {} bytes); \
             copy it to the host and pass --on-host, or raise max_payload in the server's configuration",
            path.display(),
            bytes.len(),
            control.max_payload()
        );
    }
    Ok((None, Some(inline)))
}

pub(crate) async fn start(ctx: &Context, args: StartArgs) -> anyhow::Result<()> {
    let control = ctx.control(args.wait.wait).await?;
    let hosts = match (&args.host, args.all_hosts) {
        (Some(host), _) => vec![host.clone()],
        (None, all) => {
            let mut inventories = control.inventory().await?;
            inventories.retain(|i| !i.actors.iter().any(|a| a.name == args.name));
            if inventories.is_empty() {
                bail!(
                    "no host in lattice `{}` can take `{}`: none is up, or all run it already\n\
                     hint: `lattice up` runs a host; `lattice get hosts` lists them",
                    ctx.lattice,
                    args.name
                );
            }
            if all {
                inventories.into_iter().map(|i| i.host).collect()
            } else {
                inventories.sort_by_key(|i| (i.actors.len(), i.host.clone()));
                vec![inventories.swap_remove(0).host]
            }
        }
    };
    let (path, module) = module_source(&control, &args.module, args.on_host)?;
    let request = StartRequest {
        name: args.name.clone(),
        path,
        module,
        limits: args.limits.request(),
    };
    let (control, request) = (&control, &request);
    let placed = on_each(hosts, move |host| async move {
        control.start(&host, request).await
    })
    .await?;
    print_placed(ctx, &placed);
    Ok(())
}

pub(crate) async fn down(ctx: &Context, args: DownArgs) -> anyhow::Result<()> {
    let control = ctx.control(args.wait.wait).await?;
    let mut summaries = control.ping().await?;
    if !args.hosts.is_empty() {
        summaries.retain(|h| args.hosts.contains(&h.host));
        if let Some(missing) = args
            .hosts
            .iter()
            .find(|h| !summaries.iter().any(|s| s.host == **h))
        {
            bail!(
                "no host `{missing}` answered in lattice `{}`; `lattice get hosts` lists them",
                ctx.lattice
            );
        }
    }
    // A host that started its own nats-server stops it on its way out, so
    // such hosts go last.
    summaries.sort_by_key(|h| h.labels.contains_key(crate::up::NATS_LABEL));
    let hosts: Vec<String> = summaries.into_iter().map(|h| h.host).collect();
    for host in &hosts {
        control.stop_host(host).await?;
    }
    match ctx.output {
        Output::Json => output::json(&serde_json::json!({ "stopped": hosts })),
        Output::Table if hosts.is_empty() => println!("no host is up in lattice `{}`", ctx.lattice),
        Output::Table => println!("stopped {}", hosts.join(", ")),
    }
    Ok(())
}

pub(crate) async fn stop(ctx: &Context, args: StopArgs) -> anyhow::Result<()> {
    let control = ctx.control(args.wait.wait).await?;
    let hosts = hosts_running(&control, &args.name, args.host.as_deref()).await?;
    for host in &hosts {
        control.stop(host, &args.name).await?;
    }
    match ctx.output {
        Output::Json => output::json(&serde_json::json!({ "stopped": args.name, "hosts": hosts })),
        Output::Table => println!("stopped `{}` on {}", args.name, hosts.join(", ")),
    }
    Ok(())
}

pub(crate) async fn scale(ctx: &Context, args: ScaleArgs) -> anyhow::Result<()> {
    let control = ctx.control(args.wait.wait).await?;
    let hosts = hosts_running(&control, &args.name, args.host.as_deref()).await?;
    let (control, args) = (&control, &args);
    let placed = on_each(hosts, move |host| async move {
        control.scale(&host, &args.name, args.max_instances).await
    })
    .await?;
    print_placed(ctx, &placed);
    Ok(())
}

pub(crate) async fn update(ctx: &Context, args: UpdateArgs) -> anyhow::Result<()> {
    let control = ctx.control(args.wait.wait).await?;
    let hosts = hosts_running(&control, &args.name, args.host.as_deref()).await?;
    let (path, module) = module_source(&control, &args.module, args.on_host)?;
    let request = UpdateRequest {
        name: args.name.clone(),
        path,
        module,
        limits: args.limits.given().then(|| args.limits.request()),
    };
    // One host after another: while one swaps, the others serve.
    let (control, request) = (&control, &request);
    let placed = on_each(hosts, move |host| async move {
        control.update(&host, request).await
    })
    .await?;
    print_placed(ctx, &placed);
    Ok(())
}

pub(crate) async fn get(ctx: &Context, args: GetArgs) -> anyhow::Result<()> {
    let control = ctx.control(args.wait.wait).await?;
    match args.what {
        Get::Deployments => return crate::deploy::get(ctx, args.wait.wait).await,
        Get::Hosts => {
            let hosts = control.ping().await?;
            match ctx.output {
                Output::Json => output::json(&hosts),
                Output::Table => output::table(
                    &["host", "version", "uptime", "actors", "labels"],
                    hosts
                        .iter()
                        .map(|h| {
                            vec![
                                h.host.clone(),
                                h.version.clone(),
                                output::uptime(h.uptime_ms),
                                h.actors.to_string(),
                                h.labels
                                    .iter()
                                    .map(|(k, v)| format!("{k}={v}"))
                                    .collect::<Vec<_>>()
                                    .join(","),
                            ]
                        })
                        .collect(),
                ),
            }
        }
        Get::Inventory => {
            let inventories: Vec<Inventory> = control.inventory().await?;
            match ctx.output {
                Output::Json => output::json(&inventories),
                Output::Table => {
                    let placed: Vec<Placed> = inventories
                        .into_iter()
                        .flat_map(|i| {
                            let host = i.host;
                            i.actors.into_iter().map(move |actor| Placed {
                                host: host.clone(),
                                actor,
                            })
                        })
                        .collect();
                    print_placed(ctx, &placed);
                }
            }
        }
    }
    Ok(())
}

pub(crate) async fn describe(ctx: &Context, args: DescribeArgs) -> anyhow::Result<()> {
    let control = ctx.control(Duration::from_secs(1)).await?;
    let actor = control.describe(&args.name).await?;
    if ctx.output == Output::Json {
        output::json(&actor);
        return Ok(());
    }
    println!("actor {}  (module sha256 {})", actor.name, actor.digest);
    for contract in &actor.contracts {
        println!();
        println!(
            "contract {} v{}  (fingerprint {})",
            contract.name, contract.version, contract.fingerprint
        );
        for line in contract.docs.lines() {
            println!("  {line}");
        }
        for method in &contract.methods {
            let mut flags = Vec::new();
            if method.idempotent {
                flags.push("idempotent".to_owned());
            }
            if method.oneway {
                flags.push("oneway".to_owned());
            }
            if let Some(ms) = method.timeout_ms {
                flags.push(format!("timeout {ms} ms"));
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", flags.join(", "))
            };
            println!(
                "  {}.{}{flags}",
                contract.name,
                lattice::json::signature(method)
            );
            for line in method.docs.lines() {
                println!("      {line}");
            }
            if let Some(json) = json_shape(method) {
                println!("      json: {json}");
            }
        }
        if !contract.types.is_empty() {
            println!();
            println!("  types (JSON):");
            for (name, schema) in &contract.types {
                for line in lattice::schema::render_type(name, schema) {
                    println!("    {line}");
                }
            }
        }
    }
    Ok(())
}

/// The method's arguments and reply in their JSON form, when the describing
/// host sent schemas: `{ by: u64 } -> { Ok: u64 } | { Err: CounterError }`.
fn json_shape(method: &lattice::MethodInfo) -> Option<String> {
    use lattice::schema::render;
    if method.returns_schema.is_null() {
        return None;
    }
    let args: Vec<String> = method
        .args
        .iter()
        .map(|a| format!("{}: {}", a.name, render(&a.schema)))
        .collect();
    let args = if args.is_empty() {
        "{}".to_owned()
    } else {
        format!("{{ {} }}", args.join(", "))
    };
    if method.oneway {
        return Some(format!("{args}  (no reply)"));
    }
    Some(format!("{args} -> {}", render(&method.returns_schema)))
}

pub(crate) async fn call(ctx: &Context, args: CallArgs) -> anyhow::Result<()> {
    let nats = ctx.connect().await?;
    let control = ControlClient::new(nats.clone(), &ctx.lattice)?;
    // `counter/alice`: the contract is the actor's; the call goes to the key.
    let actor = control.describe(lattice::key::split(&args.actor).0).await?;
    let (contract, method) = match args.method.split_once('.') {
        Some((contract, method)) => {
            let found = actor.contracts.iter().find(|c| c.name == contract);
            let Some(contract) = found else {
                return Err(lattice::Error::new(
                    lattice::ErrorKind::UnknownContract,
                    format!(
                        "`{}` does not implement a contract `{contract}`; it implements {}",
                        actor.name,
                        contract_names(&actor)
                    ),
                )
                .into());
            };
            (contract, method)
        }
        None => {
            let mut having = actor
                .contracts
                .iter()
                .filter(|c| c.method(&args.method).is_some());
            match (having.next(), having.next()) {
                (Some(c), None) => (c, args.method.as_str()),
                (Some(_), Some(_)) => bail!(
                    "more than one contract of `{}` has a method `{}`; say which: CONTRACT.{}",
                    actor.name,
                    args.method,
                    args.method
                ),
                (None, _) => {
                    return Err(lattice::Error::new(
                        lattice::ErrorKind::UnknownMethod,
                        format!(
                            "no contract of `{}` has a method `{}`; `lattice describe {}` lists them",
                            actor.name, args.method, actor.name
                        ),
                    )
                    .into());
                }
            }
        }
    };
    let Some(info) = contract.method(method) else {
        return Err(lattice::Error::new(
            lattice::ErrorKind::UnknownMethod,
            format!(
                "contract `{}` has no method `{method}`; its methods: {}",
                contract.name,
                contract
                    .methods
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .into());
    };
    let text = if args.args == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read the arguments from stdin")?
    } else {
        args.args.clone()
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "the arguments are not JSON: {e}; `{}` takes {}",
            method,
            lattice::json::signature(info)
        )
    })?;
    let payload = lattice::json::args_from_json(info, &json)?;
    let client = lattice::Client::new(nats, &ctx.lattice)?;
    let mut call = lattice::RawCall::new(&args.actor, &contract.name, method, payload.into());
    call.fingerprint = contract.fingerprint_value();
    call.idempotent = info.idempotent;
    call.oneway = info.oneway;
    call.timeout = args.timeout.or(info.timeout_ms.map(Duration::from_millis));
    let reply = client.request(call).await?;
    let value = lattice::json::reply_to_json(info, &reply)?;
    match ctx.output {
        Output::Json => println!("{value}"),
        Output::Table => output::json(&value),
    }
    Ok(())
}

fn contract_names(actor: &ActorEntry) -> String {
    actor
        .contracts
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn watch(ctx: &Context, args: WatchArgs) -> anyhow::Result<()> {
    let nats = ctx.connect().await?;
    let root = lattice::subject::ROOT;
    let lattice = &ctx.lattice;
    lattice::names::validate(lattice::names::NameKind::Lattice, lattice)?;
    let events = nats.subscribe(format!("{root}.{lattice}.evt.>")).await?;
    let published = nats.subscribe(format!("{root}.{lattice}.pub.>")).await?;
    nats.flush().await?;
    if ctx.output == Output::Table {
        eprintln!("watching lattice `{lattice}`; Ctrl-C stops");
    }
    let mut all = futures_util::stream::select(events, published);
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut seen = 0;
    loop {
        if args.count.is_some_and(|n| seen >= n) {
            break;
        }
        let next = async {
            match deadline {
                Some(at) => tokio::time::timeout_at(at, all.next()).await.ok().flatten(),
                None => all.next().await,
            }
        };
        let message = tokio::select! {
            message = next => message,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(message) = message else { break };
        // lattice.{l}.evt.{host}.{kind} or lattice.{l}.pub.{subject...}
        let tokens: Vec<&str> = message.subject.split('.').collect();
        let (kind, host, body) = match tokens.get(2) {
            Some(&"evt") => {
                let kind = tokens.get(4).copied().unwrap_or_default();
                if kind == "heartbeat" && !args.heartbeats {
                    continue;
                }
                let body: serde_json::Value = serde_json::from_slice(&message.payload)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&message.payload).into());
                (kind.to_owned(), tokens.get(3).map(|s| s.to_string()), body)
            }
            _ => {
                let body = lattice::json::to_json(&message.payload)
                    .unwrap_or_else(|_| format!("{} bytes", message.payload.len()).into());
                (format!("published {}", tokens[3..].join(".")), None, body)
            }
        };
        seen += 1;
        let time = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        match ctx.output {
            Output::Json => println!(
                "{}",
                serde_json::json!({ "time": time, "subject": message.subject.as_str(), "kind": kind, "host": host, "body": body })
            ),
            Output::Table => println!(
                "{time}  {:<10} {:<16} {body}",
                host.unwrap_or_else(|| "-".into()),
                kind
            ),
        }
    }
    Ok(())
}
