//! The control interface and heartbeats over a real nats-server: ping every
//! host, inventories, start and stop through NATS, labels, bad requests.

mod support;

use std::time::Duration;

use example_echo_contract::EchoClient;
use lattice::{ErrorKind, headers};
use lattice_host::Host;
use lattice_host::control::{Heartbeat, HostSummary, Inventory};
use support::nats::{self, NatsServer};

const WAIT: Duration = Duration::from_secs(10);

/// A control request; `Ok(json)` or the typed error the host answered.
async fn control(
    nats: &async_nats::Client,
    subject: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, lattice::Error> {
    let payload = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    let request = async_nats::Request::new()
        .payload(payload.into())
        .timeout(Some(WAIT));
    let reply = nats
        .send_request(subject.to_owned(), request)
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    match reply.headers.as_ref().and_then(|h| h.get(headers::STATUS)) {
        None => Ok(value),
        Some(status) => {
            let kind = value["kind"].as_str().and_then(ErrorKind::from_name);
            let kind = kind.unwrap_or(ErrorKind::from_status(status.as_str().parse().unwrap()));
            Err(lattice::Error::new(
                kind,
                value["message"].as_str().unwrap_or_default().to_owned(),
            ))
        }
    }
}

/// Every reply to a lattice-wide request within `wait`.
async fn gather(
    nats: &async_nats::Client,
    subject: &str,
    wait: Duration,
) -> Vec<serde_json::Value> {
    use futures_util::StreamExt;
    let inbox = nats.new_inbox();
    let mut replies = nats.subscribe(inbox.clone()).await.unwrap();
    nats.publish_with_reply(subject.to_owned(), inbox, Vec::new().into())
        .await
        .unwrap();
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, replies.next()).await {
        all.push(serde_json::from_slice(&message.payload).unwrap());
    }
    all
}

