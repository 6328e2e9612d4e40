//! Pods for containers. A container's network namespace belongs to the engine (a root daemon,
//! usually), which daca may not enter; so the pod is the engine's own (a pod container on the
//! engine's network, which the app's container joins, as Kubernetes joins a pod's containers to
//! its pause container), and daca's addresses inside it are served by a small relay: daca's own
//! binary, run in the pod container (`daca __pod-relay`, with the host's loader and libraries
//! mounted beside it, so it runs in any image). It listens inside the pod (the sidecar's 3500
//! and 50001, the other apps' cluster names, Redis) and carries each connection to daca over a
//! Unix socket mounted from daca's side; connections from daca into the pod (the app's host
//! ports, the sidecar's channel, readiness probes) go the other way, on daca's request.
//!
//! On the socket, every connection starts with one line, then carries the bytes as they are:
//! - `control` (relay → daca, first): daca writes `dial N PORT` and `listen ADDRESS=TARGET`
//!   (an app joined the project) lines on it; end of file there means daca is gone, and the
//!   relay exits (its container with it).
//! - `to TARGET` (relay → daca): a connection accepted in the pod for TARGET, which daca places.
//! - `back N ok` / `back N refused` (relay → daca): the answer to `dial N PORT`, followed by that
//!   connection to 127.0.0.1:PORT in the pod.
//! - `probe PORT` (a host client → daca): daca dials PORT in the pod and answers `ok` or
//!   `refused` (readiness probes, from the supervisor, which only knows the socket's path).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{Mutex, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// How long a dial into the pod may take (the relay answers in a millisecond when it is up).
const DIAL: Duration = Duration::from_secs(5);
/// The longest first line.
const LINE: usize = 256;

/// Reads one line (without its `\n`) byte by byte, so nothing after it is consumed.
async fn read_line<R: AsyncRead + Unpin>(from: &mut R) -> std::io::Result<String> {
    let mut line = Vec::new();
    loop {
        let byte = from.read_u8().await?;
        if byte == b'\n' {
            break;
        }
        if line.len() == LINE {
            return Err(std::io::Error::other("line too long"));
        }
        line.push(byte);
    }
    String::from_utf8(line).map_err(std::io::Error::other)
}

/// Copies both ways until either side ends.
async fn splice<A, B>(mut a: A, mut b: B)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
}

/// Where daca places a connection the relay accepted for a target.
pub type Place = Arc<
    dyn Fn(String) -> futures_util::future::BoxFuture<'static, Option<TcpStream>> + Send + Sync,
>;

/// daca's end of one pod's relay.
pub struct Hub {
    socket: PathBuf,
    control: Mutex<Option<tokio::net::unix::OwnedWriteHalf>>,
    connected: watch::Sender<bool>,
    pending: crate::sync::Mutex<HashMap<u64, oneshot::Sender<Option<UnixStream>>>>,
    next: AtomicU64,
    /// Set once the app's sidecar exists (the app starts after that).
    place: std::sync::OnceLock<Place>,
}

