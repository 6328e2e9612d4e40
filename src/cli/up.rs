//! `daca up`: load, start, wait for Ctrl-C, SIGTERM or `daca down`, stop.

use tokio::signal::unix::{SignalKind, signal};

use super::UpArgs;
use crate::logs::LogFormat;
use crate::project::{Options, Project};

pub async fn run(args: &UpArgs, log_format: LogFormat) -> crate::Result<()> {
    let (file, _) = args.project.locate();
    let loaded = crate::folder::load(&file)?;
    for line in loaded.notes.iter().chain(&loaded.summary) {
        tracing::info!("{line}");
    }
    let manifest = loaded.manifest;
    let options = Options {
        watch: !args.no_watch,
        log_format,
        replicas: crate::project::ReplicaCap(args.replicas),
    };
    let project = Project::start(manifest, options).await?;
    wait_for_stop(&project).await?;
    stop(project).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_stop(project: &Project) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: stopping (press Ctrl-C again to force)"),
        _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
        () = project.view().down_requested() => tracing::info!("`daca down`: stopping"),
    }
    Ok(())
}

/// Graceful stop in reverse dependency order; a second Ctrl-C or SIGTERM SIGKILLs everything.
async fn stop(project: Project) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let forced = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    let killer = project.killer();
    let graceful = project.stop();
    tokio::pin!(graceful);
    tokio::select! {
        () = &mut graceful => {}
        () = forced => {
            tracing::warn!("forcing: SIGKILL to every app");
            killer.force_kill();
            graceful.await;
        }
    }
    Ok(())
}