async fn joined(url: &str, id: &str) -> Host {
    // Control requests may name module files in the directory the test
    // actors are built into.
    let modules = support::wasm("example-echo-actor")
        .parent()
        .unwrap()
        .to_owned();
    let host = Host::new(
        support::lattice_options("ctl", id)
            .module_dir(Some(modules))
            .label("zone", id)
            .heartbeat(Duration::from_millis(100)),
    )
    .unwrap();
    host.join(nats::connect(url).await).await.unwrap();
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_driven_over_nats() {
    let server = NatsServer::single();
    let _a = joined(&server.url(), "a").await;
    let _b = joined(&server.url(), "b").await;
    let nats = nats::connect(&server.url()).await;

    // Every host answers a lattice-wide ping.
    let mut pings: Vec<HostSummary> =
        gather(&nats, "lattice.ctl.ctl.ping", Duration::from_millis(500))
            .await
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect();
    pings.sort_by(|x, y| x.host.cmp(&y.host));
    assert_eq!(pings.len(), 2);
    assert_eq!((pings[0].host.as_str(), pings[1].host.as_str()), ("a", "b"));
    assert_eq!(pings[0].labels["zone"], "a");
    assert_eq!(pings[0].lattice, "ctl");

    // ANCHOR: start
    // Start an actor on host a through NATS, then call it.
    let path = support::wasm("example-echo-actor");
    let started = control(
        &nats,
        "lattice.ctl.ctl.host.a.start",
        serde_json::json!({ "name": "echo", "path": path, "limits": { "max_instances": 3 } }),
    )
    .await
    .unwrap();
    assert_eq!(started["name"], "echo");
    assert_eq!(started["max_instances"], 3);
    assert_eq!(started["inline"], true, "echo waits for nothing");
    assert_eq!(started["contracts"][0]["name"], "echo");
    let echo = EchoClient::new(nats.clone(), "ctl", "echo").unwrap();
    assert_eq!(
        echo.echo("via control".into()).await.unwrap(),
        "via control"
    );
    // ANCHOR_END: start

    let inventory: Inventory = serde_json::from_value(
        control(
            &nats,
            "lattice.ctl.ctl.host.a.inventory",
            serde_json::Value::Null,
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(inventory.host, "a");
    assert_eq!(inventory.actors.len(), 1);
    assert_eq!(inventory.actors[0].contracts[0].methods.len(), 3);
    let all = gather(
        &nats,
        "lattice.ctl.ctl.inventory",
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(all.len(), 2);

    // Labels.
    let labels = control(
        &nats,
        "lattice.ctl.ctl.host.b.labels",
        serde_json::json!({ "set": { "tier": "gold" }, "remove": ["zone"] }),
    )
    .await
    .unwrap();
    assert_eq!(labels, serde_json::json!({ "tier": "gold" }));

    // Stop it through NATS: calls then find nobody.
    control(
        &nats,
        "lattice.ctl.ctl.host.a.stop",
        serde_json::json!({ "name": "echo" }),
    )
    .await
    .unwrap();
    assert_eq!(
        echo.echo("gone".into()).await.unwrap_err().kind(),
        ErrorKind::NoResponders
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_control_requests_get_typed_errors() {
    let server = NatsServer::single();
    let _a = joined(&server.url(), "a").await;
    let nats = nats::connect(&server.url()).await;
    let cases = [
        (
            "lattice.ctl.ctl.host.a.explode",
            serde_json::Value::Null,
            ErrorKind::UnknownMethod,
        ),
        (
            "lattice.ctl.ctl.host.a.start",
            serde_json::json!({ "name": "x" }),
            ErrorKind::Decode,
        ),
        (
            "lattice.ctl.ctl.host.a.start",
            serde_json::json!({ "name": "x", "path": "/p", "colour": 1 }),
            ErrorKind::Decode,
        ),
        (
            "lattice.ctl.ctl.host.a.start",
            serde_json::json!({ "name": "Bad Name", "path": "/p" }),
            ErrorKind::InvalidName,
        ),
        (
            "lattice.ctl.ctl.host.a.start",
            serde_json::json!({ "name": "x", "path": "nonexistent.wasm" }),
            ErrorKind::NotFound,
        ),
        (
            "lattice.ctl.ctl.host.a.start",
            serde_json::json!({ "name": "x", "path": "/etc/passwd" }),
            ErrorKind::Unauthorized,
        ),
        (
            "lattice.ctl.ctl.host.a.stop",
            serde_json::json!({ "name": "nobody" }),
            ErrorKind::NotFound,
        ),
        (
            "lattice.ctl.ctl.host.a.labels",
            serde_json::json!({ "set": { "Bad Key": "v" } }),
            ErrorKind::InvalidName,
        ),
    ];
    for (subject, body, kind) in cases {
        let err = control(&nats, subject, body.clone()).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{subject} {body}: {err}");
    }
    // Not JSON at all.
    let reply = nats
        .request("lattice.ctl.ctl.host.a.start", "not json".into())
        .await
        .unwrap();
    assert!(reply.headers.unwrap().get(headers::STATUS).is_some());
    // The host still answers.
    control(
        &nats,
        "lattice.ctl.ctl.host.a.ping",
        serde_json::Value::Null,
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_say_who_runs_what() {
    use futures_util::StreamExt;
    let server = NatsServer::single();
    let nats = nats::connect(&server.url()).await;
    let mut beats = nats.subscribe("lattice.ctl.evt.*.heartbeat").await.unwrap();
    nats.flush().await.unwrap();
    let host = joined(&server.url(), "hb").await;
    support::start(
        &host,
        "echo",
        "example-echo-actor",
        lattice_host::ActorLimits::new().max_instances(5),
    )
    .await;
    let beat = loop {
        let message = tokio::time::timeout(WAIT, beats.next())
            .await
            .unwrap()
            .unwrap();
        let beat: Heartbeat = serde_json::from_slice(&message.payload).unwrap();
        if beat.actor_count == 1 {
            assert_eq!(message.subject.as_str(), "lattice.ctl.evt.hb.heartbeat");
            break beat;
        }
    };
    assert_eq!(beat.host, "hb");
    assert_eq!(beat.actors["echo"], 5);
    assert!(!beat.truncated);
    assert_eq!(beat.labels["zone"], "hb");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_answer_the_nats_micro_protocol() {
    let server = NatsServer::single();
    let host = joined(&server.url(), "disco").await;
    support::start(
        &host,
        "echo",
        "example-echo-actor",
        lattice_host::ActorLimits::new(),
    )
    .await;
    support::start(
        &host,
        "counter",
        "lattice-test-counter",
        lattice_host::ActorLimits::new(),
    )
    .await;
    let nats = nats::connect(&server.url()).await;
    let echo = EchoClient::new(nats.clone(), "ctl", "echo").unwrap();
    for text in ["a", "b", "c"] {
        echo.echo(text.into()).await.unwrap();
    }
    let _ = echo.echo_bytes(vec![1]).await.unwrap();

    // PING: one answer per actor, in the standard shape.
    let pings = gather(&nats, "$SRV.PING", Duration::from_millis(500)).await;
    assert_eq!(pings.len(), 2);
    for ping in &pings {
        let ping: async_nats::service::PingResponse = serde_json::from_value(ping.clone()).unwrap();
        assert_eq!(ping.kind, "io.nats.micro.v1.ping_response");
        assert!(ping.id.starts_with("disco_"));
    }

    // INFO of one service carries its contracts and its endpoints.
    let info = nats.request("$SRV.INFO.echo", "".into()).await.unwrap();
    let info: async_nats::service::Info = serde_json::from_slice(&info.payload).unwrap();
    assert_eq!(info.name, "echo");
    assert_eq!(info.kind, "io.nats.micro.v1.info_response");
    let contracts: Vec<lattice::ContractInfo> =
        serde_json::from_str(&info.metadata["contracts"]).unwrap();
    assert_eq!(contracts[0].name, "echo");
    assert_eq!(contracts[0].methods[0].args[0].name, "text");
    let endpoint = info
        .endpoints
        .iter()
        .find(|e| e.name == "echo.echo")
        .unwrap();
    assert_eq!(endpoint.subject, "lattice.ctl.rpc.echo.echo.echo");
    assert_eq!(endpoint.queue_group, "echo");
    // Exactly what the fingerprint hashes.
    assert_eq!(endpoint.metadata["signature"], "echo(text:String)->String");
    let fingerprint = u64::from_str_radix(&endpoint.metadata["fingerprint"], 16).unwrap();
    let sum = info
        .endpoints
        .iter()
        .filter(|e| e.name.starts_with("echo."))
        .map(|e| lattice::method_hash(&e.metadata["signature"]))
        .fold(0u64, u64::wrapping_add);
    assert_eq!(sum, fingerprint, "the signatures hash to the fingerprint");

    // The contract's types, with their fields and variants (JSON Schema).
    let info = nats.request("$SRV.INFO.counter", "".into()).await.unwrap();
    let info: async_nats::service::Info = serde_json::from_slice(&info.payload).unwrap();
    let contracts: Vec<lattice::ContractInfo> =
        serde_json::from_str(&info.metadata["contracts"]).unwrap();
    let counter = &contracts[0];
    let error = serde_json::to_string(&counter.types["CounterError"]).unwrap();
    for part in [r#""const":"Overflow""#, r#""InvalidName""#, r#""name":{"#] {
        assert!(error.contains(part), "{part} in {error}");
    }
    let checked_add = counter.method("checked_add").unwrap();
    assert_eq!(checked_add.args[0].schema["format"], "uint64");
    assert!(
        serde_json::to_string(&checked_add.returns_schema)
            .unwrap()
            .contains("#/types/CounterError")
    );

    // STATS count requests per method.
    let stats = nats.request("$SRV.STATS.echo", "".into()).await.unwrap();
    let stats: async_nats::service::Stats = serde_json::from_slice(&stats.payload).unwrap();
    let echoes = stats
        .endpoints
        .iter()
        .find(|e| e.name == "echo.echo")
        .unwrap();
    assert_eq!(echoes.requests, 3);
    assert_eq!(echoes.errors, 0);
    assert!(echoes.processing_time > Duration::ZERO);
    let bytes = stats
        .endpoints
        .iter()
        .find(|e| e.name == "echo.echo_bytes")
        .unwrap();
    assert_eq!(bytes.requests, 1);

    // Addressed by name and id.
    let one = gather(
        &nats,
        "$SRV.PING.counter.disco_counter",
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(one.len(), 1);
    assert!(
        gather(&nats, "$SRV.PING.nobody", Duration::from_millis(300))
            .await
            .is_empty()
    );
}

fn sleep_call(
    client: &lattice::Client,
    ms: u64,
) -> impl Future<Output = lattice::Result<bytes::Bytes>> + use<> {
    let client = client.clone();
    async move {
        let payload =
            lattice::codec::encode(&std::collections::BTreeMap::from([("ms", ms)])).unwrap();
        let mut call = lattice::RawCall::new("svc", "hostile", "sleep", payload.into());
        call.timeout = Some(WAIT);
        client.request(call).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_are_started_from_bytes_scaled_and_updated_without_dropping_calls() {
    let server = NatsServer::single();
    let _a = joined(&server.url(), "a").await;
    let nats = nats::connect(&server.url()).await;
    let client = lattice::Client::new(nats.clone(), "ctl").unwrap();

    // Start from the module's bytes, sent in the request.
    let hostile = std::fs::read(support::wasm("lattice-test-hostile")).unwrap();
    let started = control(
        &nats,
        "lattice.ctl.ctl.host.a.start",
        serde_json::json!({
            "name": "svc",
            "module": lattice_host::control::encode_module(&hostile),
            "limits": { "max_instances": 2, "inline": false },
        }),
    )
    .await
    .unwrap();
    assert_eq!(started["contracts"][0]["name"], "hostile");
    assert_eq!(started["max_instances"], 2);

    // Scale up: four slow calls now run at once instead of two at a time.
    let scaled = control(
        &nats,
        "lattice.ctl.ctl.host.a.scale",
        serde_json::json!({ "name": "svc", "max_instances": 4 }),
    )
    .await
    .unwrap();
    assert_eq!(scaled["max_instances"], 4);
    let start = std::time::Instant::now();
    let calls: Vec<_> = (0..4)
        .map(|_| tokio::spawn(sleep_call(&client, 300)))
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_millis(580),
        "4 calls of 300 ms on 4 instances took {:?}",
        start.elapsed()
    );

    // Update while calls are in flight: every one of them finishes on the
    // old module, and calls after the update reach the new one.
    let in_flight: Vec<_> = (0..4)
        .map(|_| tokio::spawn(sleep_call(&client, 400)))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let echo = std::fs::read(support::wasm("example-echo-actor")).unwrap();
    let updated = control(
        &nats,
        "lattice.ctl.ctl.host.a.update",
        serde_json::json!({ "name": "svc", "path": support::wasm("example-echo-actor") }),
    )
    .await
    .unwrap();
    for call in in_flight {
        call.await
            .unwrap()
            .expect("a call in flight during the update");
    }
    assert_eq!(updated["contracts"][0]["name"], "echo");
    assert_eq!(updated["max_instances"], 4, "the update keeps the scale");
    assert_eq!(
        updated["inline"], false,
        "the update keeps the limits: echo on fibers, as the start asked"
    );
    assert_eq!(
        updated["digest"].as_str().unwrap().len(),
        64,
        "a sha256 in hex"
    );
    assert_ne!(updated["digest"], started["digest"]);
    drop(echo);
    let svc = EchoClient::new(nats.clone(), "ctl", "svc").unwrap();
    assert_eq!(svc.echo("new module".into()).await.unwrap(), "new module");

    // Bad requests.
    let cases = [
        (
            "scale",
            serde_json::json!({ "name": "svc", "max_instances": 0 }),
            ErrorKind::Decode,
        ),
        (
            "scale",
            serde_json::json!({ "name": "nobody", "max_instances": 2 }),
            ErrorKind::NotFound,
        ),
        (
            "update",
            serde_json::json!({ "name": "nobody", "path": support::wasm("example-echo-actor") }),
            ErrorKind::NotFound,
        ),
        (
            "update",
            serde_json::json!({ "name": "svc", "module": "not base64!" }),
            ErrorKind::Decode,
        ),
        (
            "update",
            serde_json::json!({ "name": "svc", "module": lattice_host::control::encode_module(b"\0asm junk") }),
            ErrorKind::InvalidModule,
        ),
        (
            "start",
            serde_json::json!({ "name": "two", "path": "/p", "module": "AAAA" }),
            ErrorKind::Decode,
        ),
    ];
    for (op, body, kind) in cases {
        let subject = format!("lattice.ctl.ctl.host.a.{op}");
        let err = control(&nats, &subject, body.clone()).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{op} {body}: {err}");
    }
    // After all that, the actor still serves.
    assert_eq!(svc.echo("still".into()).await.unwrap(), "still");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_client_operates_a_lattice_from_rust() -> Result<(), lattice::Error> {
    let server = NatsServer::single();
    let _a = joined(&server.url(), "a").await;
    let _b = joined(&server.url(), "b").await;
    let nats = nats::connect(&server.url()).await;
    let module = std::fs::read(support::wasm("example-echo-actor")).unwrap();

    // ANCHOR: control_client
    use lattice_host::control::{ControlClient, StartRequest, encode_module};

    let control = ControlClient::new(nats.clone(), "ctl")?;
    let hosts = control.ping().await?;
    for host in &hosts {
        let request = StartRequest {
            name: "echo".into(),
            path: None,
            module: Some(encode_module(&module)),
            limits: Default::default(),
        };
        control.start(&host.host, &request).await?;
        control.scale(&host.host, "echo", 2).await?;
    }
    let echo = control.describe("echo").await?;
    assert_eq!(echo.contracts[0].name, "echo");
    // ANCHOR_END: control_client
    assert_eq!(hosts.len(), 2);
    let inventories = control.inventory().await?;
    assert!(
        inventories
            .iter()
            .all(|i| i.actors.len() == 1 && i.actors[0].max_instances == 2)
    );
    let err = control.describe("nobody").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoResponders);
    let err = control.stop("a", "nobody").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    control.stop_host("b").await?;
    lattice_host::control::ControlClient::new(nats, "ctl")?
        .ping()
        .await?
        .iter()
        .for_each(|h| assert_eq!(h.host, "a", "b left"));
    Ok(())
}
