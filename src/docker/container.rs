//! Apps (and Redis) as containers. A container is started with the engine's init (so signals
//! reach the app and zombies are reaped), in its pod's network or the host's (either way
//! `localhost:$DAPR_HTTP_PORT` is the sidecar), attached before it starts (so no output line is
//! lost).
//!
//! A reload starts the same container again instead of creating a new one, when nothing it was
//! created from changed (image id, command, env, mounts): that saves the create and remove
//! round trips, and keeps the anonymous volume that holds the image's virtualenv.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::sync::oneshot;

use super::{LABEL_CONFIG, LABEL_PROJECT, LABEL_ROOT, LABEL_RUN, is_not_found};
use crate::logs::{LogBus, Stream};
use crate::runtime::{ContainerLaunch, ExitInfo, LaunchError, LaunchFuture, Launched, Signaller};

/// Runs [`ContainerLaunch`] specs on one engine.
pub struct ContainerRuntime {
    docker: Docker,
}

impl ContainerRuntime {
    pub fn new(docker: Docker) -> ContainerRuntime {
        ContainerRuntime { docker }
    }
}

impl ContainerRuntime {
    /// What a container of `image` runs when no `cmd` is given: its ENTRYPOINT and CMD.
    pub async fn image_command(&self, image: &str) -> Option<Vec<String>> {
        let config = self.docker.inspect_image(image).await.ok()?.config?;
        let mut command = config.entrypoint.unwrap_or_default();
        command.extend(config.cmd.unwrap_or_default());
        Some(command)
    }

    /// Starts (or starts again) the container `want`, its output lines `name`'s.
    pub fn launch<'a>(
        &'a self,
        name: &'a str,
        want: &'a ContainerLaunch,
        logs: &'a Arc<LogBus>,
    ) -> LaunchFuture<'a> {
        Box::pin(async move {
            start(&self.docker, name, want, logs)
                .await
                .map_err(|err| engine_error(want, err))
        })
    }
}

fn engine_error(want: &ContainerLaunch, err: StartError) -> LaunchError {
    match err {
        StartError::Foreign => LaunchError::Container {
            message: format!(
                "a container named `{}` exists that daca did not create for this project",
                want.name
            ),
            hint: format!("remove or rename it (`docker rm -f {}`)", want.name),
        },
        StartError::Api(err) if is_not_found(&err) => LaunchError::Container {
            message: format!("image `{}` is not on the Docker engine: {err}", want.image),
            hint: "build or pull it (`docker pull IMAGE`), or fix `image:` in daca.yaml".into(),
        },
        StartError::Api(err) => LaunchError::Container {
            message: format!("could not start container `{}`: {err}", want.name),
            hint: "see `docker logs` / `docker inspect` of it; check the image and `command:`"
                .into(),
        },
    }
}

enum StartError {
    Foreign,
    Api(bollard::errors::Error),
}

impl From<bollard::errors::Error> for StartError {
    fn from(err: bollard::errors::Error) -> Self {
        StartError::Api(err)
    }
}

async fn start(
    docker: &Docker,
    source: &str,
    want: &ContainerLaunch,
    logs: &Arc<LogBus>,
) -> Result<Launched, StartError> {
    let image_id = docker
        .inspect_image(&want.image)
        .await?
        .id
        .unwrap_or_default();
    let config = config_hash(want, &image_id);
    let reuse = match docker.inspect_container(&want.name, None).await {
        Ok(existing) => {
            let labels = existing.config.and_then(|c| c.labels).unwrap_or_default();
            let ours = [LABEL_PROJECT, LABEL_ROOT]
                .iter()
                .all(|k| labels.contains_key(*k) && labels.get(*k) == want.labels.get(*k));
            if !ours {
                return Err(StartError::Foreign);
            }
            let running = existing.state.and_then(|s| s.running).unwrap_or(false);
            let same = labels.get(LABEL_CONFIG) == Some(&config)
                && labels.get(LABEL_RUN) == want.labels.get(LABEL_RUN);
            if !same || running {
                remove(docker, &want.name).await?;
            }
            same && !running
        }
        Err(err) if is_not_found(&err) => false,
        Err(err) => return Err(err.into()),
    };
    if !reuse {
        create(docker, want, &config).await?;
    }
    let attach = docker
        .attach_container(
            &want.name,
            Some(
                AttachContainerOptionsBuilder::default()
                    .stream(true)
                    .stdout(true)
                    .stderr(true)
                    .logs(false)
                    .build(),
            ),
        )
        .await?;
    docker.start_container(&want.name, None).await?;
    let inspect = docker.inspect_container(&want.name, None).await?;
    let id = inspect.id.unwrap_or_default();
    let pid = inspect.state.and_then(|s| s.pid).unwrap_or(0).max(0) as u32;
    let pump = tokio::spawn(pump_output(attach.output, logs.clone(), source.to_string()));
    let running = Arc::new(AtomicBool::new(true));
    let (tx, exited) = oneshot::channel();
    tokio::spawn(wait(
        docker.clone(),
        id.clone(),
        source.to_string(),
        logs.clone(),
        running.clone(),
        pump,
        tx,
    ));
    Ok(Launched {
        pid,
        container: Some(id.chars().take(12).collect()),
        exited,
        signals: Arc::new(ContainerSignals {
            docker: docker.clone(),
            id,
            running,
            stop: want.stop_signal.unwrap_or("SIGTERM"),
        }),
        start: None,
    })
}

