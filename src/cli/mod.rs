//! The command line: argument types and one small module per subcommand, each a thin layer
//! that parses, calls the library and prints. Each returns [`crate::Result`]; `main.rs` turns
//! the error into a message and an exit code ([`crate::Error::kind`]).

mod down;
mod export;
mod init;
mod jobs;
mod logs;
mod ps;
mod up;
mod workflows;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::Problem;
use crate::logs::LogFormat;
use crate::manifest;

#[derive(Debug, Parser)]
#[command(
    name = "daca",
    version,
    about = "The whole Dapr dev loop on one machine: apps, Redis, sidecars, logs — no Kubernetes."
)]
pub struct Cli {
    /// How daca writes app output and its own messages.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
    /// More of daca's own messages (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start Redis and every app, print their logs; Ctrl-C stops everything.
    Up(UpArgs),
    /// Stop the daca running this project (or what a killed one left behind).
    Down(DownArgs),
    /// Show the apps of the running project.
    Ps {
        #[command(flatten)]
        project: ProjectArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Show the actors: types per app, active ids, timers and reminders.
        #[arg(long)]
        actors: bool,
    },
    /// Show the running project's workflows; `get ID` shows one's history, and `raise`,
    /// `suspend`, `resume`, `terminate`, `purge` control it.
    Workflows(workflows::WorkflowsArgs),
    /// Show the running project's jobs (the Jobs API's) with when each fires next;
    /// `delete APP NAME` deletes one.
    Jobs(jobs::JobsArgs),
    /// Open the running project's dashboard in a browser (or print its address).
    Dashboard {
        #[command(flatten)]
        project: ProjectArgs,
        /// Only print the address.
        #[arg(long)]
        no_open: bool,
    },
    /// Show recent log lines of the running project, or of one app.
    Logs(logs::LogsArgs),
    /// Check daca.yaml without running anything.
    Validate(ProjectArgs),
    /// Print the JSON Schema of daca.yaml (for editors).
    Schema,
    /// Say for each path whether a change there reloads an app under `daca up`, and why.
    ExplainWatch {
        #[command(flatten)]
        project: ProjectArgs,
        /// Files or folders to explain.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Create a FastAPI + Dapr hello app and its daca.yaml (or one from Kubernetes manifests).
    Init(init::InitArgs),
    /// Write the project for another platform: `daca export k8s -o deploy/`.
    Export(export::ExportArgs),
    /// Build the apps' images through the Docker engine and tag them as `export` names them.
    Build(export::BuildArgs),
    /// Print daca's version.
    Version,
    /// Internal: holds a pod's namespaces until daca goes (see `pod`).
    #[command(name = "__pod", hide = true)]
    Pod {
        hosts: PathBuf,
        /// `ro:TARGET=HOST` or `rw:TARGET=HOST`, mounted in the pod.
        #[arg(long = "volume")]
        volumes: Vec<String>,
    },
    /// Internal: exits 0 when this machine lets daca make pods.
    #[command(name = "__pod-probe", hide = true)]
    PodProbe,
    /// Internal: keeps pasta running for the pod that process PID holds, until daca goes.
    #[command(name = "__pasta", hide = true)]
    Pasta {
        pid: u32,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Internal: runs a command in the pod that process PID holds.
    #[command(name = "__pod-exec", hide = true)]
    PodExec {
        pid: u32,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Internal: a container pod's relay (see `pod::relay`): listens at each ADDRESS=TARGET
    /// in the pod and carries the connections to daca through SOCKET.
    #[command(name = "__pod-relay", hide = true)]
    PodRelay {
        socket: PathBuf,
        listens: Vec<String>,
    },
    /// Internal: runs the machine's PostgreSQL server for a project (see `pgserver::run`).
    #[command(name = "__postgres", hide = true)]
    Postgres {
        #[arg(long)]
        bin_dir: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        fresh: bool,
    },
    /// Internal: removes a run's containers once the daca that started it is gone.
    #[command(name = "__reap", hide = true)]
    Reap {
        #[arg(long)]
        host: String,
        #[arg(long)]
        project: String,
        #[arg(long)]
        root: String,
        #[arg(long)]
        run: String,
    },
}

/// `daca down`'s options.
#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Also remove the named volumes daca created (the containerized Redis's data).
    #[arg(long)]
    pub volumes: bool,
}

/// `daca up`'s options.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Do not watch files: no reload on save, no reconcile on daca.yaml edits.
    #[arg(long)]
    pub no_watch: bool,
    /// Run at most N instances of each app, whatever its `replicas:` (`--replicas 1`: one of
    /// each, for a lighter loop).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub replicas: Option<u16>,
}

/// Where the project is.
#[derive(Debug, Clone, Args)]
pub struct ProjectArgs {
    /// The manifest (default: DIR/daca.yaml).
    #[arg(short = 'f', long = "file", value_name = "FILE", global = true)]
    pub file: Option<PathBuf>,
    /// The project folder (default: the current folder).
    #[arg(short = 'd', long = "dir", value_name = "DIR", global = true)]
    pub dir: Option<PathBuf>,
}

impl ProjectArgs {
    /// The manifest path and the project root (the manifest's folder).
    pub fn locate(&self) -> (PathBuf, PathBuf) {
        let file = match (&self.file, &self.dir) {
            (Some(file), Some(dir)) if file.is_relative() => dir.join(file),
            (Some(file), _) => file.clone(),
            (None, dir) => dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("."))
                .join(manifest::FILE_NAME),
        };
        // No daca.yaml: the folder's Tiltfile, or the folder itself (its manifests).
        let file = crate::folder::locate(&file, self.file.is_some());
        let absolute = std::path::absolute(&file).unwrap_or_else(|_| file.clone());
        let root = match absolute.is_dir() {
            true => absolute,
            false => absolute
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".")),
        };
        (file, root)
    }
}

