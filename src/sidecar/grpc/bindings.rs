//! `InvokeBinding`: an output binding over gRPC; its data passes as it is.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::HeaderMap;

use dapr::dapr::proto::runtime::v1 as rt;
use tonic::Status;

use crate::bindings::OutputRequest;
use crate::sidecar::{SidecarState, bindings_api};

pub async fn invoke_binding(
    s: Arc<SidecarState>,
    r: rt::InvokeBindingRequest,
    headers: HeaderMap,
    authority: Option<String>,
) -> Result<rt::InvokeBindingResponse, Status> {
    let mut metadata: BTreeMap<String, String> = r.metadata.into_iter().collect();
    copy_call_metadata(&mut metadata, &headers, authority);
    let request = OutputRequest {
        operation: r.operation,
        data: r.data.into(),
        metadata,
    };
    let components = s.shared.components();
    match components
        .bindings
        .invoke(&s.app_id, &r.name, request, &s.policies())
        .await
    {
        Ok(answer) => {
            let answer = answer.unwrap_or_default();
            Ok(rt::InvokeBindingResponse {
                data: answer.data.to_vec(),
                metadata: answer.metadata.into_iter().collect(),
            })
        }
        Err(err) => Err(bindings_api::invoke_failed(&r.name, &err.message).to_status()),
    }
}

/// daprd's copy of the call's gRPC metadata into the binding's: a key the request's metadata
/// already has is kept, except `traceparent` and `tracestate`, which the call's replace;
/// `grpc-*` keys and `:authority` get daprd's `dapr-` prefix.
fn copy_call_metadata(
    metadata: &mut BTreeMap<String, String>,
    headers: &HeaderMap,
    authority: Option<String>,
) {
    let values = headers
        .keys()
        .filter_map(|name| Some((name.as_str(), headers.get(name)?.to_str().ok()?)))
        .map(|(name, value)| (name.to_string(), value.to_string()));
    let authority = authority.map(|a| (":authority".to_string(), a));
    for (key, value) in values.chain(authority) {
        let key = match key.strip_prefix(':') {
            Some(pseudo) => format!("dapr-{pseudo}"),
            None if key.starts_with("grpc-") => format!("dapr-{key}"),
            None => key,
        };
        let replaces = key == "traceparent" || key == "tracestate";
        if replaces || !metadata.contains_key(&key) {
            metadata.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calls_metadata_joins_the_bindings_as_daprd_copies_it() {
        let mut metadata = BTreeMap::from([
            ("path".to_string(), "/x".to_string()),
            ("traceparent".to_string(), "old".to_string()),
        ]);
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", "new".parse().unwrap());
        headers.insert("path", "from-header".parse().unwrap());
        headers.insert("grpc-timeout", "5S".parse().unwrap());
        headers.insert("user-agent", "grpc-python".parse().unwrap());
        copy_call_metadata(&mut metadata, &headers, Some("127.0.0.1:50001".into()));
        assert_eq!(metadata["traceparent"], "new");
        assert_eq!(metadata["path"], "/x", "the request's own keys are kept");
        assert_eq!(metadata["dapr-grpc-timeout"], "5S");
        assert_eq!(metadata["dapr-authority"], "127.0.0.1:50001");
        assert_eq!(metadata["user-agent"], "grpc-python");
    }
}
