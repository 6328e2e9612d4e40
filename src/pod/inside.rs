//! What runs inside a pod, before any thread exists: the holder that creates the pod's
//! namespaces (`daca __pod`), and the wrapper that puts an app's process into them
//! (`daca __pod-exec`). Both are daca itself, started with a hidden subcommand, so nothing but
//! the kernel is needed (no `unshare` or `nsenter`); both must run single-threaded, since the
//! kernel refuses to move a multi-threaded process into a user namespace, so `main` calls them
//! before it starts the async runtime.

use std::fs::File;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};

/// Why a pod's namespaces could not be made or joined.
#[derive(Debug, thiserror::Error)]
pub enum InsideError {
    #[error("cannot create a user namespace: {0}")]
    UserNamespace(nix::Error),
    #[error("cannot write {0}: {1}")]
    Map(&'static str, std::io::Error),
    #[error("cannot create the network and mount namespaces: {0}")]
    Namespaces(nix::Error),
    #[error("cannot give the pod its own /etc/hosts: {0}")]
    Hosts(nix::Error),
    #[error("cannot mount a volume in the pod: {0}")]
    Volume(super::mounts::MountError),
    #[error("cannot join the pod of process {pid}: {what}: {source}")]
    Join {
        pid: u32,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cannot run `{program}` in the pod: {source}")]
    Exec {
        program: String,
        source: std::io::Error,
    },
}

/// Whether this machine lets daca make pods: a user namespace, and a network and mount
/// namespace in it (`daca __pod-probe`, a process that exits at once).
pub fn probe() -> Result<(), InsideError> {
    own_namespaces()
}

/// A user namespace of the caller's own (its uid and gid mapped to themselves, so an app sees
/// who it is), and a network and a mount namespace in it, for this process.
fn own_namespaces() -> Result<(), InsideError> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    unshare(CloneFlags::CLONE_NEWUSER).map_err(InsideError::UserNamespace)?;
    let write = |file: &'static str, text: String| {
        std::fs::write(format!("/proc/self/{file}"), text).map_err(|e| InsideError::Map(file, e))
    };
    write("setgroups", "deny".into())?;
    write("uid_map", format!("{uid} {uid} 1\n"))?;
    write("gid_map", format!("{gid} {gid} 1\n"))?;
    unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).map_err(InsideError::Namespaces)
}

/// Says `ready` on stdout, then waits until stdin closes (daca stopped, or died: a pipe closes
/// even under SIGKILL).
fn ready_until_daca_goes() {
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "ready");
    let _ = stdout.flush();
    let mut line = String::new();
    while std::io::stdin()
        .lock()
        .read_line(&mut line)
        .is_ok_and(|n| n > 0)
    {
        line.clear();
    }
}

/// The holder: makes a user namespace (the caller's own uid and gid mapped to themselves, so
/// the app sees who it is), a network and a mount namespace in it, and a bind mount of `hosts`
/// over /etc/hosts; says `ready` on stdout, then waits for stdin to close (daca stopped, or
/// died: a pipe closes even under SIGKILL) and exits, which ends the pod once its apps are gone.
pub fn hold(hosts: &Path, volumes: &[crate::manifest::Volume]) -> Result<(), InsideError> {
    own_namespaces()?;
    // Private, so the bind mount below stays in this pod.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(InsideError::Hosts)?;
    mount(
        Some(hosts),
        "/etc/hosts",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(InsideError::Hosts)?;
    for volume in volumes {
        super::mounts::mount_volume(volume).map_err(InsideError::Volume)?;
    }
    ready_until_daca_goes();
    Ok(())
}

/// pasta's keeper (`daca __pasta HOLDER -- pasta ARGS`): runs pasta in the foreground, says
/// `ready` once the pod has its default route (pasta has configured it), and ends pasta when
/// its stdin closes (daca stopped or died: pasta itself does not notice when a pod it joined
/// by pid goes away).
pub fn keep_pasta(holder: u32, pasta: &[String]) -> Result<(), InsideError> {
    let Some((program, args)) = pasta.split_first() else {
        return Ok(());
    };
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|source| InsideError::Exec {
            program: program.clone(),
            source,
        })?;
    let started = std::time::Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!("pasta exited ({status}) before the pod was connected");
            std::process::exit(1);
        }
        if super::gateway(holder).is_some() {
            break;
        }
        if started.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            eprintln!("pasta did not connect the pod within 10 s");
            std::process::exit(1);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    ready_until_daca_goes();
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}

/// Joins the namespaces of the holder `pid` and becomes `program` (the environment and folder
/// are the caller's, as the app's unit set them). Returns only on failure.
pub fn exec(pid: u32, program: &str, args: &[String]) -> InsideError {
    let open = |kind: &'static str| {
        File::open(format!("/proc/{pid}/ns/{kind}")).map_err(|source| InsideError::Join {
            pid,
            what: kind,
            source,
        })
    };
    // Entering a mount namespace moves the process to its root: come back to the same folder.
    let cwd = std::env::current_dir();
    let join = || -> Result<(), InsideError> {
        // The user namespace first: in it, this process may join the others.
        for (kind, flag) in [
            ("user", CloneFlags::CLONE_NEWUSER),
            ("mnt", CloneFlags::CLONE_NEWNS),
            ("net", CloneFlags::CLONE_NEWNET),
        ] {
            setns(open(kind)?, flag).map_err(|e| InsideError::Join {
                pid,
                what: kind,
                source: e.into(),
            })?;
        }
        Ok(())
    };
    if let Err(err) = join() {
        return err;
    }
    if let Ok(cwd) = cwd
        && let Err(source) = std::env::set_current_dir(&cwd)
    {
        return InsideError::Join {
            pid,
            what: "folder",
            source,
        };
    }
    let source = std::process::Command::new(program).args(args).exec();
    InsideError::Exec {
        program: program.to_string(),
        source,
    }
}
