//! History events as the durabletask SDKs read them, and what an instance's history says of it
//! (its status, name, input, output), derived the way durabletask-go's runtime state does.

use std::time::SystemTime;

use prost_types::Timestamp;

use super::pb::history_event::EventType;
use super::pb::{self, HistoryEvent, OrchestrationStatus};
use crate::sync::Mutex;

/// An event the engine adds (not the answer to an action): its id is -1, as in Dapr.
pub fn event(timestamp: Timestamp, kind: EventType) -> HistoryEvent {
    HistoryEvent {
        event_id: -1,
        timestamp: Some(timestamp),
        router: None,
        event_type: Some(kind),
    }
}

/// Timestamps that never go back and never repeat: the SDK takes a step's current time from
/// its `workflowStarted` event, and a workflow's timers and ordering rely on it moving on.
#[derive(Default)]
pub struct Clock(Mutex<u128>);

impl Clock {
    pub fn now(&self) -> Timestamp {
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut last = self.0.lock();
        // A microsecond apart: Python's datetime keeps microseconds only.
        let next = wall.max(*last + 1_000);
        *last = next;
        timestamp_of_ns(next)
    }
}

pub fn timestamp_of_ns(ns: u128) -> Timestamp {
    Timestamp {
        seconds: (ns / 1_000_000_000) as i64,
        nanos: (ns % 1_000_000_000) as i32,
    }
}

/// Nanoseconds since the epoch, or `None` for a time past what the scheduler can hold (the
/// SDK's "never" sentinel, 9999-12-31, for an external event without a timeout).
pub fn ns_of(timestamp: &Timestamp) -> Option<u64> {
    let seconds = u64::try_from(timestamp.seconds).ok()?;
    let nanos = u64::try_from(timestamp.nanos).ok()?;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Whether a workflow with this status has ended for good.
pub fn is_terminal(status: OrchestrationStatus) -> bool {
    matches!(
        status,
        OrchestrationStatus::Completed
            | OrchestrationStatus::Failed
            | OrchestrationStatus::Terminated
            | OrchestrationStatus::Canceled
    )
}

/// The runtime status a history gives: pending before it has started, then the status it
/// completed with, stalled, suspended by the last suspend/resume marker, or running.
pub fn status(history: &[HistoryEvent]) -> OrchestrationStatus {
    let mut started = false;
    let mut suspended = false;
    for event in history {
        match &event.event_type {
            Some(EventType::ExecutionStarted(_)) => started = true,
            Some(EventType::ExecutionCompleted(done)) => {
                return OrchestrationStatus::try_from(done.workflow_status)
                    .unwrap_or(OrchestrationStatus::Failed);
            }
            Some(EventType::ExecutionStalled(_)) => return OrchestrationStatus::Stalled,
            Some(EventType::ExecutionSuspended(_)) => suspended = true,
            Some(EventType::ExecutionResumed(_)) => suspended = false,
            _ => {}
        }
    }
    match (started, suspended) {
        (false, _) => OrchestrationStatus::Pending,
        (true, true) => OrchestrationStatus::Suspended,
        (true, false) => OrchestrationStatus::Running,
    }
}

/// The `executionStarted` event of a history (or of an inbox, for an instance not yet run).
pub fn started(events: &[HistoryEvent]) -> Option<(&HistoryEvent, &pb::ExecutionStartedEvent)> {
    events.iter().find_map(|e| match &e.event_type {
        Some(EventType::ExecutionStarted(s)) => Some((e, s)),
        _ => None,
    })
}

pub fn completed(
    history: &[HistoryEvent],
) -> Option<(&HistoryEvent, &pb::ExecutionCompletedEvent)> {
    history.iter().rev().find_map(|e| match &e.event_type {
        Some(EventType::ExecutionCompleted(c)) => Some((e, c)),
        _ => None,
    })
}

/// The ids of the activities scheduled and not yet answered (in history or the inbox): what
/// must run again after a restart.
pub fn unanswered_tasks<'a>(
    history: &'a [HistoryEvent],
    inbox: &[HistoryEvent],
) -> Vec<(i32, &'a pb::TaskScheduledEvent, Option<&'a pb::TaskRouter>)> {
    let answered: std::collections::HashSet<i32> = history
        .iter()
        .chain(inbox)
        .filter_map(|e| match &e.event_type {
            Some(EventType::TaskCompleted(c)) => Some(c.task_scheduled_id),
            Some(EventType::TaskFailed(f)) => Some(f.task_scheduled_id),
            _ => None,
        })
        .collect();
    history
        .iter()
        .filter_map(|e| match &e.event_type {
            Some(EventType::TaskScheduled(t)) if !answered.contains(&e.event_id) => {
                Some((e.event_id, t, e.router.as_ref()))
            }
            _ => None,
        })
        .collect()
}

