//! Subscriptions: declarative (`kind: Subscription` YAML, read by the components loader) and
//! programmatic (the app's `GET /dapr/subscribe`), their routing rules, and how the two kinds
//! combine for one app (Dapr's `compstore`: a programmatic subscription replaces a declarative
//! one for the same pubsub and topic; among declaratives the first wins).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cel::Expr;

/// One routing rule: events for which `expr` holds (or every event, without one) go to `path`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The `match` text as written; empty for a default route.
    pub source: String,
    pub expr: Option<Expr>,
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Kind {
    Declarative,
    Programmatic,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub pubsub: String,
    pub topic: String,
    /// `routes.rules` in order, then the default (`routes.default`, else `route`).
    pub rules: Vec<Rule>,
    pub dead_letter_topic: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub kind: Kind,
    /// App-ids it applies to (declarative only); empty = every app.
    pub scopes: Vec<String>,
    /// `file:line` of a declarative subscription.
    pub origin: Option<String>,
}

impl Subscription {
    /// The path of the first rule the event matches; None when it matches none.
    /// A rule whose expression cannot be evaluated on this event does not match it.
    pub fn route(&self, event: &Value) -> Option<&str> {
        self.rules
            .iter()
            .find(|rule| match &rule.expr {
                None => true,
                Some(expr) => match expr.eval(event) {
                    Ok(matched) => matched,
                    Err(err) => {
                        tracing::debug!("rule `{}` on topic {}: {err}", rule.source, self.topic);
                        false
                    }
                },
            })
            .map(|rule| rule.path.as_str())
    }

    /// Whether some events can match no rule (rules without a default): Dapr drops those.
    pub fn lacks_default(&self) -> bool {
        self.rules.iter().all(|r| r.expr.is_some())
    }

    pub fn raw_payload(&self) -> bool {
        self.metadata
            .get("rawPayload")
            .and_then(|v| super::envelope::parse_bool(v))
            .unwrap_or(false)
    }

    pub fn applies_to(&self, app_id: &str) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|s| s == app_id)
    }

    /// What `/v1.0/metadata` shows.
    pub fn view(&self) -> Value {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                let mut rule = serde_json::Map::new();
                if !r.source.is_empty() {
                    rule.insert("match".into(), r.source.clone().into());
                }
                rule.insert("path".into(), r.path.clone().into());
                Value::Object(rule)
            })
            .collect();
        let mut view = serde_json::json!({
            "pubsubname": self.pubsub,
            "topic": self.topic,
            "rules": rules,
            "deadLetterTopic": self.dead_letter_topic.clone().unwrap_or_default(),
            "type": self.kind,
        });
        if !self.metadata.is_empty() {
            view["metadata"] = serde_json::to_value(&self.metadata).unwrap_or_default();
        }
        view
    }
}

/// Dapr adds the leading `/` a path may lack.
pub fn normalize_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// Builds the rule list; Err names the first bad expression.
pub fn rules(
    matched: &[(String, String)],
    default: Option<&str>,
    route: Option<&str>,
) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for (source, path) in matched {
        let expr = if source.trim().is_empty() {
            None
        } else {
            Some(Expr::parse(source).map_err(|e| format!("match `{source}`: {e}"))?)
        };
        rules.push(Rule {
            source: source.clone(),
            expr,
            path: normalize_path(path),
        });
    }
    if let Some(path) = default.or(route).filter(|p| !p.is_empty()) {
        rules.push(Rule {
            source: String::new(),
            expr: None,
            path: normalize_path(path),
        });
    }
    Ok(rules)
}

/// One item of `GET /dapr/subscribe`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProgrammaticItem {
    #[serde(alias = "pubsubname")]
    pubsubname: String,
    topic: String,
    #[serde(default)]
    route: Option<String>,
    #[serde(default)]
    routes: Option<RoutesItem>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    dead_letter_topic: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RoutesItem {
    #[serde(default)]
    rules: Option<Vec<RuleItem>>,
    #[serde(default)]
    default: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RuleItem {
    #[serde(rename = "match", default)]
    matched: String,
    #[serde(default)]
    path: String,
}

/// Parses an app's `/dapr/subscribe` answer. Items without any route are skipped with a
/// warning, as Dapr does; a bad `match` expression fails the whole list, as in Dapr.
pub fn programmatic(body: &[u8]) -> Result<Vec<Subscription>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let items: Option<Vec<ProgrammaticItem>> =
        serde_json::from_slice(body).map_err(|e| format!("not a subscription list: {e}"))?;
    let mut subscriptions = Vec::new();
    for item in items.unwrap_or_default() {
        let routes = item.routes.unwrap_or(RoutesItem {
            rules: None,
            default: None,
        });
        let matched: Vec<(String, String)> = routes
            .rules
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.matched, r.path))
            .collect();
        let rules = rules(&matched, routes.default.as_deref(), item.route.as_deref())?;
        if rules.is_empty() {
            tracing::warn!(
                "subscription to topic {} has no route; it is ignored (as Dapr does)",
                item.topic
            );
            continue;
        }
        subscriptions.push(Subscription {
            pubsub: item.pubsubname,
            topic: item.topic,
            rules,
            dead_letter_topic: item.dead_letter_topic.filter(|t| !t.is_empty()),
            metadata: item.metadata.unwrap_or_default(),
            kind: Kind::Programmatic,
            scopes: Vec::new(),
            origin: None,
        });
    }
    Ok(subscriptions)
}