impl Hub {
    /// Listens at `socket` (in a folder the pod container mounts).
    pub fn bind(socket: &Path) -> std::io::Result<(Arc<Hub>, UnixListener)> {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket)?;
        let hub = Hub {
            socket: socket.to_path_buf(),
            control: Mutex::new(None),
            connected: watch::channel(false).0,
            pending: Default::default(),
            next: AtomicU64::new(1),
            place: std::sync::OnceLock::new(),
        };
        Ok((Arc::new(hub), listener))
    }

    /// The socket's path (what probes connect to).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Where `to` connections go from now on.
    pub fn set_place(&self, place: Place) {
        let _ = self.place.set(place);
    }

    /// Serves the relay's connections until `token`.
    pub async fn serve(self: Arc<Self>, listener: UnixListener, token: CancellationToken) {
        let connections = tokio_util::task::TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                _ = token.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else { continue };
            let hub = self.clone();
            let token = token.clone();
            connections.spawn(async move {
                tokio::select! {
                    _ = token.cancelled() => {}
                    _ = hub.one(stream) => {}
                }
            });
        }
        connections.close();
        connections.wait().await;
        let _ = std::fs::remove_file(&self.socket);
    }

    async fn one(self: Arc<Self>, mut stream: UnixStream) {
        let Ok(line) = tokio::time::timeout(DIAL, read_line(&mut stream)).await else {
            return;
        };
        let line = line.unwrap_or_default();
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["control"] => {
                let (mut read, write) = stream.into_split();
                *self.control.lock().await = Some(write);
                self.connected.send_replace(true);
                // Nothing comes this way; its end is the relay's.
                let _ = read.read_u8().await;
                *self.control.lock().await = None;
                self.connected.send_replace(false);
            }
            ["to", target] => {
                let Some(place) = self.place.get() else {
                    return;
                };
                if let Some(to) = place(target.to_string()).await {
                    let _ = to.set_nodelay(true);
                    splice(stream, to).await;
                }
            }
            ["back", n, answer] => {
                let waiter = n
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| self.pending.lock().remove(&n));
                if let Some(waiter) = waiter {
                    let _ = waiter.send((answer == "ok").then_some(stream));
                }
            }
            ["probe", port] => {
                let ok = match port.parse::<u16>() {
                    Ok(port) => self.connect(port).await.is_ok(),
                    Err(_) => false,
                };
                let answer: &[u8] = if ok { b"ok\n" } else { b"refused\n" };
                let _ = stream.write_all(answer).await;
            }
            _ => tracing::debug!("pod relay: unknown line {line:?}"),
        }
    }

    /// Waits until the relay has connected, up to `limit`.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        let mut connected = self.connected.subscribe();
        tokio::time::timeout(limit, connected.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Asks the relay to listen at `spec` (`ADDRESS=TARGET`) too.
    pub async fn listen(&self, spec: &str) -> std::io::Result<()> {
        let mut control = self.control.lock().await;
        let control = control
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the pod's relay is not connected"))?;
        control
            .write_all(format!("listen {spec}\n").as_bytes())
            .await
    }

    /// A connection to 127.0.0.1:`port` inside the pod.
    pub async fn connect(&self, port: u16) -> std::io::Result<UnixStream> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(n, tx);
        let asked = async {
            let mut control = self.control.lock().await;
            let control = control
                .as_mut()
                .ok_or_else(|| std::io::Error::other("the pod's relay is not connected"))?;
            control
                .write_all(format!("dial {n} {port}\n").as_bytes())
                .await
        };
        let result = match asked.await {
            Ok(()) => match tokio::time::timeout(DIAL, rx).await {
                Ok(Ok(Some(stream))) => Ok(stream),
                Ok(_) => Err(std::io::ErrorKind::ConnectionRefused.into()),
                Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
            },
            Err(err) => Err(err),
        };
        self.pending.lock().remove(&n);
        result
    }
}

/// A readiness probe from outside daca's runtime: whether 127.0.0.1:`port` in the pod whose
/// relay socket is `socket` accepts a connection.
pub async fn probe(socket: &Path, port: u16) -> bool {
    let attempt = async {
        let mut stream = UnixStream::connect(socket).await?;
        stream
            .write_all(format!("probe {port}\n").as_bytes())
            .await?;
        read_line(&mut stream).await
    };
    matches!(attempt.await.as_deref(), Ok("ok"))
}

/// The relay itself, in the pod container: listens at every `address=TARGET` of `listens`,
/// and serves daca's dials, until daca closes the control connection.
pub async fn run(socket: &Path, listens: &[String]) -> std::io::Result<()> {
    // The other apps' names lead to the pod's own IPv6 prefix (see `peer_net`).
    if let Err(err) = super::peer_net::route_prefix() {
        eprintln!("pod relay: cannot route the peers' addresses to the loopback: {err}");
    }
    let mut listeners = Vec::new();
    for listen in listens {
        listeners.push(bind(listen).await?);
    }
    let socket = socket.to_path_buf();
    for (listener, target) in listeners {
        tokio::spawn(accept(listener, target, socket.clone()));
    }
    let mut control = UnixStream::connect(&socket).await?;
    control.write_all(b"control\n").await?;
    loop {
        let line = match read_line(&mut control).await {
            Ok(line) => line,
            // daca has gone.
            Err(_) => return Ok(()),
        };
        match line.split(' ').collect::<Vec<_>>()[..] {
            ["dial", n, port] => {
                tokio::spawn(dial(socket.clone(), n.to_string(), port.to_string()));
            }
            ["listen", spec] => match bind(spec).await {
                Ok((listener, target)) => {
                    tokio::spawn(accept(listener, target, socket.clone()));
                }
                Err(err) => eprintln!("pod relay: cannot listen: {err}"),
            },
            _ => eprintln!("pod relay: unknown request {line:?}"),
        }
    }
}

