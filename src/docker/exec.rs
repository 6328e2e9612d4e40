//! A command run inside an app's running container (`on_change:` steps, as Tilt's
//! `live_update` runs them there): its output, and whether it succeeded. The container is
//! restarted afterwards, not re-created, so what the command changed in it stays.

use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use futures_util::StreamExt;

use super::{ContainerPlan, DockerError};
use crate::manifest::AppSpec;
use crate::supervisor::Unit;

/// What a command in a container did.
pub struct Ran {
    /// Its exit code (`None` when the engine did not say).
    pub code: Option<i64>,
    /// Its stdout and stderr, in order.
    pub output: String,
}

impl ContainerPlan {
    /// Runs `command` in `app`'s running container, in its working directory.
    pub async fn exec(&self, app: &AppSpec, command: &[String]) -> Result<Ran, DockerError> {
        let docker = &self.engine.docker;
        let name = self.owner.container_name(&Unit::App(app.id.clone()));
        let config = ExecConfig {
            cmd: Some(command.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = docker.create_exec(&name, config).await?;
        let mut output = String::new();
        let options = StartExecOptions {
            detach: false,
            ..Default::default()
        };
        if let StartExecResults::Attached {
            output: mut stream, ..
        } = docker.start_exec(&exec.id, Some(options)).await?
        {
            while let Some(Ok(chunk)) = stream.next().await {
                output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
        }
        let code = docker.inspect_exec(&exec.id).await?.exit_code;
        Ok(Ran { code, output })
    }
}
