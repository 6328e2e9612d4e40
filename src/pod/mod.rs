//! Pods: an app's own network namespace (and its own /etc/hosts), as a Kubernetes pod has, so
//! that every app may listen on the same port and find its sidecar at `localhost:3500` and
//! `localhost:50001`. Rootless: a user namespace of the caller's own (the kernel's unprivileged
//! user namespaces), and `pasta` (from passt) for the pod's way out to the host and the
//! internet. daca's sidecar serves inside the pod with no process of its own there: daca makes
//! its listening sockets in the pod's network namespace (a socket stays in the namespace it was
//! made in) and serves them from its own runtime; calls into the pod are made the same way.
//!
//! How it works: [`Pod::create`] starts the holder (`daca __pod`, `inside.rs`), which makes the
//! namespaces and waits for daca to go; then `pasta` joins the pod (it brings up its loopback,
//! gives it an interface out, and forwards the host ports asked for, e.g. Redis's); a thread of
//! daca's that has entered the pod's network namespace makes sockets there on request. An app
//! runs in the pod through `daca __pod-exec <holder> -- <command>`. When daca stops or dies,
//! the holder's stdin closes and it exits; `pasta` goes with the namespace.

pub mod inside;
pub mod mounts;
pub mod peer_net;
pub mod relay;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::io::AsyncBufReadExt;

/// Why a pod could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("pods need `pasta` (Debian's `passt` package), which is not on PATH")]
    NoPasta,
    #[error("cannot start the pod's holder: {0}")]
    Holder(std::io::Error),
    #[error("the kernel refused the pod's namespaces: {0}")]
    Refused(String),
    #[error("pasta could not connect the pod: {0}")]
    Pasta(String),
    #[error("cannot make a socket in the pod: {0}")]
    Socket(std::io::Error),
}

/// Whether pods can be made here; if not, why, in one line with what to do. Asked once.
pub fn available() -> Result<(), String> {
    static ANSWER: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    ANSWER.get_or_init(check_available).clone()
}

fn check_available() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err("pods need Linux's namespaces".into());
    }
    if which::which("pasta").is_err() {
        return Err("pods need `pasta`: install Debian's `passt` package".into());
    }
    let exe = daca_exe().map_err(|e| e.to_string())?;
    let probe = std::process::Command::new(exe)
        .arg("__pod-probe")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot start daca's pod probe: {e}"))?;
    match probe.status.success() {
        true => Ok(()),
        false => Err(format!(
            "the kernel refused a user namespace ({}); allow them with `sysctl user.max_user_namespaces=15000` (and on Ubuntu `sysctl kernel.apparmor_restrict_unprivileged_userns=0`)",
            String::from_utf8_lossy(&probe.stderr)
                .trim()
                .trim_start_matches("pod: ")
        )),
    }
}

/// A request to the thread that lives in the pod's network namespace.
enum Request {
    Listen(SocketAddr, mpsc::Sender<std::io::Result<TcpListener>>),
    /// A socket of the pod's, not yet connected: the caller connects it without blocking.
    Socket(tokio::sync::oneshot::Sender<std::io::Result<tokio::net::TcpSocket>>),
}

/// A running pod: its holder, and the thread that makes sockets in it.
pub struct Pod {
    holder: tokio::process::Child,
    /// pasta's keeper: ends pasta when its stdin closes.
    keeper: tokio::process::Child,
    pid: u32,
    sockets: mpsc::Sender<Request>,
    /// The pod's /etc/hosts (daca's file, which it may rewrite in place), removed with the pod.
    hosts: PathBuf,
}

impl Pod {
    /// Makes a pod whose /etc/hosts is `hosts` (a file daca wrote), with `volumes` mounted in
    /// it, connected to the host by pasta, with connections to `forward` ports of its loopback
    /// going to the host's.
    pub async fn create(
        hosts: &Path,
        volumes: &[crate::manifest::Volume],
        forward: &[u16],
    ) -> Result<Pod, PodError> {
        let pasta = which::which("pasta").map_err(|_| PodError::NoPasta)?;
        let exe = daca_exe().map_err(PodError::Holder)?;
        let mut holder = tokio::process::Command::new(exe)
            .arg("__pod")
            .arg(hosts)
            .args(
                volumes
                    .iter()
                    .flat_map(|v| ["--volume".to_string(), mounts::arg(v)]),
            )
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(PodError::Holder)?;
        let pid = holder.id().unwrap_or_default();
        let ready = ready(&mut holder).await;
        if let Err(refused) = ready {
            let _ = holder.kill().await;
            return Err(PodError::Refused(refused));
        }
        let keeper = match connect_pasta(&pasta, pid, forward).await {
            Ok(keeper) => keeper,
            Err(err) => {
                let _ = holder.kill().await;
                return Err(err);
            }
        };
        let sockets = socket_thread(pid)?;
        Ok(Pod {
            holder,
            keeper,
            pid,
            sockets,
            hosts: hosts.to_path_buf(),
        })
    }

