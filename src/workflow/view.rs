//! What the inspector, the dashboard and the APIs show of an instance: its summary, derived
//! from its history as durabletask-go's runtime state does, and its history as a timeline.

use std::time::{Duration, SystemTime};

use prost_types::Timestamp;
use serde::Serialize;

use super::events;
use super::pb::history_event::EventType;
use super::pb::{self, HistoryEvent, OrchestrationStatus};
use super::state::State;

/// A failure as the SDK reported it (the Python traceback in `stack_trace`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failure {
    pub error_type: String,
    pub message: String,
    pub stack_trace: Option<String>,
}

impl Failure {
    fn of(details: &pb::TaskFailureDetails) -> Failure {
        Failure {
            error_type: details.error_type.clone(),
            message: details.error_message.clone(),
            stack_trace: details.stack_trace.clone(),
        }
    }
}

/// An instance's summary.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub app: String,
    pub instance: String,
    pub name: String,
    #[serde(skip)]
    pub status: OrchestrationStatus,
    /// `RUNNING`, `COMPLETED`, …
    #[serde(rename = "status")]
    pub status_name: &'static str,
    #[serde(skip)]
    pub created: Option<Timestamp>,
    #[serde(skip)]
    pub last_updated: Option<Timestamp>,
    #[serde(rename = "createdAt")]
    pub created_text: Option<String>,
    #[serde(rename = "lastUpdatedAt")]
    pub last_updated_text: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub custom_status: Option<String>,
    pub failure: Option<Failure>,
    pub execution_id: Option<String>,
    pub parent_instance: Option<String>,
    pub parent_app: Option<String>,
    pub history_length: usize,
}

pub fn rfc3339(timestamp: &Timestamp) -> String {
    let time = SystemTime::UNIX_EPOCH
        + Duration::new(
            timestamp.seconds.max(0) as u64,
            timestamp.nanos.clamp(0, 999_999_999) as u32,
        );
    humantime::format_rfc3339_nanos(time).to_string()
}

pub fn snapshot(app: &str, instance: &str, state: &State) -> Snapshot {
    let status = state.status();
    let started = events::started(&state.history).or_else(|| events::started(&state.inbox));
    let completed = events::completed(&state.history).map(|(_, c)| c);
    let created = started.and_then(|(e, _)| e.timestamp);
    let last_updated = state.history.last().and_then(|e| e.timestamp).or(created);
    let start = started.map(|(_, s)| s);
    let parent = start.and_then(|s| s.parent_instance.as_ref());
    Snapshot {
        app: app.to_string(),
        instance: instance.to_string(),
        name: start.map(|s| s.name.clone()).unwrap_or_default(),
        status,
        status_name: events::status_name(status),
        created_text: created.as_ref().map(rfc3339),
        last_updated_text: last_updated.as_ref().map(rfc3339),
        created,
        last_updated,
        input: start.and_then(|s| s.input.clone()),
        output: completed.and_then(|c| c.result.clone()),
        custom_status: state.custom_status.clone(),
        failure: completed
            .and_then(|c| c.failure_details.as_ref())
            .map(Failure::of),
        execution_id: start
            .and_then(|s| s.workflow_instance.as_ref())
            .and_then(|w| w.execution_id.clone()),
        parent_instance: parent
            .and_then(|p| p.workflow_instance.as_ref())
            .map(|w| w.instance_id.clone()),
        parent_app: parent.and_then(|p| p.app_id.clone()),
        history_length: state.history.len(),
    }
}

/// One line of an instance's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub id: i32,
    pub at: Option<String>,
    pub kind: &'static str,
    /// The activity, timer, child or event it is about.
    pub name: Option<String>,
    /// The id of the event it answers (`taskScheduledId`, `timerId`).
    pub answers: Option<i32>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub failure: Option<Failure>,
    /// For an answer: how long after the event it answers.
    pub after_ms: Option<f64>,
}

/// The history (then the inbox, not yet seen by the workflow) as a timeline.
pub fn timeline(state: &State) -> Vec<Line> {
    let mut when = std::collections::HashMap::new();
    let all: Vec<&HistoryEvent> = state.history.iter().chain(&state.inbox).collect();
    all.iter()
        .map(|event| {
            let mut line = line(event);
            if event.event_id >= 0 {
                when.insert(event.event_id, event.timestamp);
            }
            if let (Some(answers), Some(at)) = (line.answers, event.timestamp)
                && let Some(Some(asked)) = when.get(&answers)
            {
                line.after_ms = Some(millis_between(asked, &at));
            }
            line
        })
        .collect()
}

fn millis_between(from: &Timestamp, to: &Timestamp) -> f64 {
    let ns = |t: &Timestamp| t.seconds as f64 * 1e9 + t.nanos as f64;
    ((ns(to) - ns(from)) / 1e6 * 1000.0).round() / 1000.0
}

fn line(event: &HistoryEvent) -> Line {
    let mut line = Line {
        id: event.event_id,
        at: event.timestamp.as_ref().map(rfc3339),
        kind: events::kind_name(event),
        name: None,
        answers: None,
        input: None,
        output: None,
        failure: None,
        after_ms: None,
    };
    match &event.event_type {
        Some(EventType::ExecutionStarted(s)) => {
            (line.name, line.input) = (Some(s.name.clone()), s.input.clone());
        }
        Some(EventType::ExecutionCompleted(c)) => {
            line.output = c.result.clone();
            line.failure = c.failure_details.as_ref().map(Failure::of);
        }
        Some(EventType::ExecutionTerminated(t)) => line.input = t.input.clone(),
        Some(EventType::TaskScheduled(t)) => {
            (line.name, line.input) = (Some(t.name.clone()), t.input.clone());
        }
        Some(EventType::TaskCompleted(c)) => {
            (line.answers, line.output) = (Some(c.task_scheduled_id), c.result.clone());
        }
        Some(EventType::TaskFailed(f)) => {
            line.answers = Some(f.task_scheduled_id);
            line.failure = f.failure_details.as_ref().map(Failure::of);
        }
        Some(EventType::ChildWorkflowInstanceCreated(c)) => {
            line.name = Some(format!("{} ({})", c.name, c.instance_id));
            line.input = c.input.clone();
        }
        Some(EventType::ChildWorkflowInstanceCompleted(c)) => {
            (line.answers, line.output) = (Some(c.task_scheduled_id), c.result.clone());
        }
        Some(EventType::ChildWorkflowInstanceFailed(f)) => {
            line.answers = Some(f.task_scheduled_id);
            line.failure = f.failure_details.as_ref().map(Failure::of);
        }
        Some(EventType::TimerCreated(t)) => {
            line.name = t
                .fire_at
                .as_ref()
                .map(|at| format!("fires at {}", rfc3339(at)));
        }
        Some(EventType::TimerFired(f)) => line.answers = Some(f.timer_id),
        Some(EventType::EventSent(e)) => {
            line.name = Some(format!("{} to {}", e.name, e.instance_id));
            line.input = e.input.clone();
        }
        Some(EventType::EventRaised(e)) => {
            (line.name, line.input) = (Some(e.name.clone()), e.input.clone());
        }
        Some(EventType::ExecutionSuspended(e)) => line.input = e.input.clone(),
        Some(EventType::ExecutionResumed(e)) => line.input = e.input.clone(),
        _ => {}
    }
    line
}
