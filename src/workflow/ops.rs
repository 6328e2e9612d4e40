//! What callers ask of the engine (the durabletask client API, Dapr's workflow API, the
//! inspector) and what workers answer: each call takes the instance's slot, changes its
//! state, saves it, and kicks its stepper.

use tokio::sync::mpsc;

use super::events::{self, event};
use super::pb::history_event::EventType;
use super::pb::{self, HistoryEvent, WorkItem};
use super::state::State;
use super::step;
use super::view::{self, Line, Snapshot};
use super::workers::{ItemKey, Reply};
use super::{START_PREFIX, Slot, Until, WorkflowError, Workflows, store};
use crate::scheduler::Job;

/// A start as the client asks for it.
#[derive(Debug, Clone, Default)]
pub struct Start {
    pub instance: String,
    pub name: String,
    pub input: Option<String>,
    /// Not before this time (nanoseconds since the epoch).
    pub at_ns: Option<u64>,
}

impl Workflows {
    /// Starts an instance; returns once its first step is saved (at once for a later start).
    pub async fn start(&self, app: &str, start: Start) -> Result<String, WorkflowError> {
        if start.name.is_empty() {
            return Err(WorkflowError::Invalid("workflow name is required".into()));
        }
        let slot = self.slot(app, &start.instance);
        slot.arrived();
        let mut status = slot.status.subscribe();
        let mut started = step::start_event(
            self.clock.now(),
            app,
            &start.instance,
            &start.name,
            start.input,
            None,
        );
        if let (Some(EventType::ExecutionStarted(s)), Some(at)) =
            (&mut started.event_type, start.at_ns)
        {
            s.scheduled_start_timestamp = Some(events::timestamp_of_ns(at.into()));
        }
        self.begin(&slot, started).await?;
        if let Some(at) = start.at_ns.filter(|at| *at > crate::scheduler::now_ns()) {
            let job = Job {
                key: format!("{START_PREFIX}{app}||{}", start.instance),
                due_ns: at,
                every_ns: None,
                repeats: Some(1),
                expires_ns: None,
                data: None,
                spec: Default::default(),
                cron: None,
                failure: None,
            };
            self.scheduler
                .put(job, true)
                .map_err(|e| WorkflowError::Store(e.to_string()))?;
            return Ok(start.instance);
        }
        self.kick(&slot);
        let _ = status
            .wait_for(|s| s.as_ref().is_some_and(|s| Until::Started.reached(s.status)))
            .await;
        Ok(start.instance)
    }

    /// Creates a child (or detached) instance from a parent's step: unless one with its id
    /// is running already, then the parent's event says so in the SDK's own terms.
    pub(super) async fn create(
        &self,
        app: &str,
        instance: &str,
        started: HistoryEvent,
    ) -> Result<(), WorkflowError> {
        let slot = self.slot(app, instance);
        self.begin(&slot, started).await?;
        self.kick(&slot);
        Ok(())
    }

    /// A new execution of the slot's instance, from its `executionStarted` event: refused while
    /// one runs; a finished one starts afresh (its history and timers go, the generation moves
    /// on). Saved, not yet stepped.
    async fn begin(&self, slot: &Slot, started: HistoryEvent) -> Result<(), WorkflowError> {
        let mut guard = self.locked(slot).await?;
        let state = guard.get_or_insert_with(State::default);
        if state.exists && !state.is_terminal() {
            return Err(WorkflowError::AlreadyExists(slot.instance.clone()));
        }
        if state.exists {
            state.reset();
            self.drop_timers(&slot.app, &slot.instance);
        } else {
            // Dapr counts generations from 1.
            state.generation = 1;
        }
        state.inbox.push(started);
        self.save(slot, state).await
    }

    /// Adds `event` to an instance's inbox; dropped if the instance has ended.
    pub(super) async fn add_event(
        &self,
        app: &str,
        instance: &str,
        event: HistoryEvent,
    ) -> Result<(), WorkflowError> {
        let slot = self.slot(app, instance);
        slot.arrived();
        {
            let mut guard = self.locked(&slot).await?;
            let Some(state) = guard.as_mut().filter(|s| s.exists) else {
                return Err(WorkflowError::NotFound);
            };
            if state.is_terminal() {
                return Ok(());
            }
            state.inbox.push(event);
            self.save(&slot, state).await?;
        }
        self.kick(&slot);
        Ok(())
    }

