//! Local secret stores (`secretstores.local.env`, `secretstores.local.file`), used to resolve
//! `secretKeyRef`s in other components. Secret values never reach a log line.

use std::collections::BTreeMap;
use std::path::Path;

/// A loaded local secret store.
#[derive(Debug, Clone)]
pub enum SecretStore {
    /// Environment variables, optionally with a name prefix stripped.
    Env { prefix: String },
    /// A JSON file, flattened with `nestedSeparator` unless `multiValued`.
    File { secrets: BTreeMap<String, String> },
}

/// Names a local env store never reveals (Dapr refuses them too).
fn forbidden(name: &str) -> bool {
    name.starts_with("DAPR_") || name == "APP_API_TOKEN"
}

impl SecretStore {
    /// Reads a `secretstores.local.file` store; relative paths are relative to the project.
    pub fn file(root: &Path, metadata: &BTreeMap<String, String>) -> Result<SecretStore, String> {
        let path = metadata
            .get("secretsFile")
            .ok_or("`secretsFile` is required")?;
        let text = std::fs::read_to_string(root.join(path))
            .map_err(|err| format!("cannot read secrets file {path}: {err}"))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|err| format!("secrets file {path} is not JSON: {err}"))?;
        let separator = metadata
            .get("nestedSeparator")
            .map(String::as_str)
            .unwrap_or(":");
        let mut secrets = BTreeMap::new();
        flatten("", &json, separator, &mut secrets);
        Ok(SecretStore::File { secrets })
    }

    /// The value of secret `name` (field `key` is the same name for single-value stores).
    pub fn get(&self, name: &str) -> Option<String> {
        match self {
            SecretStore::Env { prefix } => {
                let variable = format!("{prefix}{name}");
                if forbidden(&variable) {
                    return None;
                }
                std::env::var(variable).ok()
            }
            SecretStore::File { secrets } => secrets.get(name).cloned(),
        }
    }
}

impl SecretStore {
    /// Every secret, for the bulk API (an env store: the variables with its prefix, which is
    /// removed from the names; never DAPR_* or APP_API_TOKEN).
    pub fn all(&self) -> BTreeMap<String, String> {
        match self {
            SecretStore::Env { prefix } => std::env::vars()
                .filter(|(name, _)| !forbidden(name))
                .filter_map(|(name, value)| {
                    Some((name.strip_prefix(prefix.as_str())?.to_string(), value))
                })
                .collect(),
            SecretStore::File { secrets } => secrets.clone(),
        }
    }
}

fn flatten(
    prefix: &str,
    value: &serde_json::Value,
    separator: &str,
    out: &mut BTreeMap<String, String>,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}{separator}{key}")
                };
                flatten(&name, child, separator, out);
            }
        }
        serde_json::Value::String(text) => {
            out.insert(prefix.to_string(), text.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}
