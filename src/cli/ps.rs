//! `daca ps`: the apps of the running project.

use crate::control::client::Client;
use crate::control::{AppView, ProjectStatus};
use crate::logs::now_ms;

pub async fn run(project: &super::ProjectArgs, json: bool, actors: bool) -> crate::Result<()> {
    let record = super::running(project)?;
    if actors {
        let view = Client::of(&record).actors().await?;
        match json {
            true => println!("{}", serde_json::to_string_pretty(&view)?),
            false => print!("{}", actors_table(&view)),
        }
        return Ok(());
    }
    let status = Client::of(&record).ps().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", table(&status));
    }
    Ok(())
}

fn table(status: &ProjectStatus) -> String {
    let mut rows = vec![
        [
            "APP",
            "STATE",
            "PID",
            "CONTAINER",
            "PORT",
            "DAPR HTTP",
            "DAPR GRPC",
            "RESTARTS",
            "UPTIME",
            "RELOAD (LAST/MEDIAN)",
            "LAST EXIT",
        ]
        .map(String::from)
        .to_vec(),
    ];
    rows.extend(status.apps.iter().map(row));
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let postgres = status.postgres.as_ref().map(|pg| {
        let state = state_suffix(pg.status.as_ref());
        format!(" · postgres: {}{state}", pg.describe)
    });
    let mut out = format!(
        "project {} (daca pid {}) · redis: {}{}\n",
        status.project,
        status.daca_pid,
        redis_line(status),
        postgres.unwrap_or_default()
    );
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for app in &status.apps {
        if let Some(message) = &app.status.message {
            out.push_str(&format!("{}: {message}\n", app.status.name));
        }
    }
    out
}

fn row(app: &AppView) -> Vec<String> {
    let s = &app.status;
    let uptime = match (s.state.is_running(), s.started_at_ms) {
        (true, Some(start)) => format!("{}s", now_ms().saturating_sub(start) / 1000),
        _ => "-".into(),
    };
    let dash = || "-".to_string();
    vec![
        s.name.clone(),
        s.state.as_str().into(),
        s.pid.map(|p| p.to_string()).unwrap_or_else(dash),
        s.container.clone().unwrap_or_else(dash),
        match (&app.pod, app.port) {
            // host:pod, as `ports:` writes it.
            (Some(pod), Some(port)) => format!("{}:{port} (pod)", pod.host_port.unwrap_or(port)),
            (_, port) => port.map(|p| p.to_string()).unwrap_or_else(dash),
        },
        app.sidecar.map(|p| p.http.to_string()).unwrap_or_else(dash),
        app.sidecar.map(|p| p.grpc.to_string()).unwrap_or_else(dash),
        s.restarts.to_string(),
        uptime,
        match (app.reload.last_ms, app.reload.median_ms) {
            (Some(last), Some(median)) => match &s.start {
                Some(start) => format!("{last} ms / {median} ms ({start})"),
                None => format!("{last} ms / {median} ms"),
            },
            _ => dash(),
        },
        s.last_exit.map(|e| e.to_string()).unwrap_or_else(dash),
    ]
}

/// `, ready` (a supervised server's state), or nothing.
fn state_suffix(status: Option<&crate::supervisor::AppStatus>) -> String {
    status
        .map(|s| format!(", {}", s.state.as_str()))
        .unwrap_or_default()
}

fn redis_line(status: &ProjectStatus) -> String {
    let state = state_suffix(status.redis.status.as_ref());
    match &status.redis.url {
        Some(url) => format!("{} {url}{state}", status.redis.mode),
        None => status.redis.mode.clone(),
    }
}

/// Lines of cells, aligned.
pub(super) fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn actors_table(view: &crate::actors::view::ActorsView) -> String {
    let mut out = String::new();
    let mut types = vec![
        ["TYPE", "HOSTS", "IDLE TIMEOUT", "REENTRANCY"]
            .map(String::from)
            .to_vec(),
    ];
    types.extend(view.types.iter().map(|t| {
        vec![
            t.actor_type.clone(),
            t.hosts.join(", "),
            format!("{} s", t.idle_timeout_ms / 1000),
            t.reentrancy
                .map_or("off".into(), |d| format!("max depth {d}")),
        ]
    }));
    out.push_str(&aligned(&types));
    let mut active = vec![
        ["ACTOR", "HOST", "IDLE", "TIMERS"]
            .map(String::from)
            .to_vec(),
    ];
    active.extend(view.active.iter().map(|a| {
        vec![
            format!("{}/{}", a.actor_type, a.id),
            a.host.clone(),
            format!("{:.1} s", a.idle_ms as f64 / 1000.0),
            a.timers.join(", "),
        ]
    }));
    out.push('\n');
    out.push_str(&aligned(&active));
    let now = now_ms();
    let mut reminders = vec![
        ["REMINDER", "ACTOR", "NEXT IN", "PERIOD"]
            .map(String::from)
            .to_vec(),
    ];
    reminders.extend(view.reminders.iter().map(|r| {
        vec![
            r.name.clone(),
            format!("{}/{}", r.actor_type, r.id),
            format!("{:.1} s", r.next_ms.saturating_sub(now) as f64 / 1000.0),
            r.period.clone().unwrap_or_else(|| "once".into()),
        ]
    }));
    out.push('\n');
    out.push_str(&aligned(&reminders));
    out
}
