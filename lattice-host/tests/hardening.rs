//! Bad input and faults from outside, against real nats-server processes
//! and real hosts: malformed NATS framing, oversized error quotes, module
//! files a request must not read, requests every host must answer, field
//! validation, stops and shutdowns that lose no call.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use example_echo_contract::EchoClient;
use futures_util::StreamExt;
use lattice::{ErrorKind, headers};
use lattice_host::control::{ControlClient, LimitsRequest, StartRequest};
use lattice_host::{ActorLimits, Call, Host};
use support::nats::{self, NatsServer};

const WAIT: Duration = Duration::from_secs(10);

/// A host of lattice `lattice` joined over `url`, with echo running, and
/// how many times its connection dropped.
async fn echo_host(url: &str, lattice: &str, id: &str) -> (Host, Arc<AtomicUsize>) {
    let host = Host::new(support::lattice_options(lattice, id)).unwrap();
    support::start(&host, "echo", "example-echo-actor", ActorLimits::new()).await;
    let drops = Arc::new(AtomicUsize::new(0));
    let counted = drops.clone();
    let client = async_nats::ConnectOptions::new()
        .event_callback(move |event| {
            let counted = counted.clone();
            async move {
                if matches!(event, async_nats::Event::Disconnected) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .connect(url)
        .await
        .unwrap();
    host.join(client).await.unwrap();
    (host, drops)
}

/// A raw NATS connection that speaks the protocol by hand, as a client in
/// another language (or an attacker) would: it may publish any framing.
struct RawClient(TcpStream);

impl RawClient {
    fn connect(url: &str) -> RawClient {
        let address = url.trim_start_matches("nats://");
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut info = [0u8; 4096];
        let n = stream.read(&mut info).unwrap();
        assert!(
            info[..n].starts_with(b"INFO "),
            "the server greets with INFO"
        );
        stream
            .write_all(
                b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1}\r\nPING\r\n",
            )
            .unwrap();
        let n = stream.read(&mut info).unwrap();
        assert!(
            info[..n].windows(4).any(|w| w == b"PONG"),
            "the server takes the connection: {}",
            String::from_utf8_lossy(&info[..n])
        );
        stream.set_nonblocking(true).unwrap();
        RawClient(stream)
    }

    /// Publishes `payload` with the raw header block `header` (HPUB).
    fn hpub(&mut self, subject: &str, reply: &str, header: &[u8], payload: &[u8]) {
        let mut frame = format!(
            "HPUB {subject} {reply} {} {}\r\n",
            header.len(),
            header.len() + payload.len()
        )
        .into_bytes();
        frame.extend_from_slice(header);
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.write(&frame);
    }

    fn write(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.0.write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("the raw connection failed: {e}"),
            }
        }
        // Answer the server's PINGs and drop whatever else it sends.
        let mut sink = [0u8; 4096];
        while let Ok(n) = self.0.read(&mut sink) {
            if n == 0 {
                break;
            }
            if sink[..n].windows(4).any(|w| w == b"PING") {
                let _ = self.0.write_all(b"PONG\r\n");
            }
        }
    }
}

