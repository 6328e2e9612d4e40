//! Validated manifest types: if you hold one, it is consistent (ids valid and unique, ports
//! distinct, dependencies known and acyclic, folders present).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A project ready to run.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Absolute path of the manifest file (for a project read from a Tiltfile or a folder of
    /// Kubernetes manifests: that Tiltfile or folder).
    pub file: PathBuf,
    /// The folder holding it: relative paths and `.daca/` live here.
    pub root: PathBuf,
    /// What the project was read from: daca.yaml, or a Tiltfile and the files it names, or a
    /// folder's Kubernetes manifests (see `crate::folder`). A change to one reconciles.
    pub read_from: Vec<PathBuf>,
    /// Project name.
    pub name: String,
    /// The Kubernetes namespace the apps are in (`namespace:`), when given.
    pub namespace: Option<String>,
    /// Folder of Dapr resource YAMLs, if any.
    pub resources: Option<PathBuf>,
    /// Where Redis comes from.
    pub redis: RedisConfig,
    /// `postgres:`: a PostgreSQL server for the project, when asked for.
    pub postgres: Option<PostgresConfig>,
    /// `steps:`, run in order before the apps start.
    pub steps: Vec<Step>,
    /// Apps in start order: every app comes after everything it depends on.
    pub apps: Vec<AppSpec>,
}

/// A command `daca up` runs once before the apps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub command: Vec<String>,
    /// Absolute.
    pub dir: PathBuf,
    /// Globs relative to `dir` whose change runs it again.
    pub watch: Vec<String>,
}

impl Manifest {
    /// What the project was read from, as its log lines name it: `daca.yaml`, `Tiltfile`, or
    /// `manifests` for a folder of Kubernetes YAML.
    pub fn source_name(&self) -> String {
        match self.file.is_dir() {
            true => "manifests".into(),
            false => self
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| super::FILE_NAME.into()),
        }
    }

    /// The app with this id.
    pub fn app(&self, id: &str) -> Option<&AppSpec> {
        self.apps.iter().find(|app| app.id.as_str() == id)
    }
}

/// A checked Dapr app-id.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct AppId(String);

impl TryFrom<String> for AppId {
    type Error = String;
    fn try_from(raw: String) -> Result<AppId, String> {
        AppId::parse(&raw)
    }
}

impl From<AppId> for String {
    fn from(id: AppId) -> String {
        id.0
    }
}

