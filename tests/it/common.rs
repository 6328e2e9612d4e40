//! Helpers shared by the integration tests.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Held for writing by the tests that need daca's default ports (6379, 3500, 50001, 8000),
/// and for reading by every other `daca up` (which would take those ports when they are free).
static PORTS: RwLock<()> = RwLock::new(());

thread_local! {
    /// Whether this test thread holds [`serial`].
    static EXCLUSIVE: Cell<bool> = const { Cell::new(false) };
}

/// The default ports for this test alone, until dropped.
pub struct Serial(#[allow(dead_code, reason = "held, not read")] RwLockWriteGuard<'static, ()>);

impl Drop for Serial {
    fn drop(&mut self) {
        EXCLUSIVE.set(false);
    }
}

/// Tests that use fixed ports (6379, 3500, 8000) run one at a time, and with no other
/// `daca up` running.
pub fn serial() -> Serial {
    let guard = PORTS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    EXCLUSIVE.set(true);
    Serial(guard)
}

thread_local! {
    /// This thread's share of [`PORTS`]: taken once however many `daca up`s it runs (a
    /// second read could wait behind a queued writer and never come).
    static SHARE: std::cell::RefCell<(usize, Option<RwLockReadGuard<'static, ()>>)> =
        const { std::cell::RefCell::new((0, None)) };
}

/// Held by a `daca up` of a test without [`serial`] while it runs: it may take a default
/// port, so no fixed-port test runs meanwhile.
pub struct SharedPorts(());

impl Drop for SharedPorts {
    fn drop(&mut self) {
        SHARE.with_borrow_mut(|(count, guard)| {
            *count -= 1;
            if *count == 0 {
                *guard = None;
            }
        });
    }
}

pub fn shared_ports() -> Option<SharedPorts> {
    if EXCLUSIVE.get() {
        return None;
    }
    SHARE.with_borrow_mut(|(count, guard)| {
        if *count == 0 {
            *guard = Some(
                PORTS
                    .read()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            );
        }
        *count += 1;
    });
    Some(SharedPorts(()))
}

/// The built `daca` binary.
pub fn daca() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_daca"));
    command
        .env("NO_COLOR", "1")
        .env("UV_PYTHON_DOWNLOADS", "never");
    command
}

/// Whether `tool` is on PATH. When it is not: skip (return false) on a developer's machine,
/// but fail under `.ci/run` (DACA_TEST_REQUIRE_ALL=1), where every test must really run.
pub fn have(tool: &str) -> bool {
    if which::which(tool).is_ok() {
        return true;
    }
    if std::env::var_os("DACA_TEST_REQUIRE_ALL").is_some() {
        panic!("`{tool}` is required by this test; scripts/test installs it");
    }
    eprintln!("skipped: `{tool}` is not on PATH (scripts/test installs it)");
    false
}

/// Polls `check` every 25 ms until it is true or `limit` passes.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    check()
}

/// [`wait_until`] for async tests: sleeps without blocking the runtime's threads.
pub async fn wait_until_async(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    check()
}

/// A port nothing listens on right now, and never one this test run handed out before: the
/// kernel may give the same ephemeral port to two binds in a row once the first is closed, and
/// a test that asks for two ports must get two.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Below the kernel's ephemeral range (32768-60999): a port the kernel gave out for bind(0)
    // can be handed to any test's outgoing connection once released, and a client socket
    // (a pooled keep-alive connection lasts minutes) on it makes a later listen there fail.
    let seed = std::process::id() as u64 ^ given.len() as u64;
    let mut next = seed.wrapping_mul(6364136223846793005).wrapping_add(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64),
    );
    loop {
        next = next
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let port = 20_000 + ((next >> 33) % 12_000) as u16;
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
}

pub fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Whether any process of group `pgid` is alive.
pub fn group_alive(pgid: u32) -> bool {
    // Zombies do not count: they hold no port, and this container's init may never reap them.
    daca::runtime::process::group_has_live_member(pgid as i32)
}

/// A copy of `tests/fixtures/<name>` in a new temporary folder.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = repo().join("tests/fixtures").join(name);
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", from.display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A one-line HTTP GET on 127.0.0.1; returns the status code and body.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http("GET", port, path)
}

