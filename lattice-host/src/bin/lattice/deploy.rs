//! `lattice deploy`, `lattice undeploy` and `lattice get deployments`:
//! declared actors that every host keeps running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use lattice::{Error, ErrorKind};
use lattice_host::deploy::store::Change;
use lattice_host::deploy::{
    Deployment, DeploymentStatus, Manifest, ManifestActor, ModuleSource, Spread, Stores, status,
};

use crate::ops::{Context, LimitArgs};
use crate::output::{self, Output};

#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// A manifest file (TOML, see the book's Deployments chapter), or with
    /// --module the name of one actor to deploy.
    target: String,
    /// The module of a single actor: a .wasm file here, uploaded to the
    /// lattice, or sha256:DIGEST of one already there.
    #[arg(long)]
    module: Option<String>,
    /// Running copies, each on a host of its own while there are enough.
    #[arg(long, conflicts_with = "daemon")]
    replicas: Option<u32>,
    /// One replica on every matching host.
    #[arg(long)]
    daemon: bool,
    /// A label every host of it must have, KEY=VALUE; repeat for more.
    #[arg(long = "require", value_parser = key_value, value_name = "KEY=VALUE")]
    requirements: Vec<(String, String)>,
    /// A share of the replicas on the hosts with label KEY=VALUE, weight 1;
    /// repeat to spread over several (`--spread zone=eu --spread zone=us`).
    #[arg(long = "spread", value_parser = key_value, value_name = "KEY=VALUE")]
    spread: Vec<(String, String)>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Wait until every replica runs, at most this long (`30s`).
    #[arg(long, value_parser = humantime::parse_duration)]
    wait: Option<Duration>,
}

#[derive(Debug, Args)]
pub(crate) struct UndeployArgs {
    /// The deployments to remove; their replicas stop on every host.
    #[arg(required = true)]
    names: Vec<String>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

/// One line of `lattice deploy`'s answer.
#[derive(serde::Serialize)]
struct Deployed {
    name: String,
    module: String,
    change: Change,
}

pub(crate) async fn deploy(ctx: &Context, args: DeployArgs) -> anyhow::Result<()> {
    let (actors, base) = match &args.module {
        None => {
            if args.replicas.is_some()
                || args.daemon
                || !args.requirements.is_empty()
                || !args.spread.is_empty()
            {
                return Err(Error::new(
                    ErrorKind::Decode,
                    "--replicas, --daemon, --require and --spread describe one actor given with --module; \
                     a manifest says them for each of its actors",
                )
                .into());
            }
            let path = PathBuf::from(&args.target);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the manifest {}", path.display()))?;
            let manifest = Manifest::parse(&text, &path)?;
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            (manifest.actor, base)
        }
        Some(module) => {
            let actor = ManifestActor {
                name: args.target.clone(),
                module: module.clone(),
                replicas: args.replicas,
                daemon: args.daemon,
                requirements: args.requirements.iter().cloned().collect(),
                spread: args
                    .spread
                    .iter()
                    .map(|(k, v)| Spread {
                        requirements: BTreeMap::from([(k.clone(), v.clone())]),
                        weight: 1,
                    })
                    .collect(),
                limits: args.limits.request(),
            };
            actor.deployment("0".repeat(64)).check()?;
            (vec![actor], PathBuf::new())
        }
    };
    // Every module read before anything changes in the lattice.
    let mut sources = Vec::with_capacity(actors.len());
    for actor in &actors {
        sources.push(match actor.source(&base)? {
            ModuleSource::File(path) => {
                let bytes = std::fs::read(&path).map_err(|e| {
                    Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "actor `{}`: cannot read module {}: {e}",
                            actor.name,
                            path.display()
                        ),
                    )
                })?;
                check_module(&actor.name, &bytes)?;
                Ok(bytes)
            }
            ModuleSource::Digest(digest) => Err(digest),
        });
    }
    let nats = ctx.connect().await?;
    let stores = Stores::open(&nats, &ctx.lattice).await?;
    let mut deployments = Vec::with_capacity(actors.len());
    for (actor, source) in actors.iter().zip(sources) {
        let digest = match source {
            Ok(bytes) => stores.upload(&bytes).await?,
            Err(digest) if stores.has(&digest).await? => digest,
            Err(digest) => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "actor `{}`: module sha256:{digest} is not in the lattice; give its file to upload it",
                        actor.name
                    ),
                )
                .into());
            }
        };
        deployments.push(actor.deployment(digest));
    }
    let mut answer = Vec::with_capacity(deployments.len());
    for d in &deployments {
        answer.push(Deployed {
            name: d.name.clone(),
            module: d.module.clone(),
            change: stores.put(d).await?,
        });
    }
    match ctx.output {
        Output::Json => output::json(&answer),
        Output::Table => output::table(
            &["name", "module", "change"],
            answer
                .iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        output::short(&a.module),
                        a.change.as_str().to_owned(),
                    ]
                })
                .collect(),
        ),
    }
    if let Some(wait) = args.wait {
        let names: Vec<String> = deployments.iter().map(|d| d.name.clone()).collect();
        wait_deployed(ctx, &stores, &names, wait).await?;
    }
    Ok(())
}

