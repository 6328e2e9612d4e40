//! What an app's `GET /dapr/config` says about its actors, read as daprd reads it (Go's
//! `encoding/json`: unknown fields ignored, keys matched without regard to case).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::timespec::go_duration;

/// Dapr's defaults.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(3600);
pub const DEFAULT_STACK_DEPTH: u32 = 32;

/// How one actor type behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeConfig {
    pub idle_timeout: Duration,
    /// With reentrancy on, how deep a chain of calls on one id may go.
    pub reentrancy: Option<u32>,
}

impl Default for TypeConfig {
    fn default() -> Self {
        TypeConfig {
            idle_timeout: DEFAULT_IDLE,
            reentrancy: None,
        }
    }
}

/// The app's actor types and their settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostConfig {
    pub types: BTreeMap<String, TypeConfig>,
    /// Lines for the log: what was accepted and has no effect here, what was wrong.
    pub notes: Vec<String>,
}

/// A field by name, as Go finds it: exact first, then without regard to case.
fn field<'a>(object: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

fn duration(value: Option<&Value>) -> Result<Option<Duration>, String> {
    let Some(text) = value.and_then(Value::as_str) else {
        return Ok(None);
    };
    let parsed = go_duration(text)?;
    parsed
        .to_std()
        .map(Some)
        .ok_or_else(|| format!("negative duration `{text}`"))
}

fn reentrancy(value: Option<&Value>) -> Option<u32> {
    let object = value?.as_object()?;
    let enabled = field(object, "enabled").and_then(Value::as_bool)?;
    let depth = field(object, "maxStackDepth")
        .and_then(Value::as_u64)
        .and_then(|d| u32::try_from(d).ok())
        .filter(|d| *d > 0)
        .unwrap_or(DEFAULT_STACK_DEPTH);
    enabled.then_some(depth)
}

fn names(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a `/dapr/config` body. Fields with no effect on one machine are accepted as daprd
/// accepts them (`actorScanInterval`, `drainOngoingCallTimeout`, `drainRebalancedActors`,
/// `remindersStoragePartitions`).
pub fn parse(body: &[u8]) -> Result<HostConfig, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Some(object) = value.as_object() else {
        return Err("not a JSON object".into());
    };
    let mut config = HostConfig::default();
    let idle = duration(field(object, "actorIdleTimeout"))
        .map_err(|e| format!("failed to parse default actor idle timeout: {e}"))?;
    let global = TypeConfig {
        idle_timeout: idle.unwrap_or(DEFAULT_IDLE),
        reentrancy: reentrancy(field(object, "reentrancy")),
    };
    for name in names(field(object, "entities")) {
        config.types.insert(name, global.clone());
    }
    if field(object, "remindersStoragePartitions").is_some_and(|v| v.as_u64().unwrap_or(0) > 0) {
        config.notes.push(
            "remindersStoragePartitions is deprecated and has no effect (as in Dapr with its Scheduler)"
                .into(),
        );
    }
    let per_type = field(object, "entitiesConfig").and_then(Value::as_array);
    for entry in per_type.into_iter().flatten().filter_map(Value::as_object) {
        // A per-type entry replaces idle timeout and reentrancy both, as in daprd: what it
        // leaves out is Dapr's default, not the app-wide value.
        let idle = match duration(field(entry, "actorIdleTimeout")) {
            Ok(idle) => idle.unwrap_or(DEFAULT_IDLE),
            Err(err) => {
                config
                    .notes
                    .push(format!("actorIdleTimeout of a type: {err}; using 60m"));
                DEFAULT_IDLE
            }
        };
        let settings = TypeConfig {
            idle_timeout: idle,
            reentrancy: reentrancy(field(entry, "reentrancy")),
        };
        for name in names(field(entry, "entities")) {
            match config.types.get_mut(&name) {
                Some(existing) => *existing = settings.clone(),
                None => config.notes.push(format!(
                    "Configuration specified for non-hosted actor type: {name}"
                )),
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_python_sdk_sends_is_read_as_daprd_reads_it() {
        let sent = "{\"actorIdleTimeout\":\"1h0m0s0ms0\\u03bcs\",\"actorScanInterval\":\"0h0m30s0ms0\\u03bcs\",\"drainRebalancedActors\":true,\"entitiesConfig\":[],\"entities\":[\"DemoActor\"]}";
        let config = parse(sent.as_bytes()).unwrap();
        assert_eq!(config.types["DemoActor"], TypeConfig::default());
        let reentrant = "{\"actorIdleTimeout\":\"0h0m2s0ms0\\u03bcs\",\"entitiesConfig\":[{\"entities\":[\"DemoActor\"],\"reentrancy\":{\"enabled\":true,\"maxStackDepth\":32}}],\"entities\":[\"DemoActor\",\"Other\"]}";
        let config = parse(reentrant.as_bytes()).unwrap();
        assert_eq!(
            config.types["DemoActor"],
            TypeConfig {
                idle_timeout: DEFAULT_IDLE,
                reentrancy: Some(32)
            },
            "a per-type entry replaces the app-wide idle timeout too"
        );
        assert_eq!(config.types["Other"].idle_timeout, Duration::from_secs(2));
        assert_eq!(config.types["Other"].reentrancy, None);
    }

    #[test]
    fn keys_match_without_case_and_bad_values_are_said() {
        let config =
            parse(br#"{"Entities":["a"],"REENTRANCY":{"enabled":true},"actoridletimeout":"5s"}"#)
                .unwrap();
        assert_eq!(config.types["a"].reentrancy, Some(DEFAULT_STACK_DEPTH));
        assert_eq!(config.types["a"].idle_timeout, Duration::from_secs(5));
        let bad = parse(br#"{"entities":["a"],"actorIdleTimeout":"soon"}"#).unwrap_err();
        assert!(
            bad.contains("failed to parse default actor idle timeout"),
            "{bad}"
        );
        let stray = parse(br#"{"entities":["a"],"entitiesConfig":[{"entities":["b"]}]}"#).unwrap();
        assert!(stray.notes[0].contains("non-hosted actor type: b"));
        assert!(parse(b"[]").is_err());
        assert!(parse(b"{}").unwrap().types.is_empty());
    }
}
