//! An app's pod container (see `crate::pod::relay`): the engine's own network namespace for the
//! app's container to join (`network_mode: container:<pod>`), with daca's relay as its only
//! process. Its /etc/hosts, like the app container's, is daca's file of the cluster names.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt;

use super::{ContainerPlan, DockerError, container::remove};
use crate::manifest::AppSpec;
use crate::supervisor::Unit;

/// What the pod container is made of.
pub struct PodContainer {
    /// Host path → container path, read-only (daca's binary, its libraries, the relay socket's
    /// folder).
    pub binds: Vec<(String, String)>,
    /// The relay's command line.
    pub command: Vec<String>,
}

impl ContainerPlan {
    /// The name of `app`'s pod container (what its container's network mode names).
    pub fn pod_name(&self, app: &AppSpec) -> String {
        format!(
            "{}-pod",
            self.owner.container_name(&Unit::App(app.id.clone()))
        )
    }

    /// Whether containers can have pods: the relay reaches daca through a Unix socket that its
    /// container mounts, so the engine must be on this machine (not in a virtual machine).
    pub fn pods_available(&self) -> Result<(), String> {
        let host = &self.engine.endpoint.host;
        match cfg!(target_os = "linux") && host.starts_with("unix://") {
            true => Ok(()),
            false => Err(format!(
                "container pods need a Linux engine on this machine, and the engine is at {host}"
            )),
        }
    }

    /// (Re)creates and starts `app`'s pod container, from the app's own image (which is there
    /// by now; the relay needs nothing of it).
    /// Returns its id: what the app's container joins (the engine stores the id, so a new pod
    /// container means a new app container).
    pub async fn start_pod(
        &self,
        app: &AppSpec,
        want: &PodContainer,
    ) -> Result<String, DockerError> {
        let docker = &self.engine.docker;
        let name = self.pod_name(app);
        remove(docker, &name).await?;
        let labels: HashMap<String, String> = self
            .owner
            .labels(&Unit::App(app.id.clone()))
            .into_iter()
            .collect();
        let body = ContainerCreateBody {
            image: Some(self.image_of(app)),
            entrypoint: Some(want.command.clone()),
            cmd: Some(Vec::new()),
            user: Some("0:0".into()),
            hostname: Some(app.id.to_string()),
            labels: Some(labels),
            host_config: Some(HostConfig {
                binds: Some(
                    want.binds
                        .iter()
                        .map(|(h, c)| format!("{h}:{c}:ro"))
                        .collect(),
                ),
                // The relay routes the pod's IPv6 prefix for the other apps' names to the
                // loopback (`crate::pod::peer_net`): the engine turns IPv6 off in a
                // container whose network has none, and routes need NET_ADMIN (the relay's
                // alone: the app's container joins the network, not these capabilities).
                cap_add: Some(vec!["NET_ADMIN".into()]),
                sysctls: crate::pod::peer_net::v6().then(|| {
                    ["all", "lo"]
                        .map(|c| (format!("net.ipv6.conf.{c}.disable_ipv6"), "0".to_string()))
                        .into()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let created = docker.create_container(Some(options), body).await?;
        docker.start_container(&name, None).await?;
        Ok(created.id)
    }

    /// The gateway of `app`'s pod container's network: the engine's `host-gateway`, which
    /// Docker Desktop calls `host.docker.internal`.
    pub async fn pod_gateway(&self, app: &AppSpec) -> Option<String> {
        let inspect = self
            .engine
            .docker
            .inspect_container(&self.pod_name(app), None)
            .await
            .ok()?;
        let networks = inspect.network_settings?.networks?;
        networks
            .into_values()
            .filter_map(|n| n.gateway)
            .find(|g| !g.is_empty())
    }

    /// The last lines the pod container wrote (why its relay did not connect).
    pub async fn pod_output(&self, app: &AppSpec) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail("5")
            .build();
        let mut logs = self.engine.docker.logs(&self.pod_name(app), Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text.trim().replace('\n', "; ")
    }

    /// Removes `app`'s pod container (its app's container has stopped).
    pub async fn remove_pod(&self, app: &AppSpec) -> Result<(), DockerError> {
        Ok(remove(&self.engine.docker, &self.pod_name(app)).await?)
    }
}
