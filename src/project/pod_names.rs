//! The other apps' names inside a pod, as a cluster has them: `<app>`, `<app>.<ns>`,
//! `<app>.<ns>.svc`, `<app>.<ns>.svc.cluster.local` and the same for `<app>-dapr` (Dapr's
//! sidecar service), in the pod's own /etc/hosts (a file of daca's, rewritten in place when an
//! app joins the project), each leading to a loopback address of the pod where daca listens.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use super::launch::POD_SIDECAR;

/// What a pod's name for another app leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    App,
    SidecarHttp,
    SidecarGrpc,
}

impl Target {
    /// How a container pod's relay names it (see `pod::place`).
    pub fn relay(self, peer: &str) -> String {
        match self {
            Target::App => format!("app:{peer}"),
            Target::SidecarHttp => format!("http:{peer}"),
            Target::SidecarGrpc => format!("grpc:{peer}"),
        }
    }
}

/// Where the `n`th other app's names lead inside a pod: its app, and its sidecar
/// (`<app>-dapr`, Dapr's service), each an address of the pod's own loopback (see
/// `crate::pod::peer_net`), so nothing leaves the pod but through daca.
fn peer_address(n: usize, sidecar: bool) -> IpAddr {
    crate::pod::peer_net::peer_address(n, sidecar)
}

/// The addresses in the pod that the `n`th peer needs listened on: its sidecar's, and each
/// of `ports` (its app port, then its Services' other ports), all leading to its app.
pub(super) fn wanted(n: usize, ports: &[u16]) -> Vec<(SocketAddr, Target)> {
    let sidecar = peer_address(n, true);
    let mut wanted = vec![
        (
            SocketAddr::from((sidecar, POD_SIDECAR.http)),
            Target::SidecarHttp,
        ),
        (
            SocketAddr::from((sidecar, POD_SIDECAR.grpc)),
            Target::SidecarGrpc,
        ),
    ];
    for port in ports {
        wanted.push((
            SocketAddr::from((peer_address(n, false), *port)),
            Target::App,
        ));
    }
    wanted
}

/// What an app is also known by in the pods: its Services' names and their other ports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Also {
    pub names: Vec<String>,
    pub ports: Vec<u16>,
}

/// The other apps of a pod, with their app ports.
pub(super) type PeerList = Vec<(String, Option<u16>)>;

/// Every app's other names (`names:`, a Kubernetes Service's), by app-id: the owner publishes
/// them with each manifest; a pod's hosts file gives each the app's addresses.
pub(super) type Aliases = std::sync::Arc<crate::sync::RwLock<BTreeMap<String, Also>>>;

/// The apps' `names:` and `service_ports:` in `manifest`, for [`Aliases`].
pub(super) fn aliases_of(manifest: &crate::manifest::Manifest) -> BTreeMap<String, Also> {
    manifest
        .apps
        .iter()
        .filter(|a| !a.network.names.is_empty() || !a.network.service_ports.is_empty())
        .map(|a| {
            let also = Also {
                names: a.network.names.clone(),
                ports: a.network.service_ports.clone(),
            };
            (a.id.to_string(), also)
        })
        .collect()
}

/// A pod's names: the peers it knows (the index is the peer's `n`) and its hosts file.
pub(super) struct Names {
    id: String,
    hosts: PathBuf,
    known: crate::sync::Mutex<Vec<(String, Option<u16>)>>,
    /// Lines of the pod's own (the machine's name), kept on rewrites.
    extra: crate::sync::Mutex<String>,
    aliases: Aliases,
}

impl Names {
    /// Writes `hosts` for an app `id` whose peers are `peers`.
    pub fn new(
        id: &str,
        hosts: &Path,
        peers: &[(String, Option<u16>)],
        aliases: &Aliases,
    ) -> std::io::Result<Names> {
        let names = Names {
            id: id.to_string(),
            hosts: hosts.to_path_buf(),
            known: crate::sync::Mutex::new(peers.to_vec()),
            extra: Default::default(),
            aliases: aliases.clone(),
        };
        names.write()?;
        Ok(names)
    }

    pub fn hosts(&self) -> &Path {
        &self.hosts
    }

    /// The peers known when the pod was made, with what to listen on for each.
    pub fn initial(&self) -> Vec<(String, Vec<(SocketAddr, Target)>)> {
        let known = self.known.lock().clone();
        known
            .iter()
            .enumerate()
            .map(|(n, (peer, port))| (peer.clone(), wanted(n, &self.ports_of(peer, *port))))
            .collect()
    }

    /// The ports a peer's names lead to its app on: its own, then its Services' others.
    fn ports_of(&self, peer: &str, port: Option<u16>) -> Vec<u16> {
        let Some(port) = port else {
            return Vec::new();
        };
        let aliases = self.aliases.read();
        let others = aliases
            .get(peer)
            .map(|a| a.ports.as_slice())
            .unwrap_or_default();
        let mut ports = vec![port];
        ports.extend(others.iter().filter(|p| **p != port));
        ports
    }

    /// Adds a line of the pod's own.
    pub fn extra(&self, line: &str) -> std::io::Result<()> {
        self.extra.lock().push_str(&format!("{line}\n"));
        self.write()
    }

    /// An app that joined (or came back with another port): its `n` and what to listen on
    /// for it; `None` when the pod knows it already.
    pub fn add(&self, peer: &str, port: Option<u16>) -> Option<Vec<(SocketAddr, Target)>> {
        let ports = self.ports_of(peer, port);
        let wanted = {
            let mut known = self.known.lock();
            match known.iter().position(|(p, _)| p == peer) {
                Some(n) if known[n].1 == port || port.is_none() => return None,
                Some(n) => {
                    known[n].1 = port;
                    wanted(n, &ports)
                        .into_iter()
                        .filter(|(_, t)| *t == Target::App)
                        .collect()
                }
                None => {
                    known.push((peer.to_string(), port));
                    wanted(known.len() - 1, &ports)
                }
            }
        };
        if let Err(err) = self.write() {
            tracing::warn!("{}: cannot write its pod's hosts file: {err}", self.id);
        }
        Some(wanted)
    }

    /// Rewrites the file in place: the pod sees this very file (a bind mount of it).
    fn write(&self) -> std::io::Result<()> {
        let ns = crate::env::namespace();
        let id = &self.id;
        let aliases = self.aliases.read();
        let cluster = |name: &str| {
            format!("{name} {name}.{ns} {name}.{ns}.svc {name}.{ns}.svc.cluster.local")
        };
        let also = |app: &str| -> String {
            let names = aliases
                .get(app)
                .map(|a| a.names.as_slice())
                .unwrap_or_default();
            names.iter().map(|a| format!(" {}", cluster(a))).collect()
        };
        let mut text = format!(
            "127.0.0.1 localhost {id}{}\n::1 localhost ip6-localhost ip6-loopback\n",
            also(id)
        );
        for (n, (peer, _)) in self.known.lock().iter().enumerate() {
            text.push_str(&format!(
                "{} {}{}\n",
                peer_address(n, false),
                cluster(peer),
                also(peer)
            ));
            let sidecar = format!("{peer}-dapr");
            text.push_str(&format!(
                "{} {}\n",
                peer_address(n, true),
                cluster(&sidecar)
            ));
        }
        text.push_str(&self.extra.lock());
        std::fs::write(&self.hosts, text)
    }
}
