//! The durabletask service (`TaskHubSidecarService`, no proto package) that the workflow SDKs'
//! worker and client speak, beside the Dapr API on the same port as daprd serves it; and the
//! Dapr API's own `*WorkflowBeta1`/`Alpha1` methods.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use dapr::dapr::proto::runtime::v1 as rt;
use tonic::{Code, Status};

use super::SidecarState;
use crate::sidecar::workflow_api;
use crate::workflow::pb;
use crate::workflow::{Snapshot, Start, Until, WorkflowError, Workflows};

type Result<T> = std::result::Result<T, Status>;

/// Errors as daprd sends them: its own statuses where it has one, else `UNKNOWN` with the
/// error's text (which the SDKs match on: `no such instance exists`).
fn status(err: WorkflowError) -> Status {
    let code = match &err {
        WorkflowError::AlreadyExists(_) => Code::AlreadyExists,
        WorkflowError::Invalid(_) => Code::InvalidArgument,
        _ => Code::Unknown,
    };
    Status::new(code, err.to_string())
}

fn api_status(err: crate::sidecar::error::ApiError) -> Status {
    err.to_status()
}

fn engine(s: &SidecarState) -> &Workflows {
    &s.shared.workflows
}

pub async fn hello(_: Arc<SidecarState>, _: ()) -> Result<()> {
    Ok(())
}

pub async fn start_instance(
    s: Arc<SidecarState>,
    r: pb::CreateInstanceRequest,
) -> Result<pb::CreateInstanceResponse> {
    let instance = match r.instance_id.is_empty() {
        true => crate::pubsub::envelope::uuid_v4(),
        false => r.instance_id,
    };
    let start = Start {
        instance,
        name: r.name,
        input: r.input,
        at_ns: r
            .scheduled_start_timestamp
            .as_ref()
            .and_then(crate::workflow::ns_of),
    };
    let instance_id = engine(&s).start(&s.app_id, start).await.map_err(status)?;
    Ok(pb::CreateInstanceResponse { instance_id })
}

/// The durabletask view of an instance (inputs and outputs only when asked for).
fn workflow_state(snapshot: Snapshot, with_io: bool) -> pb::WorkflowState {
    let failure = snapshot.failure.map(|f| pb::TaskFailureDetails {
        error_type: f.error_type,
        error_message: f.message,
        stack_trace: f.stack_trace,
        ..Default::default()
    });
    let io = |value: Option<String>| value.filter(|_| with_io);
    pb::WorkflowState {
        instance_id: snapshot.instance,
        name: snapshot.name,
        workflow_status: snapshot.status as i32,
        created_timestamp: snapshot.created,
        last_updated_timestamp: snapshot.last_updated,
        input: io(snapshot.input),
        output: io(snapshot.output),
        custom_status: io(snapshot.custom_status),
        failure_details: failure.filter(|_| with_io),
        execution_id: snapshot.execution_id,
        parent_instance_id: snapshot.parent_instance,
        parent_app_id: snapshot.parent_app,
        ..Default::default()
    }
}

fn instance_response(found: Option<Snapshot>, with_io: bool) -> pb::GetInstanceResponse {
    pb::GetInstanceResponse {
        exists: found.is_some(),
        workflow_state: found.map(|s| workflow_state(s, with_io)),
    }
}

pub async fn get_instance(
    s: Arc<SidecarState>,
    r: pb::GetInstanceRequest,
) -> Result<pb::GetInstanceResponse> {
    let found = engine(&s)
        .get(&s.app_id, &r.instance_id)
        .await
        .map_err(status)?;
    Ok(instance_response(found, r.get_inputs_and_outputs))
}

async fn wait(
    s: &SidecarState,
    r: pb::GetInstanceRequest,
    until: Until,
) -> Result<pb::GetInstanceResponse> {
    let found = engine(s)
        .wait(&s.app_id, &r.instance_id, until)
        .await
        .map_err(status)?;
    Ok(instance_response(found, r.get_inputs_and_outputs))
}

