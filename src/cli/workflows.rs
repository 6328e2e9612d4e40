//! `daca workflows`: the running project's workflow instances, one instance's history as a
//! timeline, and the controls (raise, suspend, resume, terminate, purge), through the control
//! API the dashboard uses. `--json` prints what the API answers, for tools and agents.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{encode, text};
use crate::control::client::Client;
use crate::error::Problem;

#[derive(Debug, Clone, Args)]
pub struct WorkflowsArgs {
    #[command(flatten)]
    pub project: super::ProjectArgs,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<Action>,
}

/// An instance, and the app it belongs to when its id alone is not enough.
#[derive(Debug, Clone, Args)]
pub struct Instance {
    /// The instance id.
    pub id: String,
    /// The app whose instance it is (needed only when two apps have one with this id).
    #[arg(long)]
    pub app: Option<String>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// One instance: its status, input, output, and its history as a timeline.
    Get(Instance),
    /// Raise an event: `daca workflows raise ID approval '"yes"'` (the data is JSON).
    Raise {
        #[command(flatten)]
        instance: Instance,
        event: String,
        data: Option<String>,
    },
    /// Suspend an instance (it takes it at its next step).
    Suspend(Instance),
    /// Resume a suspended instance.
    Resume(Instance),
    /// Terminate an instance and its running children.
    Terminate(Instance),
    /// Delete a finished instance and its children from the state store.
    Purge {
        #[command(flatten)]
        instance: Instance,
        /// Purge it even if it is still running.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(args: &WorkflowsArgs) -> crate::Result<()> {
    let record = super::running(&args.project)?;
    let client = Client::of(&record);
    let list = client.get_json("/v1/workflows").await?;
    let Some(action) = &args.action else {
        match args.json {
            true => println!("{}", serde_json::to_string_pretty(&list)?),
            false => print!("{}", list_table(&list)),
        }
        return Ok(());
    };
    let (instance, verb, query, body) = match action {
        Action::Get(instance) => {
            let app = app_of(&list, instance)?;
            let path = format!("/v1/workflows/{}/{}", encode(&app), encode(&instance.id));
            let view = client.get_json(&path).await?;
            match args.json {
                true => println!("{}", serde_json::to_string_pretty(&view)?),
                false => print!("{}", timeline(&view)),
            }
            return Ok(());
        }
        Action::Raise {
            instance,
            event,
            data,
        } => (
            instance,
            "raise",
            format!("?event={}", encode(event)),
            data.clone(),
        ),
        Action::Suspend(i) => (i, "suspend", String::new(), None),
        Action::Resume(i) => (i, "resume", String::new(), None),
        Action::Terminate(i) => (i, "terminate", String::new(), None),
        Action::Purge { instance, force } => (instance, "purge", format!("?force={force}"), None),
    };
    let app = app_of(&list, instance)?;
    let path = format!(
        "/v1/workflows/{}/{}/{verb}{query}",
        encode(&app),
        encode(&instance.id)
    );
    let answer = client.post_json(&path, body.unwrap_or_default()).await?;
    match (args.json, answer.get("pending").and_then(Value::as_str)) {
        (true, _) => println!("{}", serde_json::to_string_pretty(&answer)?),
        (false, Some(pending)) => println!("{verb} {}: {pending}", instance.id),
        (false, None) => println!("{verb} {}: done", instance.id),
    }
    Ok(())
}

/// The app of the instance: the one given, else the only app that has an instance with the id.
fn app_of(list: &Value, instance: &Instance) -> crate::Result<String> {
    if let Some(app) = &instance.app {
        return Ok(app.clone());
    }
    let apps: Vec<&str> = instances(list)
        .filter(|i| i["instance"] == instance.id.as_str())
        .filter_map(|i| i["app"].as_str())
        .collect();
    match apps[..] {
        [app] => Ok(app.to_string()),
        [] => Err(Problem::new(format!(
            "no workflow instance `{}` in this project",
            instance.id
        ))
        .hint("`daca workflows` lists them")
        .into()),
        _ => Err(Problem::new(format!(
            "apps {} each have an instance `{}`",
            apps.join(", "),
            instance.id
        ))
        .hint("say which with --app")
        .into()),
    }
}

fn instances(list: &Value) -> impl Iterator<Item = &Value> {
    list["instances"].as_array().into_iter().flatten()
}

/// How long ago an RFC 3339 time was, in a few characters.
fn age(at: &Value) -> String {
    let Some(at) = at
        .as_str()
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
    else {
        return "-".into();
    };
    let seconds = std::time::SystemTime::now()
        .duration_since(at)
        .map_or(0, |d| d.as_secs());
    super::short_duration(seconds)
}

fn list_table(list: &Value) -> String {
    let mut rows = vec![
        ["INSTANCE", "WORKFLOW", "APP", "STATUS", "AGE"]
            .map(String::from)
            .to_vec(),
    ];
    for i in instances(list) {
        rows.push(vec![
            text(&i["instance"]),
            text(&i["name"]),
            text(&i["app"]),
            text(&i["status"]),
            age(&i["createdAt"]),
        ]);
    }
    let mut out = match rows.len() {
        1 => "no workflow instances\n".to_string(),
        _ => super::ps::aligned(&rows),
    };
    if let Some(workers) = list["workers"].as_object() {
        let counts: Vec<String> = workers
            .iter()
            .map(|(app, n)| format!("{app} {n}"))
            .collect();
        out.push_str(&format!("connected workers: {}\n", counts.join(", ")));
    }
    out
}

fn timeline(view: &Value) -> String {
    let w = &view["instance"];
    let mut out = format!(
        "{} · {} on {} · {}\n",
        text(&w["instance"]),
        text(&w["name"]),
        text(&w["app"]),
        text(&w["status"])
    );
    for (label, key) in [
        ("input", "input"),
        ("output", "output"),
        ("custom status", "custom_status"),
    ] {
        if !w[key].is_null() {
            out.push_str(&format!("{label}: {}\n", text(&w[key])));
        }
    }
    if let Some(failure) = w.get("failure").filter(|f| !f.is_null()) {
        out.push_str(&format!(
            "failed: {}: {}\n",
            text(&failure["error_type"]),
            text(&failure["message"])
        ));
    }
    let mut rows = vec![
        ["#", "AT", "EVENT", "NAME", "INPUT", "OUTPUT", "TOOK"]
            .map(String::from)
            .to_vec(),
    ];
    let mut traces = Vec::new();
    for e in view["history"].as_array().into_iter().flatten() {
        if e["kind"] == "workflowStarted" {
            continue;
        }
        let id = e["id"]
            .as_i64()
            .filter(|id| *id >= 0)
            .map(|id| id.to_string());
        let name = match (&e["name"], &e["answers"]) {
            (Value::Null, Value::Null) => "-".to_string(),
            (Value::Null, answers) => format!("answers #{answers}"),
            (name, _) => text(name),
        };
        let output = match e.get("failure").filter(|f| !f.is_null()) {
            Some(f) => {
                if let Some(trace) = f["stack_trace"].as_str() {
                    traces.push(trace.to_string());
                }
                format!("{}: {}", text(&f["error_type"]), text(&f["message"]))
            }
            None => text(&e["output"]),
        };
        let at = e["at"]
            .as_str()
            .and_then(|t| t.get(11..23))
            .unwrap_or("-")
            .to_string();
        let took = e["after_ms"]
            .as_f64()
            .map_or("-".into(), |ms| format!("{ms} ms"));
        rows.push(vec![
            id.unwrap_or_else(|| "-".into()),
            at,
            text(&e["kind"]),
            name,
            text(&e["input"]),
            output,
            took,
        ]);
    }
    out.push_str(&super::ps::aligned(&rows));
    for trace in traces {
        out.push_str(&format!("\n{}\n", trace.trim_end()));
    }
    out
}
