//! The project manifest, `daca.yaml`.
//!
//! How it works: the text is parsed three times, each pass cheap and each catching a
//! different class of mistake with its position:
//! 1. into a position-annotated tree (`tree.rs`) to find *every* unknown key at once;
//! 2. into the wire types (`wire.rs`) with serde-saphyr, which reports wrong types;
//! 3. the wire types are validated into the model (`validate.rs` → `model.rs`).
//!
//! `load` is the only entry point the rest of daca uses.

mod app;
mod container;
mod error;
mod model;
mod services;
mod tree;
mod validate;
mod wire;

use std::path::Path;

pub use app::parse_size;
pub use error::{Diagnostic, ManifestError};
pub use model::{
    AppId, AppProtocol, AppSpec, BuildSpec, ImageSource, Manifest, MountChoice, NetworkMode,
    NetworkSpec, OnChange, Persistence, PostgresConfig, PostgresProvider, ProcessSpec, RedisConfig,
    RedisProvider, ReloadMode, ReloadSpec, RestartPolicy, RuntimeChoice, SidecarSpec, Step,
    Supervision, Volume, WatchSpec,
};
pub use services::{DEFAULT_POSTGRES_IMAGE, DEFAULT_REDIS_IMAGE};
pub use validate::default_name;
pub use wire::EnvValue;

/// The file name daca looks for in a project folder.
pub const FILE_NAME: &str = "daca.yaml";

/// Reads and validates the manifest at `file`.
pub fn load(file: &Path) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(file).map_err(|err| {
        let hint = match err.kind() {
            std::io::ErrorKind::NotFound => {
                "run `daca init` to create one, or point at it with `-f FILE`"
            }
            _ => "check the file's permissions",
        };
        let diagnostic =
            Diagnostic::at(0, 0, format!("cannot read the manifest: {err}")).hint(hint);
        ManifestError::new(file, "", vec![diagnostic])
    })?;
    parse(file, &text)
}

/// Validates manifest `text` as if read from `file` (which anchors relative paths).
pub fn parse(file: &Path, text: &str) -> Result<Manifest, ManifestError> {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let fail = |diagnostics| ManifestError::new(file, text, diagnostics);
    let options = serde_saphyr::options! { with_snippet: false };
    let tree: serde_saphyr::Spanned<tree::Node> =
        serde_saphyr::from_str_with_options(text, options.clone())
            .map_err(|err| fail(vec![yaml_error(&err)]))?;
    let mut diagnostics = Vec::new();
    let schema = schema();
    tree::unknown_keys(&schema, &schema, &tree.value, &mut diagnostics);
    let wire: wire::ManifestWire = match serde_saphyr::from_str_with_options(text, options) {
        Ok(wire) => wire,
        Err(err) => {
            diagnostics.push(yaml_error(&err));
            return Err(fail(diagnostics));
        }
    };
    match validate::validate(&absolute, wire) {
        Ok(manifest) if diagnostics.is_empty() => Ok(manifest),
        Ok(_) => Err(fail(diagnostics)),
        Err(more) => {
            diagnostics.extend(more);
            Err(fail(diagnostics))
        }
    }
}

/// The JSON Schema of daca.yaml, generated from the wire types.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(wire::ManifestWire))
        .expect("UNWRAP: a schema is plain JSON")
}

/// serde-saphyr puts the position inside its message; we show it in the `-->` line instead.
fn yaml_error(err: &serde_saphyr::Error) -> Diagnostic {
    let (line, column) = err
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let text = err.to_string();
    let mut message = text
        .split(" at line ")
        .next()
        .unwrap_or(&text)
        .trim()
        .to_string();
    if let Some(kind) = message
        .strip_prefix("invalid ")
        .filter(|k| k.starts_with('u') || k.starts_with('i'))
    {
        message = format!("expected a whole number ({kind})");
    }
    let hint = if message.contains("missing field") {
        "add the field; `daca schema` lists every key"
    } else {
        "`daca schema` prints the JSON Schema of daca.yaml for your editor"
    };
    Diagnostic::at(line, column, message).hint(hint)
}
