//! A process app's volumes, mounted in its pod's own mount namespace (by the holder, before
//! the app joins), so that it reads a ConfigMap at `/etc/config/x.yml` as its container would,
//! and nothing changes on the machine. A target that does not exist is made without writing
//! to the machine's folders: its parent (say `/etc`) is mirrored on a tmpfs, each entry bound
//! from the original, the new folder made there, and the mirror moved over the parent.

use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::Path;

use nix::mount::{MsFlags, mount};

use crate::manifest::Volume;

/// A volume on the holder's command line: `ro:TARGET=HOST` or `rw:TARGET=HOST`.
pub fn arg(volume: &Volume) -> String {
    let mode = if volume.read_only { "ro" } else { "rw" };
    format!("{mode}:{}={}", volume.target, volume.host.display())
}

/// A volume from the holder's command line (see [`arg`]).
pub fn parse(arg: &str) -> Option<Volume> {
    let (mode, rest) = arg.split_once(':')?;
    let (target, host) = rest.split_once('=')?;
    Some(Volume {
        host: host.into(),
        target: target.into(),
        read_only: match mode {
            "ro" => true,
            "rw" => false,
            _ => return None,
        },
    })
}

/// Why a volume could not be mounted.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("{target}: {what}: {source}")]
    Step {
        target: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{0}: a process app's volume needs an absolute path below a top-level folder")]
    Top(String),
}

/// Mounts `volume` in this process's mount namespace (private, in a user namespace of ours).
pub fn mount_volume(volume: &Volume) -> Result<(), MountError> {
    let target = Path::new(&volume.target);
    let step = |what: &'static str| failed(target, what);
    let is_dir = volume.host.is_dir();
    if !target.exists() {
        make_target(target, is_dir)?;
    }
    bind(&volume.host, target).map_err(step("cannot bind the volume"))?;
    if volume.read_only {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
            .map_err(|e| step("cannot make it read-only")(e.into()))?;
    }
    Ok(())
}

/// The error of step `what` of mounting at `target`, from its cause.
fn failed(target: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> MountError {
    let target = target.display().to_string();
    move |source| MountError::Step {
        target,
        what,
        source,
    }
}

fn bind(from: &Path, to: &Path) -> std::io::Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(from), to, None::<&str>, flags, None::<&str>).map_err(Into::into)
}

/// Makes `target` (a folder when `dir`, else a file) where the machine has none: the deepest
/// folder that exists is mirrored on a tmpfs with the missing part added, and the mirror is
/// moved over it. `/` itself is not mirrored (a process's root would not see it).
fn make_target(target: &Path, dir: bool) -> Result<(), MountError> {
    let shown = target.display().to_string();
    let existing = target
        .ancestors()
        .skip(1)
        .find(|a| a.is_dir())
        .unwrap_or(Path::new("/"));
    if existing == Path::new("/") || !target.is_absolute() {
        return Err(MountError::Top(shown));
    }
    let step = |what: &'static str| failed(target, what);
    let stage = std::env::temp_dir().join(format!("daca-pod-mirror-{}", std::process::id()));
    std::fs::create_dir_all(&stage).map_err(step("cannot make a staging folder"))?;
    mount(
        Some("tmpfs"),
        &stage,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )
    .map_err(|e| step("cannot mount a tmpfs")(e.into()))?;
    mirror(existing, &stage).map_err(step("cannot mirror the folder above it"))?;
    let inside = stage.join(target.strip_prefix(existing).unwrap_or(target));
    let made = match dir {
        true => std::fs::create_dir_all(&inside),
        false => inside
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&inside, b"")),
    };
    made.map_err(step("cannot make the mount point"))?;
    mount(
        Some(&stage),
        existing,
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .map_err(|e| step("cannot put the mirror in place")(e.into()))?;
    let _ = std::fs::remove_dir(&stage);
    Ok(())
}

/// Makes each entry of `from` in `to`: symlinks as they are, folders and files as mount points
/// with the original bound onto them (mounts below included).
fn mirror(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let (source, place) = (entry.path(), to.join(entry.file_name()));
        if kind.is_symlink() {
            symlink(std::fs::read_link(&source)?, &place)?;
            continue;
        }
        if kind.is_dir() {
            std::fs::create_dir(&place)?;
        } else if kind.is_file() || kind.is_socket() || kind.is_fifo() || kind.is_char_device() {
            std::fs::write(&place, b"")?;
        } else {
            continue;
        }
        if let Err(err) = bind(&source, &place) {
            // A file the caller may not even read (a root-only one) is left out, as it
            // would be unreadable anyway.
            if err.kind() != std::io::ErrorKind::PermissionDenied {
                return Err(err);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_goes_to_the_holder_and_back() {
        let volume = Volume {
            host: "/home/u/p/.daca/imported/volumes/app/config".into(),
            target: "/etc/config".into(),
            read_only: true,
        };
        assert_eq!(parse(&arg(&volume)), Some(volume));
        assert_eq!(parse("xx:/a=/b"), None);
    }
}
