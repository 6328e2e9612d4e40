//! A component's metadata items: plain values, `secretKeyRef`s resolved through a local
//! secret store, `envRef`s, the settings daca cannot honour, and a binding's checks.

use std::collections::BTreeMap;

use serde_saphyr::Spanned;

use super::wire::{ComponentWire, MetadataItemWire};
use super::{ComponentKind, SecretStore};
use crate::manifest::Diagnostic;

pub(super) fn plain_values(items: &[Spanned<MetadataItemWire>]) -> BTreeMap<String, String> {
    items
        .iter()
        .filter_map(|i| {
            Some((
                i.value.name.clone(),
                i.value.value.as_ref()?.to_env_string(),
            ))
        })
        .collect()
}

/// What is wrong, and the hint.
pub(super) type Problem = (String, String);

/// An item's value and whether it came from a secret store.
pub(super) fn value_of(
    item: &MetadataItemWire,
    auth: Option<&str>,
    stores: &BTreeMap<String, SecretStore>,
    secrets_present: bool,
) -> Result<(String, bool), Problem> {
    if item.secretKeyRef.is_some() && !secrets_present {
        return Ok((String::new(), true));
    }
    if let Some(reference) = &item.secretKeyRef {
        let Some(store_name) = auth else {
            return Err((
                format!(
                    "`{}` uses secretKeyRef but the component has no `auth.secretStore`",
                    item.name
                ),
                "add `auth: { secretStore: <a secretstores.local.env or .file component> }`".into(),
            ));
        };
        let Some(store) = stores.get(store_name) else {
            return Err((
                format!("secret store `{store_name}` is not defined"),
                format!(
                    "add a `secretstores.local.env` or `secretstores.local.file` component named `{store_name}`"
                ),
            ));
        };
        let key = reference.key.as_deref().unwrap_or(&reference.name);
        // Single-value local stores keep one value per name; `key` selects a field only when nested.
        let value = store
            .get(&reference.name)
            .or_else(|| store.get(&format!("{}:{key}", reference.name)));
        return match value {
            Some(value) => Ok((value, true)),
            None => Err((
                format!(
                    "secret `{}` was not found in secret store `{store_name}`",
                    reference.name
                ),
                "define it (env var or secrets file) before `daca up`".into(),
            )),
        };
    }
    if let Some(variable) = &item.envRef {
        if variable.starts_with("DAPR_") || variable == "APP_API_TOKEN" {
            return Err((
                format!("envRef `{variable}` is not allowed"),
                "Dapr refuses DAPR_* and APP_API_TOKEN here; use another variable".into(),
            ));
        }
        return Ok((std::env::var(variable).unwrap_or_default(), true));
    }
    Ok((
        item.value
            .as_ref()
            .map(|v| v.to_env_string())
            .unwrap_or_default(),
        false,
    ))
}

/// Metadata daca cannot honour, rejected with a reason rather than silently ignored.
pub(super) fn unsupported(item: &MetadataItemWire) -> Option<Problem> {
    let value = item
        .value
        .as_ref()
        .map(|v| v.to_env_string())
        .unwrap_or_default();
    let name = item.name.to_ascii_lowercase();
    if name == "enabletls" && value.eq_ignore_ascii_case("true") {
        return Some((
            "enableTLS: true is not supported: daca talks to Redis without TLS".into(),
            "set `enableTLS` to \"false\" for local runs (your cluster files can keep it)".into(),
        ));
    }
    if name == "redistype" && value.eq_ignore_ascii_case("cluster") {
        return Some((
            "redisType: cluster is not supported by daca".into(),
            "use a single Redis node locally (`redisType: node`)".into(),
        ));
    }
    if name == "failover" && value.eq_ignore_ascii_case("true") {
        return Some((
            "failover (Sentinel) is not supported by daca".into(),
            "remove `failover` for local runs".into(),
        ));
    }
    None
}

/// dapr/kit's `IsTruthy`: `y yes true t on 1`, any case, trimmed.
pub fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "y" | "yes" | "true" | "t" | "on" | "1"
    )
}

/// A binding's missing metadata items, and the values it cannot use, where they are written.
/// What is wrong with one metadata value, for the types whose values daca checks at load.
fn check_item(kind: ComponentKind, name: &str, value: &str) -> Option<(String, String)> {
    let postgres = matches!(
        kind,
        ComponentKind::StatePostgres | ComponentKind::BindingsPostgres
    );
    if postgres && name.eq_ignore_ascii_case("connectionString") {
        let hint = crate::postgres::CONNECTION_STRING_HINT.to_string();
        return crate::postgres::parse_config(value)
            .err()
            .map(|m| (m, hint));
    }
    crate::bindings::check_item(kind, name, value)
}

/// The metadata items a type cannot do without (name, hint).
fn required(kind: ComponentKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        ComponentKind::StateRedis | ComponentKind::PubsubRedis => &[(
            "redisHost",
            "add `- name: redisHost` with `value: localhost:6379`",
        )],
        ComponentKind::StatePostgres | ComponentKind::BindingsPostgres => &[(
            "connectionString",
            "add `- name: connectionString` with `value: \"host=localhost user=postgres dbname=app\"` (or a `secretKeyRef`)",
        )],
        other => crate::bindings::required(other),
    }
}

/// What is missing or wrong in a component's metadata for its type, where it is written.
pub(super) fn kind_problems(
    kind: ComponentKind,
    type_name: &Spanned<String>,
    wire: &ComponentWire,
    offset: u64,
) -> Vec<Diagnostic> {
    let items = wire.spec.value.items();
    let mut problems = Vec::new();
    for (key, hint) in required(kind) {
        if !items.iter().any(|m| m.value.name.eq_ignore_ascii_case(key)) {
            let (line, column) = super::loader::at(type_name, offset);
            let message = format!("`{}` needs a `{key}` metadata item", type_name.value);
            problems.push(Diagnostic::at(line, column, message).hint(*hint));
        }
    }
    for item in items {
        let Some(value) = &item.value.value else {
            continue; // from a secret: checked when the components are made
        };
        let checked = check_item(kind, &item.value.name, &value.to_env_string());
        if let Some((message, hint)) = checked {
            let (line, column) = super::loader::at(item, offset);
            problems.push(Diagnostic::at(line, column, message).hint(hint));
        }
    }
    problems
}
