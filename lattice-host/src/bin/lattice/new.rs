//! `lattice new NAME`: a project of three crates that builds and runs
//! against a `lattice up` as generated: a contract, an actor implementing
//! it, and a native client calling it.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;

use crate::ops::Context;
use crate::output::Output;

#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// The project's name, also the name its actor runs under: lowercase
    /// letters, digits, `-` and `_`, starting with a letter.
    name: String,
    /// The directory to make it in. Default: here.
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
    /// The Lattice checkout to depend on, by path. Default: the one this
    /// `lattice` was built from, if it is still there; else the git
    /// repository.
    #[arg(long, value_name = "DIR")]
    checkout: Option<PathBuf>,
}

/// Where the generated crates take Lattice from.
enum Source {
    Path(PathBuf),
    Git(&'static str),
}

impl Source {
    /// The dependency entry of the crate at `dir` inside the checkout.
    fn entry(&self, dir: &str) -> String {
        match self {
            Source::Path(root) => {
                format!("{{ path = {:?} }}", root.join(dir).display().to_string())
            }
            Source::Git(url) => format!("{{ git = {url:?} }}"),
        }
    }
}

/// The repository the crates come from until they are on crates.io.
const GIT: &str = "https://github.com/lattice-rs/lattice";

pub(crate) fn run(ctx: &Context, args: NewArgs) -> anyhow::Result<()> {
    check_name(&args.name)?;
    let source = match args.checkout {
        Some(dir) => {
            let dir = dir
                .canonicalize()
                .with_context(|| format!("--checkout {}", dir.display()))?;
            if !dir.join("lattice/Cargo.toml").is_file() {
                bail!("--checkout {} is not a checkout of Lattice", dir.display());
            }
            Source::Path(dir)
        }
        None => built_from().map_or(Source::Git(GIT), Source::Path),
    };
    let root = args
        .path
        .unwrap_or_else(|| PathBuf::from("."))
        .join(&args.name);
    if root.exists() {
        bail!(
            "{} exists already; pick another name or --path",
            root.display()
        );
    }
    let files = project(&args.name, &source);
    for (path, text) in &files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    match ctx.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "project": root.display().to_string(),
                "files": files.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            })
        ),
        Output::Table => {
            println!("made {} ({} files); next:", root.display(), files.len());
            println!("  cd {}", root.display());
            println!("  lattice build . -p {}-actor", args.name);
            println!("  lattice up &");
            println!(
                "  lattice start {0} target/wasm32-wasip1/release/{1}_actor.wasm",
                args.name,
                snake(&args.name)
            );
            println!("  lattice call {} greet '{{\"name\": \"you\"}}'", args.name);
            println!("  cargo run -p {}-client", args.name);
        }
    }
    Ok(())
}

/// The checkout this binary was built from, if it is still there.
fn built_from() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.join("lattice/Cargo.toml")
        .is_file()
        .then(|| root.to_owned())
}

fn check_name(name: &str) -> anyhow::Result<()> {
    lattice::names::validate(lattice::names::NameKind::Actor, name)?;
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        bail!("a project's name starts with a letter (it names crates): {name:?}");
    }
    Ok(())
}

fn snake(name: &str) -> String {
    name.replace('-', "_")
}

