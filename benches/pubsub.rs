//! Pub/sub and invocation through daca's sidecars (release build) over a real redis-server.
//!
//! The project has two apps: `pub` (no port; it only publishes) and `sub`, whose "process" is a
//! `sleep` while this benchmark itself serves its port: `/dapr/subscribe`, the event route and
//! an `/echo` method. That keeps the app's own cost out of the figures. Measured in one run:
//! - publish-to-delivery latency (median, p99), publishing 500 events/s for 4 s;
//! - sustained publish throughput (32 workers, keep-alive, 4 s) and delivered events/s;
//! - invocation's added latency at 1000 requests/s: `pub`'s sidecar → `sub` vs `sub` directly.
//!
//! Only 127.0.0.1 is contacted. Run through `scripts/bench/pubsub`.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::disallowed_types,
    reason = "a benchmark unwraps its setup and reads as one sequence of measurements"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use common::*;

const PHASE: Duration = Duration::from_secs(4);

#[derive(Default)]
struct Sink {
    delivered: AtomicU64,
    latencies: std::sync::Mutex<Vec<u64>>,
}

async fn serve_app(port: u16, sink: Arc<Sink>) {
    use axum::routing::{get, post};
    let subscribe = || async {
        axum::Json(
            serde_json::json!([{"pubsubname": "pubsub", "topic": "bench", "route": "/events"}]),
        )
    };
    let events = move |body: Bytes| {
        let sink = sink.clone();
        async move {
            let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if let Some(sent) = event["data"]["t"].as_u64() {
                sink.latencies
                    .lock()
                    .unwrap()
                    .push((now_ns().saturating_sub(sent)) / 1000);
            }
            sink.delivered.fetch_add(1, Ordering::Relaxed);
            axum::Json(serde_json::json!({"status": "SUCCESS"}))
        }
    };
    let router = axum::Router::new()
        .route("/dapr/subscribe", get(subscribe))
        .route("/events", post(events))
        .route("/echo", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
}

#[tokio::main]
async fn main() {
    let redis_port = free_port();
    let redis = redis_server(redis_port);
    let (app, pub_sidecar, sub_sidecar) = (free_port(), free_port(), free_port());
    let project = tempfile::tempdir().unwrap();
    let manifest = format!(
        "name: bench\nnetwork: host\nredis: {{ url: redis://127.0.0.1:{redis_port} }}\napps:\n  - id: sub\n    command: [\"sleep\", \"3600\"]\n    port: {app}\n    dapr_http_port: {sub_sidecar}\n  - id: pub\n    command: [\"sleep\", \"3600\"]\n    dapr_http_port: {pub_sidecar}\n"
    );
    let daca = daca_up(project.path(), &manifest);
    let _processes = Processes(vec![daca, redis]);
    wait_for(pub_sidecar, "/v1.0/healthz/outbound", |s, _| s == 204).await;
    // The "app" listens only now: daca checks at start that its port is free.
    let sink = Arc::new(Sink::default());
    serve_app(app, sink.clone()).await;
    wait_for(sub_sidecar, "/v1.0/metadata", |s, len| s == 200 && len > 0).await;
    wait_for(sub_sidecar, "/v1.0/healthz", |s, _| s == 204).await;
    // Subscribed once the metadata lists the subscription.
    for _ in 0..200 {
        let mut sender = connect(sub_sidecar).await;
        let request = hyper::Request::get("/v1.0/metadata")
            .header("host", "127.0.0.1")
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        let body = http_body_util::BodyExt::collect(
            sender.send_request(request).await.unwrap().into_body(),
        )
        .await
        .unwrap()
        .to_bytes();
        if String::from_utf8_lossy(&body).contains("\"bench\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Delivery latency at 500 events/s.
    let pool = Pool(Arc::new(std::sync::Mutex::new(
        futures_util::future::join_all((0..64).map(|_| connect(pub_sidecar))).await,
    )));
    let mut ticker = tokio::time::interval(Duration::from_millis(2));
    let deadline = Instant::now() + PHASE;
    let mut sent = 0u64;
    while Instant::now() < deadline {
        ticker.tick().await;
        let pool = pool.clone();
        tokio::spawn(async move { publish(&pool, now_ns()).await });
        sent += 1;
    }
    while sink.delivered.load(Ordering::Relaxed) < sent {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut delivery = std::mem::take(&mut *sink.latencies.lock().unwrap());
    delivery.sort_unstable();

    // Sustained publishing, then how fast the backlog is delivered.
    let before = sink.delivered.load(Ordering::Relaxed);
    let started = Instant::now();
    let published = throughput(PHASE, |_, deadline| async move {
        let mut sender = connect(pub_sidecar).await;
        let mut n = 0;
        while Instant::now() < deadline {
            let body = Bytes::from(format!(r#"{{"n":{n}}}"#));
            let path = "/v1.0/publish/pubsub/bench";
            assert_eq!(send(&mut sender, "POST", path, body).await.0, 204);
            n += 1;
        }
        n
    })
    .await;
    let total = (published * PHASE.as_secs_f64()) as u64;
    while sink.delivered.load(Ordering::Relaxed) - before < total {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered_rate = total as f64 / started.elapsed().as_secs_f64();

    // Invocation vs calling the app directly, open loop at 1000 requests/s.
    let via = Pool(Arc::new(std::sync::Mutex::new(
        futures_util::future::join_all((0..64).map(|_| connect(pub_sidecar))).await,
    )));
    let direct = Pool(Arc::new(std::sync::Mutex::new(
        futures_util::future::join_all((0..64).map(|_| connect(app))).await,
    )));
    let invoked = latencies(PHASE, move || {
        let p = via.clone();
        async move { p.get("/v1.0/invoke/sub/method/echo").await }
    })
    .await;
    let straight = latencies(PHASE, move || {
        let p = direct.clone();
        async move { p.get("/echo").await }
    })
    .await;

    println!("pub/sub over Redis Streams and invocation through daca's sidecars");
    println!(
        "  delivery latency, {} events at 500/s: median {:.3} ms, p99 {:.3} ms   (goal: median <= 2 ms)",
        delivery.len(),
        ms(&delivery, 0.5),
        ms(&delivery, 0.99)
    );
    println!(
        "  publish throughput, {CONCURRENCY} workers: {published:.0} events/s   (goal >= 10,000); delivered {delivered_rate:.0} events/s"
    );
    let (a, d) = (ms(&invoked, 0.5), ms(&straight, 0.5));
    println!(
        "  invocation at {RATE}/s: via sidecar {a:.3} / p99 {:.3} ms, direct {d:.3} / p99 {:.3} ms, added at the median {:.3} ms   (goal <= 0.3 ms; Dapr 1.17 publishes ~1.06 ms)",
        ms(&invoked, 0.99),
        ms(&straight, 0.99),
        a - d
    );
}

async fn publish(pool: &Pool, t: u64) {
    let taken = pool.0.lock().unwrap().pop();
    let mut sender = taken.expect("enough connections");
    let body = Bytes::from(format!(r#"{{"t":{t}}}"#));
    let path = "/v1.0/publish/pubsub/bench";
    let request = hyper::Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(body))
        .unwrap();
    sender.ready().await.unwrap();
    let status = sender.send_request(request).await.unwrap().status();
    assert_eq!(status, 204);
    pool.0.lock().unwrap().push(sender);
}
