//! Raw request/reply against lattice calls to the echo actor over the same
//! server: sequential latency and throughput at 64 B, 4 KiB and 64 KiB;
//! and where the wire path's cost goes (`decompose`).

use crate::measure::{
    BLOCKS, ROUNDS, Table, echo_args_64, scale, sequential_pair, spread, throughput,
    throughput_pair, us,
};
use crate::support::nats;
use example_echo_contract::Echo;
use example_echo_contract::EchoClient;
use futures_util::StreamExt;
use std::time::Duration;

/// The transport section.
pub(crate) async fn run(s: &crate::Setup<'_>, table: &mut Table) {
    let crate::Setup { client, echo, .. } = *s;
    let sizes: &[usize] = &[64, 4096, 65536];
    for &size in sizes {
        let data = vec![7u8; size];
        // A raw request/reply to the responder on `subject`.
        let raw_on = |subject: &'static str| {
            let data = &data;
            move || {
                let client = client.clone();
                let data = data.clone();
                async move {
                    client
                        .request(subject, data.into())
                        .await
                        .expect("raw reply");
                }
            }
        };
        let raw = raw_on("bench.raw");
        let ours = || {
            let echo = echo.clone();
            let data = data.clone();
            async move {
                echo.echo_bytes(data).await.expect("echo reply");
            }
        };
        // More calls at 64 B, where the targets are: blocks of 1,000 calls
        // disagreed by up to 16 us here, so a median of 3,000 was uncertain
        // by a few.
        let n = scale(match size {
            64 => 10_000,
            4096 => 3000,
            _ => 1000,
        });
        let ((raw_median, raw_p99), (our_median, our_p99), blocks) =
            sequential_pair(n, raw, ours).await;
        table.row(
            format!("sequential median, {size} B"),
            us(raw_median),
            us(our_median),
            format!(
                "{:+.1} us",
                (our_median.as_secs_f64() - raw_median.as_secs_f64()) * 1e6
            ),
        );
        spread(&format!("in {BLOCKS} blocks of the calls"), &blocks, |d| {
            format!("{d:+.1} us")
        });
        table.row(
            format!("sequential p99, {size} B"),
            us(raw_p99),
            us(our_p99),
            format!("{:.2}x", our_p99.as_secs_f64() / raw_p99.as_secs_f64()),
        );
        for inflight in [1usize, 16, 64] {
            if size > 4096 && inflight == 16 {
                continue;
            }
            let n = scale(match (size, inflight) {
                (64, 64) => 60_000,
                (65536, _) => 3000,
                _ => 20_000,
            });
            let (raw_rate, our_rate, rounds) = throughput_pair(n, inflight, raw, ours).await;
            table.row(
                format!("throughput, {inflight} in flight, {size} B"),
                format!("{raw_rate:.0}/s"),
                format!("{our_rate:.0}/s"),
                format!("{:.2}x", our_rate / raw_rate),
            );
            if (size, inflight) == (64, 64) {
                spread(&format!("in {ROUNDS} rounds"), &rounds, |r| {
                    format!("{r:.2}x")
                });
            }
        }
        if size == 64 {
            let queued = raw_on("bench.rawq");
            let n = scale(60_000);
            let (raw_rate, our_rate, rounds) = throughput_pair(n, 64, queued, ours).await;
            table.row(
                "throughput, 64 in flight, 64 B, raw queue group",
                format!("{raw_rate:.0}/s"),
                format!("{our_rate:.0}/s"),
                format!("{:.2}x", our_rate / raw_rate),
            );
            spread(&format!("in {ROUNDS} rounds"), &rounds, |r| {
                format!("{r:.2}x")
            });
        }
    }
}

