//! Actors through daca's sidecar (release build) over a real redis-server.
//!
//! The project has one app, `host`, whose "process" is a `sleep` while this benchmark serves
//! its port as a Dapr actor host: `/dapr/config` registers type `Bench`, methods answer at
//! once, reminders are timed as they arrive. That keeps the app's own cost out of the figures.
//! Measured in one run:
//! - an actor method through the sidecar (`PUT /v1.0/actors/Bench/{id}/method/work`) against
//!   the same route on the app directly (`PUT /actors/Bench/{id}/method/work`): latency in an
//!   open loop at 1000 calls/s and throughput with one closed-loop worker per id, 32 ids;
//! - 10,000 reminders (one per actor) due in the same second, spread evenly across it: how
//!   many arrive and how late each is after its own due time (p50, p99, max);
//! - 10,000 more all due at the same instant (a burst): how long until the last arrives, and
//!   the rate.
//!
//! Only 127.0.0.1 is contacted. Run through `scripts/bench/actors`.

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
const REMINDERS: u64 = 10_000;

/// Each reminder's number (its `data`) and when it arrived, ns since the epoch.
#[derive(Default)]
struct Arrivals {
    count: AtomicU64,
    at: std::sync::Mutex<Vec<(u64, u64)>>,
}

async fn serve_host(port: u16, arrivals: Arc<Arrivals>) {
    use axum::extract::Path;
    use axum::routing::{delete, get, put};
    let config = || async {
        axum::Json(serde_json::json!({"entities": ["Bench"], "actorIdleTimeout": "1h"}))
    };
    let method = move |Path((_, _, method)): Path<(String, String, String)>, body: Bytes| {
        let arrivals = arrivals.clone();
        async move {
            if method.starts_with("remind/") {
                let at = now_ns();
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let n = body["data"].as_u64().unwrap();
                arrivals.at.lock().unwrap().push((n, at));
                arrivals.count.fetch_add(1, Ordering::Relaxed);
            }
            "ok"
        }
    };
    let router = axum::Router::new()
        .route("/dapr/config", get(config))
        .route("/healthz", get(|| async { "ok" }))
        .route("/actors/{type}/{id}/method/{*method}", put(method))
        .route("/actors/{type}/{id}", delete(|| async { "" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
}

/// `PUT path` on a connection of `pool`; the answer must be 200.
async fn put(pool: &Pool, path: String) {
    let taken = pool.0.lock().unwrap().pop();
    let mut sender = taken.expect("enough connections for the open loop");
    assert_eq!(send(&mut sender, "PUT", &path, Bytes::new()).await.0, 200);
    pool.0.lock().unwrap().push(sender);
}

async fn pool(port: u16) -> Pool {
    Pool(Arc::new(std::sync::Mutex::new(
        futures_util::future::join_all((0..64).map(|_| connect(port))).await,
    )))
}

/// Open-loop latencies of `PUT {prefix}{id}/method/work`, the ids taken in turn.
async fn open_loop(port: u16, prefix: &'static str) -> Vec<u64> {
    let pool = pool(port).await;
    let next = Arc::new(AtomicU64::new(0));
    latencies(PHASE, move || {
        let (pool, next) = (pool.clone(), next.clone());
        async move {
            let id = next.fetch_add(1, Ordering::Relaxed) % CONCURRENCY as u64;
            put(&pool, format!("{prefix}{id}/method/work")).await;
        }
    })
    .await
}

/// CPU time (user + system) a process has used, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's `)`: utime and stime are the 12th and 13th of them.
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// A closed loop's rate, and the CPU each call cost daca and this process (µs).
struct Loop {
    rate: f64,
    daca_us: f64,
    bench_us: f64,
}

async fn measured_loop(daca: u32, port: u16, prefix: &'static str) -> Loop {
    let (daca_before, bench_before) = (cpu_ticks(daca), cpu_ticks(std::process::id()));
    let rate = closed_loop(port, prefix).await;
    let calls = rate * PHASE.as_secs_f64();
    let per_call = |ticks: u64| ticks as f64 * 10_000.0 / calls;
    Loop {
        rate,
        daca_us: per_call(cpu_ticks(daca) - daca_before),
        bench_us: per_call(cpu_ticks(std::process::id()) - bench_before),
    }
}

/// Calls per second with one worker per id, each on its own connection.
async fn closed_loop(port: u16, prefix: &'static str) -> f64 {
    throughput(PHASE, move |id, deadline| async move {
        let mut sender = connect(port).await;
        let mut n = 0;
        let path = format!("{prefix}{id}/method/work");
        while Instant::now() < deadline {
            assert_eq!(send(&mut sender, "PUT", &path, Bytes::new()).await.0, 200);
            n += 1;
        }
        n
    })
    .await
}

/// RFC 3339 (UTC, with nanoseconds) of `ns` since the epoch.
fn rfc3339(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        ns % 1_000_000_000
    )
}

/// Registers REMINDERS reminders on actors `{prefix}{i}`, reminder i due at `due(i)`, from 32
/// workers; returns registrations/s.
async fn register(sidecar: u16, prefix: &'static str, due: fn(u64, u64) -> u64, base: u64) -> f64 {
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY as u64)
        .map(|w| {
            tokio::spawn(async move {
                let mut sender = connect(sidecar).await;
                for i in (w..REMINDERS).step_by(CONCURRENCY) {
                    let path = format!("/v1.0/actors/Bench/{prefix}{i}/reminders/once");
                    let at = rfc3339(due(base, i));
                    let body = Bytes::from(format!(r#"{{"dueTime":"{at}","data":{i}}}"#));
                    assert_eq!(send(&mut sender, "POST", &path, body).await.0, 204);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    REMINDERS as f64 / started.elapsed().as_secs_f64()
}

/// Spread: reminder i due `i` ten-thousandths of a second after `base`.
fn spread(base: u64, i: u64) -> u64 {
    base + i * (1_000_000_000 / REMINDERS)
}

fn burst(base: u64, _: u64) -> u64 {
    base
}

/// Registers a round of reminders, waits for them all (or 30 s past the due time), and
/// returns how late each arrived after its own due time (µs, sorted) and the registration rate.
async fn reminder_round(
    sidecar: u16,
    arrivals: &Arrivals,
    prefix: &'static str,
    due: fn(u64, u64) -> u64,
) -> (Vec<u64>, f64) {
    arrivals.count.store(0, Ordering::Relaxed);
    arrivals.at.lock().unwrap().clear();
    let base = (now_ns() / 1_000_000_000 + 3) * 1_000_000_000;
    let registered = register(sidecar, prefix, due, base).await;
    assert!(now_ns() < base, "registration overran the due time");
    let deadline = Instant::now() + Duration::from_nanos(base - now_ns()) + Duration::from_secs(30);
    while arrivals.count.load(Ordering::Relaxed) < REMINDERS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut late: Vec<u64> = arrivals
        .at
        .lock()
        .unwrap()
        .iter()
        .map(|(i, at)| at.saturating_sub(due(base, *i)) / 1000)
        .collect();
    late.sort_unstable();
    (late, registered)
}

#[tokio::main]
async fn main() {
    let redis_port = free_port();
    let redis = redis_server(redis_port);
    let (app, sidecar) = (free_port(), free_port());
    let project = tempfile::tempdir().unwrap();
    let manifest = format!(
        "name: bench\nnetwork: host\nredis: {{ url: redis://127.0.0.1:{redis_port} }}\napps:\n  - id: host\n    command: [\"sleep\", \"3600\"]\n    port: {app}\n    dapr_http_port: {sidecar}\n"
    );
    let daca = daca_up(project.path(), &manifest);
    let daca_pid = daca.id();
    let _processes = Processes(vec![daca, redis]);
    wait_for(sidecar, "/v1.0/healthz/outbound", |s, _| s == 204).await;
    // The "app" listens only now: daca checks at start that its port is free.
    let arrivals = Arc::new(Arrivals::default());
    serve_host(app, arrivals.clone()).await;
    wait_for(sidecar, "/v1.0/healthz", |s, _| s == 204).await;
    // Hosting once a call reaches the actor (the type is read when the app is ready).
    let mut probe = connect(sidecar).await;
    for _ in 0..200 {
        let path = "/v1.0/actors/Bench/probe/method/work";
        if send(&mut probe, "PUT", path, Bytes::new()).await.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Warm both paths (activation of the 32 ids, connection pools), then measure.
    closed_loop(sidecar, "/v1.0/actors/Bench/").await;
    let via = open_loop(sidecar, "/v1.0/actors/Bench/").await;
    let direct = open_loop(app, "/actors/Bench/").await;
    let via_loop = measured_loop(daca_pid, sidecar, "/v1.0/actors/Bench/").await;
    let direct_loop = measured_loop(daca_pid, app, "/actors/Bench/").await;
    let (via_rate, direct_rate) = (via_loop.rate, direct_loop.rate);

    // 10,000 reminders due across one second, then 10,000 due at one instant.
    let (spread_late, registered) = reminder_round(sidecar, &arrivals, "s", spread).await;
    let (burst_late, _) = reminder_round(sidecar, &arrivals, "b", burst).await;

    println!("actors through daca's sidecar (state store on redis-server)");
    let (a, d) = (ms(&via, 0.5), ms(&direct, 0.5));
    println!(
        "  method at {RATE}/s over {CONCURRENCY} ids: via sidecar {a:.3} / p99 {:.3} ms, direct {d:.3} / p99 {:.3} ms, added at the median {:.3} ms   (goal <= 0.3 ms; Dapr 1.17 publishes 2.30 ms p50 at 500 QPS)",
        ms(&via, 0.99),
        ms(&direct, 0.99),
        a - d
    );
    println!(
        "  throughput, one worker per id ({CONCURRENCY}): via sidecar {via_rate:.0} calls/s, direct {direct_rate:.0} calls/s, ratio {:.2}   (goal >= 0.50)",
        via_rate / direct_rate
    );
    println!(
        "  CPU per call: via sidecar {:.1} µs in daca + {:.1} µs here (client and app); direct {:.1} µs here   (2 cores shared by all three)",
        via_loop.daca_us, via_loop.bench_us, direct_loop.bench_us
    );
    if spread_late.is_empty() || burst_late.is_empty() {
        println!("  reminders: none arrived");
        return;
    }
    println!(
        "  {REMINDERS} reminders due across one second (registered at {registered:.0}/s): {} delivered, late p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms   (goal: all, p99 <= 100 ms)",
        spread_late.len(),
        ms(&spread_late, 0.5),
        ms(&spread_late, 0.99),
        ms(&spread_late, 1.0)
    );
    let last = ms(&burst_late, 1.0);
    println!(
        "  {REMINDERS} reminders due at one instant: {} delivered, the last {last:.1} ms after, {:.0} reminders/s   (Dapr's perf test: 15,463/s on a cluster)",
        burst_late.len(),
        burst_late.len() as f64 / (last / 1000.0).max(0.001)
    );
}
