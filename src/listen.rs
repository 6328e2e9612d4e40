//! What every listener of daca keeps to, whoever connects: a bound on the connections served
//! at once (the rest wait in the kernel's backlog, not in daca's memory), a deadline for a
//! request's headers (Dapr's 10 s: a client that trickles its headers, or never sends them,
//! loses its connection instead of holding it), and an accept loop that survives running out
//! of file descriptors. Each is reported by one clear log line, not one per connection.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Connections one listener serves at once. Far above what a development loop opens (an app's
/// client pool holds a few dozen), far below the file descriptors daca may hold.
pub const MAX_CONNECTIONS: usize = 4096;

/// How long a client may take to send a request's headers, from the moment the connection
/// waits for them (so an idle keep-alive connection also closes after it, as uvicorn closes
/// its own after 5 s). daprd's `ReadHeaderTimeout`.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections the kernel holds for a listener until daca accepts them (clamped to
/// `net.core.somaxconn`). std and tokio ask for 128, which a burst of connections overflows:
/// the rest of the burst then waits for SYN retransmits, 1 s, 3 s and more.
pub const BACKLOG: i32 = 4096;

/// Raises `listener`'s backlog to [`BACKLOG`], however it was bound (calling `listen` again
/// on a listening socket only changes its backlog).
pub fn widen_backlog(listener: &TcpListener) {
    if let Err(err) = socket2::SockRef::from(listener).listen(BACKLOG) {
        tracing::debug!("could not widen a listener's backlog: {err}");
    }
}

/// The bound on one listener's connections, and its warnings.
pub struct Gate {
    what: String,
    max: usize,
    permits: Arc<Semaphore>,
    warned: crate::sync::Mutex<Option<Instant>>,
}

impl Gate {
    /// `what` names the listener in log lines ("sidecar of cart").
    pub fn new(what: impl Into<String>, max_connections: usize) -> Gate {
        Gate {
            what: what.into(),
            max: max_connections,
            permits: Arc::new(Semaphore::new(max_connections)),
            warned: crate::sync::Mutex::new(None),
        }
    }

    /// The next connection, once there is room for it. The permit is held for as long as the
    /// connection is served.
    pub async fn accept(&self, listener: &TcpListener) -> (TcpStream, OwnedSemaphorePermit) {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.warn(format_args!(
                    "{}: {} connections open, the most it serves at once; new ones wait until one closes",
                    self.what, self.max
                ));
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("UNWRAP: the semaphore is never closed")
            }
        };
        loop {
            match listener.accept().await {
                Ok((stream, _)) => return (stream, permit),
                Err(err) if out_of_descriptors(&err) => {
                    self.warn(format_args!(
                        "{}: cannot accept a connection: {err} (raise `ulimit -n`); retrying",
                        self.what
                    ));
                    // The error repeats until a descriptor is freed; waiting keeps it from spinning.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // A client that gave up between SYN and accept, and the like: its own problem.
                Err(err) => tracing::debug!("{}: accept: {err}", self.what),
            }
        }
    }

    /// Logs `message` unless a warning of this listener was logged in the last 10 s.
    fn warn(&self, message: std::fmt::Arguments<'_>) {
        let mut last = self.warned.lock();
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(10)) {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!("{message}");
    }
}

fn out_of_descriptors(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(code) if code == nix::libc::EMFILE || code == nix::libc::ENFILE
    )
}

/// Serves `service` over HTTP/1 on `listener` until `shutdown` is cancelled; then each
/// connection finishes the request under way, and what has not after `drain` is dropped.
pub async fn serve_http<S>(
    listener: TcpListener,
    gate: Gate,
    service: S,
    shutdown: CancellationToken,
    drain: Duration,
) where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    widen_backlog(&listener);
    let gate = Arc::new(gate);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            (stream, permit) = gate.accept(&listener) => {
                let task = connection(stream, gate.clone(), service.clone(), shutdown.clone());
                connections.spawn(async move {
                    task.await;
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(drain, drained).await;
    connections.shutdown().await;
}

/// One HTTP/1 connection, with [`HEADER_TIMEOUT`] on every request's headers.
async fn connection<S>(stream: TcpStream, gate: Arc<Gate>, service: S, shutdown: CancellationToken)
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    use tower::ServiceExt as _;
    // Answers are small and written at once; without this they wait for the client's ACK.
    let _ = stream.set_nodelay(true);
    let heard = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(Heard {
        stream,
        heard: heard.clone(),
    });
    let handler = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        service.clone().oneshot(request.map(Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let served = builder.serve_connection(io, handler);
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        () = shutdown.cancelled() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    match result {
        // An idle keep-alive connection timing out is routine; a request begun and not
        // finished within the deadline is a client to hear about.
        Err(err) if err.is_timeout() && heard.load(Ordering::Relaxed) => gate.warn(format_args!(
            "{}: closed a connection whose request headers did not arrive within {} s",
            gate.what,
            HEADER_TIMEOUT.as_secs()
        )),
        Err(err) => tracing::debug!("{}: connection: {err}", gate.what),
        Ok(()) => {}
    }
}

/// The connection's socket, noting whether bytes of a request arrived since the last answer
/// was written: what tells a slow client from an idle one when the header deadline passes.
struct Heard {
    stream: TcpStream,
    heard: Arc<AtomicBool>,
}

impl tokio::io::AsyncRead for Heard {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.heard.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Heard {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.heard.store(false, Ordering::Relaxed);
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.heard.store(false, Ordering::Relaxed);
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The soft limit on open files daca started with, where [`raise_open_files_limit`] raised it.
static STARTED_WITH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Raises this process's soft limit on open files to its hard limit, as Go's runtime does for
/// daprd: Debian's default soft limit (1,024) is less than one busy sidecar's connections.
/// Processes daca starts get the limit it started with back ([`restore_open_files_limit`]),
/// as Go's do: a program using `select(2)` fails on descriptors above 1,023.
pub fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= hard {
        return;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => {
            let _ = STARTED_WITH.set(soft);
        }
        Err(err) => tracing::debug!("could not raise the open files limit to {hard}: {err}"),
    }
}

/// In a child between fork and exec: puts back the soft limit daca started with. Only
/// async-signal-safe calls (one `setrlimit`).
pub fn restore_open_files_limit() -> std::io::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Some(soft) = STARTED_WITH.get() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
        setrlimit(Resource::RLIMIT_NOFILE, *soft, hard)?;
    }
    Ok(())
}
