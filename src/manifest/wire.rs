//! Wire types: the YAML of `daca.yaml` exactly as written, before validation.
//!
//! These types only describe shape. Everything that needs judgement (ids, ports, paths,
//! dependency order) is checked in `validate.rs`, which turns them into `model.rs` types.
//! Fields whose *value* may be reported later carry a [`Spanned`] so the error can point at it.
//!
//! Unknown keys are not rejected by serde here (serde stops at the first one); `tree.rs`
//! finds all of them at once using the JSON Schema generated from these same types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A value with the position it was written at. Transparent to serde and to the schema.
#[derive(Debug, Clone)]
pub struct At<T>(pub Spanned<T>);

impl<T> std::ops::Deref for At<T> {
    type Target = Spanned<T>;
    fn deref(&self) -> &Spanned<T> {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for At<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Spanned::deserialize(deserializer).map(At)
    }
}

impl<T: JsonSchema> JsonSchema for At<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// A daca project: its apps, their Redis and the Dapr resources they use.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "daca.yaml")]
pub struct ManifestWire {
    /// Project name, shown in logs and used to label what daca creates.
    pub name: Option<At<String>>,
    /// The Kubernetes namespace the apps are in, as Dapr sees it (`NAMESPACE`): inside a pod,
    /// `<app>.<namespace>.svc.cluster.local` names an app; workflows' actor types carry it.
    /// Default: `$NAMESPACE`, else `default`.
    pub namespace: Option<At<String>>,
    /// Folder of Dapr Component / Subscription / Resiliency YAMLs, relative to this file.
    pub resources: Option<At<String>>,
    /// Managed Redis settings; omitted means the managed default.
    pub redis: Option<RedisWire>,
    /// A PostgreSQL server for the project (`postgres: {}` for the managed default); omitted
    /// means none.
    pub postgres: Option<PostgresWire>,
    /// How long an app gets to stop after SIGTERM before SIGKILL, e.g. `5s` (default) or `500ms`.
    pub grace_period: Option<At<String>>,
    /// How long an app may take to become ready before its dependents give up, e.g. `60s` (default).
    pub startup_timeout: Option<At<String>>,
    /// Where apps with `build:` or `image:` run: `auto` (default: in a container when a Docker
    /// engine answers, else as host processes), `docker` or `process`. Each app may override it.
    pub runtime: Option<At<String>>,
    /// `auto` (default): each app in a pod of its own where the machine allows it (Linux with
    /// user namespaces and `pasta`), else `host`; `pod`: each app has its own localhost, as a
    /// Kubernetes pod (see `network` on an app); `host`: apps share the machine's localhost,
    /// each sidecar on ports of its own. Each app may override it.
    pub network: Option<At<String>>,
    /// Commands `daca up` runs once, in order, once Redis is there and before any app starts
    /// (a migration, a generated file; Tilt's `local_resource` with a `cmd` alone). One that
    /// fails stops `daca up` with its output.
    #[serde(default)]
    pub steps: Vec<At<StepWire>>,
    /// The apps to run, each with its own Dapr sidecar.
    #[serde(default)]
    pub apps: Vec<At<AppWire>>,
}

/// A command `daca up` runs before the apps.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct StepWire {
    /// What its log lines are called.
    pub name: At<String>,
    /// The command and its arguments, as a list (no shell).
    pub command: At<Vec<String>>,
    /// Where it runs, relative to this file (default: this file's folder).
    pub dir: Option<At<String>>,
    /// Globs (gitignore syntax, relative to its folder) whose change runs it again while
    /// daca runs (Tilt's `deps`); default: none.
    #[serde(default)]
    pub watch: Vec<At<String>>,
}

/// Where Redis comes from.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RedisWire {
    /// Use this Redis (`redis://host:port`) and never start or stop one.
    pub url: Option<At<String>>,
    /// Preferred port for a managed Redis (default 6379, or the next free one).
    pub port: Option<At<u16>>,
    /// `auto` (default: a container when the engine has the image, else redis-server on PATH,
    /// else a container pulled from the registry, else embedded), `docker`, `redis-server`, or
    /// `embedded`.
    pub provider: Option<At<String>>,
    /// Image of a containerized Redis (default `redis:7-alpine`).
    pub image: Option<At<String>>,
    /// Keep managed Redis data under `.daca/redis/` across runs: `true` (default; an
    /// append-only file synced every second, as Redis's own default), `always` (synced before
    /// each write is acknowledged), or `false`.
    pub persistence: Option<At<PersistenceWire>>,
}

