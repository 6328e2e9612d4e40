//! `daca logs [APP] [-f] [--since 5m]`: replay from the running daca's buffer, then follow.

use std::path::PathBuf;

use clap::Args;

use super::ProjectArgs;
use crate::control::client::Client;
use crate::error::Problem;
use crate::logs::{LogFormat, Printer, now_ms};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Only this app (or `redis`).
    pub app: Option<String>,
    /// Keep printing new lines.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines from the last DURATION, e.g. `30s`, `5m`.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// The manifest (default: DIR/daca.yaml).
    #[arg(long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The project folder (default: the current folder).
    #[arg(short = 'd', long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub async fn run(args: &LogsArgs, format: LogFormat) -> crate::Result<()> {
    let since_ms = match &args.since {
        Some(text) => {
            let span = humantime::parse_duration(text).map_err(|err| {
                Problem::new(format!("--since `{text}`: {err}"))
                    .hint("write e.g. `30s`, `5m` or `1h`")
            })?;
            Some(now_ms().saturating_sub(span.as_millis() as u64))
        }
        None => None,
    };
    let record = super::running(&ProjectArgs {
        file: args.file.clone(),
        dir: args.dir.clone(),
    })?;
    let client = Client::of(&record);
    // The same order as `daca up` gives its printer (Redis, then the apps), so colours match.
    let status = client.ps().await?;
    let redis = status.redis.status.map(|s| s.name);
    let sources: Vec<String> = redis
        .into_iter()
        .chain(status.apps.into_iter().map(|a| a.status.name))
        .collect();
    let printer = Printer::new(format, sources);
    client
        .logs(args.app.as_deref(), since_ms, args.follow, |line| {
            println!("{}", printer.format(&line))
        })
        .await
        .map_err(|err| match err {
            crate::control::client::ClientError::Refused { message, .. } => {
                Problem::new(message).into()
            }
            other => other.into(),
        })
}