/// Header blocks that are not well formed, each in its own way.
const MALFORMED: [&[u8]; 5] = [
    b"NATS/1.0\r\nno colon on this line\r\n\r\n",
    b"NATS/1.0\r\nName: \xff\xfe not utf-8\r\n\r\n",
    b"HTTP/1.1\r\nName: value\r\n\r\n",
    b"NATS/1.0 not-a-status\r\n\r\n",
    b"NATS/1.0\r\nBad Name: value\r\n\r\n",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_header_blocks_leave_the_host_connected() {
    support::init_tracing();
    let server = NatsServer::single();
    let url = server.url();
    let (host, drops) = echo_host(&url, "hdr", "h1").await;
    let observer = nats::connect(&url).await;
    let mut replies = observer.subscribe("bad.>").await.unwrap();
    observer.flush().await.unwrap();
    let args = lattice::codec::encode(&std::collections::BTreeMap::from([("text", "hi")])).unwrap();

    // 200 malformed messages a second to each subject a host listens on,
    // for 2 s (`LATTICE_FLOOD_SECS` for longer), from a raw connection;
    // echo is called all the while.
    let ticks: u32 = 200
        * std::env::var("LATTICE_FLOOD_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2);
    let subjects = [
        "lattice.hdr.rpc.echo.echo.echo",
        "lattice.hdr.ctl.ping",
        "lattice.hdr.ctl.host.h1.inventory",
        "$SRV.PING",
    ];
    let flood = {
        let (url, args) = (url.clone(), args.clone());
        std::thread::spawn(move || {
            let mut raw = RawClient::connect(&url);
            let start = Instant::now();
            let mut sent = 0usize;
            for tick in 0..ticks {
                for (i, subject) in subjects.iter().enumerate() {
                    let header = MALFORMED[(tick as usize + i) % MALFORMED.len()];
                    raw.hpub(subject, &format!("bad.{i}.{tick}"), header, &args);
                    sent += 1;
                }
                let next = start + Duration::from_millis(5) * (tick + 1);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            sent
        })
    };
    let echo = EchoClient::new(nats::connect(&url).await, "hdr", "echo")
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    let (mut calls, mut failed) = (0, Vec::new());
    while !flood.is_finished() {
        calls += 1;
        if let Err(e) = echo.echo("ok".into()).await {
            failed.push(e.to_string());
        }
    }
    let sent = flood.join().unwrap();
    assert_eq!(sent, 4 * ticks as usize);
    assert!(
        failed.is_empty(),
        "{} of {calls} calls failed: {failed:?}",
        failed.len()
    );
    assert_eq!(
        drops.load(Ordering::Relaxed),
        0,
        "the host's connection dropped"
    );

    // The calls and control requests got a typed answer, naming the fault.
    let mut typed = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while typed < ticks {
        let message = tokio::time::timeout_at(deadline, replies.next())
            .await
            .expect("the malformed calls are answered")
            .unwrap();
        if !message.subject.starts_with("bad.0.") {
            continue;
        }
        let status = message
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::STATUS));
        assert_eq!(status.map(|s| s.as_str()), Some("400"));
        let error = lattice::Error::from_wire(Some(400), &message.payload);
        assert_eq!(error.kind(), ErrorKind::Decode);
        assert!(error.message().contains("header block"), "{error}");
        typed += 1;
    }
    assert_eq!(
        host.stats().calls_from_nats as usize,
        calls + ticks as usize
    );
    eprintln!(
        "{} malformed messages in {ticks} ticks of 5 ms; {calls} echo calls, 0 failed, 0 reconnects",
        sent
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_quoting_a_megabyte_still_fits_in_its_reply() {
    let server = NatsServer::single();
    let (_host, _) = echo_host(&server.url(), "big", "h1").await;
    let client = nats::connect(&server.url()).await;
    // A string of nearly the server's whole max_payload where the
    // arguments map belongs: serde quotes it in its message.
    let text = "x".repeat(client.server_info().max_payload - 4096);
    let payload = lattice::codec::encode(&text).unwrap();
    let request = async_nats::Request::new()
        .payload(payload.into())
        .timeout(Some(WAIT));
    let reply = client
        .send_request("lattice.big.rpc.echo.echo.echo".to_owned(), request)
        .await
        .expect("a reply, not a timeout");
    let error = lattice::Error::from_wire(Some(400), &reply.payload);
    assert_eq!(error.kind(), ErrorKind::Decode);
    assert!(
        error.message().len() <= lattice::MAX_ERROR_MESSAGE,
        "{} bytes",
        error.message().len()
    );
    assert!(reply.payload.len() < 2048, "{} bytes", reply.payload.len());
    // In the contract's terms: the method, its arguments, what came.
    assert!(
        error
            .message()
            .starts_with("cannot decode the arguments of `echo.echo` (a map {text: String}): invalid type: string \"xxx"),
        "{error}"
    );
    assert!(
        error
            .message()
            .ends_with("xxx\", expected the arguments map"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_errors_speak_the_contract() {
    let host = support::host();
    support::start(&host, "echo", "example-echo-actor", ActorLimits::new()).await;
    let cases: [(Vec<u8>, &str); 5] = [
        (
            lattice::codec::encode(&"hi").unwrap(),
            "invalid type: string \"hi\", expected the arguments map",
        ),
        (
            vec![0xc1],
            "got the byte 0xc1, which MessagePack never uses",
        ),
        (
            lattice::codec::encode(&std::collections::BTreeMap::from([("text", 5)])).unwrap(),
            "invalid type: integer `5`, expected a string",
        ),
        (
            lattice::codec::encode(&std::collections::BTreeMap::from([("txt", "a")])).unwrap(),
            "missing field `text`",
        ),
        (
            vec![0x81, 0xa4],
            "the MessagePack ends before the value does",
        ),
    ];
    for (payload, says) in cases {
        let error = host
            .invoke(Call::new("echo", "echo", "echo", &payload))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Decode);
        let message = error.message();
        assert!(
            message
                .starts_with("cannot decode the arguments of `echo.echo` (a map {text: String}): "),
            "{message}"
        );
        assert!(message.contains(says), "{message} should say {says:?}");
        assert!(
            !message.contains("EchoEchoArgs") && !message.contains("marker"),
            "{message}"
        );
    }
}

/// A control client of lattice `lattice`.
async fn control(url: &str, lattice: &str) -> ControlClient {
    ControlClient::new(nats::connect(url).await, lattice)
        .unwrap()
        .wait(Duration::from_millis(500))
}

fn start_path(path: &str) -> StartRequest {
    StartRequest {
        name: "from-disk".into(),
        path: Some(path.into()),
        module: None,
        limits: LimitsRequest::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_files_are_read_only_from_the_module_directory() {
    let server = NatsServer::single();
    let url = server.url();
    // Without a module directory: no file is read, and the answer is the
    // same whether it exists or not.
    let closed = Host::new(support::lattice_options("files", "closed")).unwrap();
    closed.join(nats::connect(&url).await).await.unwrap();
    let control = control(&url, "files").await;
    let mut answers = Vec::new();
    for path in ["/dev/zero", "/etc/passwd", "/no/such/file", "relative.wasm"] {
        let error = control
            .start("closed", &start_path(path))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unauthorized, "{path}: {error}");
        answers.push(error.message().to_owned());
    }
    answers.dedup();
    assert_eq!(answers.len(), 1, "{answers:?}");

    // With one: regular files inside it only, bounded, promptly.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        support::wasm("example-echo-actor"),
        dir.path().join("echo.wasm"),
    )
    .unwrap();
    std::fs::write(dir.path().join("big.wasm"), vec![0u8; 4096]).unwrap();
    let fifo = dir.path().join("fifo.wasm");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("out.wasm")).unwrap();
    let open = Host::new(
        support::lattice_options("files", "open")
            .module_dir(Some(dir.path().to_owned()))
            .max_module_size(1 << 20),
    )
    .unwrap();
    open.join(nats::connect(&url).await).await.unwrap();
    let refused = |path: &str, kind: ErrorKind| {
        let control = control.clone();
        let path = path.to_owned();
        async move {
            let started = Instant::now();
            let error = control.start("open", &start_path(&path)).await.unwrap_err();
            assert_eq!(error.kind(), kind, "{path}: {error}");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{path} took {:?}",
                started.elapsed()
            );
            error
        }
    };
    refused("/dev/zero", ErrorKind::Unauthorized).await;
    refused("../../../etc/passwd", ErrorKind::Unauthorized).await;
    refused("out.wasm", ErrorKind::Unauthorized).await;
    // Many FIFOs at once: none blocks a thread.
    let fifos: Vec<_> = (0..64)
        .map(|_| tokio::spawn(refused(fifo.to_str().unwrap(), ErrorKind::InvalidModule)))
        .collect();
    for fifo in fifos {
        fifo.await.unwrap();
    }
    refused("missing.wasm", ErrorKind::NotFound).await;
    let big = Host::new(
        support::lattice_options("files", "small")
            .module_dir(Some(dir.path().to_owned()))
            .max_module_size(1024),
    )
    .unwrap();
    big.join(nats::connect(&url).await).await.unwrap();
    let error = control
        .start("small", &start_path("big.wasm"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PayloadTooLarge, "{error}");
    let inline = StartRequest {
        name: "inline".into(),
        path: None,
        module: Some(lattice_host::control::encode_module(&[0u8; 4096])),
        limits: LimitsRequest::default(),
    };
    let error = control.start("small", &inline).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PayloadTooLarge, "{error}");
    // And the real module starts, by a relative or an absolute path.
    let entry = control
        .start("open", &start_path("echo.wasm"))
        .await
        .unwrap();
    assert_eq!(entry.name, "from-disk");
    let absolute = dir.path().join("echo.wasm");
    let mut request = start_path(absolute.to_str().unwrap());
    request.name = "from-disk-2".into();
    control.start("open", &request).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_request_gets_a_typed_answer() {
    let server = NatsServer::single();
    let url = server.url();
    let (host, _) = echo_host(&url, "ctl", "h1").await;
    let client = nats::connect(&url).await;
    let request = |subject: &'static str, body: &'static [u8]| {
        let client = client.clone();
        async move {
            let request = async_nats::Request::new()
                .payload(body.into())
                .timeout(Some(WAIT));
            let reply = client
                .send_request(subject.to_owned(), request)
                .await
                .unwrap_or_else(|e| panic!("{subject}: no answer: {e}"));
            let status = reply
                .headers
                .as_ref()
                .and_then(|h| h.get(headers::STATUS))
                .map(|s| s.as_str().parse::<u16>().unwrap());
            let body: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
            (status, body)
        }
    };
    // A malformed describe, lattice-wide: every host says why.
    let (status, body) = request("lattice.ctl.ctl.describe", b"{not json").await;
    assert_eq!(status, Some(400), "{body}");
    assert_eq!(body["kind"], "decode");
    // Operations that change a host are not lattice-wide: one message must
    // never stop every host.
    for op in ["start", "stop", "update", "scale", "labels", "stop_host"] {
        let subject: &'static str = format!("lattice.ctl.ctl.{op}").leak();
        let (status, body) = request(subject, b"{}").await;
        assert_eq!(status, Some(404), "{op}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("ctl.host.{host_id}"),
            "{body}"
        );
    }
    let (status, _) = request("lattice.ctl.ctl.ping", b"").await;
    assert_eq!(status, None, "the host is still up");
    assert!(host.actor_names().contains(&"echo".to_owned()));
    let (status, body) = request("lattice.ctl.ctl.host.h1.frobnicate", b"").await;
    assert_eq!(status, Some(404), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_field_is_validated_once_by_every_path() {
    let server = NatsServer::single();
    let url = server.url();
    let (host, _) = echo_host(&url, "fields", "h1").await;
    let control = control(&url, "fields").await;
    let module = lattice_host::control::encode_module(
        &std::fs::read(support::wasm("example-echo-actor")).unwrap(),
    );
    let start = |limits: LimitsRequest| StartRequest {
        name: "checked".into(),
        path: None,
        module: Some(module.clone()),
        limits,
    };
    let cases = [
        (
            LimitsRequest {
                fuel: Some(1000),
                ..LimitsRequest::default()
            },
            "`fuel`",
        ),
        (
            LimitsRequest {
                max_instances: Some(0),
                ..LimitsRequest::default()
            },
            "`max_instances`",
        ),
        (
            LimitsRequest {
                timeout_ms: Some(0),
                ..LimitsRequest::default()
            },
            "`timeout_ms`",
        ),
        (
            LimitsRequest {
                timeout_ms: Some(u64::MAX),
                ..LimitsRequest::default()
            },
            "`timeout_ms`",
        ),
        (
            LimitsRequest {
                max_memory: Some(1),
                ..LimitsRequest::default()
            },
            "`max_memory`",
        ),
        (
            LimitsRequest {
                max_payload: Some(0),
                ..LimitsRequest::default()
            },
            "`max_payload`",
        ),
    ];
    for (limits, field) in cases {
        // Over NATS and in process alike.
        let over_nats = control
            .start("h1", &start(limits.clone()))
            .await
            .unwrap_err();
        assert_eq!(over_nats.kind(), ErrorKind::Decode, "{over_nats}");
        assert!(over_nats.message().starts_with(field), "{over_nats}");
        let update = lattice_host::control::UpdateRequest {
            name: "echo".into(),
            path: None,
            module: Some(module.clone()),
            limits: Some(limits),
        };
        let on_update = control.update("h1", &update).await.unwrap_err();
        assert_eq!(on_update.message(), over_nats.message());
    }
    let in_process = host
        .start_actor(
            "checked",
            std::fs::read(support::wasm("example-echo-actor")).unwrap(),
            ActorLimits::new().max_instances(0),
        )
        .await
        .unwrap_err();
    let scaled = control.scale("h1", "echo", 0).await.unwrap_err();
    assert_eq!(scaled.kind(), ErrorKind::Decode);
    assert_eq!(scaled.message(), in_process.message());
    let labels = lattice_host::control::LabelsRequest {
        set: [("Bad Key".to_owned(), "v".to_owned())].into(),
        remove: Vec::new(),
    };
    let error = control.labels("h1", &labels).await.unwrap_err();
    assert!(
        error.message().starts_with("label key \"Bad Key\""),
        "{error}"
    );
    assert!(
        Host::new(support::options().label("Bad Key", "v"))
            .unwrap_err()
            .message()
            .starts_with("label key")
    );
}

/// Callers of echo in lattice `lattice`, one call at a time each (about
/// 1,000 calls a second here), until [`Load::finish`].
struct Load {
    done: Arc<std::sync::atomic::AtomicBool>,
    callers: Vec<tokio::task::JoinHandle<(usize, Vec<String>)>>,
}

impl Load {
    async fn start(url: &str, lattice: &str, callers: usize) -> Load {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let callers = (0..callers)
            .map(|_| {
                let (url, lattice, done) = (url.to_owned(), lattice.to_owned(), done.clone());
                tokio::spawn(async move {
                    let echo = EchoClient::new(nats::connect(&url).await, &lattice, "echo")
                        .unwrap()
                        .with_timeout(Duration::from_secs(5));
                    let (mut calls, mut failed) = (0usize, Vec::new());
                    while !done.load(Ordering::Relaxed) {
                        calls += 1;
                        if let Err(e) = echo.echo("x".into()).await {
                            failed.push(e.to_string());
                        }
                    }
                    (calls, failed)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        Load { done, callers }
    }

    /// Stops the callers; asserts that they made calls and none failed.
    async fn finish(self) -> usize {
        self.done.store(true, Ordering::Relaxed);
        let (mut calls, mut failed) = (0, Vec::new());
        for caller in self.callers {
            let (n, f) = caller.await.unwrap();
            calls += n;
            failed.extend(f);
        }
        assert!(calls > 1000, "only {calls} calls were made");
        assert!(
            failed.is_empty(),
            "{} of {calls} calls failed: {failed:?}",
            failed.len()
        );
        calls
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_and_starting_under_load_loses_no_call() {
    let server = NatsServer::single();
    let url = server.url();
    let (_steady, _) = echo_host(&url, "churn", "steady").await;
    let (churned, _) = echo_host(&url, "churn", "churned").await;
    let module = std::fs::read(support::wasm("example-echo-actor")).unwrap();
    // Eight callers while one host stops and starts echo 100 times.
    let load = Load::start(&url, "churn", 8).await;
    for _ in 0..100 {
        churned.stop_actor("echo").await.unwrap();
        churned
            .start_actor("echo", module.clone(), ActorLimits::new())
            .await
            .unwrap();
    }
    load.finish().await;
    assert!(
        churned.stats().calls_from_nats > 0,
        "the churned host took calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_leaving_and_joining_under_load_lose_no_call() {
    let server = NatsServer::single();
    let url = server.url();
    let (_steady, _) = echo_host(&url, "cycle", "steady").await;
    // Eight callers while 30 hosts in turn join, serve and shut down.
    let load = Load::start(&url, "cycle", 8).await;
    let mut served = 0;
    for i in 0..30 {
        let (host, _) = echo_host(&url, "cycle", &format!("c{i}")).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        host.shutdown().await;
        served += host.stats().calls_from_nats;
    }
    load.finish().await;
    assert!(served > 0, "the hosts that came and went took calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_answers_every_call_the_server_sent_before_it() {
    // One host, so that every call gets an answer from it or, once its
    // subscriptions are gone, the server's own `no responders`: a call
    // that gets neither was lost between the two.
    let server = NatsServer::single();
    let url = server.url();
    let (host, _) = echo_host(&url, "burst", "h1").await;
    let client = nats::connect(&url).await;
    let mut replies = client.subscribe("burst.replies").await.unwrap();
    client.flush().await.unwrap();
    let args = lattice::codec::encode(&std::collections::BTreeMap::from([(
        "text",
        "x".repeat(256),
    )]))
    .unwrap();
    // Calls pour in until the stop has ended, and 200 more after it.
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = {
        let (client, args, stopped) = (client.clone(), args.clone(), stopped.clone());
        tokio::spawn(async move {
            // Paced (50 a millisecond at most) and capped, so that the
            // replies never outrun this client's subscription buffer.
            let (mut sent, mut after) = (0usize, 0);
            while after < 200 && sent < 30_000 {
                client
                    .publish_with_reply(
                        "lattice.burst.rpc.echo.echo.echo",
                        "burst.replies",
                        args.clone().into(),
                    )
                    .await
                    .unwrap();
                sent += 1;
                if stopped.load(Ordering::Relaxed) {
                    after += 1;
                }
                if sent % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            client.flush().await.unwrap();
            sent
        })
    };
    let mut answered = 0;
    while answered < 1_000 {
        tokio::time::timeout(WAIT, replies.next()).await.unwrap();
        answered += 1;
    }
    host.stop_actor("echo").await.unwrap();
    stopped.store(true, Ordering::Relaxed);
    let calls = publisher.await.unwrap();
    let (mut served, mut no_responders) = (answered, 0);
    while served + no_responders < calls {
        match tokio::time::timeout(Duration::from_secs(5), replies.next()).await {
            Ok(Some(reply)) if reply.status == Some(async_nats::StatusCode::NO_RESPONDERS) => {
                no_responders += 1
            }
            Ok(Some(_)) => served += 1,
            _ => break,
        }
    }
    assert_eq!(
        served + no_responders,
        calls,
        "{served} answered by the host, {no_responders} by the server, {} lost",
        calls - served - no_responders
    );
    assert!(no_responders > 0, "calls came after the stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_shuts_down_while_its_server_is_gone() {
    let mut server = NatsServer::single();
    let (host, _) = echo_host(&server.url(), "gone", "h1").await;
    server.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(20), host.shutdown())
        .await
        .expect("the shutdown ends, bounded, with the server gone");
}
