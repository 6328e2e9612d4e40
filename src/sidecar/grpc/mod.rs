//! Dapr's gRPC API (`dapr.proto.runtime.v1.Dapr`) on each app's `DAPR_GRPC_PORT`, sharing the
//! components of the HTTP API, so the official SDKs (whose default transport is gRPC) work.
//!
//! The message types come from the Dapr Rust SDK (`dapr` crate). Rather than implementing its
//! generated 88-method server trait, daca routes by method path itself: the methods below are
//! served, and every other one answers `Unimplemented`, as Dapr does for APIs it lacks (the
//! Python SDK relies on that for its fall-backs).

mod api;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Code, Status};

use super::SidecarState;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The Dapr gRPC service of one app's sidecar.
#[derive(Clone)]
pub struct DaprGrpc {
    sidecar: Arc<SidecarState>,
}

impl NamedService for DaprGrpc {
    const NAME: &'static str = "dapr.proto.runtime.v1.Dapr";
}

/// Serves one unary method with `handler`. The gRPC framing is done here (a 5-byte prefix,
/// then the prost message; the answer is one data frame and the `grpc-status` trailer): every
/// Dapr call is unary and uncompressed, and tonic's streaming machinery cost ~3 µs more of
/// daca's CPU per request (a GetState: 38.4 µs with it, 35.0 µs without).
async fn unary<Req, Resp, F, Fut>(
    request: axum::http::Request<Body>,
    limit: usize,
    handler: F,
) -> axum::http::Response<Body>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: FnOnce(Req) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
{
    let message = match read_message::<Req>(request, limit).await {
        Ok(message) => message,
        Err(status) => return status.into_http(),
    };
    match handler(message).await {
        Ok(answer) => answer_response(&answer),
        Err(status) => status.into_http(),
    }
}

/// The request's one message, within `limit` bytes.
async fn read_message<Req: prost::Message + Default>(
    request: axum::http::Request<Body>,
    limit: usize,
) -> Result<Req, Status> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(request.into_body(), limit.saturating_add(5));
    let bytes = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Err(Status::out_of_range(format!(
                "the message is larger than the limit of {limit} bytes"
            )));
        }
    };
    let Some((&[compressed, a, b, c, d], rest)) = bytes.split_first_chunk::<5>() else {
        return Err(Status::internal("a gRPC message needs its 5-byte prefix"));
    };
    if compressed != 0 {
        return Err(Status::unimplemented(
            "compressed messages are not supported",
        ));
    }
    let length = u32::from_be_bytes([a, b, c, d]) as usize;
    if length > limit {
        return Err(Status::out_of_range(format!(
            "the message is larger than the limit of {limit} bytes"
        )));
    }
    let body = rest
        .get(..length)
        .ok_or_else(|| Status::internal("the gRPC message is shorter than its prefix says"))?;
    Req::decode(body).map_err(|err| Status::internal(format!("cannot decode the message: {err}")))
}

/// A successful answer: one data frame, then `grpc-status: 0`.
fn answer_response<Resp: prost::Message>(answer: &Resp) -> axum::http::Response<Body> {
    let length = answer.encoded_len();
    let mut frame = Vec::with_capacity(5 + length);
    frame.push(0);
    frame.extend_from_slice(&(length as u32).to_be_bytes());
    // Encoding into a Vec cannot run out of space.
    let _ = answer.encode(&mut frame);
    let mut trailers = axum::http::HeaderMap::new();
    trailers.insert("grpc-status", axum::http::HeaderValue::from_static("0"));
    let frames = futures_util::stream::iter([
        Ok::<_, Status>(hyper::body::Frame::data(bytes::Bytes::from(frame))),
        Ok(hyper::body::Frame::trailers(trailers)),
    ]);
    let mut response =
        axum::http::Response::new(Body::new(http_body_util::StreamBody::new(frames)));
    response.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("application/grpc"),
    );
    response
}

/// A response that is only a status (unknown method, bad token).
fn status_response(status: Status) -> axum::http::Response<Body> {
    status.into_http()
}

impl DaprGrpc {
    pub fn new(sidecar: Arc<SidecarState>) -> DaprGrpc {
        DaprGrpc { sidecar }
    }

    async fn dispatch(self, request: axum::http::Request<Body>) -> axum::http::Response<Body> {
        if let Some(token) = &self.sidecar.shared.api_token {
            let given = request
                .headers()
                .get("dapr-api-token")
                .and_then(|v| v.to_str().ok());
            if given != Some(token.as_str()) {
                let message = match given {
                    None => "missing api token in request metadata",
                    Some(_) => "authentication error: api token mismatch",
                };
                return status_response(Status::new(Code::Unauthenticated, message));
            }
        }
        let limit = self.sidecar.max_body_size;
        let s = self.sidecar.clone();
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        macro_rules! serve {
            ($($name:literal => $handler:path),* $(,)?) => {
                match method.as_str() {
                    $($name => unary(request, limit, move |r| $handler(s, r)).await,)*
                    other => status_response(Status::unimplemented(format!(
                        "method {other} is not implemented by daca"
                    ))),
                }
            };
        }
        serve! {
            "GetState" => api::get_state,
            "GetBulkState" => api::get_bulk_state,
            "SaveState" => api::save_state,
            "DeleteState" => api::delete_state,
            "DeleteBulkState" => api::delete_bulk_state,
            "ExecuteStateTransaction" => api::execute_state_transaction,
            "PublishEvent" => api::publish_event,
            "BulkPublishEvent" => api::bulk_publish_event,
            "BulkPublishEventAlpha1" => api::bulk_publish_event,
            "InvokeService" => api::invoke_service,
            "GetSecret" => api::get_secret,
            "GetBulkSecret" => api::get_bulk_secret,
            "GetMetadata" => api::get_metadata,
            "SetMetadata" => api::set_metadata,
            "Shutdown" => api::shutdown,
        }
    }
}

impl tower::Service<axum::http::Request<Body>> for DaprGrpc {
    type Response = axum::http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.dispatch(request).await) })
    }
}

/// Serves the gRPC API on `listener` until the task is aborted: HTTP/2 connections served by
/// hyper straight into [`DaprGrpc`] (tonic's router and default layers cost per request and add
/// nothing here: one service, no timeouts).
pub async fn serve(listener: tokio::net::TcpListener, sidecar: Arc<SidecarState>) {
    let service = DaprGrpc::new(sidecar);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::debug!("gRPC accept: {err}");
                continue;
            }
        };
        // Without TCP_NODELAY a 1 KiB answer waits for the client's delayed ACK (~40 ms).
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        tokio::spawn(async move {
            let hyper_service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let mut service = service.clone();
                    let request = request.map(Body::new);
                    async move { tower::Service::call(&mut service, request).await }
                },
            );
            let builder =
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
            let _ = builder
                .serve_connection(hyper_util::rt::TokioIo::new(stream), hyper_service)
                .await;
        });
    }
}
