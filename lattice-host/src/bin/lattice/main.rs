//! `lattice`: run hosts and operate a lattice of wasm actors over NATS.
//!
//! Every command takes the NATS connection options (flags or `LATTICE_*`
//! environment variables), `--lattice` and `--output table|json`. See the
//! book's Quickstart and "Operating hosts" chapters.

mod cargo_build;
mod connect;
mod deploy;
mod local;
mod new;
mod ops;
mod output;
mod sign;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run Lattice hosts and operate a lattice of wasm actors over NATS.
///
/// Without a NATS URL, commands use the local nats-server that `lattice up`
/// started, or nats://127.0.0.1:4222.
#[derive(Debug, Parser)]
#[command(
    name = "lattice",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(flatten)]
    nats: connect::NatsArgs,
    /// The lattice to work in.
    #[arg(long, global = true, env = "LATTICE_NAME", default_value = "default")]
    lattice: String,
    /// How to print results: tables for people, JSON for programs.
    #[arg(long, short = 'o', global = true, value_enum, env = "LATTICE_OUTPUT", default_value_t = output::Output::Table)]
    output: output::Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a host; with no NATS URL, start a local nats-server (with JetStream) for it.
    Up(up::UpArgs),
    /// Stop hosts: every host of the lattice, or those named. They drain their calls and exit.
    Down(ops::DownArgs),
    /// Start an actor from a wasm module.
    Start(ops::StartArgs),
    /// Stop an actor (on every host running it, or on one).
    Stop(ops::StopArgs),
    /// Set how many instances of an actor may run at once on each host.
    Scale(ops::ScaleArgs),
    /// Swap an actor's module for a new one, dropping no call.
    Update(ops::UpdateArgs),
    /// Declare actors that every host keeps running, from a manifest or one by one.
    Deploy(deploy::DeployArgs),
    /// Remove deployments; their replicas stop on every host.
    Undeploy(deploy::UndeployArgs),
    /// List hosts, or what they run.
    Get(ops::GetArgs),
    /// Show the contracts a running actor implements.
    Describe(ops::DescribeArgs),
    /// Call an actor with JSON arguments; prints the reply as JSON.
    Call(ops::CallArgs),
    /// Print the lattice's events as they happen.
    Watch(ops::WatchArgs),
    /// Build an actor crate for wasm32-wasip1.
    Build(cargo_build::BuildArgs),
    /// Make a new project: a contract, an actor implementing it and a native client.
    New(new::NewArgs),
    /// Make keys that sign actor modules.
    Keys(sign::KeysArgs),
    /// Sign an actor module: embed claims (issuer, module key, hash, contracts, capabilities).
    Sign(sign::SignArgs),
    /// Show a module's signed claims, and whether they hold.
    Inspect(sign::InspectArgs),
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let output = cli.output;
    let command = async {
        tokio::select! {
            result = run(cli) => result,
            denied = connect::denied() => Err(denied.into()),
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(output, &e);
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = ops::Context {
        nats: cli.nats,
        lattice: cli.lattice,
        output: cli.output,
    };
    match cli.command {
        Command::Up(args) => up::run(&ctx, args).await,
        Command::Down(args) => ops::down(&ctx, args).await,
        Command::Start(args) => ops::start(&ctx, args).await,
        Command::Stop(args) => ops::stop(&ctx, args).await,
        Command::Scale(args) => ops::scale(&ctx, args).await,
        Command::Update(args) => ops::update(&ctx, args).await,
        Command::Deploy(args) => deploy::deploy(&ctx, args).await,
        Command::Undeploy(args) => deploy::undeploy(&ctx, args).await,
        Command::Get(args) => ops::get(&ctx, args).await,
        Command::Describe(args) => ops::describe(&ctx, args).await,
        Command::Call(args) => ops::call(&ctx, args).await,
        Command::Watch(args) => ops::watch(&ctx, args).await,
        Command::Build(args) => cargo_build::run(&ctx, args).await,
        Command::New(args) => new::run(&ctx, args),
        Command::Keys(args) => sign::keys(&ctx, args),
        Command::Sign(args) => sign::sign(&ctx, args).await,
        Command::Inspect(args) => sign::inspect(&ctx, args),
    }
}

/// Ends the process quietly when stdout is a pipe its reader closed
/// (`lattice get deployments -o json | grep -q ...`), as Unix tools do,
/// instead of panicking on the next print: Rust ignores SIGPIPE by default.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    {
        use nix::sys::signal::{SigHandler, Signal, signal};
        // SAFETY: at the start of main, before any thread exists; SIG_DFL
        // installs no handler of ours.
        #[allow(unsafe_code)]
        let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    }
}
