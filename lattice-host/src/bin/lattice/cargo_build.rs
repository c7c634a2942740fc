//! `lattice build`: `cargo build --target wasm32-wasip1` with a progress line,
//! then the modules it made.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::ops::Context;
use crate::output::{self, Output};

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// The crate or workspace to build (a directory or a Cargo.toml). Default: here.
    path: Option<PathBuf>,
    /// Build only these packages.
    #[arg(long = "package", short = 'p')]
    packages: Vec<String>,
    /// A debug build (default: release, which makes modules 10x smaller).
    #[arg(long)]
    debug: bool,
}

#[derive(Debug, Serialize)]
struct Module {
    package: String,
    path: PathBuf,
    bytes: u64,
}

pub(crate) async fn run(ctx: &Context, args: BuildArgs) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = tokio::process::Command::new(cargo);
    command.args([
        "build",
        "--target",
        "wasm32-wasip1",
        "--message-format=json-render-diagnostics",
    ]);
    if !args.debug {
        command.arg("--release");
    }
    if let Some(path) = &args.path {
        let manifest = if path.is_dir() {
            path.join("Cargo.toml")
        } else {
            path.clone()
        };
        command.arg("--manifest-path").arg(manifest);
    }
    for package in &args.packages {
        command.args(["--package", package]);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run cargo; is Rust installed (https://rustup.rs)?")?;
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    progress.enable_steady_tick(std::time::Duration::from_millis(100));
    progress.set_message("cargo build --target wasm32-wasip1");

    let stderr = child.stderr.take().context("cargo's stderr")?;
    let stderr_progress = progress.clone();
    let stderr_task = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut missing_target = false;
        while let Ok(Some(line)) = lines.next_line().await {
            let trimmed = line.trim_start();
            if trimmed.starts_with("Compiling") || trimmed.starts_with("Checking") {
                stderr_progress.set_message(trimmed.to_owned());
            } else if !trimmed.starts_with("Finished") && !trimmed.is_empty() {
                missing_target |= line.contains("target may not be installed")
                    || line.contains("can't find crate for `core`")
                    || line.contains("can't find crate for `std`");
                stderr_progress.println(line);
            }
        }
        missing_target
    });

    let stdout = child.stdout.take().context("cargo's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut modules = Vec::new();
    let mut built = 0usize;
    while let Some(line) = lines.next_line().await? {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        built += 1;
        let package = message["target"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        progress.set_message(format!("{built} crates built, last {package}"));
        for file in message["filenames"].as_array().into_iter().flatten() {
            let Some(file) = file.as_str() else { continue };
            if file.ends_with(".wasm") {
                let path = PathBuf::from(file);
                let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                modules.push(Module {
                    package: package.clone(),
                    path,
                    bytes,
                });
            }
        }
    }
    let status = child.wait().await?;
    let missing_target = stderr_task.await.unwrap_or(false);
    progress.finish_and_clear();
    if !status.success() {
        if missing_target {
            bail!(
                "cargo build failed: the wasm32-wasip1 target is not installed\n\
                 hint: run `rustup target add wasm32-wasip1`"
            );
        }
        bail!("cargo build failed ({status}); its errors are above");
    }
    if modules.is_empty() {
        bail!(
            "cargo built no wasm module; an actor crate needs `crate-type = [\"cdylib\"]` in its [lib] section"
        );
    }
    match ctx.output {
        Output::Json => output::json(&serde_json::json!({ "modules": modules })),
        Output::Table => output::table(
            &["package", "module", "size"],
            modules
                .iter()
                .map(|m| {
                    vec![
                        m.package.clone(),
                        m.path.display().to_string(),
                        format!("{} KiB", m.bytes.div_ceil(1024)),
                    ]
                })
                .collect(),
        ),
    }
    Ok(())
}