/// An HTTP request without a body on 127.0.0.1; returns the status code and body.
pub fn http(method: &str, port: u16, path: &str) -> Option<(u16, String)> {
    http_request(port, method, path, "")
}

/// An HTTP request with a JSON body on 127.0.0.1; returns the status code and body.
pub fn http_request(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    http_request_with(port, method, path, body, &[])
}

/// [`http_request`] with extra headers.
pub fn http_request_with(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String)> {
    http_request_waiting(port, method, path, body, headers, Duration::from_secs(15))
}

/// The tokens of the control APIs the tests talk to, by port (see `dashboard::control_port`):
/// the helpers below send it to those ports, as the CLI does.
static CONTROL_TOKENS: std::sync::Mutex<Vec<(u16, String)>> = std::sync::Mutex::new(Vec::new());

/// Remembers that `port` is a control API whose token is `token`.
pub fn remember_control(port: u16, token: &str) {
    let mut tokens = CONTROL_TOKENS.lock().unwrap_or_else(|p| p.into_inner());
    tokens.retain(|(p, _)| *p != port);
    tokens.push((port, token.to_string()));
}

/// The `Authorization` header line for `port`, when it is a control API.
pub fn control_auth(port: u16) -> String {
    let tokens = CONTROL_TOKENS.lock().unwrap_or_else(|p| p.into_inner());
    tokens
        .iter()
        .find(|(p, _)| *p == port)
        .map(|(_, token)| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default()
}

/// [`http_request_with`] waiting up to `patience` for the answer.
pub fn http_request_waiting(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
    patience: Duration,
) -> Option<(u16, String)> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(patience)).ok()?;
    let mut extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    extra.push_str(&control_auth(port));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    let response = read_response(&mut stream)?;
    let status = response.get(9..12)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default()
        .to_string();
    Some((status, body))
}

/// [`http_request`] that also returns the response's headers (names lowercased).
pub fn http_request_full(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String, Vec<(String, String)>) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{body}",
        body.len(),
        control_auth(port)
    );
    stream.write_all(head.as_bytes()).unwrap();
    let response = read_response(&mut stream).unwrap_or_default();
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_default();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, body.to_string(), headers)
}

/// Reads one response: to its Content-Length when it has one (some servers, chromedriver
/// among them, say `Connection: close` and keep the socket open), else to the end.
fn read_response(stream: &mut std::net::TcpStream) -> Option<String> {
    use std::io::Read;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 16384];
    loop {
        let n = stream.read(&mut buffer).ok()?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&seen);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            });
            if length.is_some_and(|length| body.len() >= length) {
                break;
            }
        }
    }
    Some(String::from_utf8_lossy(&seen).into_owned())
}

/// A throwaway `redis-server` on a free port, stopped on drop.
pub struct RedisServer {
    child: std::process::Child,
    pub port: u16,
    password: Option<String>,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one, or None (skip) where redis-server is missing outside CI.
    pub fn start() -> Option<RedisServer> {
        if !have("redis-server") {
            return None;
        }
        Some(RedisServer::start_on(free_port()))
    }

    /// A server on `port` (to bring one back where another was).
    pub fn start_on(port: u16) -> RedisServer {
        RedisServer::launch(port, None)
    }

    /// A server that requires `password` (AUTH).
    pub fn start_with_password(password: &str) -> RedisServer {
        RedisServer::launch(free_port(), Some(password))
    }

    fn launch(port: u16, password: Option<&str>) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("redis-server")
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
            .arg("--dir")
            .arg(dir.path())
            .args(password.map(|p| ["--requirepass", p]).into_iter().flatten())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let server = RedisServer {
            child,
            port,
            password: password.map(String::from),
            _dir: dir,
        };
        assert!(
            wait_until(Duration::from_secs(10), || server.connection().is_some()),
            "redis-server did not start"
        );
        server
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    pub fn connection(&self) -> Option<redis::Connection> {
        let mut connection = redis::Client::open(self.url())
            .ok()?
            .get_connection()
            .ok()?;
        redis::cmd("PING").query::<String>(&mut connection).ok()?;
        Some(connection)
    }

    /// Runs one command.
    pub fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query(&mut self.connection().unwrap()).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