/// The pod holder (`daca __pod`), with its volumes.
fn hold_pod(hosts: &std::path::Path, volumes: &[String]) -> crate::Result<()> {
    let problem = |e: String| crate::error::Problem::new(format!("pod: {e}"));
    let volumes = volumes
        .iter()
        .map(|v| crate::pod::mounts::parse(v).ok_or_else(|| problem(format!("bad volume {v}"))))
        .collect::<Result<Vec<_>, _>>()?;
    crate::pod::inside::hold(hosts, &volumes).map_err(|e| problem(e.to_string()).into())
}

/// Runs a parsed command line.
/// The commands that must run before any thread exists (a process with threads may not enter
/// a user namespace): `None` for every other command, which [`run`] runs.
pub fn run_single_threaded(cli: &Cli) -> Option<crate::Result<()>> {
    match &cli.command {
        Command::Pod { hosts, volumes } => Some(hold_pod(hosts, volumes)),
        Command::PodProbe => Some(
            crate::pod::inside::probe()
                .map_err(|e| crate::error::Problem::new(format!("pod: {e}")).into()),
        ),
        Command::Pasta { pid, command } => Some(
            crate::pod::inside::keep_pasta(*pid, command)
                .map_err(|e| crate::error::Problem::new(format!("pod: {e}")).into()),
        ),
        Command::PodExec { pid, command } => {
            let (program, args) = command.split_first()?;
            let err = crate::pod::inside::exec(*pid, program, args);
            Some(Err(crate::error::Problem::new(format!("pod: {err}")).into()))
        }
        // Signals are blocked for a thread of its own to wait on: before any other exists.
        Command::Postgres {
            bin_dir,
            data,
            port,
            fresh,
        } => {
            let args = crate::pgserver::run::ServerArgs {
                bin_dir: bin_dir.clone(),
                data: data.clone(),
                port: *port,
                fresh: *fresh,
            };
            Some(match crate::pgserver::run::run(&args) {
                Ok(code) => std::process::exit(code),
                Err(err) => Err(crate::error::Problem::new(format!("postgres: {err}")).into()),
            })
        }
        _ => None,
    }
}