/// The child workflows started and not yet finished (a recursive terminate ends them too).
pub fn running_children(history: &[HistoryEvent]) -> Vec<String> {
    let finished: std::collections::HashSet<i32> = history
        .iter()
        .filter_map(|e| match &e.event_type {
            Some(EventType::ChildWorkflowInstanceCompleted(c)) => Some(c.task_scheduled_id),
            Some(EventType::ChildWorkflowInstanceFailed(f)) => Some(f.task_scheduled_id),
            _ => None,
        })
        .collect();
    history
        .iter()
        .filter_map(|e| match &e.event_type {
            Some(EventType::ChildWorkflowInstanceCreated(c)) if !finished.contains(&e.event_id) => {
                Some(c.instance_id.clone())
            }
            _ => None,
        })
        .collect()
}

/// The event's kind as the history shows it (`taskScheduled`), for the inspector.
pub fn kind_name(event: &HistoryEvent) -> &'static str {
    match &event.event_type {
        Some(EventType::ExecutionStarted(_)) => "executionStarted",
        Some(EventType::ExecutionCompleted(_)) => "executionCompleted",
        Some(EventType::ExecutionTerminated(_)) => "executionTerminated",
        Some(EventType::TaskScheduled(_)) => "taskScheduled",
        Some(EventType::TaskCompleted(_)) => "taskCompleted",
        Some(EventType::TaskFailed(_)) => "taskFailed",
        Some(EventType::ChildWorkflowInstanceCreated(_)) => "childWorkflowInstanceCreated",
        Some(EventType::ChildWorkflowInstanceCompleted(_)) => "childWorkflowInstanceCompleted",
        Some(EventType::ChildWorkflowInstanceFailed(_)) => "childWorkflowInstanceFailed",
        Some(EventType::TimerCreated(_)) => "timerCreated",
        Some(EventType::TimerFired(_)) => "timerFired",
        Some(EventType::WorkflowStarted(_)) => "workflowStarted",
        Some(EventType::WorkflowCompleted(_)) => "workflowCompleted",
        Some(EventType::EventSent(_)) => "eventSent",
        Some(EventType::EventRaised(_)) => "eventRaised",
        Some(EventType::ContinueAsNew(_)) => "continueAsNew",
        Some(EventType::ExecutionSuspended(_)) => "executionSuspended",
        Some(EventType::ExecutionResumed(_)) => "executionResumed",
        Some(EventType::ExecutionStalled(_)) => "executionStalled",
        Some(EventType::DetachedWorkflowInstanceCreated(_)) => "detachedWorkflowInstanceCreated",
        None => "unknown",
    }
}

/// Dapr's name for a status (`COMPLETED`), as its HTTP API and `daca workflows` show it.
pub fn status_name(status: OrchestrationStatus) -> &'static str {
    status
        .as_str_name()
        .strip_prefix("ORCHESTRATION_STATUS_")
        .unwrap_or("UNKNOWN")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts() -> Timestamp {
        Timestamp::default()
    }

    #[test]
    fn status_follows_the_history() {
        let started = event(ts(), EventType::ExecutionStarted(Default::default()));
        let suspend = event(ts(), EventType::ExecutionSuspended(Default::default()));
        let resume = event(ts(), EventType::ExecutionResumed(Default::default()));
        assert_eq!(status(&[]), OrchestrationStatus::Pending);
        assert_eq!(
            status(std::slice::from_ref(&started)),
            OrchestrationStatus::Running
        );
        let suspended = [started.clone(), suspend.clone()];
        assert_eq!(status(&suspended), OrchestrationStatus::Suspended);
        let resumed = [started.clone(), suspend, resume];
        assert_eq!(status(&resumed), OrchestrationStatus::Running);
        let done = event(
            ts(),
            EventType::ExecutionCompleted(pb::ExecutionCompletedEvent {
                workflow_status: OrchestrationStatus::Completed as i32,
                ..Default::default()
            }),
        );
        assert_eq!(status(&[started, done]), OrchestrationStatus::Completed);
    }

    #[test]
    fn the_clock_moves_on_and_never_sentinel_does_not_overflow() {
        let clock = Clock::default();
        let (a, b) = (clock.now(), clock.now());
        assert!((b.seconds, b.nanos) > (a.seconds, a.nanos));
        let never = Timestamp {
            seconds: 253_402_300_799,
            nanos: 999_999_999,
        };
        assert_eq!(ns_of(&never), None);
    }
}
