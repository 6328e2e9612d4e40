//! What a resiliency policy costs on the success path (release build): service invocation
//! from a sidecar whose Resiliency gives the target a retry, a timeout and a circuit breaker,
//! against the same invocation from a sidecar with no policy (the resource is scoped to one
//! caller), in one run. The target's "process" is a `sleep` while this benchmark serves its
//! `/echo`, so the app's own cost stays out. The two callers take turns, four rounds of 2 s
//! each at 1000 requests/s, so drift of the machine lands on both.
//!
//! Only 127.0.0.1 is contacted. Run through `scripts/bench/resiliency`.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::disallowed_types,
    reason = "a benchmark unwraps its setup and reads as one sequence of measurements"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;

const ROUND: Duration = Duration::from_secs(2);
const ROUNDS: usize = 4;

const RESILIENCY: &str = "apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: { name: bench }
scopes: [guarded]
spec:
  policies:
    timeouts: { general: 5s }
    retries: { threeTimes: { policy: constant, duration: 1s, maxRetries: 3 } }
    circuitBreakers: { cb: { maxRequests: 1, timeout: 30s, trip: consecutiveFailures > 5 } }
  targets:
    apps:
      sub: { timeout: general, retry: threeTimes, circuitBreaker: cb }
";

async fn pool(port: u16) -> Pool {
    Pool(Arc::new(std::sync::Mutex::new(
        futures_util::future::join_all((0..64).map(|_| connect(port))).await,
    )))
}

#[tokio::main]
async fn main() {
    let (app, plain, guarded) = (free_port(), free_port(), free_port());
    let project = tempfile::tempdir().unwrap();
    let resources = project.path().join("resources");
    std::fs::create_dir(&resources).unwrap();
    std::fs::write(resources.join("resiliency.yaml"), RESILIENCY).unwrap();
    let manifest = format!(
        "name: bench\nnetwork: host\nresources: ./resources\nredis: {{ provider: embedded }}\napps:\n  - id: sub\n    command: [\"sleep\", \"3600\"]\n    port: {app}\n  - id: plain\n    command: [\"sleep\", \"3600\"]\n    dapr_http_port: {plain}\n  - id: guarded\n    command: [\"sleep\", \"3600\"]\n    dapr_http_port: {guarded}\n"
    );
    let daca = daca_up(project.path(), &manifest);
    let _processes = Processes(vec![daca]);
    wait_for(plain, "/v1.0/healthz/outbound", |s, _| s == 204).await;
    wait_for(guarded, "/v1.0/healthz/outbound", |s, _| s == 204).await;
    // The "app" listens only now: daca checks at start that its port is free.
    let router = axum::Router::new().route("/echo", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", app))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    wait_for(plain, "/v1.0/invoke/sub/method/echo", |s, _| s == 200).await;

    let (via_plain, via_guarded) = (pool(plain).await, pool(guarded).await);
    let path = "/v1.0/invoke/sub/method/echo";
    // Warm-up: connections, the caller's policy lookup, the breaker made on first use.
    for p in [&via_plain, &via_guarded] {
        let p = p.clone();
        latencies(Duration::from_millis(500), move || {
            let p = p.clone();
            async move { p.get(path).await }
        })
        .await;
    }
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for (p, into) in [(&via_plain, &mut without), (&via_guarded, &mut with)] {
            let p = p.clone();
            into.extend(
                latencies(ROUND, move || {
                    let p = p.clone();
                    async move { p.get(path).await }
                })
                .await,
            );
        }
    }
    without.sort_unstable();
    with.sort_unstable();
    let (a, b) = (ms(&without, 0.5), ms(&with, 0.5));
    println!("service invocation with and without a resiliency policy (success path)");
    println!(
        "  no policy: median {a:.3} ms, p99 {:.3} ms ({} calls)",
        ms(&without, 0.99),
        without.len()
    );
    println!(
        "  timeout + retry + circuit breaker: median {b:.3} ms, p99 {:.3} ms ({} calls)",
        ms(&with, 0.99),
        with.len()
    );
    println!(
        "  extra at the median: {:.3} ms (ratio {:.3})   (goal <= 0.02 ms)",
        b - a,
        b / a
    );
}
