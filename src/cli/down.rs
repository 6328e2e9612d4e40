//! `daca down`: ask the running daca to stop, or end what a killed one left behind.

use std::time::{Duration, Instant};

use crate::control::client::Client;
use crate::project::StateDir;

pub async fn run(project: &super::ProjectArgs) -> anyhow::Result<()> {
    let (_, root) = project.locate();
    let state = StateDir::new(&root);
    let Some(record) = state.live_daca() else {
        let stopped = state.reap_orphans()?;
        if stopped.is_empty() {
            println!("nothing is running in {}", root.display());
        } else {
            println!(
                "stopped what an earlier daca left running: {}",
                stopped.join(", ")
            );
        }
        return Ok(());
    };
    Client::new(&record.control).down().await?;
    println!("stopping daca (pid {}) ...", record.daca.pid);
    // Each app has its grace period; a generous bound keeps `down` from hanging forever.
    let deadline = Instant::now() + Duration::from_secs(120);
    while record.daca.is_alive() {
        if Instant::now() > deadline {
            return Err(super::user_error(format!(
                "daca (pid {}) is still stopping after 120 s\n  hint: press Ctrl-C twice in its terminal, or `kill {}` then run `daca down` again",
                record.daca.pid, record.daca.pid
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("stopped");
    Ok(())
}
