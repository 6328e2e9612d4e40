//! `daca down`: ask the running daca to stop, or end what a killed one left behind (processes
//! from the run record, containers by the project's labels); `--volumes` also removes the
//! named volumes (the containerized Redis's data).

use std::time::{Duration, Instant};

use super::DownArgs;
use crate::control::client::Client;
use crate::docker::{Engine, Owner, sweep};
use crate::error::Problem;
use crate::manifest;
use crate::project::StateDir;

pub async fn run(args: &DownArgs) -> crate::Result<()> {
    let (file, root) = args.project.locate();
    let state = StateDir::new(&root);
    let mut did = false;
    if let Some(record) = state.live_daca() {
        stop_running(&record).await?;
        did = true;
    } else {
        let stopped = state.reap_orphans()?;
        if !stopped.is_empty() {
            did = true;
            println!(
                "stopped what an earlier daca left running: {}",
                stopped.join(", ")
            );
        }
    }
    crate::pod::remove_leftovers();
    // The project's name labels its containers; a manifest that no longer loads still has a
    // folder name, which is the default project name.
    let project = crate::folder::load(&file)
        .map(|loaded| loaded.manifest.name)
        .unwrap_or_else(|_| manifest::default_name(&root));
    let owner = Owner::new(&project, &root, "");
    if let Ok(engine) = Engine::connect().await {
        let removed = sweep::remove_containers(&engine, &owner, false).await?;
        if !removed.is_empty() {
            did = true;
            println!("removed containers: {}", removed.join(", "));
        }
        if args.volumes {
            let removed = sweep::remove_volumes(&engine, &owner).await?;
            if !removed.is_empty() {
                did = true;
                println!("removed volumes: {}", removed.join(", "));
            }
        }
    }
    if !did {
        println!("nothing is running in {}", root.display());
    }
    Ok(())
}

async fn stop_running(record: &crate::project::RunRecord) -> crate::Result<()> {
    Client::of(record).down().await?;
    println!("stopping daca (pid {}) ...", record.daca.pid);
    // Each app has its grace period; a generous bound keeps `down` from hanging forever.
    let deadline = Instant::now() + Duration::from_secs(120);
    while record.daca.is_alive() {
        if Instant::now() > deadline {
            let problem = Problem::new(format!(
                "daca (pid {}) is still stopping after 120 s",
                record.daca.pid
            ))
            .hint(format!(
                "press Ctrl-C twice in its terminal, or `kill {}` then run `daca down` again",
                record.daca.pid
            ));
            return Err(problem.into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("stopped");
    Ok(())
}