    /// An instance's summary; `None` when there is no such instance.
    pub async fn get(&self, app: &str, instance: &str) -> Result<Option<Snapshot>, WorkflowError> {
        let slot = self.slot(app, instance);
        let guard = self.locked(&slot).await?;
        Ok(guard
            .as_ref()
            .filter(|s| s.exists)
            .map(|s| view::snapshot(app, instance, s)))
    }

    /// An instance's history as a timeline.
    pub async fn history(&self, app: &str, instance: &str) -> Result<Vec<Line>, WorkflowError> {
        let slot = self.slot(app, instance);
        let guard = self.locked(&slot).await?;
        let state = guard
            .as_ref()
            .filter(|s| s.exists)
            .ok_or(WorkflowError::NotFound)?;
        Ok(view::timeline(state))
    }

    /// Waits until the instance's status is what `until` says (an unknown instance is waited
    /// for too, as in Dapr); the caller's deadline ends the wait.
    pub async fn wait(
        &self,
        app: &str,
        instance: &str,
        until: Until,
    ) -> Result<Option<Snapshot>, WorkflowError> {
        let slot = self.slot(app, instance);
        let mut status = slot.status.subscribe();
        {
            let guard = self.locked(&slot).await?;
            if let Some(state) = guard.as_ref() {
                self.publish(&slot, state);
            }
        }
        let reached = status
            .wait_for(|s| s.as_ref().is_some_and(|s| until.reached(s.status)))
            .await
            .map(|s| s.as_ref().map(|s| (**s).clone()));
        Ok(reached.ok().flatten())
    }

    pub async fn raise(
        &self,
        app: &str,
        instance: &str,
        name: &str,
        input: Option<String>,
    ) -> Result<(), WorkflowError> {
        let raised = EventType::EventRaised(pb::EventRaisedEvent {
            name: name.to_string(),
            input,
        });
        self.add_event(app, instance, event(self.clock.now(), raised))
            .await
    }

    /// Terminates an instance (and its running children when `recursive`); returns once it
    /// has ended.
    pub async fn terminate(
        &self,
        app: &str,
        instance: &str,
        output: Option<String>,
        recursive: bool,
    ) -> Result<(), WorkflowError> {
        let end = EventType::ExecutionTerminated(pb::ExecutionTerminatedEvent {
            input: output,
            recurse: recursive,
        });
        self.add_and_wait(app, instance, end, Until::Completed)
            .await
    }

    /// Adds an event of `kind` and waits until the instance has taken it (`until`).
    async fn add_and_wait(
        &self,
        app: &str,
        instance: &str,
        kind: EventType,
        until: Until,
    ) -> Result<(), WorkflowError> {
        self.add_event(app, instance, event(self.clock.now(), kind))
            .await?;
        self.wait(app, instance, until).await.map(|_| ())
    }

    pub async fn suspend(
        &self,
        app: &str,
        instance: &str,
        reason: Option<String>,
    ) -> Result<(), WorkflowError> {
        let kind = EventType::ExecutionSuspended(pb::ExecutionSuspendedEvent { input: reason });
        self.add_and_wait(app, instance, kind, Until::Suspended)
            .await
    }

    pub async fn resume(
        &self,
        app: &str,
        instance: &str,
        reason: Option<String>,
    ) -> Result<(), WorkflowError> {
        let kind = EventType::ExecutionResumed(pb::ExecutionResumedEvent { input: reason });
        self.add_and_wait(app, instance, kind, Until::Resumed).await
    }

    /// Deletes a finished instance (a running one only with `force`), and with `recursive`
    /// its children first; returns how many were deleted.
    pub async fn purge(
        &self,
        app: &str,
        instance: &str,
        recursive: bool,
        force: bool,
    ) -> Result<i32, WorkflowError> {
        let slot = self.slot(app, instance);
        let children: Vec<String> = {
            let guard = self.locked(&slot).await?;
            let state = guard
                .as_ref()
                .filter(|s| s.exists)
                .ok_or(WorkflowError::NotFound)?;
            if !state.is_terminal() && !force {
                return Err(WorkflowError::NotCompleted);
            }
            state
                .history
                .iter()
                .filter_map(|e| match &e.event_type {
                    Some(EventType::ChildWorkflowInstanceCreated(c)) => Some(c.instance_id.clone()),
                    _ => None,
                })
                .collect()
        };
        let mut count = 0;
        if recursive {
            for child in children {
                count += Box::pin(self.purge(app, &child, true, force))
                    .await
                    .unwrap_or(0);
            }
        }
        let mut guard = self.locked(&slot).await?;
        let Some(state) = guard.as_mut().filter(|s| s.exists) else {
            return Err(WorkflowError::NotFound);
        };
        store::purge(&self.store()?, app, instance, state).await?;
        *state = State::default();
        self.drop_timers(app, instance);
        self.workers.forget(app, instance);
        self.publish(&slot, state);
        drop(guard);
        self.slots
            .lock()
            .remove(&(app.to_string(), instance.to_string()));
        Ok(count + 1)
    }