/// Refuses what is not a wasm module before it is uploaded.
fn check_module(name: &str, bytes: &[u8]) -> Result<(), Error> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(Error::new(
            ErrorKind::InvalidModule,
            format!("actor `{name}`: the module is not a WebAssembly module"),
        ));
    }
    Ok(())
}

async fn wait_deployed(
    ctx: &Context,
    stores: &Stores,
    names: &[String],
    wait: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + wait;
    let control = ctx.control(Duration::from_millis(500)).await?;
    loop {
        let desired: Vec<Deployment> = stores
            .list()
            .await?
            .into_iter()
            .filter(|d| names.contains(&d.name))
            .collect();
        let all = status(&desired, &control.deployments().await?);
        let pending: Vec<&DeploymentStatus> = all.iter().filter(|s| !s.is_deployed()).collect();
        if pending.is_empty() {
            if ctx.output == Output::Table {
                eprintln!("every replica runs");
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            let what: Vec<String> = pending
                .iter()
                .map(|s| {
                    format!(
                        "`{}` {} ({} of {} running{})",
                        s.name,
                        s.status,
                        s.running,
                        s.desired,
                        s.reason
                            .as_ref()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            return Err(Error::new(
                ErrorKind::TimedOut,
                format!("not deployed within {wait:?}: {}", what.join("; ")),
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) async fn undeploy(ctx: &Context, args: UndeployArgs) -> anyhow::Result<()> {
    let nats = ctx.connect().await?;
    let stores = Stores::open(&nats, &ctx.lattice).await?;
    for name in &args.names {
        stores.delete(name).await?;
        if ctx.output == Output::Table {
            println!("{name}: undeployed; its replicas stop on every host");
        }
    }
    if ctx.output == Output::Json {
        output::json(&args.names);
    }
    Ok(())
}

pub(crate) async fn get(ctx: &Context, wait: Duration) -> anyhow::Result<()> {
    let nats = ctx.connect().await?;
    let stores = Stores::open(&nats, &ctx.lattice).await?;
    let desired = stores.list().await?;
    let control = ctx.control(wait).await?;
    let all = status(&desired, &control.deployments().await?);
    match ctx.output {
        Output::Json => output::json(&all),
        Output::Table => output::table(
            &["name", "module", "replicas", "status", "hosts / reason"],
            all.iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        output::short(&s.module),
                        format!("{}/{}", s.running, s.desired),
                        s.status.clone(),
                        s.reason.clone().unwrap_or_else(|| s.hosts.join(",")),
                    ]
                })
                .collect(),
        ),
    }
    Ok(())
}