pub async fn wait_for_instance_start(
    s: Arc<SidecarState>,
    r: pb::GetInstanceRequest,
) -> Result<pb::GetInstanceResponse> {
    wait(&s, r, Until::Started).await
}

pub async fn wait_for_instance_completion(
    s: Arc<SidecarState>,
    r: pb::GetInstanceRequest,
) -> Result<pb::GetInstanceResponse> {
    wait(&s, r, Until::Completed).await
}

pub async fn raise_event(
    s: Arc<SidecarState>,
    r: pb::RaiseEventRequest,
) -> Result<pb::RaiseEventResponse> {
    engine(&s)
        .raise(&s.app_id, &r.instance_id, &r.name, r.input)
        .await
        .map_err(status)?;
    Ok(pb::RaiseEventResponse {})
}

pub async fn terminate_instance(
    s: Arc<SidecarState>,
    r: pb::TerminateRequest,
) -> Result<pb::TerminateResponse> {
    engine(&s)
        .terminate(&s.app_id, &r.instance_id, r.output, r.recursive)
        .await
        .map_err(status)?;
    Ok(pb::TerminateResponse {})
}

pub async fn suspend_instance(
    s: Arc<SidecarState>,
    r: pb::SuspendRequest,
) -> Result<pb::SuspendResponse> {
    engine(&s)
        .suspend(&s.app_id, &r.instance_id, r.reason)
        .await
        .map_err(status)?;
    Ok(pb::SuspendResponse {})
}

pub async fn resume_instance(
    s: Arc<SidecarState>,
    r: pb::ResumeRequest,
) -> Result<pb::ResumeResponse> {
    engine(&s)
        .resume(&s.app_id, &r.instance_id, r.reason)
        .await
        .map_err(status)?;
    Ok(pb::ResumeResponse {})
}

pub async fn purge_instances(
    s: Arc<SidecarState>,
    r: pb::PurgeInstancesRequest,
) -> Result<pb::PurgeInstancesResponse> {
    let instance = match r.request {
        Some(pb::purge_instances_request::Request::InstanceId(id)) => id,
        // daprd's own words (sic).
        _ => return Err(Status::unknown("multi-instance purge is not unimplemented")),
    };
    let force = r.force.unwrap_or(false);
    let count = engine(&s)
        .purge(&s.app_id, &instance, r.recursive, force)
        .await
        .map_err(status)?;
    Ok(pb::PurgeInstancesResponse {
        deleted_instance_count: count,
        is_complete: Some(true),
    })
}

/// The app's instance ids a page at a time (the token is the last id of the page before).
pub async fn list_instance_ids(
    s: Arc<SidecarState>,
    r: pb::ListInstanceIDsRequest,
) -> Result<pb::ListInstanceIDsResponse> {
    let page = r.page_size.map(|n| n as usize).filter(|n| *n > 0);
    let (instance_ids, continuation_token) = engine(&s)
        .instance_ids(&s.app_id, r.continuation_token.as_deref(), page)
        .await
        .map_err(status)?;
    Ok(pb::ListInstanceIDsResponse {
        instance_ids,
        continuation_token,
    })
}

/// An instance's history; an unknown (or purged) one is `NOT_FOUND`, as daprd answers.
pub async fn get_instance_history(
    s: Arc<SidecarState>,
    r: pb::GetInstanceHistoryRequest,
) -> Result<pb::GetInstanceHistoryResponse> {
    match engine(&s).events(&s.app_id, &r.instance_id).await {
        Ok(events) => Ok(pb::GetInstanceHistoryResponse { events }),
        Err(WorkflowError::NotFound) => Err(Status::not_found(WorkflowError::NotFound.to_string())),
        Err(err) => Err(status(err)),
    }
}

pub async fn complete_orchestrator_task(
    s: Arc<SidecarState>,
    r: pb::WorkflowResponse,
) -> Result<pb::CompleteTaskResponse> {
    engine(&s).complete_step(&s.app_id, r);
    Ok(pb::CompleteTaskResponse {})
}