/// What a container is created from, as one label value (compared only within one run, so
/// the std hasher's per-release instability does not matter).
fn config_hash(want: &ContainerLaunch, image_id: &str) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    want.hash(&mut hasher);
    image_id.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

async fn create(
    docker: &Docker,
    want: &ContainerLaunch,
    config: &str,
) -> Result<(), bollard::errors::Error> {
    let mut labels: HashMap<String, String> = want.labels.clone().into_iter().collect();
    labels.insert(LABEL_CONFIG.into(), config.to_string());
    let mut binds: Vec<String> = want.binds.iter().map(|(h, c)| format!("{h}:{c}")).collect();
    // A container joined to another's network has no hosts file of its own, but the engine
    // mounts the user's.
    binds.extend(
        want.network
            .iter()
            .map(|n| format!("{}:/etc/hosts:ro", n.hosts)),
    );
    binds.extend(want.volumes.iter().map(|(v, c)| format!("{v}:{c}")));
    // The image's virtualenv (uv and venv put it in `<project>/.venv`) would be hidden by the
    // source mount (the first), and the host's own .venv does not run in the container: an anonymous
    // volume over it keeps the image's.
    let masks: Vec<String> = want
        .binds
        .first()
        .map(|(_, c)| format!("{}/.venv", c.trim_end_matches('/')))
        .into_iter()
        .collect();
    let body = ContainerCreateBody {
        image: Some(want.image.clone()),
        cmd: want.cmd.clone(),
        env: Some(want.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        volumes: (!masks.is_empty()).then_some(masks),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        host_config: Some(HostConfig {
            network_mode: Some(match &want.network {
                Some(pod) => pod.mode.clone(),
                None => "host".into(),
            }),
            init: Some(true),
            binds: (!binds.is_empty()).then_some(binds),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default()
        .name(&want.name)
        .build();
    docker.create_container(Some(options), body).await?;
    Ok(())
}

/// Force-removes a container and its anonymous volumes; a missing one is fine.
pub(super) async fn remove(docker: &Docker, name: &str) -> Result<(), bollard::errors::Error> {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(name, Some(options)).await {
        Err(err) if !is_not_found(&err) => Err(err),
        _ => Ok(()),
    }
}

/// Output arrives in chunks that do not follow lines; this cuts them into lines per stream.
async fn pump_output(
    mut output: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    logs: Arc<LogBus>,
    source: String,
) {
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    while let Some(Ok(chunk)) = output.next().await {
        let (index, stream, bytes) = match chunk {
            LogOutput::StdErr { message } => (1, Stream::Stderr, message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (0, Stream::Stdout, message)
            }
            LogOutput::StdIn { .. } => continue,
        };
        let buffer = &mut pending[index];
        buffer.extend_from_slice(&bytes);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            logs.push(
                &source,
                stream,
                text.trim_end_matches(['\n', '\r']).to_string(),
            );
        }
    }
    for (index, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
        if !pending[index].is_empty() {
            logs.push(
                &source,
                stream,
                String::from_utf8_lossy(&pending[index]).into_owned(),
            );
        }
    }
}

/// Waits for the container to stop, reports an OOM kill, and resolves `exited`.
async fn wait(
    docker: Docker,
    id: String,
    source: String,
    logs: Arc<LogBus>,
    running: Arc<AtomicBool>,
    pump: tokio::task::JoinHandle<()>,
    exited: oneshot::Sender<ExitInfo>,
) {
    let code = match docker.wait_container(&id, None).next().await {
        Some(Ok(response)) => Some(response.status_code),
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Some(code),
        _ => None,
    };
    // The last lines arrive just before the attach stream ends.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), pump).await;
    if let Ok(inspect) = docker.inspect_container(&id, None).await
        && inspect.state.and_then(|s| s.oom_killed) == Some(true)
    {
        logs.push(
            &source,
            Stream::Stderr,
            "[daca] the container was killed: out of memory (OOM)".into(),
        );
        tracing::error!("{source}: killed by the kernel for using too much memory (OOM)");
    }
    running.store(false, Ordering::SeqCst);
    let _ = exited.send(exit_info(code));
}

/// Docker reports a death by signal N as exit code 128+N, as shells do.
fn exit_info(code: Option<i64>) -> ExitInfo {
    match code {
        Some(code) if (129..=159).contains(&code) => ExitInfo {
            code: None,
            signal: Some((code - 128) as i32),
        },
        Some(code) => ExitInfo {
            code: Some(code as i32),
            signal: None,
        },
        None => ExitInfo {
            code: None,
            signal: None,
        },
    }
}

/// Signals a container's init, which passes them to the app.
struct ContainerSignals {
    docker: Docker,
    id: String,
    running: Arc<AtomicBool>,
    stop: &'static str,
}

impl ContainerSignals {
    fn send(&self, signal: &'static str) {
        let (docker, id) = (self.docker.clone(), self.id.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let options = KillContainerOptionsBuilder::default()
                    .signal(signal)
                    .build();
                let _ = docker.kill_container(&id, Some(options)).await;
            });
        }
    }
}

impl Signaller for ContainerSignals {
    fn terminate(&self) {
        self.send(self.stop);
    }
    fn kill(&self) {
        self.send("SIGKILL");
    }
    fn group_alive(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_in_exit_codes() {
        assert_eq!(exit_info(Some(0)).code, Some(0));
        assert_eq!(exit_info(Some(137)).signal, Some(9));
        assert_eq!(exit_info(Some(143)).signal, Some(15));
        assert_eq!(exit_info(Some(3)).code, Some(3));
    }
}
