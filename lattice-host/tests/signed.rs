//! Signed actors: `lattice_host::claims` signing real modules, a host with
//! trusted issuers refusing every module it must refuse (each its own
//! test), on every path a module arrives by, and the capabilities of the
//! claims enforced on the calls and publishes an actor makes.

mod support;

use lattice::ErrorKind;
use lattice_host::claims::{self, Claims};
use lattice_host::{ActorLimits, Call, Host, HostOptions};
use nkeys::KeyPair;
use serde::Serialize;

fn module(package: &str) -> Vec<u8> {
    std::fs::read(support::wasm(package)).unwrap()
}

/// Claims for `contracts`, granting `calls` and `publishes`.
fn claims_for(contracts: &[&str], calls: &[&str], publishes: &[&str]) -> Claims {
    let strings = |items: &[&str]| items.iter().map(|c| c.to_string()).collect();
    let mut claims = Claims::new(KeyPair::new_module().public_key(), strings(contracts));
    claims.lattice.calls = strings(calls);
    claims.lattice.publishes = strings(publishes);
    claims
}

fn signed_echo(issuer: &KeyPair) -> Vec<u8> {
    claims::sign(
        &module("example-echo-actor"),
        claims_for(&["echo"], &[], &[]),
        issuer,
    )
    .unwrap()
}

fn trusting(issuer: &KeyPair) -> Host {
    Host::new(support::options().trust(issuer.public_key())).unwrap()
}

