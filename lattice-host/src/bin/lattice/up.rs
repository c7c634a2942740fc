//! `lattice up`: run a host until Ctrl-C, SIGTERM or a `stop_host` request.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use lattice_host::{ActorLimits, Host, HostOptions};

use crate::local::{self, Embedded};
use crate::ops::Context;
use crate::output::Output;

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// The host's id. Default: a random one.
    #[arg(long, env = "LATTICE_HOST_ID")]
    host_id: Option<String>,
    /// A label, KEY=VALUE; repeat for more.
    #[arg(long = "label", short = 'l', value_parser = key_value, value_name = "KEY=VALUE")]
    labels: Vec<(String, String)>,
    /// Start an actor when the host is up, NAME=MODULE.wasm; repeat for more.
    #[arg(long = "actor", short = 'a', value_parser = key_value, value_name = "NAME=PATH")]
    actors: Vec<(String, String)>,
    /// How often to publish a heartbeat; the other hosts count this one gone after three missed.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    heartbeat: Duration,
    /// Calls from NATS this host runs at once; beyond that callers get `overloaded`.
    #[arg(long, default_value_t = 1024)]
    max_inflight: usize,
    /// Instance slots the pooling allocator reserves (also the most instances at once).
    #[arg(long, default_value_t = 1000)]
    pool_instances: u32,
    /// How long an instance stays idle before it hibernates (gives its
    /// memory's pages back, keeping what it wrote compressed; the next call
    /// wakes it), or `off`.
    #[arg(long, default_value = "30s", value_parser = duration_or_off, value_name = "DURATION|off")]
    hibernate_after: HibernateAfter,
    /// The directory from which `lattice start --on-host` (a control
    /// request naming a file on this host) may read modules: regular files
    /// inside it only. Without it the host reads no module file on a
    /// request; modules travel in the request.
    #[arg(long, value_name = "DIR")]
    module_dir: Option<std::path::PathBuf>,
    /// The largest module in bytes this host loads.
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    max_module_size: usize,
    /// Compile fuel metering in, so that actors can be given a fuel budget
    /// (`lattice start --fuel N`); guest code runs about a third slower.
    #[arg(long)]
    fuel: bool,
    /// Run only modules signed by this issuer (a public key, `A…`, from
    /// `lattice keys new issuer`); repeat for more, or list them in
    /// LATTICE_TRUST separated by commas. Without it the host runs unsigned
    /// modules too, and says so.
    #[arg(
        long = "trust",
        value_name = "ISSUER",
        env = "LATTICE_TRUST",
        value_delimiter = ','
    )]
    trust: Vec<String>,
    #[command(flatten)]
    server: local::ServerArgs,
}

/// `--hibernate-after`: a duration, or `off` (`None`).
#[derive(Debug, Clone, Copy)]
struct HibernateAfter(Option<Duration>);