/// `my-shop` -> `MyShop`.
fn camel(name: &str) -> String {
    name.split(['-', '_'])
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// The project's files: (path, text).
fn project(name: &str, source: &Source) -> Vec<(String, String)> {
    let fill = |template: &str| {
        template
            .replace("@NAME@", name)
            .replace("@SNAKE@", &snake(name))
            .replace("@CAMEL@", &camel(name))
            .replace("@LATTICE@", &source.entry("lattice"))
            .replace("@LATTICE_ACTOR@", &source.entry("actor-sdk"))
    };
    [
        ("Cargo.toml", WORKSPACE),
        ("rust-toolchain.toml", TOOLCHAIN),
        (".gitignore", "/target\n"),
        ("README.md", README),
        ("contract/Cargo.toml", CONTRACT_TOML),
        ("contract/src/lib.rs", CONTRACT_RS),
        ("actor/Cargo.toml", ACTOR_TOML),
        ("actor/src/lib.rs", ACTOR_RS),
        ("client/Cargo.toml", CLIENT_TOML),
        ("client/src/main.rs", CLIENT_RS),
    ]
    .into_iter()
    .map(|(path, template)| (path.to_owned(), fill(template)))
    .collect()
}

const WORKSPACE: &str = r#"[workspace]
resolver = "3"
members = ["contract", "actor", "client"]

[workspace.package]
version = "0.1.0"
edition = "2024"
rust-version = "1.95"

[workspace.dependencies]
# Lattice is not on crates.io yet: a checkout of it, by path or git. Take
# every Lattice crate from the same one.
lattice = @LATTICE@
lattice-actor = @LATTICE_ACTOR@
@NAME@-contract = { path = "contract" }
tokio = { version = "1", features = ["rt-multi-thread", "macros"] }

# Whole-program optimization: the actor runs about 30% fewer instructions.
[profile.release]
lto = "fat"
codegen-units = 1
"#;

const TOOLCHAIN: &str = r#"# The toolchain Lattice is built and tested with, and the target actors are
# built for.
[toolchain]
channel = "1.95.0"
targets = ["wasm32-wasip1"]
profile = "minimal"
"#;

const README: &str = r#"# @NAME@

A Lattice project: the `@CAMEL@` contract (`contract/`), an actor that
implements it (`actor/`) and a native client that calls it (`client/`).

```sh
lattice build . -p @NAME@-actor     # the actor, for wasm32-wasip1
lattice up &                        # a host, with a local nats-server
lattice start @NAME@ target/wasm32-wasip1/release/@SNAKE@_actor.wasm
lattice call @NAME@ greet '{"name": "you"}'
cargo run -p @NAME@-client          # the same call from native Rust
lattice down
```

`lattice up` prints the NATS URL it serves on; give it to the client
(`cargo run -p @NAME@-client -- nats://127.0.0.1:PORT`) when it is not
the default, nats://127.0.0.1:4222.
"#;

const CONTRACT_TOML: &str = r#"[package]
name = "@NAME@-contract"
version.workspace = true
edition.workspace = true
publish = false

[dependencies]
lattice.workspace = true
"#;

const CONTRACT_RS: &str = r#"//! The `@CAMEL@` contract: what the actor does, as callers see it.
//!
//! A struct or enum a method takes or returns derives serde's `Serialize`
//! and `Deserialize`, and schemars' `JsonSchema` so that `lattice describe`
//! shows its fields (dependencies `serde = { version = "1", features =
//! ["derive"] }` and `schemars = "1"`).

/// Greets whoever calls.
#[lattice::contract(version = 1)]
pub trait @CAMEL@ {
    /// Returns a greeting for `name`.
    #[lattice(idempotent)]
    fn greet(&self, name: String) -> String;
}
"#;

const ACTOR_TOML: &str = r#"[package]
name = "@NAME@-actor"
version.workspace = true
edition.workspace = true
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
lattice-actor.workspace = true
@NAME@-contract.workspace = true
"#;

const ACTOR_RS: &str = r#"//! The actor implementing `@CAMEL@`: `lattice build . -p @NAME@-actor`
//! makes `target/wasm32-wasip1/release/@SNAKE@_actor.wasm`.

use @SNAKE@_contract::@CAMEL@;

/// The actor; it keeps no state.
#[derive(Debug, Default)]
pub struct @CAMEL@Actor;

impl @CAMEL@ for @CAMEL@Actor {
    fn greet(&self, name: String) -> String {
        format!("Hello, {name}!")
    }
}

lattice_actor::export!(@CAMEL@Actor: @CAMEL@);
"#;

const CLIENT_TOML: &str = r#"[package]
name = "@NAME@-client"
version.workspace = true
edition.workspace = true
publish = false

[dependencies]
lattice.workspace = true
@NAME@-contract.workspace = true
tokio.workspace = true
"#;

const CLIENT_RS: &str = r#"//! Calls the `@NAME@` actor from native Rust:
//! `cargo run -p @NAME@-client -- [NATS_URL] [LATTICE]` (defaults:
//! `$LATTICE_NATS_URL` or nats://127.0.0.1:4222, and `default`).

use @SNAKE@_contract::@CAMEL@Client;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .or_else(|| std::env::var("LATTICE_NATS_URL").ok())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let lattice = args.next().unwrap_or_else(|| "default".into());
    // The async-nats the generated client takes, re-exported by `lattice`.
    // `lattice up`'s nats-server requires credentials: the caller's nkey
    // seed, in $LATTICE_HOME/credentials/caller.nk, named by LATTICE_NATS_NKEY.
    let mut options = lattice::async_nats::ConnectOptions::new();
    if let Ok(seed) = std::env::var("LATTICE_NATS_NKEY") {
        let seed = std::fs::read_to_string(&seed).unwrap_or(seed);
        options = options.nkey(seed.trim().to_owned());
    }
    let nats = options.connect(&url).await?;
    let client = @CAMEL@Client::new(nats, &lattice, "@NAME@")?;
    println!("{}", client.greet("native Rust".into()).await?);
    Ok(())
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_crate_and_type_names() {
        assert_eq!(camel("my-shop"), "MyShop");
        assert_eq!(camel("demo"), "Demo");
        assert_eq!(camel("a_b-c"), "ABC");
        assert_eq!(snake("my-shop"), "my_shop");
        assert!(check_name("demo").is_ok());
        assert!(check_name("1demo").is_err());
        assert!(check_name("Demo").is_err());
    }

    #[test]
    fn every_placeholder_is_filled() {
        for (path, text) in project("my-shop", &Source::Git(GIT)) {
            for placeholder in [
                "@NAME@",
                "@SNAKE@",
                "@CAMEL@",
                "@LATTICE@",
                "@LATTICE_ACTOR@",
            ] {
                assert!(!text.contains(placeholder), "{path}: {placeholder}");
            }
        }
    }
}
