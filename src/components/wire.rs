//! Dapr resource YAML as written (`apiVersion: dapr.io/v1alpha1`, `kind: Component`, ...).
//! Only what daca reads is described; other fields are accepted and ignored, as Dapr does.

#![allow(non_snake_case)] // field names are Dapr's camelCase keys

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::manifest::EnvValue;

/// Just enough of any resource to know what it is.
#[derive(Debug, Deserialize)]
pub struct ResourceHead {
    pub kind: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
pub struct NameWire {
    pub name: Option<Spanned<String>>,
}

/// A `kind: Component` document.
#[derive(Debug, Deserialize)]
pub struct ComponentWire {
    pub metadata: NameWire,
    pub spec: Spanned<SpecWire>,
    pub auth: Option<AuthWire>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct SpecWire {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub version: Option<String>,
    /// `metadata:` may be empty (null) in Dapr's own examples.
    #[serde(default)]
    pub metadata: Option<Vec<Spanned<MetadataItemWire>>>,
}

impl SpecWire {
    pub fn items(&self) -> &[Spanned<MetadataItemWire>] {
        self.metadata.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
pub struct AuthWire {
    pub secretStore: Spanned<String>,
}

/// `- name: redisHost` with `value`, `secretKeyRef` or `envRef`.
#[derive(Debug, Deserialize)]
pub struct MetadataItemWire {
    pub name: String,
    pub value: Option<EnvValue>,
    pub secretKeyRef: Option<SecretKeyRefWire>,
    pub envRef: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SecretKeyRefWire {
    pub name: String,
    pub key: Option<String>,
}

/// A `kind: Subscription` document (dapr.io/v1alpha1 `route`, v2alpha1 `routes`).
#[derive(Debug, Deserialize)]
pub struct SubscriptionWire {
    pub spec: Spanned<SubscriptionSpecWire>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct SubscriptionSpecWire {
    pub pubsubname: Spanned<String>,
    pub topic: Spanned<String>,
    pub route: Option<String>,
    pub routes: Option<RoutesWire>,
    pub deadLetterTopic: Option<String>,
    #[serde(default)]
    pub metadata: Option<std::collections::BTreeMap<String, EnvValue>>,
}

#[derive(Debug, Deserialize)]
pub struct RoutesWire {
    #[serde(default)]
    pub rules: Option<Vec<Spanned<RuleWire>>>,
    pub default: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RuleWire {
    #[serde(rename = "match", default)]
    pub matched: Option<String>,
    pub path: String,
}
