//! What the pool starts, on either kind of runtime: the app's command as it is (a plain
//! start), through parent.py's `run` mode (a start that reports its imports), or as a warm
//! parent. A container's parent is a second container of the app's image (`NAME-warm`, the
//! same mounts, environment and network, serving no port) into which daca's
//! folder is mounted at [`IN_CONTAINER`]; once a reload forks there, the app runs in it.

use std::path::Path;
use std::sync::Arc;

use super::command::{PythonCommand, recognise};
use super::parent::{Files, parent_command};
use crate::docker::ContainerRuntime;
use crate::logs::LogBus;
use crate::runtime::process::{resolve_program, spawn};
use crate::runtime::{ContainerLaunch, LaunchError, LaunchSpec, Launched, ProcessLaunch};

/// Where daca's warm folder is mounted in a container.
pub const IN_CONTAINER: &str = "/daca-warm";

/// A launch the pool may make warm.
#[derive(Clone)]
pub enum Job {
    Process(ProcessLaunch),
    Container(ContainerLaunch, Arc<ContainerRuntime>),
}

impl Job {
    /// The launch a parent must have been started for, to fork this one.
    pub fn spec(&self) -> LaunchSpec {
        match self {
            Job::Process(launch) => LaunchSpec::Process(launch.clone()),
            Job::Container(launch, _) => LaunchSpec::Container(launch.clone()),
        }
    }

    /// The app's command taken apart, or why it cannot be forked.
    pub async fn command(&self) -> Result<PythonCommand, String> {
        match self {
            Job::Process(launch) => {
                let mut line = vec![launch.program.clone()];
                line.extend(launch.args.iter().cloned());
                recognise(&line, &launch.dir, |script| shebang(launch, script))
            }
            Job::Container(launch, runtime) => {
                let Some((_, source)) = launch.binds.first() else {
                    return Err("the app's folder is not mounted in its container".into());
                };
                let line = match &launch.cmd {
                    Some(cmd) => cmd.clone(),
                    None => runtime
                        .image_command(&launch.image)
                        .await
                        .unwrap_or_default(),
                };
                // Inside an image, a bare console script's interpreter is not known here.
                recognise(&line, Path::new(source), |_| None).map_err(|why| {
                    match why.ends_with("is not a Python script") {
                        true => {
                            "in a container, daca forks `uv run …` and `python …` commands".into()
                        }
                        false => why,
                    }
                })
            }
        }
    }

    /// Where the parent and the app see daca's warm folder.
    pub fn files(&self, dir: &Path, name: &str) -> Files {
        let seen = match self {
            Job::Process(_) => dir.display().to_string(),
            Job::Container(..) => IN_CONTAINER.to_string(),
        };
        Files {
            script: format!("{seen}/parent.py"),
            report: format!("{seen}/{name}.modules"),
            socket: format!("{seen}/{name}.sock"),
        }
    }

    /// The app's command as it is.
    pub async fn plain(&self, name: &str, logs: &Arc<LogBus>) -> Result<Launched, LaunchError> {
        match self {
            Job::Process(launch) => spawn(name, launch, logs),
            Job::Container(launch, runtime) => runtime.launch(name, launch, logs).await,
        }
    }

    /// The app's server run by parent.py's `run` mode, which reports what it imports.
    pub async fn reporting(
        &self,
        name: &str,
        command: &PythonCommand,
        files: &Files,
        dir: &Path,
        logs: &Arc<LogBus>,
    ) -> Result<Launched, LaunchError> {
        let mut line = parent_command(command, files, "run", None);
        line.extend(command.args.iter().cloned());
        self.with_command(line, dir, false).plain(name, logs).await
    }

    /// Starts the warm parent itself (its output is the app's: its forks inherit it).
    pub async fn parent(
        &self,
        name: &str,
        command: &PythonCommand,
        files: &Files,
        dir: &Path,
        logs: &Arc<LogBus>,
    ) -> Result<Launched, String> {
        let line = parent_command(command, files, "serve", Some(&files.socket));
        self.with_command(line, dir, true)
            .plain(name, logs)
            .await
            .map_err(|e| e.to_string())
    }

    /// This launch running `line` instead, with daca's folder mounted in a container (and,
    /// for a parent, in a container of its own).
    fn with_command(&self, mut line: Vec<String>, dir: &Path, parent: bool) -> Job {
        match self {
            Job::Process(launch) => Job::Process(ProcessLaunch {
                program: line.remove(0),
                args: line,
                warm: false,
                ..launch.clone()
            }),
            Job::Container(launch, runtime) => {
                let mut launch = launch.clone();
                if parent {
                    launch.name.push_str("-warm");
                }
                launch.cmd = Some(line);
                launch
                    .binds
                    .push((dir.display().to_string(), IN_CONTAINER.into()));
                launch.warm = false;
                Job::Container(launch, runtime.clone())
            }
        }
    }
}

/// The interpreter a console script on the app's PATH names in its `#!` line.
fn shebang(spec: &ProcessLaunch, script: &str) -> Option<String> {
    let probe = ProcessLaunch {
        program: script.to_string(),
        ..spec.clone()
    };
    let path = resolve_program(&probe).ok()?;
    let text = std::fs::read(&path).ok()?;
    let first = text.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(first).ok()?.strip_prefix("#!")?.trim();
    let interpreter = line.split_whitespace().next()?;
    Path::new(interpreter)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("python"))
        .then(|| interpreter.to_string())
}
