//! `daca jobs`: the running project's jobs (the Jobs API's), with when each fires next, through
//! the control API the dashboard uses; `daca jobs delete APP NAME` deletes one. `--json` prints
//! what the API answers.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{encode, text};
use crate::control::client::Client;

#[derive(Debug, Clone, Args)]
pub struct JobsArgs {
    #[command(flatten)]
    pub project: super::ProjectArgs,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<Action>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// Delete a job, as `DELETE /v1.0/jobs/NAME` from its app would.
    Delete { app: String, name: String },
}

pub async fn run(args: &JobsArgs) -> crate::Result<()> {
    let record = super::running(&args.project)?;
    let client = Client::of(&record);
    if let Some(Action::Delete { app, name }) = &args.action {
        let path = format!("/v1/jobs/{}/{}", encode(app), encode(name));
        client.delete(&path).await?;
        println!("deleted job {name} of {app}");
        return Ok(());
    }
    let list = client.get_json("/v1/jobs").await?;
    match args.json {
        true => println!("{}", serde_json::to_string_pretty(&list)?),
        false => print!("{}", table(&list)),
    }
    Ok(())
}

/// When a fire is due, from now: `in 3s`, `in 2m`, `in 5h`, `in 2d`.
fn due_in(next_ms: &Value) -> String {
    let Some(next) = next_ms.as_u64() else {
        return "-".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    format!(
        "in {}",
        super::short_duration(next.saturating_sub(now) / 1000)
    )
}

fn table(list: &Value) -> String {
    let mut rows = vec![
        ["APP", "JOB", "SCHEDULE", "DUE TIME", "REPEATS", "NEXT"]
            .map(String::from)
            .to_vec(),
    ];
    for job in list["jobs"].as_array().into_iter().flatten() {
        rows.push(vec![
            text(&job["app"]),
            text(&job["name"]),
            text(&job["schedule"]),
            text(&job["dueTime"]),
            text(&job["repeats"]),
            due_in(&job["next_ms"]),
        ]);
    }
    match rows.len() {
        1 => "no jobs\n".to_string(),
        _ => super::ps::aligned(&rows),
    }
}