/// `persistence:` of Redis: a flag, or the one mode word.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PersistenceWire {
    Flag(bool),
    Mode(String),
}

/// Where PostgreSQL comes from.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PostgresWire {
    /// Use this server (`postgres://user@host:5432/db`) and never start or stop one.
    pub url: Option<At<String>>,
    /// Preferred port for a managed server (default 5432, or the next free one).
    pub port: Option<At<u16>>,
    /// `auto` (default: a container when the engine has the image, else the local `postgres`
    /// and `initdb`, else a container pulled from the registry), `docker`, or `postgres`.
    pub provider: Option<At<String>>,
    /// Image of a containerized server (default `postgres:16-alpine`).
    pub image: Option<At<String>>,
    /// Keep the data under `.daca/postgres/` (or a named volume) across runs (default true).
    pub persistence: Option<bool>,
}

/// One app: a process with a Dapr app-id.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AppWire {
    /// The Dapr app-id (lowercase letters, digits and `-`, as Kubernetes names).
    pub id: At<String>,
    /// The app's folder, relative to daca.yaml; the command runs there.
    pub dir: Option<At<String>>,
    /// The command and its arguments, as a list (no shell). In a container it replaces the
    /// image's CMD; it may be left out when the app has `build:` or `image:`.
    pub command: Option<At<Vec<String>>>,
    /// Build the app's image from a Dockerfile (runs it in a container; see `runtime`).
    pub build: Option<At<BuildWire>>,
    /// Run this image (already built or pulled) in a container.
    pub image: Option<At<String>>,
    /// Where the app's folder is mounted in its container, so a reload needs no rebuild
    /// (default: the Dockerfile's last `WORKDIR`); `none` mounts nothing.
    pub mount: Option<At<String>>,
    /// Files or folders mounted into the app's container, as Compose writes them:
    /// `./config:/etc/config:ro` (the host path relative to this file; `:ro` or `:rw`, default
    /// `rw`). A process app in a pod has them at the same paths; one on the machine's network
    /// cannot: daca says so when it starts one.
    #[serde(default)]
    pub volumes: Vec<At<String>>,
    /// `auto`, `docker` or `process`: overrides the project's `runtime` for this app.
    pub runtime: Option<At<String>>,
    /// The port the app listens on: readiness and the sidecar's channel to the app.
    pub port: Option<At<u16>>,
    /// Extra environment variables; they override the app's `.env` file.
    #[serde(default)]
    pub env: BTreeMap<String, EnvValue>,
    /// HTTP path answered with 2xx when ready (e.g. `/healthz`); otherwise a TCP connect to `port`.
    pub health: Option<At<String>>,
    /// App-ids that must be ready before this app starts.
    #[serde(default)]
    pub depends_on: Vec<At<String>>,
    /// `on-failure` (default), `always` or `never`.
    pub restart: Option<At<String>>,
    /// How many instances run, each in a pod of its own with its own sidecar, all with this
    /// app-id (a Deployment's `replicas`). Default 1; `daca up --replicas 1` runs one.
    pub replicas: Option<At<u16>>,
    /// `false`: no sidecar, as a Kubernetes Deployment without Dapr annotations (a tracing
    /// backend, a database, nginx): no `DAPR_*` environment, no subscriptions or actors, still
    /// in its pod with its cluster names. Default `true`.
    pub dapr: Option<At<bool>>,
    /// Sidecar HTTP port (default: 3500 for the first app, else the next free port).
    pub dapr_http_port: Option<At<u16>>,
    /// Sidecar gRPC port (default: 50001 for the first app, else the next free port).
    pub dapr_grpc_port: Option<At<u16>>,
    /// Largest request body its sidecar accepts, e.g. `4Mi` (the default, as Dapr's `maxBodySize`).
    pub max_body_size: Option<At<String>>,
    /// Overrides the project's `grace_period` for this app.
    pub grace_period: Option<At<String>>,
    /// How the sidecar talks to the app: `http` (default) or `grpc` (Dapr's AppCallback service:
    /// invocations and events arrive over gRPC, as with `dapr-ext-grpc`).
    pub app_protocol: Option<At<String>>,
    /// On a change in the app's folder: `restart` (default) restarts it; `none` leaves it to the
    /// app (e.g. `uvicorn --reload`) and only reports.
    pub reload: Option<At<String>>,
    /// Globs (gitignore syntax, relative to the app's folder) that narrow which files count as
    /// changes; default: every file not ignored.
    #[serde(default)]
    pub watch: Vec<At<String>>,
    /// More globs to ignore, on top of `.gitignore`, `.dockerignore`, `.dacaignore` and defaults.
    #[serde(default)]
    pub ignore: Vec<At<String>>,
    /// Command run in the app's folder before a restart when a dependency file changes
    /// (`pyproject.toml`, `uv.lock`, `requirements*.txt`, ...), e.g. `["uv", "sync"]`.
    pub setup: Option<At<Vec<String>>>,
    /// Commands run in the app's folder before the restart a change causes, as Tilt's
    /// `live_update` `run()` steps: each when a changed file matches its `trigger` globs
    /// (relative to the app's folder; none: every change). In a container they run inside it.
    #[serde(default)]
    pub on_change: Vec<At<OnChangeWire>>,
    /// How long a reload waits after SIGTERM before SIGKILL; default `0s`: a reload replaces
    /// code under development, so the old process is killed at once (Ctrl-C and `daca down`
    /// still use `grace_period`).
    pub reload_grace: Option<At<String>>,
    /// Also restart the apps that depend on this one when it reloads (default false).
    pub restart_dependents: Option<bool>,
    /// `auto`, `host` or `pod`: overrides the project's `network`. In a pod the app has its own
    /// localhost: its sidecar is at `localhost:3500` and `localhost:50001` (the SDKs'
    /// defaults), and its `port` is its own, so several apps may all listen on 8000.
    pub network: Option<At<String>>,
    /// Host ports for an app in a pod, as Compose writes them: `"8001:8000"` (host:pod) or
    /// `"8001"` (for the app's `port`). Default: the app's own port when free, else the next.
    #[serde(default)]
    pub ports: Vec<At<String>>,
    /// Other names the app answers to inside pods, as Kubernetes Services give it
    /// (`agent-memory-service`): each resolves as the app-id does, also as
    /// `<name>.<namespace>` and `<name>.<namespace>.svc.cluster.local`.
    #[serde(default)]
    pub names: Vec<At<String>>,
    /// Other ports its names answer on inside pods, as a Kubernetes Service's `port` leading
    /// to its `targetPort`: `"80:8000"` (the target is the app's `port`).
    #[serde(default)]
    pub service_ports: Vec<At<String>>,
}