async fn refused(host: &Host, module: Vec<u8>, says: &str) {
    let err = host
        .start_actor("echo", module, ActorLimits::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(err.message().contains(says), "{says:?} in {err}");
    assert!(host.inventory().actors.is_empty());
}

#[test]
fn signing_embeds_claims_that_read_back() {
    let issuer = KeyPair::new_account();
    let plain = module("example-echo-actor");
    let signed = signed_echo(&issuer);
    assert!(claims::read(&plain).unwrap().is_none());
    let read = claims::read(&signed).unwrap().unwrap();
    assert_eq!(read.iss, issuer.public_key());
    assert_eq!(read.lattice.hash, claims::module_hash(&plain).unwrap());
    // The hash leaves the claims out: signing again replaces them.
    assert_eq!(claims::module_hash(&signed).unwrap(), read.lattice.hash);
    let again = claims::sign(&signed, claims_for(&["echo"], &["*"], &[]), &issuer).unwrap();
    assert!(
        again.len() < signed.len() + 100,
        "one claims section, not two"
    );
    assert_eq!(claims::read(&again).unwrap().unwrap().lattice.calls, ["*"]);
    // Only an issuer (account) key signs.
    let err = claims::sign(
        &plain,
        claims_for(&["echo"], &[], &[]),
        &KeyPair::new_user(),
    );
    assert_eq!(err.unwrap_err().kind(), ErrorKind::InvalidName);
}

#[tokio::test]
async fn a_trusting_host_runs_a_module_signed_by_its_issuer() {
    let issuer = KeyPair::new_account();
    let host = trusting(&issuer);
    let info = host
        .start_actor("echo", signed_echo(&issuer), ActorLimits::new())
        .await
        .unwrap();
    assert_eq!(info.name, "echo");
    let args = lattice::codec::encode(&serde_json::json!({"text": "signed"})).unwrap();
    let reply = host
        .invoke(Call::new("echo", "echo", "echo", &args))
        .await
        .unwrap();
    assert_eq!(lattice::codec::decode::<String>(&reply).unwrap(), "signed");
}

#[tokio::test]
async fn an_unsigned_module_is_refused() {
    let host = trusting(&KeyPair::new_account());
    refused(&host, module("example-echo-actor"), "not signed").await;
    // From a file too.
    let err = host
        .start_actor_file(
            "echo",
            support::wasm("example-echo-actor"),
            ActorLimits::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
}

#[tokio::test]
async fn a_tampered_module_is_refused() {
    let issuer = KeyPair::new_account();
    let mut signed = signed_echo(&issuer);
    // One byte of code, past the header.
    let at = signed.len() / 2;
    signed[at] ^= 0x01;
    refused(
        &trusting(&issuer),
        signed.clone(),
        "changed after it was signed",
    )
    .await;
    // A host that trusts nobody still refuses a signed module that lies.
    refused(&support::host(), signed, "changed after it was signed").await;
}

#[tokio::test]
async fn changed_claims_are_refused() {
    let issuer = KeyPair::new_account();
    let signed = signed_echo(&issuer);
    // Widen the claims without the issuer's key: the signature no longer
    // matches.
    let token_at = signed.windows(3).position(|w| w == b"eyJ").unwrap();
    let token = std::str::from_utf8(&signed[token_at..]).unwrap().to_owned();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: serde_json::Value =
        serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
    payload["lattice"]["calls"] = serde_json::json!(["*"]);
    parts[1] = engine.encode(serde_json::to_vec(&payload).unwrap());
    // The module with the changed token as its claims section.
    let mut forged = module("example-echo-actor");
    wasm_encoder::Section::append_to(
        &wasm_encoder::CustomSection {
            name: lattice::abi::CLAIMS_SECTION.into(),
            data: parts.join(".").into_bytes().into(),
        },
        &mut forged,
    );
    refused(&trusting(&issuer), forged, "signature").await;
}

#[tokio::test]
async fn an_expired_module_is_refused() {
    let issuer = KeyPair::new_account();
    let mut expired = claims_for(&["echo"], &[], &[]);
    expired.exp = Some(claims::now() - 1);
    let signed = claims::sign(&module("example-echo-actor"), expired, &issuer).unwrap();
    refused(&trusting(&issuer), signed, "expired").await;
}

#[tokio::test]
async fn a_module_not_yet_valid_is_refused() {
    let issuer = KeyPair::new_account();
    let mut later = claims_for(&["echo"], &[], &[]);
    later.nbf = Some(claims::now() + 3600);
    let signed = claims::sign(&module("example-echo-actor"), later, &issuer).unwrap();
    refused(&trusting(&issuer), signed, "not valid yet").await;
}

#[tokio::test]
async fn a_module_of_an_untrusted_issuer_is_refused() {
    let host = trusting(&KeyPair::new_account());
    refused(
        &host,
        signed_echo(&KeyPair::new_account()),
        "does not trust",
    )
    .await;
}

#[tokio::test]
async fn a_module_signed_for_other_contracts_is_refused() {
    let issuer = KeyPair::new_account();
    let signed = claims::sign(
        &module("example-echo-actor"),
        claims_for(&["counter"], &[], &[]),
        &issuer,
    )
    .unwrap();
    refused(&trusting(&issuer), signed, "which its claims do not list").await;
}

#[tokio::test]
async fn an_update_to_an_unsigned_module_is_refused_and_the_old_one_serves() {
    let issuer = KeyPair::new_account();
    let host = trusting(&issuer);
    host.start_actor("echo", signed_echo(&issuer), ActorLimits::new())
        .await
        .unwrap();
    let err = host
        .update_actor("echo", module("example-echo-actor"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let args = lattice::codec::encode(&serde_json::json!({"text": "still"})).unwrap();
    host.invoke(Call::new("echo", "echo", "echo", &args))
        .await
        .unwrap();
}

#[test]
fn hosts_refuse_a_trust_list_that_is_not_issuers() {
    for bad in ["", "nope", &KeyPair::new_user().public_key()] {
        let err = Host::new(HostOptions::new().module_cache(None).trust(bad)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidName, "{bad:?}: {err}");
    }
}

#[derive(Serialize)]
struct AddTo<'a> {
    counter: &'a str,
    by: u64,
}

#[derive(Serialize)]
struct EchoVia<'a> {
    actor: &'a str,
    text: &'a str,
}

#[tokio::test]
async fn calls_and_publishes_outside_the_claims_are_unauthorized() {
    let issuer = KeyPair::new_account();
    let host = trusting(&issuer);
    // The relay may call the counter's `counter` contract, nothing else.
    let relay = claims::sign(
        &module("example-relay-actor"),
        claims_for(&["relay", "echo"], &["counter.counter"], &[]),
        &issuer,
    )
    .unwrap();
    let counter = claims::sign(
        &module("example-counter-actor"),
        claims_for(&["counter"], &[], &["counter.reset"]),
        &issuer,
    )
    .unwrap();
    host.start_actor("relay", relay, ActorLimits::new())
        .await
        .unwrap();
    host.start_actor("counter", counter, ActorLimits::new())
        .await
        .unwrap();
    host.start_actor("echo", signed_echo(&issuer), ActorLimits::new())
        .await
        .unwrap();

    let add = lattice::codec::encode(&AddTo {
        counter: "counter/a",
        by: 2,
    })
    .unwrap();
    let reply = host
        .invoke(Call::new("relay", "relay", "add_to", &add))
        .await
        .unwrap();
    assert_eq!(
        lattice::codec::decode::<Result<u64, String>>(&reply).unwrap(),
        Ok(2)
    );
    let via = lattice::codec::encode(&EchoVia {
        actor: "echo",
        text: "x",
    })
    .unwrap();
    let reply = host
        .invoke(Call::new("relay", "relay", "echo_via", &via))
        .await
        .unwrap();
    let denied = lattice::codec::decode::<Result<String, String>>(&reply)
        .unwrap()
        .unwrap_err();
    assert!(denied.contains("may not call echo on `echo`"), "{denied}");

    // The counter may publish counter.reset: its reset's event arrives.
    let mut events = host.published();
    host.invoke(Call::new("counter/a", "counter", "reset", &[0x80]))
        .await
        .unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.subject, "counter.reset");
}

#[derive(Serialize)]
struct Subject<'a> {
    subject: &'a str,
}

