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