/// A listener for `ADDRESS=TARGET`, and the target.
async fn bind(spec: &str) -> std::io::Result<(TcpListener, String)> {
    let (address, target) = spec
        .split_once('=')
        .ok_or_else(|| std::io::Error::other(format!("not ADDRESS=TARGET: {spec}")))?;
    let address: SocketAddr = address.parse().map_err(std::io::Error::other)?;
    let listener = super::peer_net::listen(address)
        .and_then(|listener| {
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)
        })
        .map_err(|e| std::io::Error::new(e.kind(), format!("{address}: {e}")))?;
    Ok((listener, target.to_string()))
}

async fn accept(listener: TcpListener, target: String, socket: PathBuf) {
    while let Ok((from, _)) = listener.accept().await {
        let (target, socket) = (target.clone(), socket.clone());
        tokio::spawn(async move {
            let _ = from.set_nodelay(true);
            let Ok(mut to) = UnixStream::connect(&socket).await else {
                return;
            };
            if to
                .write_all(format!("to {target}\n").as_bytes())
                .await
                .is_ok()
            {
                splice(from, to).await;
            }
        });
    }
}

async fn dial(socket: PathBuf, n: String, port: String) {
    let address = format!("127.0.0.1:{port}");
    let inside = tokio::time::timeout(DIAL, TcpStream::connect(&address)).await;
    let Ok(mut back) = UnixStream::connect(&socket).await else {
        return;
    };
    match inside {
        Ok(Ok(inside)) => {
            let _ = inside.set_nodelay(true);
            if back
                .write_all(format!("back {n} ok\n").as_bytes())
                .await
                .is_ok()
            {
                splice(inside, back).await;
            }
        }
        _ => {
            let _ = back
                .write_all(format!("back {n} refused\n").as_bytes())
                .await;
        }
    }
}

/// Host path → container path.
pub type Mounts = Vec<(String, String)>;

/// What runs the relay inside any image: daca's binary and the loader and libraries it was
/// linked with, as (host path, path in the container) mounts, and the command line's start.
pub fn runtime_files(exe: &Path) -> std::io::Result<(Mounts, Vec<String>)> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut loader = None;
    for line in maps.lines() {
        let Some(path) = line.split_whitespace().nth(5).map(Path::new) else {
            continue;
        };
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !path.is_absolute() || !name.contains(".so") {
            continue;
        }
        let Some(dir) = path.parent().map(Path::to_path_buf) else {
            continue;
        };
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
        let index = dirs
            .iter()
            .position(|d| *d == *path.parent().unwrap_or(path));
        if name.starts_with("ld-") {
            loader = index.map(|i| format!("{IN_POD}/lib{i}/{name}"));
        }
    }
    let mut mounts = vec![(exe.display().to_string(), format!("{IN_POD}/daca"))];
    let libraries: Vec<String> = (0..dirs.len())
        .map(|i| format!("{IN_POD}/lib{i}"))
        .collect();
    for (i, dir) in dirs.iter().enumerate() {
        mounts.push((dir.display().to_string(), format!("{IN_POD}/lib{i}")));
    }
    let command = match loader {
        Some(loader) => vec![
            loader,
            "--library-path".into(),
            libraries.join(":"),
            format!("{IN_POD}/daca"),
        ],
        // Statically linked: it runs as it is.
        None => vec![format!("{IN_POD}/daca")],
    };
    Ok((mounts, command))
}

/// Where daca's files are in a pod container.
pub const IN_POD: &str = "/.daca";