#[derive(Debug, serde::Deserialize)]
struct Failure {
    kind: String,
    message: String,
}

#[tokio::test]
async fn publishes_are_granted_by_subject_pattern() {
    let issuer = KeyPair::new_account();
    let host = trusting(&issuer);
    let shared = claims::sign(
        &module("lattice-test-shared"),
        claims_for(&["shared"], &[], &["audit.>", "orders.*"]),
        &issuer,
    )
    .unwrap();
    host.start_actor("shared", shared, ActorLimits::new())
        .await
        .unwrap();
    for (subject, granted) in [
        ("audit.a.b", true),
        ("orders.new", true),
        ("orders.new.eu", false),
        ("audit", false),
        ("billing.x", false),
    ] {
        let args = lattice::codec::encode(&Subject { subject }).unwrap();
        let reply = host
            .invoke(Call::new("shared", "shared", "publish", &args))
            .await
            .unwrap();
        let result = lattice::codec::decode::<Result<(), Failure>>(&reply).unwrap();
        match result {
            Ok(()) => assert!(granted, "{subject} was published"),
            Err(e) => {
                assert!(!granted, "{subject}: {e:?}");
                assert_eq!(e.kind, "unauthorized", "{e:?}");
                assert!(e.message.contains("may not publish"), "{e:?}");
            }
        }
    }
}

/// Deployments fetch modules from the lattice's object store: a trusting
/// host refuses an unsigned one there too, and the deployment says why; a
/// signed one deploys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_of_unsigned_modules_fail_on_a_trusting_host() {
    use lattice_host::deploy::store::Stores;
    use lattice_host::deploy::{Deployment, status::status};
    use support::nats::{self, NatsServer};

    let issuer = KeyPair::new_account();
    let server = NatsServer::jetstream();
    let host =
        Host::new(support::lattice_options("signed", "h").trust(issuer.public_key())).unwrap();
    host.join(nats::connect(&server.url()).await).await.unwrap();
    let nats = nats::connect(&server.url()).await;
    let stores = Stores::open(&nats, "signed").await.unwrap();
    let control = lattice_host::control::ControlClient::new(nats.clone(), "signed")
        .unwrap()
        .wait(std::time::Duration::from_millis(300));
    let deploy = |name: &str, module: String| Deployment {
        name: name.into(),
        module,
        replicas: Some(1),
        daemon: false,
        requirements: Default::default(),
        spread: Vec::new(),
        limits: Default::default(),
    };
    let unsigned = stores.upload(&module("example-echo-actor")).await.unwrap();
    stores.put(&deploy("plain", unsigned)).await.unwrap();
    let signed = stores.upload(&signed_echo(&issuer)).await.unwrap();
    stores.put(&deploy("signed", signed)).await.unwrap();
    let start = std::time::Instant::now();
    loop {
        let desired = stores.list().await.unwrap();
        let reports = control.deployments().await.unwrap();
        let all = status(&desired, &reports);
        let of = |name: &str| all.iter().find(|s| s.name == name).cloned();
        if let (Some(plain), Some(signed)) = (of("plain"), of("signed"))
            && plain.status == "failed"
            && signed.is_deployed()
        {
            let reason = plain.reason.unwrap();
            assert!(reason.contains("not signed"), "{reason}");
            break;
        }
        assert!(start.elapsed().as_secs() < 20, "{all:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let names: Vec<String> = host
        .inventory()
        .actors
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["signed"]);
}
