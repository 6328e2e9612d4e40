//! The Jobs API over gRPC: `ScheduleJob`, `GetJob`, `DeleteJob`, `ListJobs`,
//! `DeleteJobsByPrefix`, and their `Alpha1` forms (the Python SDK falls back to those).

use std::sync::Arc;

use dapr::dapr::proto::runtime::v1 as rt;
use tonic::Status;

use crate::jobs::{self, JobError, JobSpec};
use crate::sidecar::{SidecarState, jobs_api};

type Result<T> = std::result::Result<T, Status>;

fn failed(s: &SidecarState, err: JobError) -> Status {
    jobs_api::error(s, err).to_status()
}

pub async fn schedule_job(
    s: Arc<SidecarState>,
    r: rt::ScheduleJobRequest,
) -> Result<rt::ScheduleJobResponse> {
    let job = r.job.ok_or_else(|| failed(&s, JobError::Empty))?;
    let name = job.name.clone();
    let spec = JobSpec::from_grpc(job).map_err(|e| failed(&s, e))?;
    jobs::schedule(&s.shared.scheduler, &s.app_id, &name, spec, r.overwrite)
        .map_err(|e| failed(&s, e))?;
    Ok(rt::ScheduleJobResponse {})
}

pub async fn get_job(s: Arc<SidecarState>, r: rt::GetJobRequest) -> Result<rt::GetJobResponse> {
    match jobs::get(&s.shared.scheduler, &s.app_id, &r.name) {
        Some(spec) => Ok(rt::GetJobResponse {
            job: Some(spec.to_grpc(&r.name)),
        }),
        None => Err(jobs_api::not_found(&s, &r.name).to_status()),
    }
}

pub async fn delete_job(
    s: Arc<SidecarState>,
    r: rt::DeleteJobRequest,
) -> Result<rt::DeleteJobResponse> {
    jobs::delete(&s.shared.scheduler, &s.app_id, &r.name).map_err(|e| failed(&s, e))?;
    Ok(rt::DeleteJobResponse {})
}

fn all(s: &SidecarState) -> Vec<rt::Job> {
    jobs::list(&s.shared.scheduler, &s.app_id)
        .into_iter()
        .map(|(name, spec, _)| spec.to_grpc(&name))
        .collect()
}

pub async fn list_jobs(
    s: Arc<SidecarState>,
    _: rt::ListJobsRequest,
) -> Result<rt::ListJobsResponse> {
    Ok(rt::ListJobsResponse { jobs: all(&s) })
}

pub async fn list_jobs_alpha1(
    s: Arc<SidecarState>,
    _: rt::ListJobsRequestAlpha1,
) -> Result<rt::ListJobsResponseAlpha1> {
    Ok(rt::ListJobsResponseAlpha1 { jobs: all(&s) })
}

fn delete_prefix(s: &SidecarState, prefix: &str) -> Result<()> {
    for (name, _, _) in jobs::list(&s.shared.scheduler, &s.app_id) {
        if name.starts_with(prefix) {
            jobs::delete(&s.shared.scheduler, &s.app_id, &name).map_err(|e| failed(s, e))?;
        }
    }
    Ok(())
}

pub async fn delete_jobs_by_prefix(
    s: Arc<SidecarState>,
    r: rt::DeleteJobsByPrefixRequest,
) -> Result<rt::DeleteJobsByPrefixResponse> {
    delete_prefix(&s, r.name_prefix.as_deref().unwrap_or_default())?;
    Ok(rt::DeleteJobsByPrefixResponse {})
}

pub async fn delete_jobs_by_prefix_alpha1(
    s: Arc<SidecarState>,
    r: rt::DeleteJobsByPrefixRequestAlpha1,
) -> Result<rt::DeleteJobsByPrefixResponseAlpha1> {
    delete_prefix(&s, r.name_prefix.as_deref().unwrap_or_default())?;
    Ok(rt::DeleteJobsByPrefixResponseAlpha1 {})
}
