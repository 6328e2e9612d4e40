//! A container app's pod (see `crate::pod::relay`): the engine makes its network namespace (the
//! pod container, which the app's container joins), and daca's relay in it serves the sidecar's
//! 3500/50001, the other apps' cluster names and Redis at the pod's own localhost.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Context;
use super::launch::POD_SIDECAR;
use super::pod::{pod_problem, pods_dir};
use super::pod_names::Names;
use crate::docker::ContainerPlan;
use crate::docker::pod::PodContainer;
use crate::error::Problem;
use crate::manifest::AppSpec;
use crate::pod::relay::{Hub, IN_POD, runtime_files};

/// How long the relay may take to connect once its container started.
const CONNECT: Duration = Duration::from_secs(15);

/// A container's pod while it runs.
pub(super) struct ContainerPod {
    pub hub: Arc<Hub>,
    plan: Arc<ContainerPlan>,
    spec: Box<AppSpec>,
    dir: PathBuf,
    token: CancellationToken,
}

impl ContainerPod {
    /// Starts the pod container and waits for its relay; returns the pod and the network
    /// mode its app's container joins it with.
    pub async fn open(
        ctx: &Context,
        plan: &Arc<ContainerPlan>,
        spec: &AppSpec,
        dir: &std::path::Path,
        names: &Names,
    ) -> Result<(ContainerPod, String), Problem> {
        let id = spec.id.as_str();
        let (hub, listener) = Hub::bind(&dir.join("relay.sock")).map_err(|e| pod_problem(id, e))?;
        let token = ctx.token.child_token();
        ctx.tasks.spawn(hub.clone().serve(listener, token.clone()));
        let pod = ContainerPod {
            hub,
            plan: plan.clone(),
            spec: Box::new(spec.clone()),
            dir: dir.to_path_buf(),
            token,
        };
        let want = pod.container(ctx, names)?;
        let container = match plan.start_pod(spec, &want).await {
            Ok(container) => container,
            Err(err) => {
                pod.close().await;
                return Err(
                    Problem::new(format!("{id}: cannot start its pod container: {err}"))
                        .hint("set `network: host` for this app"),
                );
            }
        };
        if !pod.hub.wait_connected(CONNECT).await {
            let said = plan.pod_output(spec).await;
            pod.close().await;
            return Err(Problem::new(format!(
                "{id}: the relay in its pod container did not reach daca within {CONNECT:?}{}",
                match said.is_empty() {
                    true => String::new(),
                    false => format!(" (it said: {said})"),
                }
            ))
            .hint("an engine in a virtual machine cannot reach daca's socket: set `network: host` for this app"));
        }
        // As from a container on the engine's network, the machine is `host.docker.internal`.
        if let Some(gateway) = plan.pod_gateway(spec).await {
            let line = format!("{gateway} host.docker.internal host.containers.internal");
            if let Err(err) = names.extra(&line) {
                tracing::warn!("{id}: cannot write its pod's hosts file: {err}");
            }
        }
        // The id, not the name: the engine resolves a name once, so an app container made for
        // an earlier pod container must be seen to differ from one made for this one.
        Ok((pod, format!("container:{container}")))
    }

    /// The pod container: the relay with what it listens for, and the pod's hosts file.
    fn container(&self, ctx: &Context, names: &Names) -> Result<PodContainer, Problem> {
        let id = self.spec.id.as_str();
        let exe = crate::pod::daca_exe().map_err(|e| pod_problem(id, e))?;
        let (mut binds, mut command) = runtime_files(&exe).map_err(|e| pod_problem(id, e))?;
        binds.push((self.dir.display().to_string(), format!("{IN_POD}/run")));
        binds.push((names.hosts().display().to_string(), "/etc/hosts".into()));
        command.extend(["__pod-relay".into(), format!("{IN_POD}/run/relay.sock")]);
        let mut listens = Vec::new();
        if self.spec.sidecar.enabled {
            listens.push(format!("127.0.0.1:{}=sidecar:http", POD_SIDECAR.http));
            listens.push(format!("127.0.0.1:{}=sidecar:grpc", POD_SIDECAR.grpc));
        }
        for (peer, wanted) in names.initial() {
            for (address, target) in wanted {
                listens.push(format!("{address}={}", target.relay(&peer)));
            }
        }
        for port in ctx.server_ports() {
            listens.push(format!("127.0.0.1:{port}=host:{port}"));
        }
        command.extend(listens);
        Ok(PodContainer { binds, command })
    }

    /// Removes the pod container and the relay's socket.
    pub async fn close(self) {
        if let Err(err) = self.plan.remove_pod(&self.spec).await {
            tracing::warn!(
                "{}: could not remove its pod container: {err}",
                self.spec.id
            );
        }
        self.token.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir(pods_dir());
    }
}