/// A command run on a change (`on_change:`).
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct OnChangeWire {
    /// The command and its arguments, as a list (no shell).
    pub run: At<Vec<String>>,
    /// Globs (gitignore syntax, relative to the app's folder); none: every change.
    #[serde(default)]
    pub trigger: Vec<At<String>>,
}

/// How an app's image is built, as Compose's `build:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BuildWire {
    /// Build context, relative to the app's folder (default: the app's folder).
    pub context: Option<At<String>>,
    /// Dockerfile, relative to the context (default `Dockerfile`).
    pub dockerfile: Option<At<String>>,
    /// Build arguments (`ARG`s).
    #[serde(default)]
    pub args: BTreeMap<String, EnvValue>,
    /// Stage of a multi-stage Dockerfile to build.
    pub target: Option<At<String>>,
}

/// An environment value: YAML scalars are accepted and turned into strings, as Compose does.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EnvValue {
    /// A string.
    Text(String),
    /// A number.
    Number(f64),
    /// A boolean, written `true`/`false`.
    Flag(bool),
}

impl EnvValue {
    /// The value as the process will see it.
    pub fn to_env_string(&self) -> String {
        match self {
            EnvValue::Text(text) => text.clone(),
            EnvValue::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            EnvValue::Number(n) => n.to_string(),
            EnvValue::Flag(flag) => flag.to_string(),
        }
    }
}
