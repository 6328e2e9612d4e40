//! The README's first command on a machine with python3 but no `uv`: daca installs uv into
//! its own cache folder (saying so) and the example app answers.

use std::time::Duration;

use crate::common::{have, http_get, repo, serial, wait_until};
use crate::reload::copy_dir;
use crate::up::Up;

/// PATH without any folder that holds `uv`.
fn path_without_uv() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let kept: Vec<_> = std::env::split_paths(&path)
        .filter(|dir| !dir.join("uv").exists())
        .collect();
    std::env::join_paths(kept)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_readme_command_runs_hello_without_uv_installed() {
    let pip = std::process::Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have("uv") || !pip {
        return; // scripts/test provides both; uv only to know the registry is reachable
    }
    let _serial = serial();
    let work = tempfile::tempdir().unwrap();
    let hello = work.path().join("hello");
    copy_dir(&repo().join("examples/hello"), &hello);
    let cache = work.path().join("cache");
    let path = path_without_uv();
    let up = Up::start_env(
        &hello,
        &[
            ("PATH", path.as_str()),
            ("DACA_CACHE_DIR", cache.to_str().unwrap()),
        ],
    );
    up.wait_output(
        "`uv` was not found: installing it into",
        Duration::from_secs(10),
    );
    let answered = wait_until(Duration::from_secs(240), || {
        http_get(8000, "/").is_some_and(|(s, b)| s == 200 && b.contains("hello from hello-api"))
    });
    assert!(answered, "{}", up.output());
    assert!(cache.join("bin/uv").exists());

    // DACA_NO_INSTALL=1: the usual error, and its hint.
    drop(up);
    let bare = tempfile::tempdir().unwrap();
    let output = crate::common::daca()
        .args(["up", "-d", hello.to_str().unwrap()])
        .env("PATH", &path)
        .env("DACA_CACHE_DIR", bare.path())
        .env("DACA_NO_INSTALL", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("`uv` was not found"), "{stderr}");
    assert!(!stderr.contains("installing it"), "{stderr}");
}
