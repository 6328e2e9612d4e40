//! Dapr's gRPC API (`dapr.proto.runtime.v1.Dapr`) on each app's `DAPR_GRPC_PORT`, sharing the
//! components of the HTTP API, so the official SDKs (whose default transport is gRPC) work.
//!
//! The message types come from the Dapr Rust SDK (`dapr` crate). Rather than implementing its
//! generated 88-method server trait, daca routes by method path itself: the methods below are
//! served, and every other one answers `Unimplemented`, as Dapr does for APIs it lacks (the
//! Python SDK relies on that for its fall-backs).

mod actors;
mod api;
mod bindings;
mod conn;
mod jobs;
mod workflow;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{HeaderMap, HeaderValue, Response};
use bytes::Bytes;
use hyper::body::Frame;
use tonic::{Code, Status};

use super::SidecarState;

/// A unary answer's body: its one data frame, then the trailers. Served as is rather than
/// boxed into a stream of frames (tonic's `Body` over a `StreamBody`): a GetState's body is
/// polled twice and never waits. Empty (`Default`) for a status-only answer, whose status is in
/// the headers.
///
/// A server stream (a workflow worker's `GetWorkItems`) has its messages first, framed, for
/// as long as their source has more, then the trailers.
#[derive(Default)]
pub struct Answer {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
    stream: Option<Box<dyn Frames>>,
}