pub async fn complete_activity_task(
    s: Arc<SidecarState>,
    r: pb::ActivityResponse,
) -> Result<pb::CompleteTaskResponse> {
    engine(&s).complete_activity(&s.app_id, r).await;
    Ok(pb::CompleteTaskResponse {})
}

/// A worker's `GetWorkItems` stream: its work items as they come, for as long as it listens.
/// When the worker goes (the body is dropped), what it was given goes to another worker.
pub struct WorkItems {
    app: String,
    stream: u64,
    items: tokio::sync::mpsc::UnboundedReceiver<pb::WorkItem>,
    sidecar: Arc<SidecarState>,
}

impl WorkItems {
    pub async fn open(sidecar: Arc<SidecarState>) -> WorkItems {
        let (stream, items) = sidecar.shared.workflows.connect(&sidecar.app_id).await;
        WorkItems {
            app: sidecar.app_id.clone(),
            stream,
            items,
            sidecar,
        }
    }
}

impl super::Frames for WorkItems {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.items
            .poll_recv(cx)
            .map(|item| item.map(|item| super::frame(&item)))
    }
}

impl Drop for WorkItems {
    fn drop(&mut self) {
        self.sidecar
            .shared
            .workflows
            .disconnect(&self.app, self.stream);
    }
}

// Dapr's own workflow methods (the SDK's `DaprClient.start_workflow` and friends).

pub async fn start_workflow(
    s: Arc<SidecarState>,
    r: rt::StartWorkflowRequest,
) -> Result<rt::StartWorkflowResponse> {
    let at_ns = r
        .options
        .get("dapr.workflow.start_time")
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64);
    let instance_id = workflow_api::start(&s, &r.workflow_name, &r.instance_id, &r.input, at_ns)
        .await
        .map_err(api_status)?;
    Ok(rt::StartWorkflowResponse { instance_id })
}

pub async fn get_workflow(
    s: Arc<SidecarState>,
    r: rt::GetWorkflowRequest,
) -> Result<rt::GetWorkflowResponse> {
    let found = engine(&s)
        .get(&s.app_id, &r.instance_id)
        .await
        .map_err(status)?;
    // An unknown instance is no error here, as in daprd: an answer with no properties.
    let Some(snapshot) = found else {
        return Ok(rt::GetWorkflowResponse {
            instance_id: r.instance_id,
            ..Default::default()
        });
    };
    Ok(rt::GetWorkflowResponse {
        properties: workflow_api::properties(&snapshot),
        runtime_status: workflow_api::runtime_status(&snapshot).to_string(),
        instance_id: snapshot.instance,
        workflow_name: snapshot.name,
        created_at: snapshot.created,
        last_updated_at: snapshot.last_updated,
    })
}

pub async fn terminate_workflow(
    s: Arc<SidecarState>,
    r: rt::TerminateWorkflowRequest,
) -> Result<()> {
    let done = engine(&s)
        .terminate(&s.app_id, &r.instance_id, None, true)
        .await;
    done.map_err(status)
}

pub async fn raise_event_workflow(
    s: Arc<SidecarState>,
    r: rt::RaiseEventWorkflowRequest,
) -> Result<()> {
    let input =
        (!r.event_data.is_empty()).then(|| String::from_utf8_lossy(&r.event_data).into_owned());
    let done = engine(&s)
        .raise(&s.app_id, &r.instance_id, &r.event_name, input)
        .await;
    done.map_err(status)
}

pub async fn pause_workflow(s: Arc<SidecarState>, r: rt::PauseWorkflowRequest) -> Result<()> {
    engine(&s)
        .suspend(&s.app_id, &r.instance_id, None)
        .await
        .map_err(status)
}

pub async fn resume_workflow(s: Arc<SidecarState>, r: rt::ResumeWorkflowRequest) -> Result<()> {
    engine(&s)
        .resume(&s.app_id, &r.instance_id, None)
        .await
        .map_err(status)
}

pub async fn purge_workflow(s: Arc<SidecarState>, r: rt::PurgeWorkflowRequest) -> Result<()> {
    let done = engine(&s)
        .purge(&s.app_id, &r.instance_id, true, false)
        .await;
    done.map(|_| ()).map_err(status)
}
