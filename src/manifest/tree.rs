//! A position-annotated view of the YAML, used to find every unknown key in one pass.
//!
//! serde stops at the first unknown field; users fix typos faster when they see them all.
//! The allowed keys come from the JSON Schema generated from the wire types, so the schema,
//! the parser and this check can never disagree.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;
use serde_saphyr::Spanned;

use super::error::Diagnostic;

/// A YAML node with its position. Scalars are kept only as "a scalar": this view is about shape.
#[derive(Debug)]
pub enum Node {
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// Walks `node` against `schema` (resolving `$ref` into `root`'s `$defs`) and reports every
/// key that the schema does not allow, with a "did you mean" when a known key is close.
pub fn unknown_keys(root: &Json, schema: &Json, node: &Node, out: &mut Vec<Diagnostic>) {
    let schema = resolve(root, schema);
    match node {
        Node::Map(entries) => {
            let Some(properties) = schema.get("properties").and_then(Json::as_object) else {
                return; // a free-form map such as `env`
            };
            for (key, value) in entries {
                match properties.get(&key.value) {
                    Some(child) => unknown_keys(root, child, &value.value, out),
                    None => out.push(unknown_key(key, properties.keys())),
                }
            }
        }
        Node::Seq(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    unknown_keys(root, item_schema, &item.value, out);
                }
            }
        }
        Node::Scalar => {}
    }
}

fn unknown_key<'a>(key: &Spanned<String>, known: impl Iterator<Item = &'a String>) -> Diagnostic {
    let known: Vec<&str> = known.map(String::as_str).collect();
    let hint = match super::validate::closest(&key.value, &known) {
        Some(name) => format!("did you mean `{name}`?"),
        None => format!("expected one of: {}", known.join(", ")),
    };
    let at = &key.referenced;
    Diagnostic::at(
        at.line(),
        at.column(),
        format!("unknown key `{}`", key.value),
    )
    .hint(hint)
}

/// Follows `$ref` and unwraps `anyOf: [X, null]` (how schemars writes `Option<X>`).
fn resolve<'a>(root: &'a Json, schema: &'a Json) -> &'a Json {
    if let Some(reference) = schema.get("$ref").and_then(Json::as_str) {
        let name = reference.rsplit('/').next().unwrap_or_default();
        if let Some(target) = root.get("$defs").and_then(|defs| defs.get(name)) {
            return resolve(root, target);
        }
    }
    if let Some(options) = schema.get("anyOf").and_then(Json::as_array) {
        let non_null: Vec<&Json> = options
            .iter()
            .filter(|o| o.get("type") != Some(&Json::from("null")))
            .collect();
        if let [only] = non_null.as_slice() {
            return resolve(root, only);
        }
    }
    schema
}
