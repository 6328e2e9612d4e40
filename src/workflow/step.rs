//! One instance's state, and one execution step: the request the worker gets (its history as
//! `pastEvents`, then `workflowStarted` and the inbox as `newEvents`) and what the worker's
//! actions do to it (durabletask-go's `applyWorkItem` rules: each action's history event
//! carries the action's id, since the SDK matches replayed events to its own sequence numbers).

use prost_types::Timestamp;

use super::events::{self, event};
use super::pb::history_event::EventType;
use super::pb::workflow_action::WorkflowActionType as Action;
use super::pb::{self, HistoryEvent, OrchestrationStatus};
use super::state::State;
use crate::pubsub::envelope::uuid_v4;

/// What a step's actions ask of the rest of the engine, done once the step is saved.
#[derive(Debug)]
pub enum Effect {
    Activity {
        app: String,
        request: pb::ActivityRequest,
    },
    Timer {
        id: i32,
        fire_at: Timestamp,
    },
    /// Start `instance` in `app` with this `executionStarted` event.
    Create {
        app: String,
        instance: String,
        started: HistoryEvent,
    },
    /// Add `event` to the inbox of `instance` in `app`.
    Send {
        app: String,
        instance: String,
        event: HistoryEvent,
    },
    /// The instance ended: tell its parent, drop its timers, end its children if asked to.
    Ended {
        children: Vec<String>,
    },
    /// It continued as new: run its next execution now.
    Again,
}

/// The work item for the next step, and how many inbox events it consumes.
pub fn request(
    instance: &str,
    state: &State,
    started: HistoryEvent,
    app: &str,
) -> (pb::WorkflowRequest, usize) {
    let mut new_events = Vec::with_capacity(state.inbox.len() + 1);
    new_events.push(started);
    new_events.extend(state.inbox.iter().cloned());
    let execution_id = state
        .started()
        .and_then(|s| s.workflow_instance.as_ref())
        .and_then(|w| w.execution_id.clone());
    let request = pb::WorkflowRequest {
        instance_id: instance.to_string(),
        execution_id,
        past_events: state.history.clone(),
        new_events,
        router: Some(router(app)),
        ..Default::default()
    };
    (request, state.inbox.len())
}

pub fn router(app: &str) -> pb::TaskRouter {
    pb::TaskRouter {
        source_app_id: app.to_string(),
        ..Default::default()
    }
}

/// Where a step runs: the instance, its app, and the clock for new events.
pub struct Step<'a> {
    pub app: &'a str,
    pub instance: &'a str,
    pub now: Timestamp,
}

