//! `InvokeBinding`: an output binding over gRPC; its data passes as it is.

use std::sync::Arc;

use dapr::dapr::proto::runtime::v1 as rt;
use tonic::Status;

use crate::bindings::OutputRequest;
use crate::sidecar::{SidecarState, bindings_api};

pub async fn invoke_binding(
    s: Arc<SidecarState>,
    r: rt::InvokeBindingRequest,
) -> Result<rt::InvokeBindingResponse, Status> {
    let request = OutputRequest {
        operation: r.operation,
        data: r.data.into(),
        metadata: r.metadata.into_iter().collect(),
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