/// Where the wire path's cost goes: raw request/reply with the headers a
/// lattice call carries, with a queue group, with a task per message.
pub(crate) async fn decompose(
    url: &str,
    server: Option<u32>,
    client: &async_nats::Client,
    echo: &EchoClient,
    table: &mut Table,
) {
    let responder = nats::connect(url).await;
    let mut plain = responder.subscribe("bench.hdr").await.expect("subscribes");
    let mut queue = responder
        .queue_subscribe("bench.queue", "q".into())
        .await
        .expect("subscribes");
    let mut spawn = responder
        .queue_subscribe("bench.spawn", "q".into())
        .await
        .expect("subscribes");
    // A stand-in for an actor named `raw`, answering every call with the
    // same reply: the generated client's own cost against a raw responder.
    let mut stand_in = responder
        .queue_subscribe("lattice.bench.rpc.raw.>", "raw".into())
        .await
        .expect("subscribes");
    let reply = bytes::Bytes::from(
        lattice::codec::encode(&serde_bytes::ByteBuf::from(vec![7u8; 64])).expect("encodes"),
    );
    responder.flush().await.expect("flush");
    let r = responder.clone();
    tokio::spawn(async move {
        while let Some(m) = plain.next().await {
            let _ = r.publish(m.reply.unwrap(), m.payload).await;
        }
    });
    let r = responder.clone();
    tokio::spawn(async move {
        while let Some(m) = queue.next().await {
            let _ = r.publish(m.reply.unwrap(), m.payload).await;
        }
    });
    let r = responder.clone();
    tokio::spawn(async move {
        while let Some(m) = stand_in.next().await {
            let _ = r.publish(m.reply.unwrap(), reply.clone()).await;
        }
    });
    let r = responder.clone();
    tokio::spawn(async move {
        while let Some(m) = spawn.next().await {
            let r = r.clone();
            tokio::spawn(async move {
                let _ = r.publish(m.reply.unwrap(), m.payload).await;
            });
        }
    });
    let mut one = async_nats::HeaderMap::new();
    one.insert(lattice::headers::FINGERPRINT, "0123456789abcdef");
    let mut headers = async_nats::HeaderMap::new();
    // The five headers lattice requests carried before they were cut to two
    // (the version header has no constant any more).
    headers.insert(lattice::headers::CONTRACT, "echo");
    headers.insert("Lattice-Contract-Version", "1");
    headers.insert(lattice::headers::FINGERPRINT, "0123456789abcdef");
    headers.insert(
        lattice::headers::TRACEPARENT,
        lattice::client::new_traceparent().as_str(),
    );
    headers.insert(lattice::headers::TIMEOUT_MS, "5000");
    let data = bytes::Bytes::from(vec![7u8; 64]);
    let n = scale(20_000);
    // CPU seconds of the server and of this process per call.
    let cpu = |pid: &str| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / 100.0
    };
    let server = server.map_or("0".to_owned(), |p| p.to_string());
    let mark = || (cpu(&server), cpu("self"));
    let mut report = |what: &str, rate: f64, before: (f64, f64), after: (f64, f64)| {
        let per = |a: f64, b: f64| (b - a) / n as f64 * 1e6;
        table.row(
            format!("64 in flight, 64 B: {what}"),
            format!("{rate:.0}/s"),
            format!("server {:.1} us", per(before.0, after.0)),
            format!("us {:.1} us", per(before.1, after.1)),
        );
    };
    let before = mark();
    let rate = throughput(n, 64, || async {
        client
            .request("bench.raw", data.clone())
            .await
            .expect("raw");
    })
    .await;
    report("raw, no headers", rate, before, mark());
    for (what, subject, headers) in [
        ("raw, 1 header", "bench.hdr", &one),
        ("raw, 5 headers", "bench.hdr", &headers),
        ("5 headers, queue group", "bench.queue", &headers),
        ("5 headers, queue, task per call", "bench.spawn", &headers),
    ] {
        let before = mark();
        let rate = throughput(n, 64, || async {
            let request = async_nats::Request::new()
                .payload(data.clone())
                .headers(headers.clone());
            client.send_request(subject, request).await.expect("reply");
        })
        .await;
        report(what, rate, before, mark());
    }
    // The two halves of a lattice call: the generated client against the
    // raw stand-in, and a raw request with the client's call prefix to the
    // host's echo actor (and, for comparison, with the two headers that
    // carried the same before the prefix).
    let stand_in = EchoClient::new(client.clone(), "bench", "raw").expect("client");
    let before = mark();
    let rate = throughput(n, 64, || async {
        stand_in.echo_bytes(data.to_vec()).await.expect("stand-in");
    })
    .await;
    report("lattice client, raw responder", rate, before, mark());
    let mut two = async_nats::HeaderMap::new();
    two.insert(
        lattice::headers::FINGERPRINT,
        format!("{:016x}", <dyn Echo as lattice::Contract>::FINGERPRINT),
    );
    two.insert(lattice::headers::TIMEOUT_MS, "5000");
    let args = bytes::Bytes::from(echo_args_64());
    let before = mark();
    let rate = throughput(n, 64, || async {
        let request = async_nats::Request::new()
            .payload(args.clone())
            .headers(two.clone());
        let reply = client
            .send_request("lattice.bench.rpc.echo.echo.echo_bytes", request)
            .await
            .expect("reply");
        assert!(reply.headers.is_none(), "an error reply");
    })
    .await;
    report("raw client, 2 headers, lattice host", rate, before, mark());
    let mut prefixed = lattice::prefix::CallPrefix {
        fingerprint: Some(<dyn Echo as lattice::Contract>::FINGERPRINT),
        budget_ms: Some(5000),
    }
    .encode()
    .to_vec();
    prefixed.extend_from_slice(&args);
    let prefixed = bytes::Bytes::from(prefixed);
    let lattice_host = || async {
        let reply = client
            .request("lattice.bench.rpc.echo.echo.echo_bytes", prefixed.clone())
            .await
            .expect("reply");
        assert!(reply.headers.is_none(), "an error reply");
    };
    let before = mark();
    let rate = throughput(n, 64, lattice_host).await;
    report(
        "raw client, call prefix, lattice host",
        rate,
        before,
        mark(),
    );
    let before = mark();
    let rate = throughput(n, 64, || async {
        echo.echo_bytes(data.to_vec()).await.expect("echo");
    })
    .await;
    report("lattice echo", rate, before, mark());

    // The same halves one call at a time, each paired with raw calls.
    let raw = || async {
        client
            .request("bench.raw", data.clone())
            .await
            .expect("raw");
    };
    let with_headers = || async {
        let request = async_nats::Request::new()
            .payload(data.clone())
            .headers(two.clone());
        client
            .send_request("bench.hdr", request)
            .await
            .expect("reply");
    };
    let lattice_client = || async {
        stand_in.echo_bytes(data.to_vec()).await.expect("stand-in");
    };
    let lattice_call = || async {
        echo.echo_bytes(data.to_vec()).await.expect("echo");
    };
    let n = scale(3000);
    let mut median =
        |what: &str, (raw, ours, _): ((Duration, Duration), (Duration, Duration), Vec<f64>)| {
            table.row(
                format!("sequential median, 64 B: {what}"),
                us(raw.0),
                us(ours.0),
                format!(
                    "{:+.1} us",
                    (ours.0.as_secs_f64() - raw.0.as_secs_f64()) * 1e6
                ),
            );
        };
    median(
        "raw, 2 headers",
        sequential_pair(n, raw, with_headers).await,
    );
    let queued = || async {
        client
            .request("bench.queue", data.clone())
            .await
            .expect("reply");
    };
    median("raw, queue group", sequential_pair(n, raw, queued).await);
    // What NATS alone makes of a lattice call's subject, queue group and
    // prefixed payload: the stand-in answers it without a host.
    let stand_in_raw = || async {
        client
            .request("lattice.bench.rpc.raw.echo.echo_bytes", prefixed.clone())
            .await
            .expect("reply");
    };
    median(
        "raw client, call prefix, raw stand-in",
        sequential_pair(n, raw, stand_in_raw).await,
    );
    median(
        "lattice client, raw responder",
        sequential_pair(n, raw, lattice_client).await,
    );
    median(
        "raw client, call prefix, lattice host",
        sequential_pair(n, raw, lattice_host).await,
    );
    median("lattice echo", sequential_pair(n, raw, lattice_call).await);
}
