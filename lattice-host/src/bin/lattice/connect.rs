//! The NATS connection options every command shares, from flags or the
//! environment, and which server a command talks to.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

/// Where NATS is and how to log in.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "NATS connection")]
pub(crate) struct NatsArgs {
    /// NATS server URL(s), comma-separated. Default: the local nats-server of
    /// `lattice up`, else nats://127.0.0.1:4222.
    #[arg(
        long = "nats",
        short = 's',
        global = true,
        env = "LATTICE_NATS_URL",
        value_name = "URL"
    )]
    pub(crate) url: Option<String>,
    /// User name (with --nats-password).
    #[arg(
        long = "nats-user",
        global = true,
        env = "LATTICE_NATS_USER",
        requires = "password"
    )]
    user: Option<String>,
    /// Password (with --nats-user).
    #[arg(
        long = "nats-password",
        global = true,
        env = "LATTICE_NATS_PASSWORD",
        hide_env_values = true,
        requires = "user"
    )]
    password: Option<String>,
    /// Authentication token.
    #[arg(
        long = "nats-token",
        global = true,
        env = "LATTICE_NATS_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// An nkey seed (`SU...`), or a file holding one.
    #[arg(
        long = "nats-nkey",
        global = true,
        env = "LATTICE_NATS_NKEY",
        hide_env_values = true,
        value_name = "SEED|FILE"
    )]
    nkey: Option<String>,
    /// A credentials file (JWT and nkey seed), as `nsc` writes them.
    #[arg(
        long = "nats-creds",
        global = true,
        env = "LATTICE_NATS_CREDS",
        value_name = "FILE"
    )]
    creds: Option<PathBuf>,
    /// CA certificate to verify the server's TLS certificate with (PEM).
    #[arg(
        long = "tls-ca",
        global = true,
        env = "LATTICE_TLS_CA",
        value_name = "FILE"
    )]
    tls_ca: Option<PathBuf>,
    /// Client certificate for mutual TLS (PEM, with --tls-key).
    #[arg(
        long = "tls-cert",
        global = true,
        env = "LATTICE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// Client key for mutual TLS (PEM, with --tls-cert).
    #[arg(
        long = "tls-key",
        global = true,
        env = "LATTICE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// How long to try to reach the server.
    #[arg(long = "connect-timeout", global = true, env = "LATTICE_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
}

impl NatsArgs {
    /// The URL to use when none is needed to be embedded: the flag, else
    /// the local server of `lattice up`, else the NATS default.
    pub(crate) fn url(&self) -> String {
        if let Some(url) = &self.url {
            return url.clone();
        }
        match crate::local::running() {
            Some(local) => local.url,
            None => "nats://127.0.0.1:4222".to_owned(),
        }
    }

    /// The TLS options given.
    pub(crate) fn client_tls(&self) -> crate::local::ClientTls {
        crate::local::ClientTls {
            ca: self.tls_ca.clone(),
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
        }
    }

    /// Connects to `url` with the login options given, as an operator.
    pub(crate) async fn connect(
        &self,
        url: &str,
        name: &str,
    ) -> anyhow::Result<async_nats::Client> {
        self.connect_as(url, name, crate::local::Role::Operator)
            .await
    }

