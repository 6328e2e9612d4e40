//! State API throughput and latency: daca's sidecar vs the same Redis directly.
//!
//! Starts a redis-server and `daca up` (release build) on a throwaway project whose statestore
//! is that Redis, then, with 1 KiB values:
//! - throughput, closed loop: CONCURRENCY workers for a few seconds each, each with its own
//!   keep-alive connection: sidecar GET/SET over HTTP/1.1 vs direct GET/SET with redis-rs;
//! - latency, open loop at 1000 requests/s: median and p99 of sidecar GET vs direct GET, plus
//!   the sidecar's health endpoint (the HTTP round trip alone, no store).
//!
//! The load generator, daca and Redis share the machine's cores. Only 127.0.0.1 is contacted.
//! Run through `scripts/bench/state`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};

const CONCURRENCY: usize = 32;
const PHASE: Duration = Duration::from_secs(2);
const ROUNDS: usize = 5;
const LATENCY_PHASE: Duration = Duration::from_secs(4);
const RATE: u64 = 1000;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One keep-alive HTTP/1.1 connection to the sidecar.
async fn connect(port: u16) -> Sender {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

/// Sends one request and reads the whole answer; returns the status and body length.
async fn send(sender: &mut Sender, method: &str, path: &str, body: Bytes) -> (u16, usize) {
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .body(Full::new(body))
        .unwrap();
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .len(),
    )
}

struct Processes(Vec<Child>);

impl Drop for Processes {
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

/// Runs `worker(i, deadline)` for CONCURRENCY workers; each returns how many requests it made.
async fn throughput<F, Fut>(worker: F) -> f64
where
    F: Fn(usize, Instant) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    let deadline = Instant::now() + PHASE;
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|i| tokio::spawn(worker(i, deadline)))
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    total as f64 / PHASE.as_secs_f64()
}

/// One request every 1/RATE s for LATENCY_PHASE, not waiting for answers; sorted latencies in µs.
async fn latencies<F, Fut>(request: F) -> Vec<u64>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let deadline = Instant::now() + LATENCY_PHASE;
    let mut pending = Vec::new();
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

fn ms(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize] as f64 / 1000.0
}

/// A shared set of connections for the open-loop phase: take one, use it, put it back.
#[derive(Clone)]
struct Pool(Arc<std::sync::Mutex<Vec<Sender>>>);

impl Pool {
    async fn get(&self, path: &'static str) {
        let taken = self.0.lock().unwrap().pop();
        let mut sender = taken.expect("enough connections for the open loop");
        let (status, _) = send(&mut sender, "GET", path, Bytes::new()).await;
        assert!(status < 300);
        self.0.lock().unwrap().push(sender);
    }
}

