//! Dapr resources from the manifest's `resources` folder (or the defaults `dapr init` gives):
//! Component YAMLs, multi-document files included, checked at start-up with `file:line:col`
//! errors, with `secretKeyRef` and `envRef` resolved.
//!
//! `load` reads and validates (`loader.rs`); `stores.rs` turns state components into stores.

mod configuration;
mod loader;
pub(crate) use loader::{at, yaml_diagnostic};
pub use metadata::truthy;
mod metadata;
mod secrets;
pub mod stores;
mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

pub use secrets::SecretStore;

use crate::manifest::ManifestError;
use crate::pubsub::subscription::Subscription;

/// The component types daca implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentKind {
    StateRedis,
    StateMemory,
    StatePostgres,
    PubsubRedis,
    PubsubMemory,
    SecretsEnv,
    SecretsFile,
    BindingsCron,
    BindingsHttp,
    BindingsPostgres,
}

pub(crate) const SUPPORTED: &str = "state.redis, state.in-memory, state.postgresql, pubsub.redis, pubsub.in-memory, secretstores.local.env, secretstores.local.file, bindings.cron, bindings.http, bindings.postgresql";

impl ComponentKind {
    fn parse(type_name: &str) -> Option<ComponentKind> {
        Some(match type_name {
            "state.redis" => ComponentKind::StateRedis,
            "state.in-memory" => ComponentKind::StateMemory,
            "state.postgresql" => ComponentKind::StatePostgres,
            "pubsub.redis" => ComponentKind::PubsubRedis,
            "pubsub.in-memory" => ComponentKind::PubsubMemory,
            "secretstores.local.env" => ComponentKind::SecretsEnv,
            "secretstores.local.file" => ComponentKind::SecretsFile,
            "bindings.cron" => ComponentKind::BindingsCron,
            "bindings.http" => ComponentKind::BindingsHttp,
            // components-contrib registers both names.
            "bindings.postgresql" | "bindings.postgres" => ComponentKind::BindingsPostgres,
            _ => return None,
        })
    }

    pub fn is_state(self) -> bool {
        matches!(
            self,
            ComponentKind::StateRedis | ComponentKind::StateMemory | ComponentKind::StatePostgres
        )
    }

    pub fn is_binding(self) -> bool {
        matches!(
            self,
            ComponentKind::BindingsCron
                | ComponentKind::BindingsHttp
                | ComponentKind::BindingsPostgres
        )
    }
}

/// A loaded, validated component.
#[derive(Debug, Clone)]
pub struct Component {
    pub name: String,
    /// As written, e.g. `state.redis`.
    pub type_name: String,
    pub version: String,
    pub kind: ComponentKind,
    /// Metadata by name as written; values resolved (secrets included).
    pub metadata: BTreeMap<String, String>,
    /// Names of metadata items whose values came from a secret store (masked when shown).
    pub secret_items: Vec<String>,
    /// App-ids allowed to use it; empty = all.
    pub scopes: Vec<String>,
    /// `file:line` it came from, or None for daca's defaults.
    pub origin: Option<String>,
    /// Where it really connects, when its address means a server of the project's.
    pub redirect: Option<crate::postgres::Redirect>,
}

/// Whether a metadata item's name says its value is a secret (`redisPassword`, `apiKey`,
/// `accessKey`, `token`, …): such a value is masked on the dashboard and moved out of an
/// export into a Secret, wherever it was written.
pub fn named_like_a_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "apikey",
        "api_key",
        "accesskey",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

impl Component {
    /// A metadata value by name, matched case-insensitively as Dapr does.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `app_id` may use this component.
    pub fn visible_to(&self, app_id: &str) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|s| s == app_id)
    }
}

/// Problems in one or more resource files.
#[derive(Debug, thiserror::Error)]
pub struct ComponentsError(pub Vec<ManifestError>);

impl fmt::Display for ComponentsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        f.write_str(texts.join("\n").trim_end())
    }
}

/// Everything a resources folder defines.
#[derive(Default)]
pub struct Resources {
    pub components: Vec<Component>,
    /// Declarative subscriptions, in file order.
    pub subscriptions: Vec<Subscription>,
    /// The secret store components, by name.
    pub secret_stores: BTreeMap<String, SecretStore>,
    /// Preview features turned on by a `kind: Configuration` (`ActorStateTTL`).
    pub features: std::collections::BTreeSet<String>,
    /// What the user should know about the folder (parts not used yet).
    pub notices: Vec<String>,
    /// The Resiliency resources, checked.
    pub resiliency: Vec<crate::resiliency::Document>,
}

/// The components of a project. With no resources folder: what `dapr init` provides, a Redis
/// `statestore` (also the actor store) and a Redis `pubsub`. Relative paths in metadata (a
/// secrets file) are relative to `root`, the project folder, where Dapr would run.
pub fn load(resources: Option<&Path>, root: &Path) -> Result<Vec<Component>, ComponentsError> {
    load_resources(resources, root).map(|r| r.components)
}

/// Components, subscriptions and secret stores of a project (see [`load`]).
pub fn load_resources(resources: Option<&Path>, root: &Path) -> Result<Resources, ComponentsError> {
    let Some(folder) = resources else {
        return Ok(Resources {
            components: defaults(),
            ..Resources::default()
        });
    };
    loader::load_folder(folder, root, true)
}

/// [`load_resources`]'s checks, except that referenced secrets need not exist here (for
/// `daca export`: on the cluster, its own secret store serves them).
pub fn check_resources(resources: Option<&Path>, root: &Path) -> Result<(), ComponentsError> {
    match resources {
        Some(folder) => loader::load_folder(folder, root, false).map(|_| ()),
        None => Ok(()),
    }
}

fn defaults() -> Vec<Component> {
    let redis = |name: &str, type_name: &str, kind, actor: bool| {
        let mut metadata = BTreeMap::from([
            ("redisHost".to_string(), "localhost:6379".to_string()),
            ("redisPassword".to_string(), String::new()),
        ]);
        if actor {
            metadata.insert("actorStateStore".into(), "true".into());
        }
        Component {
            name: name.into(),
            type_name: type_name.into(),
            version: "v1".into(),
            kind,
            metadata,
            secret_items: vec![],
            scopes: vec![],
            origin: None,
            redirect: None,
        }
    };
    vec![
        redis("statestore", "state.redis", ComponentKind::StateRedis, true),
        redis("pubsub", "pubsub.redis", ComponentKind::PubsubRedis, false),
    ]
}