    /// Connects to `url` with the login options given; with none, to the
    /// local server of `lattice up`, with `role`'s credentials.
    pub(crate) async fn connect_as(
        &self,
        url: &str,
        name: &str,
        role: crate::local::Role,
    ) -> anyhow::Result<async_nats::Client> {
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(self.connect_timeout)
            .reconnect_delay_callback(reconnect_delay)
            .event_callback(move |event| async move {
                log_event(&event);
                // A command the server's permissions refuse fails at once,
                // rather than when its request times out; a host goes on.
                if role != crate::local::Role::Host
                    && let async_nats::Event::ServerError(e) = &event
                {
                    let text = e.to_string();
                    if text.to_lowercase().contains("permissions violation") {
                        let _ = DENIED.set(text);
                        DENIED_NOW.notify_one();
                    }
                }
            });
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(nkey) = &self.nkey {
            let seed = if std::path::Path::new(nkey).is_file() {
                std::fs::read_to_string(nkey)
                    .with_context(|| format!("cannot read the nkey seed file {nkey}"))?
                    .trim()
                    .to_owned()
            } else {
                nkey.clone()
            };
            options = options.nkey(seed);
        }
        // With no login or TLS options, the local server of `lattice up`
        // is logged in to as its state file says.
        let local = crate::local::server_at(url);
        let given = self.user.is_some()
            || self.token.is_some()
            || self.nkey.is_some()
            || self.creds.is_some();
        if !given && let Some(local) = local.as_ref().filter(|l| l.auth) {
            let seed_file = role.seed_file();
            let seed = std::fs::read_to_string(&seed_file).with_context(|| {
                format!(
                    "the local nats-server requires the lattice's credentials; cannot read {}",
                    seed_file.display()
                )
            })?;
            tracing::debug!(url = %local.url, role = role.name(), "logging in with the lattice's credentials");
            options = options.nkey(seed.trim().to_owned());
        }
        if let Some(creds) = &self.creds {
            options = options
                .credentials_file(creds)
                .await
                .with_context(|| format!("cannot read the credentials file {}", creds.display()))?;
        }
        let mut tls = self.client_tls();
        if tls.ca.is_none()
            && tls.cert.is_none()
            && let Some(local) = local.and_then(|l| l.tls)
        {
            tls = local;
        }
        if let Some(ca) = tls.ca {
            options = options.add_root_certificates(ca).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (tls.cert, tls.key) {
            options = options.add_client_certificate(cert, key).require_tls(true);
        }
        let servers = servers(url)?;
        options.connect(servers.as_slice()).await.map_err(|e| {
            // rustls' verdicts (an unknown issuer, a name mismatch, a missing
            // client certificate) arrive as I/O errors naming the certificate.
            let tls = e.to_string().to_lowercase().contains("certificate");
            let hint = match e.kind() {
                async_nats::ConnectErrorKind::AuthorizationViolation
                | async_nats::ConnectErrorKind::Authentication => {
                    "the server wants credentials: pass --nats-user and --nats-password, \
                     --nats-token, --nats-nkey or --nats-creds (or their LATTICE_NATS_* \
                     variables)"
                }
                kind if tls || kind == async_nats::ConnectErrorKind::Tls => {
                    "check --tls-ca (the CA that signed the server's certificate) and, \
                     for mutual TLS, --tls-cert and --tls-key"
                }
                _ => {
                    "start a lattice with `lattice up` (it runs a local nats-server), \
                     or point --nats / LATTICE_NATS_URL at your NATS server"
                }
            };
            anyhow::anyhow!("cannot connect to NATS at {url}: {e}\nhint: {hint}")
        })
    }
}

/// The first permissions violation the server reported to a command.
static DENIED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static DENIED_NOW: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Resolves when the server refused something a command did (a publish
/// or subscription its permissions do not allow): `unauthorized`, saying
/// what and why.
pub(crate) async fn denied() -> lattice::Error {
    loop {
        let notified = DENIED_NOW.notified();
        if let Some(text) = DENIED.get() {
            return lattice::Error::new(
                lattice::ErrorKind::Unauthorized,
                format!(
                    "the NATS server refused it: {text}; the credentials used may not do this \
                     (on `lattice up`'s server, control needs the operator's: see the book's \
                     Security chapter)"
                ),
            );
        }
        notified.await;
    }
}

/// The servers of `--nats`: one URL, or several separated by commas (a
/// cluster's members, each a fallback for the others).
pub(crate) fn servers(urls: &str) -> anyhow::Result<Vec<async_nats::ServerAddr>> {
    let servers = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse::<async_nats::ServerAddr>()
                .with_context(|| format!("{url:?} is not a NATS server URL (nats://HOST:PORT)"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if servers.is_empty() {
        anyhow::bail!("--nats names no server: give a URL such as nats://127.0.0.1:4222");
    }
    Ok(servers)
}

/// How long to wait before the `attempts`-th try to reconnect: at once,
/// then every 100 to 250 ms. async-nats's own backoff grows to 4 s, so a
/// host came back up to 4 s after its server did, with its actors
/// unreachable meanwhile; a try costs the server one TCP handshake.
pub(crate) fn reconnect_delay(attempts: usize) -> Duration {
    match attempts {
        0 | 1 => Duration::ZERO,
        2 => Duration::from_millis(100),
        _ => Duration::from_millis(250),
    }
}

/// Logs what happens to the connection: losing it and getting it back at
/// info, the rest at debug.
fn log_event(event: &async_nats::Event) {
    match event {
        async_nats::Event::Disconnected => {
            tracing::info!("disconnected from NATS; reconnecting");
        }
        async_nats::Event::Connected => tracing::info!("connected to NATS"),
        async_nats::Event::ServerError(e) => {
            tracing::warn!(error = %e, "the NATS server reports an error")
        }
        async_nats::Event::SlowConsumer(sid) => {
            tracing::warn!(
                sid,
                "a subscription is too slow: the NATS client dropped messages for it"
            );
        }
        other => tracing::debug!(event = %other, "NATS"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comma_separated_list_is_every_server() {
        let two = servers("nats://127.0.0.1:4222, nats://127.0.0.1:4223,").unwrap();
        assert_eq!(two.len(), 2);
        assert!(servers("").is_err());
        let error = servers("nats://a:1,nats://b:notaport")
            .unwrap_err()
            .to_string();
        assert!(error.contains("nats://b:notaport"), "{error}");
    }

    #[test]
    fn reconnects_are_tried_at_least_every_quarter_second() {
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        assert!((2..1000).all(|n| reconnect_delay(n) <= Duration::from_millis(250)));
    }
}
