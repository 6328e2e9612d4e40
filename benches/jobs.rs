//! Jobs and the cron binding through daca's sidecar (release build).
//!
//! The project has one app, `lab`, whose "process" is a `sleep` while this benchmark serves its
//! port: `POST /job/{name}` and `POST /cron` are timed as they arrive and answered at once, so
//! the app's own cost stays out of the figures. Measured in one run:
//! - 10,000 jobs (`dueTime` each, scheduled through the sidecar's Jobs API) due in the same
//!   second, spread evenly across it: how many arrive and how late each is after its own due
//!   time (p50, p99, max);
//! - a `bindings.cron` input binding `@every 1s` over SECONDS ticks (default 60): how far after
//!   its second boundary each tick arrives.
//!
//! Only 127.0.0.1 is contacted. Run through `scripts/bench/jobs [SECONDS]`.

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

const JOBS: u64 = 10_000;

/// When each job (by number) and each cron tick arrived, ns since the epoch.
#[derive(Default)]
struct Arrivals {
    jobs: AtomicU64,
    job_at: std::sync::Mutex<Vec<(u64, u64)>>,
    ticks: std::sync::Mutex<Vec<u64>>,
}

async fn serve_app(port: u16, arrivals: Arc<Arrivals>) {
    use axum::extract::Path;
    use axum::routing::{options, post};
    let jobs = arrivals.clone();
    let job = move |Path(name): Path<String>| {
        let arrivals = jobs.clone();
        async move {
            let at = now_ns();
            if let Some(n) = name.strip_prefix('j').and_then(|n| n.parse().ok()) {
                arrivals.job_at.lock().unwrap().push((n, at));
                arrivals.jobs.fetch_add(1, Ordering::Relaxed);
            }
            "{}"
        }
    };
    let cron = move || {
        let arrivals = arrivals.clone();
        async move {
            arrivals.ticks.lock().unwrap().push(now_ns());
            "{}"
        }
    };
    let router = axum::Router::new()
        .route("/job/{name}", post(job))
        .route("/cron", post(cron).merge(options(|| async { "" })));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
}

fn rfc3339(ns: u64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .unwrap()
        .to_string()
}

/// Schedules job `j{i}` due at `base + i/JOBS s` for each i, from 32 workers; returns jobs/s.
async fn schedule(sidecar: u16, base: u64) -> f64 {
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY as u64)
        .map(|w| {
            tokio::spawn(async move {
                let mut sender = connect(sidecar).await;
                for i in (w..JOBS).step_by(CONCURRENCY) {
                    let at = rfc3339(base + i * (1_000_000_000 / JOBS));
                    let body = Bytes::from(format!(r#"{{"dueTime":"{at}","data":{i}}}"#));
                    let path = format!("/v1.0/jobs/j{i}");
                    assert_eq!(send(&mut sender, "POST", &path, body).await.0, 204);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    JOBS as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(60);
    let (app, sidecar) = (free_port(), free_port());
    let project = tempfile::tempdir().unwrap();
    let resources = project.path().join("resources");
    std::fs::create_dir(&resources).unwrap();
    std::fs::write(
        resources.join("cron.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: cron\nspec:\n  type: bindings.cron\n  version: v1\n  metadata:\n    - name: schedule\n      value: \"@every 1s\"\n",
    )
    .unwrap();
    let manifest = format!(
        "name: bench\nnetwork: host\nresources: ./resources\nredis: {{ provider: embedded }}\napps:\n  - id: lab\n    command: [\"sleep\", \"3600\"]\n    port: {app}\n    dapr_http_port: {sidecar}\n"
    );
    let daca = daca_up(project.path(), &manifest);
    let _processes = Processes(vec![daca]);
    wait_for(sidecar, "/v1.0/healthz/outbound", |s, _| s == 204).await;
    // The "app" listens only now: daca checks at start that its port is free.
    let arrivals = Arc::new(Arrivals::default());
    serve_app(app, arrivals.clone()).await;
    wait_for(sidecar, "/v1.0/healthz", |s, _| s == 204).await;

    // 10,000 jobs due across one second, three seconds from now.
    let base = (now_ns() / 1_000_000_000 + 3) * 1_000_000_000;
    let scheduled = schedule(sidecar, base).await;
    assert!(now_ns() < base, "scheduling overran the due time");
    let deadline = Instant::now() + Duration::from_nanos(base - now_ns()) + Duration::from_secs(30);
    while arrivals.jobs.load(Ordering::Relaxed) < JOBS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut late: Vec<u64> = arrivals
        .job_at
        .lock()
        .unwrap()
        .iter()
        .map(|(i, at)| at.saturating_sub(base + i * (1_000_000_000 / JOBS)) / 1000)
        .collect();
    late.sort_unstable();

    // The cron binding's ticks, after the jobs are done.
    arrivals.ticks.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let mut offsets: Vec<u64> = arrivals
        .ticks
        .lock()
        .unwrap()
        .iter()
        .map(|at| (at % 1_000_000_000) / 1000)
        .collect();
    offsets.sort_unstable();

    println!("jobs and the cron binding through daca's sidecar");
    if late.is_empty() {
        println!("  jobs: none arrived");
    } else {
        println!(
            "  {JOBS} jobs due across one second (scheduled at {scheduled:.0}/s): {} delivered, late p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms   (goal: all, p99 <= 100 ms)",
            late.len(),
            ms(&late, 0.5),
            ms(&late, 0.99),
            ms(&late, 1.0)
        );
    }
    if offsets.is_empty() {
        println!("  cron: no tick arrived");
        return;
    }
    println!(
        "  cron @every 1s over {seconds} s: {} ticks, after the second boundary p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms   (goal: within 20 ms)",
        offsets.len(),
        ms(&offsets, 0.5),
        ms(&offsets, 0.99),
        ms(&offsets, 1.0)
    );
}