fn duration_or_off(s: &str) -> Result<HibernateAfter, String> {
    match s {
        "off" => Ok(HibernateAfter(None)),
        _ => humantime::parse_duration(s)
            .map(|d| HibernateAfter(Some(d)))
            .map_err(|e| format!("{e}: expected a duration such as `30s`, or `off`")),
    }
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

/// The label of a host that runs its own nats-server (`lattice down` stops
/// such hosts last).
pub(crate) const NATS_LABEL: &str = "nats-server";

pub(crate) async fn run(ctx: &Context, args: UpArgs) -> anyhow::Result<()> {
    init_logging();
    // Everything given is checked, and the host made, before anything
    // starts: a bad argument leaves no nats-server behind.
    // Read once: the state file and a connection to the server it names.
    let running = if ctx.nats.url.is_none() {
        local::running()
    } else {
        None
    };
    let embedding = ctx.nats.url.is_none() && running.is_none();
    let given = args.server.given();
    if !embedding && !given.is_empty() {
        anyhow::bail!(
            "{} set the nats-server `lattice up` starts, and this host starts none: it joins {}; \
             set that server's own configuration instead",
            given.join(", "),
            ctx.nats
                .url
                .as_deref()
                .unwrap_or("the local nats-server of another `lattice up`")
        );
    }
    let server = if embedding {
        Some(args.server.check(&ctx.nats.client_tls())?)
    } else {
        None
    };
    let host = new_host(ctx, &args, embedding)?;
    for (name, path) in &args.actors {
        let info = host
            .start_actor_file(name, path, ActorLimits::new())
            .await
            .with_context(|| format!("cannot start `{name}` from {path}"))?;
        tracing::info!(actor = %info.name, contracts = ?info.contracts.iter().map(|c| &c.name).collect::<Vec<_>>(), "actor started");
    }
    // With no URL: join the local server of another `lattice up`, or start one.
    let mut embedded = None;
    let url = match (&ctx.nats.url, running) {
        (Some(url), _) => url.clone(),
        (None, Some(running)) => {
            tracing::info!(url = %running.url, pid = running.pid, "joining the local nats-server of another `lattice up`");
            running.url
        }
        (None, None) => {
            let settings = server.context("the server's settings are checked when embedding")?;
            let server = Embedded::start(&settings).await?;
            settings.say();
            tracing::info!(url = %server.url, home = %local::home().display(), "started a local nats-server with JetStream");
            let url = server.url.clone();
            embedded = Some(server);
            url
        }
    };
    let result = serve(ctx, &host, &url).await;
    if let Some(server) = embedded {
        tracing::info!("stopping the local nats-server");
        server.stop().await;
    }
    result
}

/// The host `args` describe; with `embedding`, labelled as the one that
/// runs the lattice's nats-server.
fn new_host(ctx: &Context, args: &UpArgs, embedding: bool) -> anyhow::Result<Host> {
    let mut options = HostOptions::new()
        .lattice(&ctx.lattice)
        .heartbeat(args.heartbeat)
        .max_inflight(args.max_inflight)
        .pool_instances(args.pool_instances)
        .hibernate_after(args.hibernate_after.0)
        .module_dir(args.module_dir.clone())
        .max_module_size(args.max_module_size)
        .fuel(args.fuel);
    if let Some(id) = &args.host_id {
        options = options.host_id(id);
    }
    for (key, value) in &args.labels {
        options = options.label(key, value);
    }
    for issuer in &args.trust {
        options = options.trust(issuer.trim());
    }
    if args.trust.is_empty() {
        tracing::warn!(
            "no trusted issuers (--trust): this host runs unsigned modules; sign modules with \
             `lattice sign` and start hosts with --trust ISSUER to run only yours"
        );
    } else {
        tracing::info!(issuers = ?args.trust, "running only modules signed by trusted issuers");
    }
    if embedding {
        options = options.label(NATS_LABEL, "embedded");
    }
    if let Some(dir) = &args.module_dir
        && !dir.is_dir()
    {
        anyhow::bail!("--module-dir {} is not a directory", dir.display());
    }
    Ok(Host::new(options)?)
}

async fn serve(ctx: &Context, host: &Host, url: &str) -> anyhow::Result<()> {
    let nats = ctx
        .nats
        .connect_as(
            url,
            &format!("lattice host {}", host.id()),
            local::Role::Host,
        )
        .await?;
    host.join(nats.clone()).await?;
    match ctx.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({ "event": "up", "host": host.id(), "lattice": ctx.lattice, "nats": url })
        ),
        Output::Table => println!(
            "host {} is up in lattice `{}` on {url}; Ctrl-C stops it",
            host.id(),
            ctx.lattice
        ),
    }

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    let why = tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = terminate.recv() => "terminated",
        () = host.stopped() => "stopped by a stop_host request",
    };
    tracing::info!("{why}: draining calls in flight (Ctrl-C again to stop at once)");
    tokio::select! {
        () = host.shutdown() => {}
        _ = tokio::signal::ctrl_c() => tracing::warn!("stopping without draining"),
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), nats.drain()).await;
    if ctx.output == Output::Json {
        println!(
            "{}",
            serde_json::json!({ "event": "down", "host": host.id() })
        );
    } else {
        println!("host {} stopped", host.id());
    }
    Ok(())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LATTICE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn,async_nats=warn")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