    /// One page of an app's instance ids, in order, after `after` (the last of the previous
    /// page); and the last id of this page when more follow.
    pub async fn instance_ids(
        &self,
        app: &str,
        after: Option<&str>,
        page: Option<usize>,
    ) -> Result<(Vec<String>, Option<String>), WorkflowError> {
        let mut ids = store::instance_ids(&self.store()?, app).await?;
        ids.sort();
        let start = after.map_or(0, |after| ids.partition_point(|id| id.as_str() <= after));
        let rest = &ids[start.min(ids.len())..];
        let taken: Vec<String> = rest
            .iter()
            .take(page.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        let more = taken.len() < rest.len();
        let next = taken.last().cloned().filter(|_| more);
        Ok((taken, next))
    }

    /// An instance's history events, oldest first.
    pub async fn events(
        &self,
        app: &str,
        instance: &str,
    ) -> Result<Vec<HistoryEvent>, WorkflowError> {
        let slot = self.slot(app, instance);
        let guard = self.locked(&slot).await?;
        let state = guard
            .as_ref()
            .filter(|s| s.exists)
            .ok_or(WorkflowError::NotFound)?;
        Ok(state.history.clone())
    }

    /// The summaries of the apps' stored instances, newest first.
    pub async fn list(&self, apps: &[String]) -> Result<Vec<Snapshot>, WorkflowError> {
        let store = self.store()?;
        let mut all = Vec::new();
        for app in apps {
            for instance in store::instance_ids(&store, app).await? {
                if let Some(snapshot) = self.get(app, &instance).await? {
                    all.push(snapshot);
                }
            }
        }
        all.sort_by_key(|s| std::cmp::Reverse(s.created.map(|t| (t.seconds, t.nanos))));
        Ok(all)
    }

    /// A worker of `app` connected: its stream of work items, until [`Workflows::disconnect`].
    pub async fn connect(&self, app: &str) -> (u64, mpsc::UnboundedReceiver<WorkItem>) {
        let connected = self.workers.connect(app);
        self.recover(app).await;
        connected
    }

    pub fn disconnect(&self, app: &str, stream: u64) {
        self.workers.disconnect(app, stream);
    }

    /// A worker's answer to a step of `app`'s instance; an answer nobody waits for is dropped.
    pub fn complete_step(&self, app: &str, response: pb::WorkflowResponse) {
        let key = ItemKey::Step {
            app: app.to_string(),
            instance: response.instance_id.clone(),
        };
        if let Some(Reply::Step(reply)) = self.workers.answered(&key) {
            let _ = reply.send(response);
        }
    }

    /// A worker's answer to an activity; its result joins the instance's inbox.
    pub async fn complete_activity(&self, app: &str, response: pb::ActivityResponse) {
        let key = ItemKey::Activity {
            app: app.to_string(),
            instance: response.instance_id.clone(),
            task: response.task_id,
        };
        let Some(Reply::Activity {
            app: source,
            instance,
            execution,
        }) = self.workers.answered(&key)
        else {
            return;
        };
        let kind = match response.failure_details {
            Some(failure) => EventType::TaskFailed(pb::TaskFailedEvent {
                task_scheduled_id: response.task_id,
                failure_details: Some(failure),
                task_execution_id: execution,
                ..Default::default()
            }),
            None => EventType::TaskCompleted(pb::TaskCompletedEvent {
                task_scheduled_id: response.task_id,
                result: response.result,
                task_execution_id: execution,
                ..Default::default()
            }),
        };
        let done = event(self.clock.now(), kind);
        if let Err(err) = self.add_event(&source, &instance, done).await {
            tracing::debug!("workflow {instance}: activity result: {err}");
        }
    }
}
