//! A due job handed to the app, as daprd's channel sends it: HTTP `POST /job/<name>` with the
//! data as JSON (a `google.protobuf.Value` re-encoded, any other `Any` as its raw bytes), or
//! gRPC `OnJobEvent`, falling back to `OnJobEventAlpha1` for an app that lacks it.

use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::app_callback_alpha_client::AppCallbackAlphaClient;
use prost::Message;

use super::{AppChannel, Transport, Unreachable};

/// One fire of a job.
pub struct JobEvent<'a> {
    pub name: &'a str,
    pub data: Option<&'a prost_types::Any>,
}

/// The HTTP body of a job's data.
fn body(data: Option<&prost_types::Any>) -> Vec<u8> {
    let Some(data) = data else { return Vec::new() };
    if data.type_url == crate::jobs::VALUE_TYPE {
        let value = prost_types::Value::decode(data.value.as_slice()).unwrap_or_default();
        return serde_json::to_vec(&crate::jobs::from_proto_value(&value)).unwrap_or_default();
    }
    String::from_utf8_lossy(&data.value)
        .trim()
        .as_bytes()
        .to_vec()
}

impl AppChannel {
    /// Hands the app one fire of a job; its answer's status (gRPC: 200, or 500 for an error).
    pub async fn job_event(&self, event: &JobEvent<'_>) -> Result<u16, Unreachable> {
        let port = self.port.ok_or(Unreachable)?;
        match &self.transport {
            Transport::Http(http) => {
                let mut request = http
                    .client()
                    .post(format!("http://127.0.0.1:{port}/job/{}", event.name))
                    .header("content-type", "application/json")
                    .header("traceparent", crate::sidecar::new_traceparent())
                    .body(body(event.data));
                if let Some(token) = &self.app_token {
                    request = request.header("dapr-api-token", token);
                }
                let answer = request.send().await.map_err(|_| Unreachable)?;
                Ok(answer.status().as_u16())
            }
            Transport::Grpc(grpc) => {
                let request = rt::JobEventRequest {
                    name: event.name.to_string(),
                    data: event.data.cloned(),
                    method: format!("job/{}", event.name),
                    content_type: event.data.map(|d| d.type_url.clone()).unwrap_or_default(),
                    http_extension: Some(common::HttpExtension {
                        verb: common::http_extension::Verb::Post as i32,
                        querystring: String::new(),
                    }),
                };
                let mut client = grpc.client(port).await.map_err(|_| Unreachable)?;
                let answered = match client.on_job_event(request.clone()).await {
                    Err(status) if status.code() == tonic::Code::Unimplemented => {
                        let channel = grpc.channel(port).await.map_err(|_| Unreachable)?;
                        #[allow(deprecated)] // what SDKs before OnJobEvent serve
                        AppCallbackAlphaClient::new(channel)
                            .on_job_event_alpha1(request)
                            .await
                            .map(|_| ())
                    }
                    other => other.map(|_| ()),
                };
                match answered {
                    Ok(()) => Ok(200),
                    Err(status) if status.code() == tonic::Code::Unavailable => Err(Unreachable),
                    Err(_) => Ok(500),
                }
            }
        }
    }
}
