//! Key prefixing (`keyPrefix`) and request metadata (`metadata.*` query parameters).

use std::collections::BTreeMap;

use super::catalog::{self, Api};
use super::error::ApiError;
use crate::components::stores::KeyPrefix;

const SEPARATOR: &str = "||";

/// A key (or prefix) with the separator in it, in a store; the error differs by API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IllegalKey {
    pub store: String,
    pub key: String,
}

impl IllegalKey {
    pub fn error(&self, api: Api) -> ApiError {
        catalog::illegal_key(api, &self.store, &self.key)
    }
}

/// The HTTP API's `?` on a key.
impl From<IllegalKey> for ApiError {
    fn from(illegal: IllegalKey) -> ApiError {
        illegal.error(Api::Http)
    }
}

/// The key as stored: `myapp||order-1` for the default `keyPrefix: appid`.
pub fn stored_key(
    prefix: &KeyPrefix,
    app_id: &str,
    component: &str,
    key: &str,
) -> Result<String, IllegalKey> {
    let illegal = |what: &str| IllegalKey {
        store: component.to_string(),
        key: what.to_string(),
    };
    if key.contains(SEPARATOR) {
        return Err(illegal(key));
    }
    let prefix = match prefix {
        KeyPrefix::None => return Ok(key.to_string()),
        KeyPrefix::AppId if app_id.is_empty() => return Ok(key.to_string()),
        KeyPrefix::AppId => app_id.to_string(),
        KeyPrefix::Namespace => match std::env::var("NAMESPACE").ok().filter(|n| !n.is_empty()) {
            Some(namespace) => format!("{namespace}.{app_id}"),
            None => app_id.to_string(),
        },
        KeyPrefix::Name => component.to_string(),
        KeyPrefix::Custom(custom) if custom.contains(SEPARATOR) => return Err(illegal(custom)),
        KeyPrefix::Custom(custom) => custom.clone(),
    };
    Ok(format!("{prefix}{SEPARATOR}{key}"))
}

/// Query parameters: `metadata.x=y` become metadata `x: y` (first value wins), the rest plain.
#[derive(Debug, Default)]
pub struct Query {
    pub metadata: BTreeMap<String, String>,
    pub plain: BTreeMap<String, String>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut query = Query::default();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let (map, name) = match name.strip_prefix("metadata.") {
                Some(stripped) => (&mut query.metadata, stripped.to_string()),
                None => (&mut query.plain, name.into_owned()),
            };
            map.entry(name).or_insert_with(|| value.into_owned());
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_follow_dapr() {
        let key = |p: KeyPrefix| stored_key(&p, "myapp", "statestore", "order-1").unwrap();
        assert_eq!(key(KeyPrefix::AppId), "myapp||order-1");
        assert_eq!(key(KeyPrefix::Name), "statestore||order-1");
        assert_eq!(key(KeyPrefix::None), "order-1");
        assert_eq!(key(KeyPrefix::Custom("shared".into())), "shared||order-1");
        let err = stored_key(&KeyPrefix::AppId, "myapp", "s", "a||b").unwrap_err();
        assert_eq!(
            ApiError::from(err.clone()).message,
            "api error: code = InvalidArgument desc = input key/keyPrefix 'a||b' can't contain '||'"
        );
        assert_eq!(
            err.error(Api::Grpc).message,
            "input key/keyPrefix 'a||b' can't contain '||'"
        );
    }

    #[test]
    fn metadata_query_parameters_first_value_wins() {
        let query = Query::parse(Some(
            "metadata.ttlInSeconds=5&metadata.ttlInSeconds=9&consistency=strong&metadata.a%20b=c",
        ));
        assert_eq!(query.metadata["ttlInSeconds"], "5");
        assert_eq!(query.metadata["a b"], "c");
        assert_eq!(query.plain["consistency"], "strong");
    }
}
