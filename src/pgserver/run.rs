//! `daca __postgres`: the machine's PostgreSQL server as daca supervises it.
//!
//! Three things keep it from being a plain command. PostgreSQL refuses to run as root, so
//! under root it runs as the `postgres` account (Debian's package makes one). A new data
//! folder needs `initdb` first. And the supervisor stops a unit with SIGTERM to its process
//! group, which PostgreSQL reads as a *smart* shutdown that waits for every session (each
//! sidecar keeps one), and which its backends and background processes would each get too.
//! So the server runs in a process group of its own, this wrapper turns SIGTERM into
//! PostgreSQL's fast shutdown (SIGINT), and the server is told to quit at once (SIGQUIT) if
//! the wrapper is killed.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::{SigSet, Signal, kill};
use nix::unistd::{Pid, User, chown};

/// Settings for a server whose data is thrown away at each start (`persistence: false`).
pub const UNSAFE_FAST: [&str; 6] = [
    "-c",
    "fsync=off",
    "-c",
    "synchronous_commit=off",
    "-c",
    "full_page_writes=off",
];

/// What `daca __postgres` is given.
#[derive(Debug, Clone)]
pub struct ServerArgs {
    pub bin_dir: PathBuf,
    pub data: PathBuf,
    pub port: u16,
    /// Start from an empty data folder.
    pub fresh: bool,
}

/// Why the server could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "PostgreSQL refuses to run as root and this machine has no `postgres` account\n  hint: run daca as another user, or create one (`useradd --system postgres`)"
    )]
    NoAccount,
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "initdb could not create {data} ({status}): {output}\n  hint: remove {data} if it is half made; as root, the `postgres` account must be able to reach it"
    )]
    Initdb {
        data: String,
        status: String,
        output: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Runs the server until it exits; returns its exit code (128 + the signal that ended it).
pub fn run(args: &ServerArgs) -> Result<i32, RunError> {
    let account = account()?;
    if args.fresh {
        let _ = std::fs::remove_dir_all(&args.data);
    }
    std::fs::create_dir_all(&args.data).map_err(io(&args.data))?;
    // PostgreSQL insists that nobody else may read its data.
    std::fs::set_permissions(&args.data, std::fs::Permissions::from_mode(0o700))
        .map_err(io(&args.data))?;
    if let Some((uid, gid)) = account {
        chown(&args.data, Some(uid.into()), Some(gid.into()))
            .map_err(std::io::Error::from)
            .map_err(io(&args.data))?;
    }
    if !args.data.join("PG_VERSION").exists() {
        initdb(args, account)?;
    }
    // Blocked here, so that they wait for the thread below; the server's mask is reset.
    let signals = SigSet::from_iter([Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP]);
    let _ = signals.thread_block();
    let mut command = as_account(Command::new(args.bin_dir.join("postgres")), account);
    command.args(server_args(args));
    command.process_group(0);
    // SAFETY: prctl is async-signal-safe and touches only the child being made.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGQUIT).map_err(std::io::Error::from)
        });
    }
    let mut server = command.spawn().map_err(io(&args.bin_dir))?;
    let pid = Pid::from_raw(server.id() as i32);
    std::thread::spawn(move || {
        while signals.wait().is_ok() {
            let _ = kill(pid, Signal::SIGINT);
        }
    });
    let status = server.wait().map_err(io(&args.bin_dir))?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

fn server_args(args: &ServerArgs) -> Vec<String> {
    let mut out: Vec<String> = vec![
        "-D".into(),
        args.data.display().to_string(),
        "-p".into(),
        args.port.to_string(),
        "-c".into(),
        "listen_addresses=127.0.0.1".into(),
        // TCP only: the default socket folder (/var/run/postgresql) may not be ours to use.
        "-c".into(),
        "unix_socket_directories=".into(),
    ];
    if args.fresh {
        out.extend(UNSAFE_FAST.iter().map(|s| s.to_string()));
    }
    out
}

/// The account to run as: `None` unless daca runs as root.
fn account() -> Result<Option<(u32, u32)>, RunError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match User::from_name(super::SUPERUSER) {
        Ok(Some(user)) => Ok(Some((user.uid.as_raw(), user.gid.as_raw()))),
        _ => Err(RunError::NoAccount),
    }
}

fn as_account(mut command: Command, account: Option<(u32, u32)>) -> Command {
    if let Some((uid, gid)) = account {
        // std drops root's supplementary groups when it sets the uid.
        command.uid(uid).gid(gid);
    }
    command
}

/// A new cluster whose superuser is `postgres`, trusted on loopback (nothing else listens).
fn initdb(args: &ServerArgs, account: Option<(u32, u32)>) -> Result<(), RunError> {
    eprintln!(
        "creating a PostgreSQL data folder at {} (first start)",
        args.data.display()
    );
    let output = as_account(Command::new(args.bin_dir.join("initdb")), account)
        .args(["-D", &args.data.display().to_string()])
        .args(["-U", super::SUPERUSER, "--auth=trust", "-E", "UTF8"])
        // The C locale exists everywhere; the machine's may not be generated.
        .args(["--locale=C"])
        .stdin(Stdio::null())
        .output()
        .map_err(io(&args.bin_dir))?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr);
    Err(RunError::Initdb {
        data: args.data.display().to_string(),
        status: crate::runtime::ExitInfo {
            code: output.status.code(),
            signal: output.status.signal(),
        }
        .to_string(),
        output: text
            .trim()
            .lines()
            .last()
            .unwrap_or("no output")
            .to_string(),
    })
}
