//! A `kind: Configuration` document. daca reads the preview features it turns on
//! (`ActorStateTTL` lets actor state take `ttlInSeconds`, as in Dapr); its other keys
//! (tracing, metrics, access control, ...) are not used yet, and a notice says so rather than
//! letting the user believe they are.

use std::path::Path;

use serde_json::Value;

use super::metadata::truthy;

/// The features `document` enables, and a notice naming the keys daca does not use.
pub(super) fn read(document: &str, file: &Path) -> (Vec<String>, Option<String>) {
    let Ok(value) = serde_saphyr::from_str::<Value>(document) else {
        return (Vec::new(), None);
    };
    let name = value["metadata"]["name"].as_str().unwrap_or("unnamed");
    let Some(spec) = value["spec"].as_object() else {
        return (Vec::new(), None);
    };
    let features = spec
        .get("features")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|feature| match &feature["enabled"] {
            Value::Bool(on) => *on,
            Value::String(text) => truthy(text),
            _ => false,
        })
        .filter_map(|feature| feature["name"].as_str().map(String::from))
        .collect();
    let unused: Vec<&str> = spec
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "features")
        .collect();
    let notice = (!unused.is_empty()).then(|| {
        format!(
            "Configuration `{name}` ({}): daca does not use {} yet",
            file.display(),
            unused.join(", ")
        )
    });
    (features, notice)
}