pub async fn run(cli: Cli) -> crate::Result<()> {
    match cli.command {
        Command::Up(args) => up::run(&args, cli.log_format).await,
        Command::Down(args) => down::run(&args).await,
        Command::Ps {
            project,
            json,
            actors,
        } => ps::run(&project, json, actors).await,
        Command::Logs(args) => logs::run(&args, cli.log_format).await,
        Command::Workflows(args) => workflows::run(&args).await,
        Command::Jobs(args) => jobs::run(&args).await,
        Command::Dashboard { project, no_open } => dashboard(&project, no_open),
        Command::Validate(project) => validate(&project),
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&manifest::schema())?);
            Ok(())
        }
        Command::Init(args) => init::run(&args),
        Command::Export(args) => export::run(&args).await,
        Command::Build(args) => export::build(&args).await,
        Command::ExplainWatch { project, paths } => {
            let (file, _) = project.locate();
            let manifest = crate::folder::load(&file)?.manifest;
            for path in paths {
                println!("{}", path.display());
                for line in crate::watch::explain(&manifest, &path) {
                    println!("  {line}");
                }
            }
            Ok(())
        }
        // Run by `main` before the async runtime starts (`run_single_threaded`).
        Command::Pod { .. }
        | Command::PodProbe
        | Command::Pasta { .. }
        | Command::PodExec { .. }
        | Command::Postgres { .. } => Err(crate::error::Problem::new(
            "internal: pod commands run before the async runtime",
        )
        .into()),
        Command::PodRelay { socket, listens } => crate::pod::relay::run(&socket, &listens)
            .await
            .map_err(|e| crate::error::Problem::new(format!("pod relay: {e}")).into()),
        Command::Reap {
            host,
            project,
            root,
            run,
        } => {
            let owner = crate::docker::Owner { project, root, run };
            crate::docker::sweep::reap(&host, &owner).await?;
            Ok(())
        }
        Command::Version => {
            println!("daca {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}

fn validate(project: &ProjectArgs) -> crate::Result<()> {
    let (file, _) = project.locate();
    let manifest = crate::folder::load(&file)?.manifest;
    // The resources too: a bad component stops `daca up` just as a bad daca.yaml does.
    crate::components::check_resources(manifest.resources.as_deref(), &manifest.root)?;
    let ids: Vec<&str> = manifest.apps.iter().map(|a| a.id.as_str()).collect();
    println!(
        "{} is valid: project `{}`, {} app(s) in start order: {}",
        file.display(),
        manifest.name,
        ids.len(),
        ids.join(", ")
    );
    Ok(())
}

/// A path segment, percent-encoded (spaces as `%20`).
fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A number of seconds in a few characters: `3s`, `2m`, `5h`, `2d`.
fn short_duration(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}

/// A JSON value as a table cell: a string as it is, none as `-`.
fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `daca dashboard`: the address, opened with `$BROWSER` or `xdg-open` when there is one.
fn dashboard(project: &ProjectArgs, no_open: bool) -> crate::Result<()> {
    let record = running(project)?;
    let url = format!("http://{}/?token={}", record.control, record.token);
    println!("dashboard: {url}");
    if no_open {
        return Ok(());
    }
    let opener = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.is_empty())
        .or_else(|| {
            which::which("xdg-open")
                .ok()
                .map(|p| p.display().to_string())
        });
    match opener {
        Some(opener) => {
            let opened = std::process::Command::new(&opener)
                .arg(&url)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            if let Err(err) = opened {
                println!("could not start `{opener}` ({err}); open the address yourself");
            }
        }
        None => println!("(no $BROWSER or xdg-open here: open the address yourself)"),
    }
    Ok(())
}

/// The run record of the daca running this project, or a user error saying there is none.
fn running(project: &ProjectArgs) -> crate::Result<crate::project::RunRecord> {
    let (_, root) = project.locate();
    let state = crate::project::StateDir::new(&root);
    let missing = || {
        Problem::new(format!("no daca is running in {}", root.display())).hint(format!(
            "start it with `daca up` (looked for {}/run.json)",
            state.path().display()
        ))
    };
    Ok(state.live_daca().ok_or_else(missing)?)
}
