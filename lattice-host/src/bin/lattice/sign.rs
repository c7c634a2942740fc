//! `lattice keys new`, `lattice sign` and `lattice inspect`: the keys and
//! signed claims of actor modules (see `lattice_host::claims`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use lattice_host::claims::{self, Claims};
use lattice_host::{ActorLimits, Host, HostOptions};
use nkeys::KeyPair;

use crate::ops::Context;
use crate::output::{self, Output};

/// `lattice keys`.
#[derive(Debug, clap::Args)]
pub(crate) struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Make a key pair: an issuer (signs modules; hosts trust its public
    /// key) or a module (an actor's identity). Writes the seed to a file
    /// only you can read and prints the public key.
    New(NewKeyArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KeyKind {
    /// Signs modules (an nkeys account key, A…).
    Issuer,
    /// Identifies one actor module (an nkeys module key, M…).
    Module,
}

#[derive(Debug, clap::Args)]
struct NewKeyArgs {
    /// What the key is for.
    kind: KeyKind,
    /// Where to write the seed. Default: $LATTICE_HOME/keys/PUBLIC_KEY.nk.
    #[arg(long, short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
}

/// `lattice sign`.
#[derive(Debug, clap::Args)]
pub(crate) struct SignArgs {
    /// The module to sign (a .wasm file built with the actor SDK).
    module: PathBuf,
    /// The issuer's seed file (`lattice keys new issuer`).
    #[arg(long, value_name = "FILE", env = "LATTICE_ISSUER")]
    issuer: PathBuf,
    /// The module's key: a seed file (`lattice keys new module`) or a public
    /// key (M…). Default: the key of the module's current claims, else a new
    /// one (its seed written to $LATTICE_HOME/keys).
    #[arg(long, value_name = "FILE|KEY")]
    module_key: Option<String>,
    /// A call the module may make: ACTOR.CONTRACT, either part `*` (`counter.*`,
    /// `*.echo`, `*`); ACTOR alone is ACTOR.*. Repeat for more.
    #[arg(long = "call", value_name = "PATTERN")]
    calls: Vec<String>,
    /// A subject the module may publish to, relative to the lattice, with
    /// NATS wildcards (`orders.*`, `audit.>`). Repeat for more.
    #[arg(long = "publish", value_name = "SUBJECT")]
    publishes: Vec<String>,
    /// How long the claims are valid: `90d`, `12h`. Default: forever.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    expires_in: Option<Duration>,
    /// Valid only from this long after now: `1h`. Default: at once.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    not_before: Option<Duration>,
    /// Where to write the signed module. Default: over the module.
    #[arg(long, short = 'f', value_name = "FILE")]
    out: Option<PathBuf>,
}

/// `lattice inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// The module.
    module: PathBuf,
}

fn keys_dir() -> PathBuf {
    crate::local::home().join("keys")
}

/// Writes `seed` to `path`, readable by its owner only.
fn write_seed(path: &Path, seed: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist)", path.display()))?;
    writeln!(file, "{seed}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn read_seed(path: &Path) -> anyhow::Result<KeyPair> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    KeyPair::from_seed(text.trim())
        .map_err(|e| anyhow::anyhow!("{} holds no seed: {e}", path.display()))
}

pub(crate) fn keys(ctx: &Context, args: KeysArgs) -> anyhow::Result<()> {
    let KeysCommand::New(args) = args.command;
    let key = match args.kind {
        KeyKind::Issuer => KeyPair::new_account(),
        KeyKind::Module => KeyPair::new_module(),
    };
    let public = key.public_key();
    let path = args
        .file
        .unwrap_or_else(|| keys_dir().join(format!("{public}.nk")));
    write_seed(&path, &key.seed()?)?;
    match ctx.output {
        Output::Json => output::json(&serde_json::json!({
            "kind": format!("{:?}", args.kind).to_lowercase(),
            "public_key": public,
            "seed_file": path,
        })),
        Output::Table => {
            println!("{public}");
            eprintln!(
                "the seed is in {} (keep it secret: it signs as this key)",
                path.display()
            );
        }
    }
    Ok(())
}

/// The contracts `module` implements, read as a host reads them.
async fn contracts_of(module: &[u8]) -> anyhow::Result<Vec<String>> {
    let host = Host::new(HostOptions::new().module_cache(None).hibernate_after(None))?;
    let info = host
        .start_actor("signing", module.to_vec(), ActorLimits::new())
        .await
        .context("the module does not load as an actor")?;
    host.shutdown().await;
    Ok(info.contracts.into_iter().map(|c| c.name).collect())
}

pub(crate) async fn sign(ctx: &Context, args: SignArgs) -> anyhow::Result<()> {
    let module = std::fs::read(&args.module)
        .with_context(|| format!("cannot read {}", args.module.display()))?;
    let issuer = read_seed(&args.issuer)?;
    let existing = claims::read(&module).ok().flatten();
    let (module_key, new_seed) = match (&args.module_key, &existing) {
        (Some(given), _) if given.starts_with('M') && !Path::new(given).exists() => {
            (given.clone(), None)
        }
        (Some(file), _) => (read_seed(Path::new(file))?.public_key(), None),
        (None, Some(claims)) => (claims.sub.clone(), None),
        (None, None) => {
            let key = KeyPair::new_module();
            let path = keys_dir().join(format!("{}.nk", key.public_key()));
            write_seed(&path, &key.seed()?)?;
            (key.public_key(), Some(path))
        }
    };
    let contracts = contracts_of(&module).await?;
    let mut claims = Claims::new(module_key, contracts);
    claims.nbf = args.not_before.map(|d| claims.iat + d.as_secs());
    claims.exp = args.expires_in.map(|d| claims.iat + d.as_secs());
    claims.lattice.calls = args.calls;
    claims.lattice.publishes = args.publishes;
    let signed = claims::sign(&module, claims, &issuer)?;
    let out = args.out.as_ref().unwrap_or(&args.module);
    std::fs::write(out, &signed).with_context(|| format!("cannot write {}", out.display()))?;
    let claims = claims::read(&signed)?.context("the signed module has claims")?;
    if let Some(path) = new_seed {
        eprintln!("made a module key; its seed is in {}", path.display());
    }
    show(ctx, out, &claims, "signed");
    Ok(())
}

pub(crate) fn inspect(ctx: &Context, args: InspectArgs) -> anyhow::Result<()> {
    let module = std::fs::read(&args.module)
        .with_context(|| format!("cannot read {}", args.module.display()))?;
    match claims::read(&module)? {
        Some(claims) => {
            let status = match claims::check(&module, &[], claims::now()) {
                Ok(_) => "valid".to_owned(),
                Err(e) => e.message().to_owned(),
            };
            show(ctx, &args.module, &claims, &status);
        }
        None => match ctx.output {
            Output::Json => {
                output::json(&serde_json::json!({ "module": args.module, "signed": false }))
            }
            Output::Table => println!(
                "{}: not signed (hosts started with --trust refuse it; `lattice sign` signs it)",
                args.module.display()
            ),
        },
    }
    Ok(())
}

fn show(ctx: &Context, module: &Path, claims: &Claims, status: &str) {
    match ctx.output {
        Output::Json => output::json(&serde_json::json!({
            "module": module,
            "signed": true,
            "status": status,
            "claims": claims,
        })),
        Output::Table => {
            let time = |secs: u64| {
                humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs))
                    .to_string()
            };
            let none = |v: &[String]| {
                if v.is_empty() {
                    "nothing".to_owned()
                } else {
                    v.join(", ")
                }
            };
            println!("{}: {status}", module.display());
            println!("  issuer     {}", claims.iss);
            println!("  module     {}", claims.sub);
            println!("  sha256     {}", claims.lattice.hash);
            println!("  contracts  {}", claims.lattice.contracts.join(", "));
            println!("  may call   {}", none(&claims.lattice.calls));
            println!("  may publish {}", none(&claims.lattice.publishes));
            println!("  signed     {}", time(claims.iat));
            println!(
                "  valid      {} to {}",
                claims.nbf.map_or("signing".into(), time),
                claims.exp.map_or("forever".into(), time)
            );
        }
    }
}
