//! Readiness probes: how daca decides an app (or Redis) is ready for its dependents.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How readiness is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Ready as soon as it started (no port).
    None,
    /// Ready when 127.0.0.1:port accepts a connection.
    Tcp(u16),
    /// Ready when `GET path` on 127.0.0.1:port answers 2xx.
    Http { port: u16, path: String },
    /// Ready when Redis on 127.0.0.1:port answers PING.
    Redis(u16),
    /// Ready when PostgreSQL on 127.0.0.1:port answers a query as its superuser.
    Postgres(u16),
    /// Ready when 127.0.0.1:port accepts a connection inside the pod that process `holder`
    /// holds (from the machine, daca's own forwarder would always accept).
    PodTcp { holder: u32, port: u16 },
    /// Ready when 127.0.0.1:port accepts a connection inside a container's pod, asked through
    /// the pod's relay socket (`crate::pod::relay`).
    Relay {
        socket: std::path::PathBuf,
        port: u16,
    },
}

const ATTEMPT: Duration = Duration::from_millis(500);

impl Probe {
    /// One attempt; false on any failure or after a short timeout.
    pub async fn check(&self) -> bool {
        let attempt = async {
            match self {
                Probe::None => true,
                Probe::Tcp(port) => TcpStream::connect(("127.0.0.1", *port)).await.is_ok(),
                Probe::Http { port, path } => http_ok(*port, path).await.unwrap_or(false),
                Probe::Redis(port) => redis_pong(*port).await.unwrap_or(false),
                Probe::Postgres(port) => crate::pgserver::provision::ready(*port).await,
                Probe::PodTcp { holder, port } => {
                    let (holder, port) = (*holder, *port);
                    // A thread of its own: entering the pod's network moves only it, and it ends.
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    std::thread::spawn(move || {
                        let _ = tx.send(connect_in_pod(holder, port));
                    });
                    rx.await.unwrap_or(false)
                }
                Probe::Relay { socket, port } => crate::pod::relay::probe(socket, *port).await,
            }
        };
        // A connection with its authentication takes longer than a PING.
        let limit = match self {
            Probe::Postgres(_) => ATTEMPT * 4,
            _ => ATTEMPT,
        };
        timeout(limit, attempt).await.unwrap_or(false)
    }

    /// What is being waited for, for messages.
    pub fn describe(&self) -> String {
        match self {
            Probe::None => "its process to start".into(),
            Probe::Tcp(port) => format!("a TCP connection to 127.0.0.1:{port}"),
            Probe::Http { port, path } => {
                format!("a 2xx answer from http://127.0.0.1:{port}{path}")
            }
            Probe::Redis(port) => format!("Redis PING on 127.0.0.1:{port}"),
            Probe::Postgres(port) => format!("a PostgreSQL query on 127.0.0.1:{port}"),
            Probe::PodTcp { port, .. } | Probe::Relay { port, .. } => {
                format!("a TCP connection to 127.0.0.1:{port} in its pod")
            }
        }
    }
}

fn connect_in_pod(holder: u32, port: u16) -> bool {
    let Ok(netns) = std::fs::File::open(format!("/proc/{holder}/ns/net")) else {
        return false;
    };
    if nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
        return false;
    }
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    std::net::TcpStream::connect_timeout(&address, ATTEMPT).is_ok()
}

// A hand-written request keeps probes free of client set-up cost; we only need the status line.
async fn http_ok(port: u16, path: &str) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: daca-probe\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    // "HTTP/1.1 200"
    Ok(head.starts_with(b"HTTP/1.") && head[9] == b'2')
}

async fn redis_pong(port: u16) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(b"PING\r\n").await?;
    let mut reply = [0u8; 5];
    stream.read_exact(&mut reply).await?;
    Ok(&reply == b"+PONG")
}