    /// The holder's pid (what `daca __pod-exec` joins).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How a process joins this pod (`daca __pod-exec HOLDER -- …`).
    pub fn join(&self) -> crate::runtime::InPod {
        let exe = daca_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "daca".into());
        crate::runtime::InPod {
            exe,
            holder: self.pid,
        }
    }

    /// A listener at `address` inside the pod.
    pub fn listen(&self, address: SocketAddr) -> Result<tokio::net::TcpListener, PodError> {
        let (reply, answer) = mpsc::channel();
        self.ask(Request::Listen(address, reply))?;
        let listener = answer.recv().map_err(gone)?.map_err(PodError::Socket)?;
        listener.set_nonblocking(true).map_err(PodError::Socket)?;
        tokio::net::TcpListener::from_std(listener).map_err(PodError::Socket)
    }

    /// A connection to `address` inside the pod.
    pub async fn connect(&self, address: SocketAddr) -> Result<tokio::net::TcpStream, PodError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.ask(Request::Socket(reply))?;
        let socket = answer.await.map_err(gone)?.map_err(PodError::Socket)?;
        socket.connect(address).await.map_err(PodError::Socket)
    }

    fn ask(&self, request: Request) -> Result<(), PodError> {
        self.sockets.send(request).map_err(gone)
    }

    /// Ends the pod (its apps are stopped before): the holder goes, and pasta with it.
    pub async fn close(mut self) {
        drop(self.keeper.stdin.take());
        drop(self.holder.stdin.take());
        for child in [&mut self.keeper, &mut self.holder] {
            if tokio::time::timeout(std::time::Duration::from_secs(2), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        let _ = std::fs::remove_file(&self.hosts);
        // The folder goes with the last pod of this daca.
        if let Some(folder) = self.hosts.parent() {
            let _ = std::fs::remove_dir(folder);
        }
    }
}

/// Removes the pod folders (`$TMPDIR/daca-pods-<pid>`: hosts files, relay sockets) of daca
/// processes that are gone (a SIGKILLed daca cannot remove its own).
pub fn remove_leftovers() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("daca-pods-"))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // Only "no such process" means gone (another user's daca answers EPERM).
        let probe = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None);
        if probe == Err(nix::errno::Errno::ESRCH) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The daca binary that runs the pod's helpers: this one, or `DACA_EXE` when daca's library
/// runs inside another program (its tests).
pub fn daca_exe() -> std::io::Result<PathBuf> {
    match std::env::var_os("DACA_EXE") {
        Some(exe) => Ok(PathBuf::from(exe)),
        None => std::env::current_exe(),
    }
}

fn gone<E>(_: E) -> PodError {
    PodError::Socket(std::io::Error::other("the pod's socket thread has ended"))
}

/// Waits for the holder's `ready`, or returns what it said instead.
async fn ready(holder: &mut tokio::process::Child) -> Result<(), String> {
    let Some(stdout) = holder.stdout.take() else {
        return Err("no output from the holder".into());
    };
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    match lines.next_line().await {
        Ok(Some(line)) if line == "ready" => Ok(()),
        _ => {
            let mut said = String::new();
            if let Some(stderr) = holder.stderr.take() {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    said.push_str(line.trim_start_matches("pod: "));
                }
            }
            Err(said)
        }
    }
}

/// Connects the pod: pasta brings up its loopback and an interface out, and forwards `forward`
/// ports of the pod's loopback to the host's. Nothing from the host goes into the pod through
/// pasta (`-t none`): daca serves the app's host port itself. pasta runs under daca's keeper,
/// which ends it when daca goes.
async fn connect_pasta(
    pasta: &Path,
    pid: u32,
    forward: &[u16],
) -> Result<tokio::process::Child, PodError> {
    let exe = daca_exe().map_err(PodError::Holder)?;
    let mut command = tokio::process::Command::new(exe);
    command.args(["__pasta", &pid.to_string(), "--"]).arg(pasta);
    // As root, pasta would otherwise drop to `nobody`, who may not enter the pod.
    if nix::unistd::geteuid().is_root() {
        command.args(["--runas", "0"]);
    }
    let ports = match forward.is_empty() {
        true => "none".to_string(),
        false => forward
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(","),
    };
    command.args([
        "--foreground",
        "--config-net",
        "--quiet",
        "-t",
        "none",
        "-u",
        "none",
    ]);
    command
        .args(["-U", "none", "-T"])
        .arg(ports)
        .arg(pid.to_string());
    let mut keeper = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| PodError::Pasta(e.to_string()))?;
    if let Err(said) = ready(&mut keeper).await {
        let _ = keeper.kill().await;
        return Err(PodError::Pasta(said));
    }
    Ok(keeper)
}

/// The pod's default gateway, from its routing table (`/proc/PID/net/route` is the table of
/// PID's network namespace).
pub(crate) fn gateway(pid: u32) -> Option<std::net::Ipv4Addr> {
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/route")).ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [_, "00000000", gateway, ..] => {
                // The kernel prints the address's bytes as a number in this machine's order.
                let raw = u32::from_str_radix(gateway, 16).ok()?;
                Some(std::net::Ipv4Addr::from(raw.to_ne_bytes())).filter(|g| !g.is_unspecified())
            }
            _ => None,
        }
    })
}

/// A thread in the pod's network namespace that makes sockets there, for as long as the pod
/// has a handle.
fn socket_thread(pid: u32) -> Result<mpsc::Sender<Request>, PodError> {
    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(PodError::Socket)?;
    let (requests, inbox) = mpsc::channel::<Request>();
    let (entered, entering) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("pod-{pid}"))
        .spawn(move || {
            // setns moves only this thread.
            let moved = nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)
                // pasta has brought the pod's loopback up by now.
                .and_then(|()| peer_net::route_prefix());
            let _ = entered.send(moved);
            for request in inbox {
                match request {
                    Request::Listen(address, reply) => {
                        let _ = reply.send(peer_net::listen(address));
                    }
                    Request::Socket(reply) => {
                        let _ = reply.send(tokio::net::TcpSocket::new_v4());
                    }
                }
            }
        })
        .map_err(PodError::Socket)?;
    entering.recv().map_err(gone)?.map_err(PodError::Socket)?;
    Ok(requests)
}
