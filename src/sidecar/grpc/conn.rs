//! One HTTP/2 connection of the gRPC API, served so that answers leave in as few writes as
//! possible: its streams run on the connection's own task, what h2 writes is held until the
//! connection's poll ends, and wake-ups during that poll only ask for another round of it.
//! Measured with callgrind and strace (docs/performance.md): a 1 KiB GetState answer went out
//! in two writes (h2 flushes a large DATA frame before it writes the trailers); with 32 calls
//! in flight on 4 connections, 0.18 writes per answer instead of 0.76.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::{BoxFuture, dispatch};
use crate::sidecar::SidecarState;

/// hyper's executor for one connection's streams: they run on the connection's own task (see
/// [`serve_connection`]) rather than each on a task of its own, so the answers of a client that
/// multiplexes (as a gRPC channel does) leave together, and no tokio task is spawned per call.
#[derive(Clone, Default)]
struct LocalStreams(Arc<crate::sync::Mutex<Vec<BoxFuture<()>>>>);

impl<F: Future<Output = ()> + Send + 'static> hyper::rt::Executor<F> for LocalStreams {
    fn execute(&self, stream: F) {
        use futures_util::FutureExt;
        // A panicking handler ends its own call (h2 resets the stream when it is dropped), not
        // the connection's other calls, as with a task per stream.
        let stream = std::panic::AssertUnwindSafe(stream)
            .catch_unwind()
            .map(|_| ());
        // Only called while the connection is polled, by the task that drains this queue.
        let mut queue = self.0.lock();
        queue.push(Box::pin(stream));
    }
}

impl LocalStreams {
    fn take(&self) -> Vec<BoxFuture<()>> {
        std::mem::take(&mut *self.0.lock())
    }
}

/// The connection's socket as h2 sees it: what h2 writes is kept here and sent by
/// [`serve_connection`] once the connection has queued all it can, in one write. h2 sends a
/// DATA frame of 256 bytes or more from the caller's buffer and flushes it before it writes the
/// next frame, so each answer of 1 KiB went out as two writes (its headers and data, then its
/// trailers), each a syscall and a TCP segment of its own.
struct Corked {
    read: tokio::net::tcp::OwnedReadHalf,
    out: Arc<crate::sync::Mutex<Outgoing>>,
}

struct Outgoing {
    write: tokio::net::tcp::OwnedWriteHalf,
    pending: Vec<u8>,
}

/// How much h2 may write ahead of the socket before it has to wait for it.
const CORK_LIMIT: usize = 256 * 1024;

impl Outgoing {
    /// Sends what is pending; ready when all is sent.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        use tokio::io::AsyncWrite;
        while !self.pending.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.write).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

fn lock(out: &crate::sync::Mutex<Outgoing>) -> crate::sync::MutexGuard<'_, Outgoing> {
    out.lock()
}

impl tokio::io::AsyncRead for Corked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Corked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_write_vectored(cx, &[std::io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let mut out = lock(&self.out);
        if out.pending.len() >= CORK_LIMIT {
            std::task::ready!(out.poll_send(cx))?;
        }
        let mut n = 0;
        for buf in bufs {
            out.pending.extend_from_slice(buf);
            n += buf.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Sent by `serve_connection` after the connection's poll.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut out = lock(&self.out);
        std::task::ready!(out.poll_send(cx))?;
        Pin::new(&mut out.write).poll_shutdown(cx)
    }
}

/// The waker the connection and its streams are polled with. A wake-up while
/// [`serve_connection`] is polling (a stream queuing its answer wakes the connection) only asks
/// for another round of that poll: passed on to tokio, it would re-queue the running task and
/// wake the other worker thread to take it, a futex round trip per request when the load is
/// light.
struct Rewake {
    state: std::sync::atomic::AtomicU8,
    task: crate::sync::Mutex<Option<std::task::Waker>>,
}

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const REPOLL: u8 = 2;

impl std::task::Wake for Rewake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        // Polling, or already asked to poll again: that poll goes round once more.
        let state = self
            .state
            .compare_exchange(POLLING, REPOLL, AcqRel, Acquire);
        if state == Err(IDLE) {
            let task = self.task.lock();
            if let Some(task) = task.as_ref() {
                task.wake_by_ref();
            }
        }
    }
}

/// Serves one HTTP/2 connection, its streams on this task: after the connection has read what
/// came in, the streams it started and those woken run, then the connection is polled again
/// and what it wrote is sent, so the answers ready together go out in one write.
/// When `shutdown` is cancelled the connection is shut down gracefully: calls under way are
/// answered, new ones refused (GOAWAY).
pub(super) async fn serve_connection(
    stream: tokio::net::TcpStream,
    sidecar: Arc<SidecarState>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use futures_util::StreamExt;
    use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
    let (read, write) = stream.into_split();
    let out = Arc::new(crate::sync::Mutex::new(Outgoing {
        write,
        pending: Vec::with_capacity(16 * 1024),
    }));
    let io = Corked {
        read,
        out: out.clone(),
    };
    let streams = LocalStreams::default();
    let service = hyper::service::service_fn(move |request| dispatch(&sidecar, request));
    let mut builder = hyper::server::conn::http2::Builder::new(streams.clone());
    // gRPC clients ignore `date`; hyper would add it to every answer's headers.
    builder.auto_date_header(false);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    let mut running = futures_util::stream::FuturesUnordered::new();
    let rewake = Arc::new(Rewake {
        state: std::sync::atomic::AtomicU8::new(IDLE),
        task: crate::sync::Mutex::new(None),
    });
    let waker = std::task::Waker::from(rewake.clone());
    let mut cancelled = std::pin::pin!(shutdown.cancelled_owned());
    let mut draining = false;
    std::future::poll_fn(|task_cx| {
        if !draining && cancelled.as_mut().poll(task_cx).is_ready() {
            draining = true;
            connection.as_mut().graceful_shutdown();
        }
        {
            let mut task = rewake.task.lock();
            if !task.as_ref().is_some_and(|t| t.will_wake(task_cx.waker())) {
                *task = Some(task_cx.waker().clone());
            }
        }
        rewake.state.store(POLLING, Release);
        let cx = &mut Context::from_waker(&waker);
        for _ in 0..ROUNDS {
            let closed = connection.as_mut().poll(cx).is_ready();
            let sent = lock(&out).poll_send(cx);
            if closed || matches!(sent, Poll::Ready(Err(_))) {
                return Poll::Ready(());
            }
            running.extend(streams.take());
            while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {}
            // Woken meanwhile (an answer queued, more came in): another round.
            if rewake
                .state
                .compare_exchange(POLLING, IDLE, AcqRel, Acquire)
                .is_ok()
            {
                return Poll::Pending;
            }
            rewake.state.store(POLLING, Release);
        }
        // Still being woken: yield to tokio, which resets the task's budget (once it is spent,
        // tokio's resources answer Pending and nothing here would progress) and lets other
        // tasks on this worker run.
        rewake.state.store(IDLE, Release);
        task_cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// Rounds of one poll of a connection before it yields to tokio.
const ROUNDS: usize = 16;
