//! The connections of an app's pod: from host ports into it, from its names for the other
//! apps out to where they are on the machine, and a container pod's relay connections.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::pod::{Inside, Peers};
use super::pod_names::Target;
use crate::env::SidecarPorts;

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Where a container pod's relay connections go: `sidecar:http|grpc` (the app's own),
/// `app|http|grpc:<peer>` (another app's names), `host:<port>` (Redis on the machine).
pub(super) fn place(own: SidecarPorts, peers: Peers) -> crate::pod::relay::Place {
    Arc::new(move |target: String| {
        let port = match target.split_once(':') {
            Some(("sidecar", "http")) => Some(own.http),
            Some(("sidecar", "grpc")) => Some(own.grpc),
            Some(("host", port)) => port.parse().ok(),
            Some((kind, peer)) => {
                let reach = super::pod::reach_of(&peers, peer);
                reach.and_then(|r| match kind {
                    "app" => r.app,
                    "http" => Some(r.sidecar.http),
                    "grpc" => Some(r.sidecar.grpc),
                    _ => None,
                })
            }
            None => None,
        };
        Box::pin(async move { TcpStream::connect(loopback(port?)).await.ok() })
    })
}

/// Copies each connection to the host `listener` to `port` inside the pod, until `token`.
pub(super) async fn forward(
    listener: TcpListener,
    inside: Arc<Inside>,
    port: u16,
    token: CancellationToken,
) {
    let dial = move || {
        let inside = inside.clone();
        // Nothing listening there yet (the app is starting): the caller sees the connection
        // closed, as it would see it refused without a pod.
        async move { inside.connect(port).await }
    };
    relay(listener, token, dial).await;
}

/// Accepts on `listener` until `token`, and copies each connection both ways to what `dial`
/// connects it to (one it cannot place is closed).
async fn relay<F, Fut, S>(listener: TcpListener, token: CancellationToken, dial: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<S>> + Send + 'static,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut from, _)) = accepted else {
            continue;
        };
        let to = dial();
        connections.spawn(async move {
            if let Some(mut to) = to.await {
                let _ = from.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut from, &mut to).await;
            }
        });
    }
    connections.shutdown().await;
}

/// Copies each connection to a pod's name for `peer` to where `peer` is on the machine now
/// (it may have moved: a restart picks its ports again).
pub(super) async fn to_peer(
    listener: TcpListener,
    peers: Peers,
    peer: String,
    target: Target,
    token: CancellationToken,
) {
    let dial = move || {
        let reach = super::pod::reach_of(&peers, &peer);
        let port = reach.and_then(|r| match target {
            Target::App => r.app,
            Target::SidecarHttp => Some(r.sidecar.http),
            Target::SidecarGrpc => Some(r.sidecar.grpc),
        });
        async move {
            let stream = TcpStream::connect(loopback(port?)).await.ok()?;
            let _ = stream.set_nodelay(true);
            Some(stream)
        }
    };
    relay(listener, token, dial).await;
}