/// The messages of a server stream, each already framed.
pub trait Frames: Send {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>>;
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(stream) = &mut this.stream {
            match stream.poll_frame(cx) {
                Poll::Ready(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Poll::Ready(None) => this.stream = None,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(match this.data.take() {
            Some(data) => Some(Ok(Frame::data(data))),
            None => this.trailers.take().map(|t| Ok(Frame::trailers(t))),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.stream.is_none() && self.data.is_none() && self.trailers.is_none()
    }
}

/// Serves one unary method with `handler`. The gRPC framing is done here (a 5-byte prefix,
/// then the prost message; the answer is one data frame and the `grpc-status` trailer): every
/// Dapr call is unary and uncompressed, and tonic's streaming machinery cost ~3 µs more of
/// daca's CPU per request (a GetState: 38.4 µs with it, 35.0 µs without).
///
/// Boxed: a future of the method's own size, where a future of [`dispatch`]'s match would be
/// as large as the largest method's and be copied so each time hyper moves a stream.
fn unary<B: CallBody, Req, Resp, F, Fut>(body: B, limit: usize, handler: F) -> Answering
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: FnOnce(Req) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
{
    Box::pin(async move {
        let message = match read_message::<Req>(body, limit).await {
            Ok(message) => message,
            Err(status) => return Ok(status.into_http()),
        };
        let what = || format!("gRPC API: {}", std::any::type_name::<Req>());
        Ok(match crate::panics::catch(what, handler(message)).await {
            Ok(Ok(answer)) => answer_response(&answer),
            Ok(Err(status)) => status.into_http(),
            Err(caught) => {
                let message = format!("daca failed serving this call: {}", caught.message);
                Status::internal(message).into_http()
            }
        })
    })
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A call's request body: hyper's, or (fuzzing, [`call`]) one made in memory.
pub trait CallBody:
    hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + 'static
{
}

impl<B> CallBody for B where
    B: hyper::body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static
{
}

/// One call as the server makes it, for the fuzz target of the gRPC API: the answer's head
/// once the method has answered (its body, for a server stream, may never end).
#[doc(hidden)]
pub async fn call<B: CallBody>(
    sidecar: &Arc<SidecarState>,
    request: hyper::Request<B>,
) -> Response<Answer> {
    match dispatch(sidecar, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// An answer to come.
type Answering = BoxFuture<Result<Response<Answer>, Infallible>>;

/// A status-only answer (unknown method, bad token).
fn status_answer(status: Status) -> Answering {
    Box::pin(std::future::ready(Ok(status.into_http())))
}

/// The request's one message, within `limit` bytes.
async fn read_message<Req: prost::Message + Default>(
    body: impl CallBody,
    limit: usize,
) -> Result<Req, Status> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, limit.saturating_add(5));
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

/// A message with its 5-byte gRPC prefix.
fn frame<M: prost::Message>(message: &M) -> Bytes {
    let length = message.encoded_len();
    let mut frame = Vec::with_capacity(5 + length);
    frame.push(0);
    frame.extend_from_slice(&(length as u32).to_be_bytes());
    // Encoding into a Vec cannot run out of space.
    let _ = message.encode(&mut frame);
    Bytes::from(frame)
}

fn ok_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    trailers
}

/// A successful answer: one data frame, then `grpc-status: 0`.
fn answer_response<Resp: prost::Message>(answer: &Resp) -> Response<Answer> {
    grpc_response(Answer {
        data: Some(frame(answer)),
        trailers: Some(ok_trailers()),
        stream: None,
    })
}

/// A server stream's answer: its messages as `frames` has them, then `grpc-status: 0`.
fn stream_response(frames: Box<dyn Frames>) -> Response<Answer> {
    grpc_response(Answer {
        data: None,
        trailers: Some(ok_trailers()),
        stream: Some(frames),
    })
}

fn grpc_response(answer: Answer) -> Response<Answer> {
    let mut response = Response::new(answer);
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    response
}

/// Why a call is refused: `DAPR_API_TOKEN` is set and the call does not carry it.
fn refused(sidecar: &SidecarState, headers: &HeaderMap) -> Option<Status> {
    let token = sidecar.shared.api_token.as_ref()?;
    let given = headers.get("dapr-api-token").and_then(|v| v.to_str().ok());
    if given == Some(token.as_str()) {
        return None;
    }
    let message = match given {
        None => "missing api token in request metadata",
        Some(_) => "authentication error: api token mismatch",
    };
    Some(Status::new(Code::Unauthenticated, message))
}

/// The methods that need more than their message (the call's headers, or a stream); the body
/// comes back for any other.
fn special<B: CallBody>(
    method: &str,
    s: &Arc<SidecarState>,
    parts: &hyper::http::request::Parts,
    body: B,
    limit: usize,
) -> Result<Answering, B> {
    let s = s.clone();
    match method {
        "InvokeBinding" => {
            // daprd passes the call's gRPC metadata on to the binding (tracing headers above all).
            let headers = parts.headers.clone();
            let authority = parts.uri.authority().map(ToString::to_string);
            Ok(unary(body, limit, move |r| {
                bindings::invoke_binding(s, r, headers, authority)
            }))
        }
        "GetWorkItems" => Ok(Box::pin(async move {
            let items = workflow::WorkItems::open(s).await;
            Ok(stream_response(Box::new(items)))
        })),
        _ => Err(body),
    }
}

/// The Dapr gRPC service of one app's sidecar: routes by the method's name.
fn dispatch<B: CallBody>(sidecar: &Arc<SidecarState>, request: hyper::Request<B>) -> Answering {
    let (parts, body) = request.into_parts();
    if let Some(refused) = refused(sidecar, &parts.headers) {
        return status_answer(refused);
    }
    let limit = sidecar.max_body_size();
    let s = sidecar.clone();
    let method = parts.uri.path().rsplit('/').next().unwrap_or_default();
    let body = match special(method, &s, &parts, body, limit) {
        Ok(answering) => return answering,
        Err(body) => body,
    };
    macro_rules! serve {
        ($($($name:literal)|+ => $handler:path),* $(,)?) => {
            match method {
                $($($name)|+ => unary(body, limit, move |r| $handler(s, r)),)*
                other => status_answer(Status::unimplemented(format!(
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
        "ScheduleJob" | "ScheduleJobAlpha1" => jobs::schedule_job,
        "GetJob" | "GetJobAlpha1" => jobs::get_job,
        "DeleteJob" | "DeleteJobAlpha1" => jobs::delete_job,
        "ListJobs" => jobs::list_jobs,
        "ListJobsAlpha1" => jobs::list_jobs_alpha1,
        "DeleteJobsByPrefix" => jobs::delete_jobs_by_prefix,
        "DeleteJobsByPrefixAlpha1" => jobs::delete_jobs_by_prefix_alpha1,
        "GetSecret" => api::get_secret,
        "GetBulkSecret" => api::get_bulk_secret,
        "GetMetadata" => api::get_metadata,
        "SetMetadata" => api::set_metadata,
        "Shutdown" => api::shutdown,
        "InvokeActor" => actors::invoke_actor,
        "GetActorState" => actors::get_actor_state,
        "ExecuteActorStateTransaction" => actors::execute_actor_state_transaction,
        "RegisterActorTimer" => actors::register_actor_timer,
        "UnregisterActorTimer" => actors::unregister_actor_timer,
        "RegisterActorReminder" => actors::register_actor_reminder,
        "UnregisterActorReminder" => actors::unregister_actor_reminder,
        "GetActorReminder" => actors::get_actor_reminder,
        "ListActorReminders" => actors::list_actor_reminders,
        "UnregisterActorRemindersByType" => actors::unregister_actor_reminders_by_type,
        "StartWorkflowBeta1" | "StartWorkflowAlpha1" => workflow::start_workflow,
        "GetWorkflowBeta1" | "GetWorkflowAlpha1" => workflow::get_workflow,
        "TerminateWorkflowBeta1" | "TerminateWorkflowAlpha1" => workflow::terminate_workflow,
        "RaiseEventWorkflowBeta1" | "RaiseEventWorkflowAlpha1" => workflow::raise_event_workflow,
        "PauseWorkflowBeta1" | "PauseWorkflowAlpha1" => workflow::pause_workflow,
        "ResumeWorkflowBeta1" | "ResumeWorkflowAlpha1" => workflow::resume_workflow,
        "PurgeWorkflowBeta1" | "PurgeWorkflowAlpha1" => workflow::purge_workflow,
        // The durabletask service (`/TaskHubSidecarService/…`): the workflow SDKs.
        "Hello" => workflow::hello,
        "StartInstance" => workflow::start_instance,
        "GetInstance" => workflow::get_instance,
        "WaitForInstanceStart" => workflow::wait_for_instance_start,
        "WaitForInstanceCompletion" => workflow::wait_for_instance_completion,
        "RaiseEvent" => workflow::raise_event,
        "TerminateInstance" => workflow::terminate_instance,
        "SuspendInstance" => workflow::suspend_instance,
        "ResumeInstance" => workflow::resume_instance,
        "PurgeInstances" => workflow::purge_instances,
        "CompleteOrchestratorTask" | "CompleteWorkflowTask" => workflow::complete_orchestrator_task,
        "CompleteActivityTask" => workflow::complete_activity_task,
        "ListInstanceIDs" => workflow::list_instance_ids,
        "GetInstanceHistory" => workflow::get_instance_history,
    }
}

/// Serves the gRPC API on `listener` until `shutdown` is cancelled: HTTP/2 connections served
/// by hyper straight into [`dispatch`] (tonic's router and default layers cost per request and
/// add nothing here: one service, no timeouts), at most [`crate::listen::MAX_CONNECTIONS`] at once. Then the listener closes, each connection
/// finishes its calls under way, and what has not after [`super::DRAIN`] is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sidecar: Arc<SidecarState>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let gate = crate::listen::Gate::new(
        format!("gRPC API of {}", sidecar.app_id),
        crate::listen::MAX_CONNECTIONS,
    );
    crate::listen::widen_backlog(&listener);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            (stream, permit) = gate.accept(&listener) => {
                // Without TCP_NODELAY a 1 KiB answer waits for the client's delayed ACK (~40 ms).
                let _ = stream.set_nodelay(true);
                let served = conn::serve_connection(stream, sidecar.clone(), shutdown.clone());
                connections.spawn(async move {
                    served.await;
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(super::DRAIN, drained).await;
    connections.shutdown().await;
}