impl AppId {
    /// Checks an app-id. Dapr forbids dots in self-hosted mode, and Kubernetes (where
    /// `daca export` sends the project) needs a DNS-1123 label, so we hold ids to both.
    pub fn parse(raw: &str) -> Result<AppId, String> {
        if raw.is_empty() {
            return Err("the app-id is empty".into());
        }
        if raw.len() > 63 {
            return Err(format!("app-id `{raw}` is longer than 63 characters"));
        }
        if raw.contains('.') {
            return Err(format!(
                "app-id `{raw}` contains a dot, which Dapr does not allow"
            ));
        }
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let edges = raw.starts_with(|c: char| c.is_ascii_alphanumeric())
            && raw.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_chars || !edges {
            return Err(format!(
                "app-id `{raw}` must be lowercase letters, digits and `-`, starting and ending with a letter or digit"
            ));
        }
        Ok(AppId(raw.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One app to supervise. Its fields are grouped by what uses them, so that an edit of
/// daca.yaml restarts an app only when its process would run differently
/// (`crate::project::reconcile`).
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec {
    pub id: AppId,
    /// Absolute working directory: the process's, and the folder watched for changes.
    pub dir: PathBuf,
    pub process: ProcessSpec,
    pub supervision: Supervision,
    pub sidecar: SidecarSpec,
    pub watch: WatchSpec,
    pub reload: ReloadSpec,
    pub network: NetworkSpec,
    /// `replicas:`: how many instances of it run, each in a pod of its own, all with its
    /// app-id (as a Deployment's replicas, each with its sidecar).
    pub replicas: u16,
    /// Set on the instances `daca up` adds for `replicas:` (`crate::project::replicas`): the
    /// app they are instances of. Their `id` names the instance (`agent-2`), this the app.
    pub instance_of: Option<AppId>,
}

impl AppSpec {
    /// Its Dapr app-id: its own id, or for an added instance the app's.
    pub fn app_id(&self) -> &AppId {
        self.instance_of.as_ref().unwrap_or(&self.id)
    }
}

/// What the app's process is made of: a change means a new process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    /// Program and arguments; empty for a container that runs its image's CMD.
    pub command: Vec<String>,
    /// Where it runs (`auto` is decided by `daca up`, which knows whether an engine answers).
    pub runtime: RuntimeChoice,
    /// Its image, when it can run in a container.
    pub image: Option<ImageSource>,
    /// Where its folder is mounted in the container.
    pub mount: MountChoice,
    /// The port it listens on: its readiness, and the sidecar's channel to it (`APP_PORT`).
    pub port: Option<u16>,
    /// The manifest's `env`, already turned into strings.
    pub env: BTreeMap<String, String>,
    /// How the sidecar talks to it (`APP_PROTOCOL`).
    pub protocol: AppProtocol,
    /// `volumes:`, for its container.
    pub volumes: Vec<Volume>,
}

/// A host file or folder mounted into an app's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Absolute.
    pub host: PathBuf,
    /// Absolute, in the container.
    pub target: String,
    pub read_only: bool,
}

/// How daca supervises the process: read at each start, so a change restarts nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Supervision {
    /// HTTP readiness path, e.g. `/healthz`.
    pub health: Option<String>,
    pub depends_on: Vec<AppId>,
    pub restart: RestartPolicy,
    /// SIGTERM → SIGKILL delay.
    pub grace_period: Duration,
    /// How long dependents wait for it to be ready.
    pub startup_timeout: Duration,
}

/// Where the app's network is: the machine's localhost, or a pod of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// A pod where the machine allows it (Linux, user namespaces, pasta), else the host's.
    #[default]
    Auto,
    Host,
    Pod,
}

/// The app's network: its mode, and for a pod the host ports that lead into it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkSpec {
    pub mode: NetworkMode,
    /// `(host, pod)` port pairs given by `ports:`.
    pub ports: Vec<(u16, u16)>,
    /// `names:`: what else the app is called in the pods.
    pub names: Vec<String>,
    /// `service_ports:`: other ports its names lead to its `port` on, in the pods.
    pub service_ports: Vec<u16>,
}

/// The app's sidecar. Its ports reach the process as `DAPR_HTTP_PORT`/`DAPR_GRPC_PORT`, so
/// changing them restarts the app; the body limit is the sidecar's alone.
#[derive(Debug, Clone, PartialEq)]
pub struct SidecarSpec {
    /// Whether the app has one (`dapr: false` says not).
    pub enabled: bool,
    pub http_port: Option<u16>,
    pub grpc_port: Option<u16>,
    /// Request body limit, in bytes.
    pub max_body_size: usize,
}

/// Which of the app's files count as changes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WatchSpec {
    /// `watch:` globs; empty = every file not ignored.
    pub only: Vec<String>,
    /// `ignore:` globs.
    pub ignore: Vec<String>,
}

/// What a change of the app's files does.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadSpec {
    pub mode: ReloadMode,
    /// `setup:` command, run before a restart caused by a dependency file.
    pub setup: Option<Vec<String>>,
    /// `on_change:` commands, each run before a restart a change of its files causes.
    pub on_change: Vec<OnChange>,
    /// Also restart the apps that depend on this one.
    pub restart_dependents: bool,
    /// SIGTERM → SIGKILL delay of a reload (zero: SIGKILL at once).
    pub grace: Duration,
}

/// A command run before a restart, when a changed file matches `trigger` (none: any).
#[derive(Debug, Clone, PartialEq)]
pub struct OnChange {
    pub command: Vec<String>,
    /// Globs in gitignore syntax, relative to the app's folder.
    pub trigger: Vec<String>,
}

/// Where an app runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeChoice {
    /// In a container when the app has an image and a Docker engine answers, else a process.
    #[default]
    Auto,
    Docker,
    Process,
}

/// Where a container app's image comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    Build(BuildSpec),
    /// An image reference, used as is (pulled when missing).
    Image(String),
}

/// A Dockerfile build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildSpec {
    /// Absolute context folder.
    pub context: PathBuf,
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
}