#[tokio::main]
async fn main() {
    let (redis_port, sidecar) = (free_port(), free_port());
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
        "name: bench\nredis: {{ url: redis://127.0.0.1:{redis_port} }}\napps:\n  - id: bench-app\n    command: [\"sleep\", \"3600\"]\n    dapr_http_port: {sidecar}\n"
    );
    std::fs::write(project.path().join("daca.yaml"), manifest).unwrap();
    let daca = Command::new(env!("CARGO_BIN_EXE_daca"))
        .args(["up", "-d", project.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _processes = Processes(vec![daca, redis]);

    let value = "x".repeat(1024);
    let body = Bytes::from(format!(r#"[{{"key":"bench-key","value":"{value}"}}]"#));
    for _ in 0..200 {
        if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", sidecar)).await {
            drop(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        send(
            &mut connect(sidecar).await,
            "POST",
            "/v1.0/state/statestore",
            body.clone()
        )
        .await
        .0,
        204
    );
    let client = redis::Client::open(format!("redis://127.0.0.1:{redis_port}")).unwrap();
    let direct = Arc::new(
        futures_util::future::join_all(
            (0..CONCURRENCY).map(|_| client.get_multiplexed_async_connection()),
        )
        .await,
    );
    let mut first = direct[0].as_ref().unwrap().clone();
    let _: () = redis::cmd("SET")
        .arg("direct-key")
        .arg(&value)
        .query_async(&mut first)
        .await
        .unwrap();

    let script = redis::Script::new(daca::state::WRITE_SCRIPT);
    let quoted = format!("\"{value}\"");
    let mut rows: [Vec<(f64, f64)>; 3] = Default::default();
    for _ in 0..ROUNDS {
        let sidecar_get = throughput(|_, deadline| async move {
            let mut sender = connect(sidecar).await;
            let mut n = 0;
            while Instant::now() < deadline {
                let path = "/v1.0/state/statestore/bench-key";
                assert_eq!(
                    send(&mut sender, "GET", path, Bytes::new()).await,
                    (200, 1026)
                );
                n += 1;
            }
            n
        })
        .await;
        let direct_get = throughput(|i, deadline| {
            let mut connection = direct[i].as_ref().unwrap().clone();
            async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    let data: Vec<u8> = redis::cmd("GET")
                        .arg("direct-key")
                        .query_async(&mut connection)
                        .await
                        .unwrap();
                    assert_eq!(data.len(), 1024);
                    n += 1;
                }
                n
            }
        })
        .await;
        let sidecar_set = throughput(|_, deadline| {
            let body = body.clone();
            async move {
                let mut sender = connect(sidecar).await;
                let mut n = 0;
                while Instant::now() < deadline {
                    let path = "/v1.0/state/statestore";
                    assert_eq!(send(&mut sender, "POST", path, body.clone()).await.0, 204);
                    n += 1;
                }
                n
            }
        })
        .await;
        let direct_set = throughput(|i, deadline| {
            let (mut connection, value) = (direct[i].as_ref().unwrap().clone(), value.clone());
            async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    let _: () = redis::cmd("SET")
                        .arg("direct-key")
                        .arg(&value)
                        .query_async(&mut connection)
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            }
        })
        .await;
        // The same etag/version script a sidecar SET runs, called directly: what a Dapr-layout
        // write costs Redis before any HTTP is involved.
        let direct_script = throughput(|i, deadline| {
            let mut connection = direct[i].as_ref().unwrap().clone();
            let (script, quoted) = (script.clone(), quoted.clone());
            async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    let _: i64 = script
                        .key("direct-hash")
                        .arg("set")
                        .arg("0")
                        .arg(&quoted)
                        .arg("1")
                        .arg("")
                        .invoke_async(&mut connection)
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            }
        })
        .await;
        rows[0].push((sidecar_get, direct_get));
        rows[1].push((sidecar_set, direct_set));
        rows[2].push((sidecar_set, direct_script));
    }

    let pool = Pool(Arc::new(std::sync::Mutex::new(
        futures_util::future::join_all((0..64).map(|_| connect(sidecar))).await,
    )));
    let p = pool.clone();
    let sidecar_latency = latencies(move || {
        let p = p.clone();
        async move { p.get("/v1.0/state/statestore/bench-key").await }
    })
    .await;
    let health_latency = latencies(move || {
        let p = pool.clone();
        async move { p.get("/v1.0/healthz").await }
    })
    .await;
    let direct_latency = latencies(move || {
        let mut connection = first.clone();
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
        "state API, 1 KiB values, {CONCURRENCY} concurrent workers on keep-alive connections, \
         {ROUNDS} interleaved rounds of {} s per measurement",
        PHASE.as_secs()
    );
    println!(
        "{:<34}{:>14}{:>14}{:>8}   per round",
        "", "sidecar req/s", "direct req/s", "median"
    );
    let names = [
        "GET  vs Redis GET",
        "SET  vs Redis SET",
        "SET  vs the same write script",
    ];
    for (name, row) in names.iter().zip(&rows) {
        let mut ratios: Vec<f64> = row.iter().map(|(s, d)| s / d * 100.0).collect();
        ratios.sort_by(f64::total_cmp);
        let median = |f: fn(&(f64, f64)) -> f64| {
            let mut v: Vec<f64> = row.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let each: Vec<String> = row
            .iter()
            .map(|(s, d)| format!("{:.0}%", s / d * 100.0))
            .collect();
        println!(
            "{name:<34}{:>14.0}{:>14.0}{:>7.0}%   {}",
            median(|r| r.0),
            median(|r| r.1),
            ratios[ratios.len() / 2],
            each.join(" ")
        );
    }
    println!(
        "latency at {RATE} req/s, open loop, {} requests each (median / p99):",
        sidecar_latency.len()
    );
    let (sm, dm, hm) = (
        ms(&sidecar_latency, 0.5),
        ms(&direct_latency, 0.5),
        ms(&health_latency, 0.5),
    );
    println!(
        "  sidecar state GET   {sm:.3} / {:.3} ms",
        ms(&sidecar_latency, 0.99)
    );
    println!(
        "  direct Redis GET    {dm:.3} / {:.3} ms",
        ms(&direct_latency, 0.99)
    );
    println!(
        "  sidecar healthz     {hm:.3} / {:.3} ms   (the HTTP round trip alone)",
        ms(&health_latency, 0.99)
    );
    println!(
        "  added by the sidecar at the median: {:.3} ms (goal <= 0.15 ms; Dapr 1.17 publishes ~0.28 ms)",
        sm - dm
    );
}