impl Step<'_> {
    /// Applies a step the worker answered: the events it saw join the history, each action
    /// adds its event and its effect. `consumed` inbox events were in the request.
    pub fn apply(
        &self,
        state: &mut State,
        started: HistoryEvent,
        consumed: usize,
        response: pb::WorkflowResponse,
    ) -> Vec<Effect> {
        let seen: Vec<HistoryEvent> = state
            .inbox
            .drain(..consumed.min(state.inbox.len()))
            .collect();
        let terminate = seen.iter().find_map(|e| match &e.event_type {
            Some(EventType::ExecutionTerminated(t)) => Some(t.clone()),
            _ => None,
        });
        state.history.push(started);
        state.history.extend(seen);
        state.custom_status = response.custom_status;
        let mut effects = Vec::new();
        for action in response.actions {
            if state.is_terminal() {
                break;
            }
            self.action(state, action, &mut effects);
            if matches!(effects.last(), Some(Effect::Again)) {
                return effects;
            }
        }
        if let Some(terminated) = &terminate
            && !state.is_terminal()
        {
            // The SDK answers a terminate with its own completion; an SDK that does not is
            // terminated all the same.
            state.history.push(self.completion(
                -1,
                OrchestrationStatus::Terminated,
                terminated.input.clone(),
                None,
            ));
        }
        if state.is_terminal() {
            let children = match terminate {
                Some(t) if t.recurse => events::running_children(&state.history),
                _ => Vec::new(),
            };
            effects.push(Effect::Ended { children });
        }
        effects
    }

    fn completion(
        &self,
        id: i32,
        status: OrchestrationStatus,
        result: Option<String>,
        failure: Option<pb::TaskFailureDetails>,
    ) -> HistoryEvent {
        HistoryEvent {
            event_id: id,
            ..event(
                self.now,
                EventType::ExecutionCompleted(pb::ExecutionCompletedEvent {
                    workflow_status: status as i32,
                    result,
                    failure_details: failure,
                }),
            )
        }
    }

    fn action(&self, state: &mut State, action: pb::WorkflowAction, effects: &mut Vec<Effect>) {
        let id = action.id;
        // Where the action's work runs: another app's when the router says so.
        let target = action
            .router
            .as_ref()
            .and_then(|r| r.target_app_id.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| self.app.to_string());
        let with_id = |kind: EventType| HistoryEvent {
            event_id: id,
            router: action.router.clone(),
            ..event(self.now, kind)
        };
        let (event, effect) = match action.workflow_action_type {
            Some(Action::ScheduleTask(task)) => self.schedule(state, id, task, target),
            Some(Action::CreateTimer(timer)) => {
                let fire_at = timer.fire_at.unwrap_or(self.now);
                let created = EventType::TimerCreated(pb::TimerCreatedEvent {
                    fire_at: Some(fire_at),
                    name: timer.name,
                    origin: timer.origin.map(timer_origin),
                    ..Default::default()
                });
                (Some(created), Some(Effect::Timer { id, fire_at }))
            }
            Some(Action::CreateChildWorkflow(child)) => self.child(state, id, child, target),
            Some(Action::CreateDetachedWorkflow(detached)) => {
                let instance = detached.instance_id.clone();
                let started = start_event(
                    self.now,
                    &target,
                    &instance,
                    &detached.name,
                    detached.input,
                    None,
                );
                let created = EventType::DetachedWorkflowInstanceCreated(
                    pb::DetachedWorkflowInstanceCreatedEvent {
                        instance_id: instance.clone(),
                    },
                );
                let effect = Effect::Create {
                    app: target,
                    instance,
                    started,
                };
                (Some(created), Some(effect))
            }
            Some(Action::SendEvent(send)) => self.send(send, target),
            Some(Action::TerminateWorkflow(end)) => {
                let terminated = event(
                    self.now,
                    EventType::ExecutionTerminated(pb::ExecutionTerminatedEvent {
                        input: end.reason,
                        recurse: end.recurse,
                    }),
                );
                let effect = Effect::Send {
                    app: target,
                    instance: end.instance_id,
                    event: terminated,
                };
                (None, Some(effect))
            }
            Some(Action::CompleteWorkflow(done)) => return self.complete(state, id, done, effects),
            Some(Action::WorkflowVersionNotAvailable(_)) => {
                let stalled = EventType::ExecutionStalled(pb::ExecutionStalledEvent {
                    reason: pb::StalledReason::VersionNotAvailable as i32,
                    description: None,
                });
                state.history.push(event(self.now, stalled));
                (None, None)
            }
            None => (None, None),
        };
        state.history.extend(event.map(with_id));
        effects.extend(effect);
    }

    fn schedule(
        &self,
        state: &State,
        id: i32,
        task: pb::ScheduleTaskAction,
        app: String,
    ) -> (Option<EventType>, Option<Effect>) {
        let request = pb::ActivityRequest {
            name: task.name.clone(),
            version: task.version.clone(),
            input: task.input.clone(),
            workflow_instance: Some(self.workflow_instance(state)),
            task_id: id,
            task_execution_id: task.task_execution_id.clone(),
            ..Default::default()
        };
        let scheduled = EventType::TaskScheduled(pb::TaskScheduledEvent {
            name: task.name,
            version: task.version,
            input: task.input,
            task_execution_id: task.task_execution_id,
            ..Default::default()
        });
        (Some(scheduled), Some(Effect::Activity { app, request }))
    }

    /// A child workflow; without an id of its own it is `<parent>:<action id, 4 hex digits>`.
    fn child(
        &self,
        state: &State,
        id: i32,
        child: pb::CreateChildWorkflowAction,
        app: String,
    ) -> (Option<EventType>, Option<Effect>) {
        let instance = match child.instance_id.is_empty() {
            true => format!("{}:{:04x}", self.instance, id & 0xffff),
            false => child.instance_id.clone(),
        };
        let parent = pb::ParentInstanceInfo {
            task_scheduled_id: id,
            name: state.started().map(|s| s.name.clone()),
            workflow_instance: Some(self.workflow_instance(state)),
            app_id: Some(self.app.to_string()),
            ..Default::default()
        };
        let input = child.input.clone();
        let started = start_event(self.now, &app, &instance, &child.name, input, Some(parent));
        let created =
            EventType::ChildWorkflowInstanceCreated(pb::ChildWorkflowInstanceCreatedEvent {
                instance_id: instance.clone(),
                name: child.name,
                version: child.version,
                input: child.input,
                ..Default::default()
            });
        let effect = Effect::Create {
            app,
            instance,
            started,
        };
        (Some(created), Some(effect))
    }

    fn send(&self, send: pb::SendEventAction, app: String) -> (Option<EventType>, Option<Effect>) {
        let instance = send.instance.map(|i| i.instance_id).unwrap_or_default();
        let sent = EventType::EventSent(pb::EventSentEvent {
            instance_id: instance.clone(),
            name: send.name.clone(),
            input: send.data.clone(),
        });
        let raised = event(
            self.now,
            EventType::EventRaised(pb::EventRaisedEvent {
                name: send.name,
                input: send.data,
            }),
        );
        let effect = Effect::Send {
            app,
            instance,
            event: raised,
        };
        (Some(sent), Some(effect))
    }

    fn complete(
        &self,
        state: &mut State,
        id: i32,
        done: pb::CompleteWorkflowAction,
        effects: &mut Vec<Effect>,
    ) {
        let status = OrchestrationStatus::try_from(done.workflow_status)
            .unwrap_or(OrchestrationStatus::Failed);
        if status != OrchestrationStatus::ContinuedAsNew {
            let event = self.completion(id, status, done.result, done.failure_details);
            state.history.push(event);
            return;
        }
        // The history starts again with the same workflow, the new input, and the events the
        // SDK carries over; events not yet seen stay in the inbox behind them.
        let (name, parent) = state
            .started()
            .map(|s| (s.name.clone(), s.parent_instance.clone()))
            .unwrap_or_default();
        let waiting = std::mem::take(&mut state.inbox);
        state.reset();
        let started = start_event(
            self.now,
            self.app,
            self.instance,
            &name,
            done.result,
            parent,
        );
        state.inbox.push(started);
        state.inbox.extend(done.carryover_events);
        state.inbox.extend(waiting);
        effects.push(Effect::Again);
    }

    fn workflow_instance(&self, state: &State) -> pb::WorkflowInstance {
        pb::WorkflowInstance {
            instance_id: self.instance.to_string(),
            execution_id: state
                .started()
                .and_then(|s| s.workflow_instance.as_ref())
                .and_then(|w| w.execution_id.clone()),
        }
    }
}