impl BuildSpec {
    /// Absolute path of the Dockerfile.
    pub fn dockerfile_path(&self) -> PathBuf {
        self.context.join(&self.dockerfile)
    }
}

/// Where an app's folder is mounted in its container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountChoice {
    /// The Dockerfile's last `WORKDIR` (nothing when there is none, or for `image:` apps).
    Workdir,
    At(String),
    None,
}

/// How the sidecar talks to the app (Dapr's `app-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppProtocol {
    #[default]
    Http,
    /// The AppCallback gRPC service.
    Grpc,
}

impl AppProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            AppProtocol::Http => "http",
            AppProtocol::Grpc => "grpc",
        }
    }
}

/// What a change in an app's folder does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadMode {
    /// daca restarts the app: forked from a warm parent when it is a Python server.
    Restart,
    /// daca restarts the app, always from scratch (no warm parent).
    Cold,
    /// The app reloads itself; daca reports the change.
    None,
}

/// When a process that exited on its own is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Restart after a non-zero exit or a signal (the default: dev servers should not exit).
    OnFailure,
    /// Restart after any exit.
    Always,
    /// Leave it stopped.
    Never,
}

impl RestartPolicy {
    /// Whether an exit with this success flag is followed by a restart.
    pub fn restarts_after(self, success: bool) -> bool {
        match self {
            RestartPolicy::OnFailure => !success,
            RestartPolicy::Always => true,
            RestartPolicy::Never => false,
        }
    }
}

/// Where the project's Redis comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisConfig {
    /// The user's own Redis; daca never starts or stops it.
    External { url: String },
    /// Redis that daca provides.
    Managed {
        provider: RedisProvider,
        port: Option<u16>,
        persistence: Persistence,
        /// Image of a containerized Redis.
        image: String,
    },
}

impl RedisConfig {
    /// How daca provides it; `None` for the user's own Redis.
    pub fn provider(&self) -> Option<RedisProvider> {
        match self {
            RedisConfig::Managed { provider, .. } => Some(*provider),
            RedisConfig::External { .. } => None,
        }
    }
}

/// How a managed Redis keeps its data across restarts (`redis.persistence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing is written to disk: every run starts empty.
    Off,
    /// An append-only file synced once a second (`appendfsync everysec`): a Redis killed
    /// loses at most the last second of acknowledged writes.
    EverySecond,
    /// Synced before each write is acknowledged (`appendfsync always`): nothing acknowledged
    /// is lost, at the cost of an fsync per write.
    Always,
}

impl Persistence {
    pub fn is_on(self) -> bool {
        self != Persistence::Off
    }

    /// redis-server's arguments for it.
    pub fn redis_args(self) -> &'static [&'static str] {
        match self {
            Persistence::Off => &["--save", "", "--appendonly", "no"],
            Persistence::EverySecond => &["--appendonly", "yes", "--appendfsync", "everysec"],
            Persistence::Always => &["--appendonly", "yes", "--appendfsync", "always"],
        }
    }
}

/// How a managed Redis is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisProvider {
    /// A container when the engine has the image, else `redis-server` from PATH, else a
    /// pulled container, else the embedded store.
    Auto,
    /// A container through the Docker engine, or an error.
    Docker,
    /// `redis-server` from PATH, or an error.
    RedisServer,
    /// The embedded in-memory store (Dapr's `state.in-memory` / `pubsub.in-memory`).
    Embedded,
}

/// Where the project's PostgreSQL comes from (`postgres:` in daca.yaml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresConfig {
    /// The user's own server; daca never starts or stops it.
    External { url: String },
    /// A server daca runs, its data under `.daca/postgres/` (or in a named volume).
    Managed {
        provider: PostgresProvider,
        port: Option<u16>,
        persistence: bool,
        /// Image of a containerized server (the official image's interface).
        image: String,
    },
}

/// How a managed PostgreSQL is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostgresProvider {
    /// A container when the engine has the image, else the local server binaries, else a
    /// pulled container.
    Auto,
    /// A container through the Docker engine, or an error.
    Docker,
    /// The local binaries (`postgres` and `initdb`), or an error.
    Postgres,
}
