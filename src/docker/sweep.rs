//! Removing what daca created: at the end of a run, at `daca down` and the next `daca up` (for
//! leftovers of an earlier run), and from a reaper process when daca itself is killed.
//! Everything is found by the project's labels; nothing without them is touched.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{ListContainersOptionsBuilder, ListVolumesOptionsBuilder};

use super::{DockerError, Engine, Owner, container, is_not_found};
use crate::supervisor::Unit;

/// Removes the project's containers (only this run's with `run_only`); returns their names.
pub async fn remove_containers(
    engine: &Engine,
    owner: &Owner,
    run_only: bool,
) -> Result<Vec<String>, DockerError> {
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&owner.filter(run_only))
        .build();
    let found = engine.docker.list_containers(Some(options)).await?;
    let mut removed = Vec::new();
    for summary in found {
        // The engine filtered by label; checking again guards against a filter it ignored.
        if !owner.owns(&summary.labels.clone().unwrap_or_default()) {
            continue;
        }
        let Some(id) = summary.id else { continue };
        container::remove(&engine.docker, &id).await?;
        let name = summary
            .names
            .and_then(|n| n.into_iter().next())
            .unwrap_or(id);
        removed.push(name.trim_start_matches('/').to_string());
    }
    removed.sort();
    Ok(removed)
}

/// Creates `unit`'s labelled named volume unless it exists.
pub async fn ensure_volume(engine: &Engine, owner: &Owner, unit: &Unit) -> Result<(), DockerError> {
    let name = &owner.volume(unit);
    match engine.docker.inspect_volume(name).await {
        Ok(volume) if owner.owns(&volume.labels) => return Ok(()),
        // Someone else's data: never write into it, never remove it.
        Ok(_) => return Err(DockerError::ForeignVolume(name.to_string())),
        Err(err) if !is_not_found(&err) => return Err(err.into()),
        Err(_) => {}
    }
    let mut labels: HashMap<String, String> = owner.labels(unit).into_iter().collect();
    labels.remove(super::LABEL_RUN); // a volume outlives runs
    let request = VolumeCreateRequest {
        name: Some(name.to_string()),
        labels: Some(labels),
        ..Default::default()
    };
    engine.docker.create_volume(request).await?;
    Ok(())
}

/// Removes the project's named volumes (`daca down --volumes`); returns their names.
pub async fn remove_volumes(engine: &Engine, owner: &Owner) -> Result<Vec<String>, DockerError> {
    let options = ListVolumesOptionsBuilder::default()
        .filters(&owner.filter(false))
        .build();
    let list = engine.docker.list_volumes(Some(options)).await?;
    let mut removed = Vec::new();
    for volume in list.volumes.unwrap_or_default() {
        if !owner.owns(&volume.labels) {
            continue;
        }
        match engine
            .docker
            .remove_volume(
                &volume.name,
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await
        {
            Err(err) if !is_not_found(&err) => return Err(err.into()),
            _ => removed.push(volume.name),
        }
    }
    removed.sort();
    Ok(removed)
}

/// A process that outlives a SIGKILLed daca and then removes this run's containers (what
/// testcontainers' Ryuk does). It waits for end-of-file on its stdin, whose other end only
/// daca holds: the kernel closes it however daca ends. It leads its own process group, so a
/// Ctrl-C in the terminal does not end it first.
pub fn spawn_reaper(engine: &Engine, owner: &Owner) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    Command::new(exe)
        .args([
            "__reap",
            "--host",
            &engine.endpoint.host,
            "--project",
            &owner.project,
            "--root",
            &owner.root,
            "--run",
            &owner.run,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}

/// The reaper's body: wait for daca to be gone, then remove what its run left.
pub async fn reap(host: &str, owner: &Owner) -> Result<Vec<String>, DockerError> {
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
    .await
    .map_err(|e| DockerError::Io(std::io::Error::other(e)))?;
    let engine = Engine::connect_to(super::Endpoint {
        host: host.to_string(),
        source: "the reaper".into(),
    })
    .await?;
    remove_containers(&engine, owner, true).await
}