/// The subscriptions one app runs: declaratives that apply to it (first per topic wins), each
/// replaced by a programmatic one for the same pubsub and topic.
pub fn effective(
    declarative: &[Subscription],
    programmatic: Vec<Subscription>,
    app_id: &str,
) -> Vec<Subscription> {
    let mut chosen: Vec<Subscription> = Vec::new();
    for sub in declarative.iter().filter(|s| s.applies_to(app_id)) {
        if !chosen
            .iter()
            .any(|c| c.pubsub == sub.pubsub && c.topic == sub.topic)
        {
            chosen.push(sub.clone());
        }
    }
    for sub in programmatic {
        chosen.retain(|c| !(c.pubsub == sub.pubsub && c.topic == sub.topic));
        chosen.push(sub);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_items_become_rules() {
        let body = br#"[
          {"pubsubname":"pubsub","topic":"orders","route":"orders"},
          {"pubsubname":"pubsub","topic":"widgets","routes":{"rules":[{"match":"event.type == \"big\"","path":"/big"}],"default":"/small"},"deadLetterTopic":"poison"},
          {"pubsubname":"pubsub","topic":"nothing"}
        ]"#;
        let subs = programmatic(body).unwrap();
        assert_eq!(subs.len(), 2, "an item without routes is skipped");
        assert_eq!(subs[0].rules[0].path, "/orders");
        let big = serde_json::json!({"type": "big"});
        let small = serde_json::json!({"type": "tiny"});
        assert_eq!(subs[1].route(&big), Some("/big"));
        assert_eq!(subs[1].route(&small), Some("/small"));
        assert_eq!(subs[1].dead_letter_topic.as_deref(), Some("poison"));
        assert!(programmatic(b"").unwrap().is_empty());
        assert!(programmatic(b"null").unwrap().is_empty());
        let bad = br#"[{"pubsubname":"p","topic":"t","routes":{"rules":[{"match":"event.type ==","path":"/x"}]}}]"#;
        assert!(programmatic(bad).is_err());
    }

    #[test]
    fn programmatic_replaces_declarative_and_first_declarative_wins() {
        let sub = |topic: &str, path: &str, kind: Kind, scopes: Vec<String>| Subscription {
            pubsub: "pubsub".into(),
            topic: topic.into(),
            rules: rules(&[], None, Some(path)).unwrap(),
            dead_letter_topic: None,
            metadata: BTreeMap::new(),
            kind,
            scopes,
            origin: None,
        };
        let declarative = vec![
            sub("a", "/first", Kind::Declarative, vec![]),
            sub("a", "/second", Kind::Declarative, vec![]),
            sub("b", "/b", Kind::Declarative, vec![]),
            sub("c", "/c", Kind::Declarative, vec!["other".into()]),
        ];
        let result = effective(
            &declarative,
            vec![sub("b", "/mine", Kind::Programmatic, vec![])],
            "me",
        );
        let paths: Vec<&str> = result.iter().map(|s| s.rules[0].path.as_str()).collect();
        assert_eq!(paths, ["/first", "/mine"]);
    }

    #[test]
    fn rules_without_default_drop_unmatched_events() {
        let only = rules(&[("event.type == 'x'".into(), "/x".into())], None, None).unwrap();
        let sub = Subscription {
            pubsub: "p".into(),
            topic: "t".into(),
            rules: only,
            dead_letter_topic: None,
            metadata: BTreeMap::new(),
            kind: Kind::Programmatic,
            scopes: vec![],
            origin: None,
        };
        assert!(sub.lacks_default());
        assert_eq!(sub.route(&serde_json::json!({"type": "y"})), None);
        assert_eq!(
            sub.route(&serde_json::json!({})),
            None,
            "missing key: no match"
        );
    }
}
