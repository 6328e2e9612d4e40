//! A YAML tree for Dapr resources, which are passed through with unknown fields intact.
//! (`serde_json::Value` would do, but with the `arbitrary_precision` feature daca needs for
//! CloudEvents its numbers serialize as maps outside serde_json.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A YAML value; maps keep a stable (sorted) key order so the output diffs cleanly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Node>),
    Map(BTreeMap<String, Node>),
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(map) => map.get(key),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Map(map) => map.get_mut(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_list(&self) -> &[Node] {
        match self {
            Node::List(items) => items,
            _ => &[],
        }
    }

    /// `a.b.c` as a string.
    pub fn path_str(&self, path: &[&str]) -> Option<&str> {
        path.iter()
            .try_fold(self, |node, key| node.get(key))
            .and_then(Node::as_str)
    }

    pub fn map(entries: impl IntoIterator<Item = (&'static str, Node)>) -> Node {
        Node::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    pub fn str(text: impl Into<String>) -> Node {
        Node::Str(text.into())
    }
}

/// The YAML documents of `file` (multi-document files included; empty documents skipped).
pub fn read_documents(file: &std::path::Path) -> Result<Vec<Node>, super::ExportError> {
    let failed = |message: String| super::ExportError::Read {
        file: file.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(file).map_err(|e| failed(e.to_string()))?;
    parse_documents(&text, &file.display().to_string())
}

/// The YAML documents of `text` (what `name` calls it, for errors).
pub fn parse_documents(text: &str, name: &str) -> Result<Vec<Node>, super::ExportError> {
    let parsed: Vec<Node> = serde_saphyr::from_str_multiple(text).map_err(|e| {
        let at = match e.location() {
            Some(l) => format!("{name}:{}:{}", l.line(), l.column()),
            None => name.to_string(),
        };
        // The first line, without the position it starts with (`at` has it).
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        let message = match first.split_once(" column ") {
            Some((_, rest)) => rest.split_once(": ").map_or(rest, |(_, m)| m),
            None => first.trim_start_matches("error: "),
        };
        super::ExportError::Yaml {
            at,
            message: message.to_string(),
        }
    })?;
    Ok(parsed.into_iter().filter(|d| *d != Node::Null).collect())
}
