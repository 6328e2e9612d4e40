//! Input bindings over the app channel, as daprd calls them: whether the app reads a binding
//! (HTTP `OPTIONS /<route>`, gRPC `ListInputBindings`), and one event (HTTP `POST /<route>`,
//! gRPC `OnBindingEvent`).

use std::time::Duration;

use dapr::dapr::proto::runtime::v1 as rt;

use super::{AppChannel, BindingEvent, Transport, Unreachable};

/// daprd's wait for the `OPTIONS` probe.
const PROBE: Duration = Duration::from_secs(3);

impl AppChannel {
    /// Whether the app reads input binding `name`: its `OPTIONS /<route>` answered 2xx or
    /// 405 (FastAPI answers 405 for a POST-only route); a gRPC app lists it.
    pub async fn reads_binding(&self, name: &str, route: &str) -> Result<bool, Unreachable> {
        let port = self.port.ok_or(Unreachable)?;
        match &self.transport {
            Transport::Http(http) => {
                let mut request = http
                    .client()
                    .request(
                        reqwest::Method::OPTIONS,
                        format!("http://127.0.0.1:{port}/{route}"),
                    )
                    .timeout(PROBE);
                if let Some(token) = &self.app_token {
                    request = request.header("dapr-api-token", token);
                }
                let status = request.send().await.map_err(|_| Unreachable)?.status();
                Ok(status.is_success() || status.as_u16() == 405)
            }
            Transport::Grpc(grpc) => {
                let mut client = grpc.client(port).await.map_err(|_| Unreachable)?;
                let listed = client
                    .list_input_bindings(())
                    .await
                    .map_err(|_| Unreachable)?;
                Ok(listed.into_inner().bindings.iter().any(|b| b == name))
            }
        }
    }

    /// Hands the app one event: `Ok(Err(..))` when it answered with a failure.
    pub async fn binding_event(
        &self,
        event: &BindingEvent<'_>,
    ) -> Result<Result<(), String>, Unreachable> {
        let port = self.port.ok_or(Unreachable)?;
        match &self.transport {
            Transport::Http(http) => {
                let mut request = http
                    .client()
                    .post(format!("http://127.0.0.1:{port}/{}", event.route))
                    .header("content-type", "application/json")
                    .body(event.data.to_vec());
                for (name, value) in event.metadata {
                    request = request.header(name.as_str(), value.as_str());
                }
                if let Some(token) = &self.app_token {
                    request = request.header("dapr-api-token", token);
                }
                let answer = request.send().await.map_err(|_| Unreachable)?;
                let status = answer.status();
                let body = answer.bytes().await.unwrap_or_default();
                Ok(match status.is_success() {
                    true => Ok(()),
                    false => Err(format!(
                        "fails to send binding event to http app channel, status code: {} body: {}",
                        status.as_u16(),
                        String::from_utf8_lossy(&body)
                    )),
                })
            }
            Transport::Grpc(grpc) => {
                let mut client = grpc.client(port).await.map_err(|_| Unreachable)?;
                let request = rt::BindingEventRequest {
                    name: event.name.to_string(),
                    data: event.data.to_vec(),
                    metadata: event.metadata.clone().into_iter().collect(),
                };
                Ok(match client.on_binding_event(request).await {
                    Ok(_) => Ok(()),
                    Err(status) if status.code() == tonic::Code::Unavailable => {
                        return Err(Unreachable);
                    }
                    Err(status) => Err(format!("OnBindingEvent: {}", status.message())),
                })
            }
        }
    }
}
