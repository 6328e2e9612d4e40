//! Tools an app's command needs that daca can provide itself, so that the README's first
//! command works on a machine with nothing but python3: today `uv`, installed with pip into
//! daca's own cache folder (whose `bin` every app's PATH ends with).

use std::path::{Path, PathBuf};

use crate::error::Problem;
use crate::manifest::Manifest;

/// Set (to anything but `0`) to stop daca from installing anything.
const NO_INSTALL: &str = "DACA_NO_INSTALL";

/// daca's cache folder: `$DACA_CACHE_DIR`, else `$XDG_CACHE_HOME/daca`, else `~/.cache/daca`.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("DACA_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("daca")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/daca")))
}

/// Where the tools daca installed are: the last entry of every app's PATH, when it exists.
pub fn bin_dir() -> Option<PathBuf> {
    cache_dir().map(|d| d.join("bin")).filter(|d| d.is_dir())
}

/// `path` with daca's tool folder appended (a tool the user installed wins).
pub fn extend_path(path: &str) -> String {
    match bin_dir() {
        Some(bin) if !std::env::split_paths(path).any(|p| p == bin) => {
            let mut parts: Vec<PathBuf> = std::env::split_paths(path).collect();
            parts.push(bin);
            std::env::join_paths(parts)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| path.to_string())
        }
        _ => path.to_string(),
    }
}

/// Installs `uv` when a host-process app (or its `setup:`) runs it and it is on neither the
/// PATH nor in daca's tool folder. `runs_in_container` says which apps run in their image.
pub async fn provide_uv(
    manifest: &Manifest,
    runs_in_container: impl Fn(&crate::manifest::AppSpec) -> bool,
) -> Result<(), Problem> {
    let wants = manifest
        .apps
        .iter()
        .filter(|a| !runs_in_container(a))
        .any(|app| {
            let first = |c: &[String]| c.first().is_some_and(|p| p == "uv");
            first(&app.process.command) || app.reload.setup.as_deref().is_some_and(first)
        });
    let path = extend_path(&std::env::var("PATH").unwrap_or_default());
    let off = std::env::var(NO_INSTALL).is_ok_and(|v| !v.is_empty() && v != "0");
    if !wants || off || which::which_in("uv", Some(&path), ".").is_ok() {
        return Ok(());
    }
    let Some(cache) = cache_dir() else {
        return Ok(()); // no home: the usual "`uv` was not found" follows
    };
    let python = which::which_in("python3", Some(&path), ".").map_err(|_| {
        Problem::new("`uv` was not found, and neither was python3 to install it with")
            .hint("install uv (https://docs.astral.sh/uv/) or python3")
    })?;
    tracing::info!(
        "`uv` was not found: installing it into {} with pip (once; {NO_INSTALL}=1 turns this off)",
        cache.display()
    );
    install_uv(&python, &cache).await
}

async fn install_uv(python: &Path, cache: &Path) -> Result<(), Problem> {
    let target = cache.join("uv-pip");
    let output = tokio::process::Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--upgrade",
        ])
        .arg("--target")
        .arg(&target)
        .arg("uv")
        .kill_on_drop(true)
        .output()
        .await;
    let failed = |why: String| {
        Problem::new(format!("could not install uv: {why}")).hint(format!(
            "install uv yourself (`pip install uv`, or https://docs.astral.sh/uv/), or set {NO_INSTALL}=1"
        ))
    };
    match output {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("pip failed");
            return Err(failed(last.trim().to_string()));
        }
        Err(err) => return Err(failed(format!("cannot run {}: {err}", python.display()))),
    }
    let bin = cache.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| failed(format!("{}: {e}", bin.display())))?;
    for tool in ["uv", "uvx"] {
        let link = bin.join(tool);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target.join("bin").join(tool), &link)
            .map_err(|e| failed(format!("{}: {e}", link.display())))?;
    }
    tracing::info!("installed uv into {}", bin.display());
    Ok(())
}
