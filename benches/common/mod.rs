//! What the benchmarks share: a raw keep-alive HTTP/1.1 client, process clean-up, closed-
//! and open-loop drivers. Only 127.0.0.1 is contacted.
#![allow(dead_code)] // each benchmark uses a part

pub mod h2load;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};

/// Now, in nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub const CONCURRENCY: usize = 32;
pub const RATE: u64 = 1000;

pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One keep-alive HTTP/1.1 connection to the sidecar.
pub async fn connect(port: u16) -> Sender {
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
pub async fn send(sender: &mut Sender, method: &str, path: &str, body: Bytes) -> (u16, usize) {
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

/// A throwaway redis-server on 127.0.0.1:`port`, without persistence.
pub fn redis_server(port: u16) -> Child {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH")
}

/// `daca up` on `project`, after writing `manifest` there as its daca.yaml: this build, or
/// the one `DACA_BIN` names (scripts/bench/ab compares two).
pub fn daca_up(project: &Path, manifest: &str) -> Child {
    std::fs::write(project.join("daca.yaml"), manifest).unwrap();
    let daca = std::env::var_os("DACA_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_daca").into());
    Command::new(daca)
        .args(["up", "-d", project.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

pub struct Processes(pub Vec<Child>);

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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `worker(i, deadline)` for CONCURRENCY workers; each returns how many requests it made.
pub async fn throughput<F, Fut>(phase: Duration, worker: F) -> f64
where
    F: Fn(usize, Instant) -> Fut,
    Fut: Future<Output = u64> + Send + 'static,
{
    let deadline = Instant::now() + phase;
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|i| tokio::spawn(worker(i, deadline)))
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    total as f64 / phase.as_secs_f64()
}

/// One request every 1/RATE s for `phase`, not waiting for answers; sorted latencies in µs.
pub async fn latencies<F, Fut>(phase: Duration, request: F) -> Vec<u64>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let deadline = Instant::now() + phase;
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

pub fn ms(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize] as f64 / 1000.0
}

/// A shared set of connections for the open-loop phase: take one, use it, put it back.
#[derive(Clone)]
pub struct Pool(pub Arc<std::sync::Mutex<Vec<Sender>>>);

impl Pool {
    pub async fn get(&self, path: &'static str) {
        let taken = self.0.lock().unwrap().pop();
        let mut sender = taken.expect("enough connections for the open loop");
        let (status, _) = send(&mut sender, "GET", path, Bytes::new()).await;
        assert!(status < 300);
        self.0.lock().unwrap().push(sender);
    }
}

/// Waits until `GET path` on 127.0.0.1:`port` answers as `want` (status, body length) says.
pub async fn wait_for(port: u16, path: &'static str, want: impl Fn(u16, usize) -> bool) {
    for _ in 0..400 {
        if let Ok(Ok(stream)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        {
            drop(stream);
            let (status, len) = send(&mut connect(port).await, "GET", path, Bytes::new()).await;
            if want(status, len) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("127.0.0.1:{port}{path} never became ready");
}