/// The `executionStarted` event of a new execution; `router.sourceAppID` says whose it is
/// (the SDK reads its app id from it).
pub fn start_event(
    now: Timestamp,
    app: &str,
    instance: &str,
    name: &str,
    input: Option<String>,
    parent: Option<pb::ParentInstanceInfo>,
) -> HistoryEvent {
    HistoryEvent {
        router: Some(router(app)),
        ..event(
            now,
            EventType::ExecutionStarted(pb::ExecutionStartedEvent {
                name: name.to_string(),
                input,
                workflow_instance: Some(pb::WorkflowInstance {
                    instance_id: instance.to_string(),
                    execution_id: Some(uuid_v4()),
                }),
                parent_instance: parent,
                ..Default::default()
            }),
        )
    }
}

fn timer_origin(origin: pb::create_timer_action::Origin) -> pb::timer_created_event::Origin {
    use pb::create_timer_action::Origin as From;
    use pb::timer_created_event::Origin as To;
    match origin {
        From::CreateTimer(o) => To::CreateTimer(o),
        From::ExternalEvent(o) => To::ExternalEvent(o),
        From::ActivityRetry(o) => To::ActivityRetry(o),
        From::ChildWorkflowRetry(o) => To::ChildWorkflowRetry(o),
    }
}
