//! What a Tiltfile runs while it is read, as Tilt runs it: `local(...)` (e.g. `kubectl create
//! secret ... --dry-run=client -o yaml`, whose output goes to `k8s_yaml`) and `helm template`
//! for `helm(...)` charts daca does not provide itself.

use std::path::Path;
use std::process::Command;

use super::call::Call;

/// Runs `local`'s command (a shell line, or an argv list) in the Tiltfile's folder and returns
/// its output.
pub fn run(call: &Call, dir: &Path) -> anyhow::Result<String> {
    let mut command = match call.args.get("command") {
        Some(serde_json::Value::String(line)) => {
            let mut sh = Command::new("sh");
            sh.args(["-c", line]);
            sh
        }
        Some(serde_json::Value::Array(_)) => {
            let argv = call.strings("command");
            let (program, args) = argv
                .split_first()
                .ok_or_else(|| anyhow::anyhow!("local(): the command is empty"))?;
            let mut direct = Command::new(program);
            direct.args(args);
            direct
        }
        _ => anyhow::bail!("local(): `command` must be a string or a list of strings"),
    };
    command.current_dir(call.str("dir").map_or(dir.to_path_buf(), |d| dir.join(d)));
    if let Some(serde_json::Value::Object(env)) = call.args.get("env") {
        for (key, value) in env {
            command.env(key, value.as_str().unwrap_or_default());
        }
    }
    let shown = shown(call);
    let output = command
        .output()
        .map_err(|e| anyhow::anyhow!("local({shown}): cannot run it: {e}"))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        let said = said.trim().lines().last().unwrap_or_default().to_string();
        let missing = output.status.code() == Some(127);
        anyhow::bail!(
            "local({shown}) {}{}",
            match missing {
                true => "failed: a program it runs is not installed".to_string(),
                false => format!("failed ({})", output.status),
            },
            match said.is_empty() {
                true => String::new(),
                false => format!(": {said}"),
            }
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn shown(call: &Call) -> String {
    let line = call.strings("command").join(" ");
    match line.chars().count() > 60 {
        true => format!("'{}…'", line.chars().take(60).collect::<String>()),
        false => format!("'{line}'"),
    }
}

/// Renders a local chart with `helm template` (Tilt's `helm(...)`), when helm is installed.
pub fn helm_template(call: &Call, dir: &Path) -> anyhow::Result<String> {
    let paths = call.strings("paths");
    let chart = paths
        .first()
        .ok_or_else(|| anyhow::anyhow!("helm(): no chart path"))?;
    if which::which("helm").is_err() {
        anyhow::bail!(
            "helm('{chart}'): daca renders charts it does not provide with `helm template`, and `helm` is not installed"
        );
    }
    let mut command = Command::new("helm");
    command.arg("template");
    command.arg(call.str("name").unwrap_or("chart"));
    command.arg(dir.join(chart));
    if let Some(namespace) = call.str("namespace") {
        command.args(["--namespace", namespace]);
    }
    for values in call.strings("values") {
        command.arg("--values").arg(dir.join(values));
    }
    for set in call.strings("set") {
        command.args(["--set", &set]);
    }
    let output = command
        .output()
        .map_err(|e| anyhow::anyhow!("helm('{chart}'): cannot run helm: {e}"))?;
    if !output.status.success() {
        anyhow::bail!(
            "helm('{chart}'): helm template failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
