//! Dapr's Jobs API on daca's durable scheduler (the one reminders use): a job is scheduled by
//! its app's sidecar under `app||<namespace>||<app-id>||<name>`, fires on its `schedule`
//! (6-field cron, descriptors, `@every`) and/or at its `dueTime`, `repeats` times at most and
//! not after its `ttl`, and is delivered to the app as `POST /job/<name>` (gRPC `OnJobEvent`,
//! `deliver.rs`). A failed delivery follows the job's `failurePolicy` (default: again after
//! 1 s, three times); a 404 counts as delivered, as under Dapr.

mod deliver;
mod wire;

use std::collections::BTreeMap;
use std::time::SystemTime;

pub use deliver::Deliver;
pub use wire::{JobSpec, VALUE_TYPE, from_http, from_proto_value, http_view};

use crate::scheduler::{Job, ScheduleError, Scheduler};

/// Where the app's jobs are in the scheduler.
pub const PREFIX: &str = "app||";

/// Why a job call failed, as the Jobs API reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Malformed(String),
    #[error("Schedule is empty")]
    Empty,
    #[error("Set the job name in the url only")]
    NameInBody,
    /// Refused by the scheduler (`failed to schedule job due to: …`).
    #[error("{0}")]
    Invalid(String),
    #[error("job already exists")]
    Exists,
    #[error("{0}")]
    Store(String),
}

/// The job's scheduler key.
pub fn key(app_id: &str, name: &str) -> String {
    format!("{PREFIX}{}||{app_id}||{name}", crate::env::namespace())
}

/// The prefix of every job of `app_id`.
fn app_prefix(app_id: &str) -> String {
    key(app_id, "")
}

/// Schedules job `name` of `app_id`.
pub fn schedule(
    scheduler: &Scheduler,
    app_id: &str,
    name: &str,
    spec: JobSpec,
    overwrite: bool,
) -> Result<(), JobError> {
    let key = key(app_id, name);
    crate::scheduler::check_job_name(&key).map_err(JobError::Invalid)?;
    let job = to_job(key, spec, SystemTime::now())?;
    match scheduler.put(job, overwrite) {
        Ok(()) => Ok(()),
        Err(ScheduleError::Exists(_)) => Err(JobError::Exists),
        Err(ScheduleError::Store(err)) => Err(JobError::Store(err)),
    }
}

/// Job `name` of `app_id`, as it was asked for.
pub fn get(scheduler: &Scheduler, app_id: &str, name: &str) -> Option<JobSpec> {
    scheduler
        .get(&key(app_id, name))
        .map(|job| JobSpec::of(&job))
}

/// Deletes job `name` of `app_id`; a job that is not there is no error, as under Dapr.
pub fn delete(scheduler: &Scheduler, app_id: &str, name: &str) -> Result<(), JobError> {
    scheduler
        .delete(&key(app_id, name))
        .map(|_| ())
        .map_err(|err| JobError::Store(err.to_string()))
}

/// Every job of `app_id`, with its name and next fire (nanoseconds since the epoch).
pub fn list(scheduler: &Scheduler, app_id: &str) -> Vec<(String, JobSpec, u64)> {
    let prefix = app_prefix(app_id);
    scheduler
        .list(&prefix)
        .into_iter()
        .map(|(job, next)| {
            let name = job.key[prefix.len()..].to_string();
            (name, JobSpec::of(&job), next)
        })
        .collect()
}

/// Every app's jobs, as `daca jobs` and the dashboard list them: app, name, the job as asked
/// for, its next fire (ms since the epoch).
pub fn overview(scheduler: &Scheduler) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = scheduler
        .list(PREFIX)
        .into_iter()
        .filter_map(|(job, next_ns)| {
            // app||<namespace>||<app-id>||<name>
            let mut parts = job.key.splitn(4, "||").skip(2);
            let (app, name) = (parts.next()?, parts.next()?);
            let mut row = http_view(name, &JobSpec::of(&job));
            row["app"] = app.into();
            row["next_ms"] = (next_ns / 1_000_000).into();
            Some(row)
        })
        .collect();
    serde_json::json!({ "jobs": rows })
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The scheduler's job for `spec`, checked as Dapr's Scheduler checks it.
fn to_job(key: String, spec: JobSpec, now: SystemTime) -> Result<Job, JobError> {
    let invalid = JobError::Invalid;
    if spec.schedule.is_none() && spec.due_time.is_none() {
        return Err(JobError::Empty);
    }
    if spec.schedule.is_none() && spec.repeats.is_some_and(|n| n > 1) {
        return Err(invalid("job must have a schedule to repeat".into()));
    }
    if spec.repeats == Some(0) {
        return Err(invalid("repeats must be greater than 0".into()));
    }
    if spec.schedule.is_none() && spec.ttl.is_some() {
        return Err(invalid("job must have a schedule to have a ttl".into()));
    }
    let due = match &spec.due_time {
        Some(raw) => Some(crate::scheduler::point_in_time(raw, now).map_err(invalid)?),
        None => None,
    };
    let (mut every_ns, mut cron, mut first) = (None, None, due);
    if let Some(text) = &spec.schedule {
        let schedule = crate::cron::Schedule::parse(text, crate::cron::Fields::Six)
            .map_err(|e| invalid(format!("invalid schedule: {e}")))?;
        match text.trim().strip_prefix("@every") {
            // `@every d`: d after now (or after dueTime), then every d, not on whole seconds.
            Some(every) => {
                let every = crate::timespec::go_duration(every.trim())
                    .ok()
                    .and_then(|d| d.to_std())
                    .ok_or_else(|| invalid(format!("invalid schedule: {text}")))?;
                every_ns = Some(every.as_nanos() as u64);
                first = first.or_else(|| now.checked_add(every));
            }
            None => {
                cron = Some(text.clone());
                first = first.or_else(|| schedule.next_after(now));
            }
        }
    }
    let first = first.ok_or_else(|| invalid("the schedule never fires".into()))?;
    let expires = match &spec.ttl {
        Some(raw) => {
            let at = crate::scheduler::point_in_time(raw, due.unwrap_or(now)).map_err(invalid)?;
            if due.is_some_and(|due| at < due) {
                return Err(invalid("ttl must be after the due time".into()));
            }
            Some(nanos(at))
        }
        None => None,
    };
    Ok(Job {
        key,
        due_ns: nanos(first),
        every_ns,
        repeats: spec.repeats.map(u64::from),
        expires_ns: expires,
        data: spec.data_bytes(),
        spec: spec.words(),
        cron,
        failure: spec.failure,
    })
}

/// Nothing else reads it: a BTreeMap keeps the words in a stable order.
type Words = BTreeMap<String, String>;
