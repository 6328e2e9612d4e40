//! `steps:`: commands `daca up` runs once, in order, once Redis is there and before any app
//! starts (Tilt's `local_resource` with a `cmd` alone). Their output is shown; one that fails
//! stops the start with its last lines, as a failed `tilt up` resource would.

use std::time::Instant;

use crate::error::Problem;
use crate::manifest::{Manifest, Step};

/// How many of a step's last output lines a failure shows.
const SHOWN: usize = 20;

/// Runs the project's steps in order; the first that fails is the error.
pub(super) async fn run(manifest: &Manifest) -> Result<(), Problem> {
    for step in &manifest.steps {
        run_one(step, &manifest.source_name()).await?;
    }
    Ok(())
}

/// Runs one step (also again, when its `watch:` files change).
pub(super) async fn run_one(step: &Step, source: &str) -> Result<(), Problem> {
    let shown = step.command.join(" ");
    let hint = format!("fix the step `{}` in {source}", step.name);
    let started = Instant::now();
    let mut command = tokio::process::Command::new(&step.command[0]);
    command
        .args(&step.command[1..])
        .current_dir(&step.dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // daca's own tools (uv) are found last on its PATH, as an app's are.
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", crate::tools::extend_path(&path));
    }
    let output = command.output().await.map_err(|err| {
        Problem::new(format!("step {}: cannot run `{shown}`: {err}", step.name)).hint(hint.clone())
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if !output.status.success() {
        let tail = lines[lines.len().saturating_sub(SHOWN)..].join("\n  ");
        return Err(Problem::new(format!(
            "step {}: `{shown}` failed ({}){}",
            step.name,
            output.status,
            match tail.is_empty() {
                true => String::new(),
                false => format!(":\n  {tail}"),
            }
        ))
        .hint(hint));
    }
    for line in &lines {
        tracing::info!("step {}: {line}", step.name);
    }
    tracing::info!(
        "step {}: done in {} ms",
        step.name,
        started.elapsed().as_millis()
    );
    Ok(())
}
