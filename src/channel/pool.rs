//! Keep-alive HTTP/1.1 connections to one app on 127.0.0.1, each one driven by the task that
//! sends on it, for calls whose whole answer is read before they return (actor calls).
//!
//! Why not reqwest, which the other calls use: an actor call is on the hot path of every actor
//! method, and reqwest runs each connection on a task of its own behind redirect, retry and
//! URL layers, so every call crosses tasks (and threads) twice. Driving the connection where
//! the answer is awaited took the sidecar from about 19,000 to about 31,000
//! calls/s on the actor benchmark (docs/performance.md).

use std::pin::Pin;

use axum::http::{HeaderMap, Request};
use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::sync::Mutex;

/// Idle connections kept per app; more are closed once their call ends.
const MAX_IDLE: usize = 256;

type Driver = Pin<Box<Connection<TokioIo<TcpStream>, Full<Bytes>>>>;

struct Conn {
    port: u16,
    sender: SendRequest<Full<Bytes>>,
    driver: Driver,
}

/// An app's answer, read whole.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("could not connect to 127.0.0.1:{port}: {source}")]
    Connect { port: u16, source: std::io::Error },
    #[error("{0}")]
    Exchange(#[from] hyper::Error),
}

enum Failed {
    /// The connection could not take the request (it had closed): it was never sent.
    NotSent(Box<Request<Full<Bytes>>>),
    Error(hyper::Error),
}

#[derive(Default)]
pub struct Pool {
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    /// Sends `request` to 127.0.0.1:`port` and reads the whole answer. A request that an idle
    /// connection could not take (the app closed it meanwhile) goes on a new one; a request
    /// once sent is never sent again.
    pub async fn send(
        &self,
        port: u16,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Answer, PoolError> {
        loop {
            let (mut conn, reused) = match self.take(port) {
                Some(conn) => (conn, true),
                None => (connect(port).await?, false),
            };
            match exchange(&mut conn, request).await {
                Ok((answer, open)) => {
                    if open {
                        self.give(conn);
                    }
                    return Ok(answer);
                }
                Err(Failed::NotSent(again)) if reused => request = *again,
                Err(Failed::NotSent(_)) => {
                    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
                    return Err(PoolError::Connect {
                        port,
                        source: refused,
                    });
                }
                Err(Failed::Error(err)) => return Err(err.into()),
            }
        }
    }

    /// An idle connection to `port` that is still open.
    fn take(&self, port: u16) -> Option<Conn> {
        let mut idle = self.idle.lock();
        while let Some(mut conn) = idle.pop() {
            // Polling the driver once reads what the app sent meanwhile: a close ends it.
            let ended = (&mut conn.driver).now_or_never().is_some();
            if !ended && conn.port == port && conn.sender.is_ready() {
                return Some(conn);
            }
        }
        None
    }

    fn give(&self, conn: Conn) {
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }
}

async fn connect(port: u16) -> Result<Conn, PoolError> {
    let failed = |source| PoolError::Connect { port, source };
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(failed)?;
    stream.set_nodelay(true).map_err(failed)?;
    let (sender, driver) = http1::handshake(TokioIo::new(stream)).await?;
    Ok(Conn {
        port,
        sender,
        driver: Box::pin(driver),
    })
}

/// One request and its whole answer, with the connection driven meanwhile; whether the
/// connection stays open after it.
async fn exchange(
    conn: &mut Conn,
    request: Request<Full<Bytes>>,
) -> Result<(Answer, bool), Failed> {
    let Conn { sender, driver, .. } = conn;
    let work =
        async {
            let response = sender.try_send_request(request).await.map_err(|mut err| {
                match err.take_message() {
                    Some(request) => Failed::NotSent(Box::new(request)),
                    None => Failed::Error(err.into_error()),
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(Failed::Error)?.to_bytes();
            Ok(Answer {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
    tokio::pin!(work);
    tokio::select! {
        biased;
        answer = &mut work => answer.map(|a| (a, true)),
        _ = driver.as_mut() => work.await.map(|a| (a, false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn get(port: u16) -> Request<Full<Bytes>> {
        Request::get("/x")
            .header("host", format!("127.0.0.1:{port}"))
            .body(Full::default())
            .unwrap()
    }

    /// An app that answers a connection's first request, then closes it when told to, and
    /// says when it has.
    async fn closing_app() -> (
        u16,
        tokio::sync::mpsc::Sender<()>,
        tokio::sync::mpsc::Receiver<()>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (close, mut told) = tokio::sync::mpsc::channel(4);
        let (closed, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buffer = [0u8; 1024];
                let _ = socket.read(&mut buffer).await.unwrap();
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                socket.write_all(answer).await.unwrap();
                if told.recv().await.is_none() {
                    return;
                }
                drop(socket);
                closed.send(()).await.unwrap();
            }
        });
        (port, close, rx)
    }

    #[tokio::test]
    async fn a_connection_the_app_closed_while_idle_is_not_used_again() {
        let (port, close, mut closed) = closing_app().await;
        let pool = Pool::default();
        let first = pool.send(port, get(port)).await.unwrap();
        assert_eq!((first.status, &first.body[..]), (200, &b"ok"[..]));
        assert_eq!(pool.idle.lock().len(), 1, "kept for the next call");
        close.send(()).await.unwrap();
        closed.recv().await.unwrap();
        let second = tokio::spawn(async move { pool.send(port, get(port)).await });
        close.send(()).await.unwrap();
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), second)
            .await
            .expect("an answer, not a wait on a closed connection")
            .unwrap()
            .unwrap();
        assert_eq!(second.status, 200, "sent on a new connection");
    }

    #[tokio::test]
    async fn a_kept_connection_is_reused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let service = hyper::service::service_fn(|_| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(b"ok"),
                    )))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        let pool = Pool::default();
        for _ in 0..5 {
            assert_eq!(pool.send(port, get(port)).await.unwrap().status, 200);
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn nobody_listening_is_a_connect_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = Pool::default().send(port, get(port)).await.err().unwrap();
        assert!(matches!(err, PoolError::Connect { .. }), "{err}");
    }
}
