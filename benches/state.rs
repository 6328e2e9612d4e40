//! State API throughput and latency: daca's sidecar vs the same Redis directly.
//!
//! Starts a redis-server and `daca up` (release build) on a throwaway project whose statestore
//! is that Redis, then, with 1 KiB values:
//! - throughput, closed loop: CONCURRENCY workers for a few seconds each, sidecar GET/SET
//!   (HTTP keep-alive, reqwest) vs direct GET/SET (one connection per worker, redis-rs);
//! - latency, open loop at 1000 requests/s: median and p99 of sidecar GET vs direct GET.
//! Only 127.0.0.1 is contacted. Run through `scripts/bench/state`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;
const PHASE: Duration = Duration::from_secs(4);
const RATE: u64 = 1000;

struct Guard(Vec<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `request` from CONCURRENCY workers for PHASE; returns requests per second.
async fn throughput<F, Fut>(request: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let request = Arc::new(request);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + PHASE;
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|worker| {
            let (request, done) = (request.clone(), done.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    request(worker, n).await;
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / PHASE.as_secs_f64()
}

/// Sends one request every 1/RATE s for PHASE (not waiting for answers); returns sorted latencies in µs.
async fn latencies<F, Fut>(request: F) -> Vec<u64>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let mut pending = Vec::new();
    let deadline = Instant::now() + PHASE;
    while Instant::now() < deadline {
        ticker.tick().await;
        let call = request();
        pending.push(tokio::spawn(async move {
            let started = Instant::now();
            call.await;
            started.elapsed().as_micros() as u64
        }));
    }
    let mut all = Vec::new();
    for p in pending {
        all.push(p.await.unwrap());
    }
    all.sort_unstable();
    all
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let redis_port = free_port();
    let sidecar_port = free_port();
    let project = tempfile::tempdir().unwrap();
    let redis = Command::new("redis-server")
        .args([
            "--port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH");
    let manifest = format!(
        "name: bench\nredis: {{ url: redis://127.0.0.1:{redis_port} }}\napps:\n  - id: bench-app\n    command: [\"sleep\", \"3600\"]\n    dapr_http_port: {sidecar_port}\n"
    );
    std::fs::write(project.path().join("daca.yaml"), manifest).unwrap();
    let daca = Command::new(env!("CARGO_BIN_EXE_daca"))
        .args(["up", "-d", project.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Guard(vec![daca, redis]);

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{sidecar_port}/v1.0/state/statestore");
    let value = "x".repeat(1024);
    let body = Arc::new(format!(r#"[{{"key":"bench-key","value":"{value}"}}]"#));
    for _ in 0..200 {
        if http
            .post(&base)
            .body(body.to_string())
            .send()
            .await
            .is_ok_and(|r| r.status() == 204)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = redis::Client::open(format!("redis://127.0.0.1:{redis_port}")).unwrap();
    let mut connections = Vec::new();
    for _ in 0..CONCURRENCY {
        connections.push(client.get_multiplexed_async_connection().await.unwrap());
    }
    let connections = Arc::new(connections);
    let _: () = redis::cmd("SET")
        .arg("direct-key")
        .arg(&value)
        .query_async(&mut connections[0].clone())
        .await
        .unwrap();

    let get_url = Arc::new(format!("{base}/bench-key"));
    let (h, u) = (http.clone(), get_url.clone());
    let sidecar_get = throughput(move |_, _| {
        let (h, u) = (h.clone(), u.clone());
        async move {
            let response = h.get(u.as_str()).send().await.unwrap();
            assert_eq!(response.bytes().await.unwrap().len(), 1026);
        }
    })
    .await;
    let (h, u, b) = (http.clone(), base.clone(), body.clone());
    let sidecar_set = throughput(move |_, _| {
        let (h, u, b) = (h.clone(), u.clone(), b.clone());
        async move {
            assert_eq!(
                h.post(u.as_str())
                    .body(b.to_string())
                    .send()
                    .await
                    .unwrap()
                    .status(),
                204
            );
        }
    })
    .await;
    let c = connections.clone();
    let direct_get = throughput(move |worker, _| {
        let mut connection = c[worker].clone();
        async move {
            let data: Vec<u8> = redis::cmd("GET")
                .arg("direct-key")
                .query_async(&mut connection)
                .await
                .unwrap();
            assert_eq!(data.len(), 1024);
        }
    })
    .await;
    let (c, v) = (connections.clone(), Arc::new(value.clone()));
    let direct_set = throughput(move |worker, _| {
        let (mut connection, v) = (c[worker].clone(), v.clone());
        async move {
            let _: () = redis::cmd("SET")
                .arg("direct-key")
                .arg(v.as_str())
                .query_async(&mut connection)
                .await
                .unwrap();
        }
    })
    .await;

    let (h, u) = (http.clone(), get_url.clone());
    let sidecar_latency = latencies(move || {
        let (h, u) = (h.clone(), u.clone());
        async move {
            h.get(u.as_str())
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
        }
    })
    .await;
    let c = connections.clone();
    let direct_latency = latencies(move || {
        let mut connection = c[0].clone();
        async move {
            let _: Vec<u8> = redis::cmd("GET")
                .arg("direct-key")
                .query_async(&mut connection)
                .await
                .unwrap();
        }
    })
    .await;

    println!(
        "state API, 1 KiB values, {CONCURRENCY} concurrent workers, {} s per phase",
        PHASE.as_secs()
    );
    println!(
        "{:<10}{:>16}{:>16}{:>10}",
        "", "sidecar req/s", "direct req/s", "ratio"
    );
    println!(
        "{:<10}{:>16.0}{:>16.0}{:>9.0}%",
        "GET",
        sidecar_get,
        direct_get,
        sidecar_get / direct_get * 100.0
    );
    println!(
        "{:<10}{:>16.0}{:>16.0}{:>9.0}%",
        "SET",
        sidecar_set,
        direct_set,
        sidecar_set / direct_set * 100.0
    );
    println!(
        "latency of GET at {RATE} req/s (open loop, {} requests each):",
        sidecar_latency.len()
    );
    let (sm, dm) = (
        percentile(&sidecar_latency, 0.5),
        percentile(&direct_latency, 0.5),
    );
    println!(
        "  sidecar: median {sm:.3} ms  p99 {:.3} ms",
        percentile(&sidecar_latency, 0.99)
    );
    println!(
        "  direct:  median {dm:.3} ms  p99 {:.3} ms",
        percentile(&direct_latency, 0.99)
    );
    println!(
        "  added by the sidecar at the median: {:.3} ms (goal <= 0.15 ms; Dapr 1.17 publishes ~0.28 ms)",
        sm - dm
    );
}
