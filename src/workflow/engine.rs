//! The engine's inner loop: loading and saving a slot, the stepper that runs an instance's
//! steps one at a time, what a saved step then does, fired timers, and picking up stored
//! instances after a restart.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::events::{self, event};
use super::pb::history_event::EventType;
use super::pb::{self, WorkItem};
use super::state::State;
use super::step::{self, Effect, Step};
use super::workers::{ItemKey, Reply};
use super::{Slot, WorkflowError, Workflows, store};

/// How often a save that failed (Redis away) is tried again before the step is given up
/// (its inbox is still stored, so it runs again later).
const SAVE_TRIES: u32 = 5;
const SAVE_WAIT: Duration = Duration::from_millis(500);

impl Workflows {
    /// The slot's state, loaded from the store the first time.
    pub(super) async fn locked<'a>(
        &self,
        slot: &'a Slot,
    ) -> Result<tokio::sync::MutexGuard<'a, Option<State>>, WorkflowError> {
        let mut guard = slot.state.lock().await;
        if guard.is_none() {
            let loaded = store::load(&self.store()?, &slot.app, &slot.instance).await?;
            *guard = Some(loaded);
        }
        Ok(guard)
    }

    /// Saves the state (trying again while the store is away) and tells the waiting callers.
    pub(super) async fn save(&self, slot: &Slot, state: &mut State) -> Result<(), WorkflowError> {
        let mut tries = 0;
        loop {
            match store::save(&self.store()?, &slot.app, &slot.instance, state).await {
                Ok(()) => break,
                Err(err) if tries + 1 < SAVE_TRIES => {
                    tracing::warn!(
                        "workflow {}: cannot save: {err}; trying again",
                        slot.instance
                    );
                    tries += 1;
                    tokio::time::sleep(SAVE_WAIT).await;
                }
                Err(err) => return Err(err),
            }
        }
        self.publish(slot, state);
        Ok(())
    }

    pub(super) fn publish(&self, slot: &Slot, state: &State) {
        let snapshot = state
            .exists
            .then(|| Arc::new(super::view::snapshot(&slot.app, &slot.instance, state)));
        slot.status.send_replace(snapshot);
    }

    /// Runs the slot's steps unless they are running already.
    pub(super) fn kick(&self, slot: &Arc<Slot>) {
        slot.arrived();
        if slot.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(me) = self.me.upgrade() else { return };
        let slot = slot.clone();
        self.background.tasks.spawn(async move {
            let token = me.background.token.clone();
            tokio::select! {
                _ = token.cancelled() => {}
                () = me.run(slot) => {}
            }
        });
    }

    /// Steps until the inbox is empty; then lets go, and looks once more (an event may have
    /// come in between).
    async fn run(&self, slot: Arc<Slot>) {
        loop {
            match self.one_step(&slot).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(err) => tracing::warn!("workflow {}: {err}", slot.instance),
            }
            slot.running.store(false, Ordering::Release);
            let more = match slot.state.try_lock() {
                Ok(guard) => guard
                    .as_ref()
                    .is_some_and(|s| !s.inbox.is_empty() && !s.is_terminal()),
                // Someone is adding to it, and will kick.
                Err(_) => false,
            };
            if !more || slot.running.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    }

    /// One step; false when there was nothing to do.
    async fn one_step(&self, slot: &Arc<Slot>) -> Result<bool, WorkflowError> {
        let (started, request, consumed) = {
            let mut guard = self.locked(slot).await?;
            let Some(state) = guard.as_mut() else {
                return Ok(false);
            };
            if state.inbox.is_empty() {
                return Ok(false);
            }
            if state.is_terminal() || !state.exists {
                // Events for an instance that has ended are dropped, as in Dapr.
                state.inbox.clear();
                if state.exists {
                    self.save(slot, state).await?;
                }
                return Ok(false);
            }
            let started = event(
                self.clock.now(),
                EventType::WorkflowStarted(Default::default()),
            );
            let (request, consumed) =
                step::request(&slot.instance, state, started.clone(), &slot.app);
            (started, request, consumed)
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let key = ItemKey::Step {
            app: slot.app.clone(),
            instance: slot.instance.clone(),
        };
        let item = WorkItem {
            request: Some(pb::work_item::Request::WorkflowRequest(request)),
            ..Default::default()
        };
        self.stats.stepped(slot.input_at.lock().take());
        self.workers.send(key, item, Reply::Step(reply));
        // Dropped when the instance is purged meanwhile.
        let Ok(response) = answer.await else {
            return Ok(false);
        };
        let answered_at = std::time::Instant::now();
        let mut guard = self.locked(slot).await?;
        let Some(state) = guard.as_mut() else {
            return Ok(false);
        };
        let generation = state.generation;
        let step = Step {
            app: &slot.app,
            instance: &slot.instance,
            now: self.clock.now(),
        };
        let effects = step.apply(state, started, consumed, response);
        self.save(slot, state).await?;
        let parent = state.started().and_then(|s| s.parent_instance.clone());
        let ending = events::completed(&state.history).map(|(_, c)| c.clone());
        drop(guard);
        for effect in effects {
            self.effect(slot, generation, effect, parent.as_ref(), ending.as_ref())
                .await;
        }
        self.stats.dispatched(answered_at);
        Ok(true)
    }

    async fn effect(
        &self,
        slot: &Arc<Slot>,
        generation: u64,
        effect: Effect,
        parent: Option<&pb::ParentInstanceInfo>,
        ending: Option<&pb::ExecutionCompletedEvent>,
    ) {
        match effect {
            Effect::Activity { app, request } => self.send_activity(&slot.app, app, request),
            Effect::Timer { id, fire_at } => self.timer(slot, generation, id, fire_at),
            Effect::Create {
                app,
                instance,
                started,
            } => {
                if let Err(err) = self.create(&app, &instance, started).await {
                    tracing::warn!("workflow {}: child {instance}: {err}", slot.instance);
                }
            }
            Effect::Send {
                app,
                instance,
                event,
            } => {
                if let Err(err) = self.add_event(&app, &instance, event).await {
                    tracing::debug!("workflow {}: event to {instance}: {err}", slot.instance);
                }
            }
            Effect::Ended { children } => {
                self.drop_timers(&slot.app, &slot.instance);
                if let (Some(parent), Some(ending)) = (parent, ending) {
                    self.tell_parent(parent, ending).await;
                }
                for child in children {
                    let end = event(
                        self.clock.now(),
                        EventType::ExecutionTerminated(pb::ExecutionTerminatedEvent {
                            input: None,
                            recurse: true,
                        }),
                    );
                    let _ = self.add_event(&slot.app, &child, end).await;
                }
            }
            Effect::Again => self.drop_timers_before(&slot.app, &slot.instance, generation + 1),
        }
    }

    /// Hands an activity to a worker of `app`; its answer goes to `source`'s instance.
    pub(super) fn send_activity(&self, source: &str, app: String, request: pb::ActivityRequest) {
        let instance = request
            .workflow_instance
            .as_ref()
            .map(|w| w.instance_id.clone())
            .unwrap_or_default();
        let key = ItemKey::Activity {
            app,
            instance: instance.clone(),
            task: request.task_id,
        };
        let reply = Reply::Activity {
            app: source.to_string(),
            instance,
            execution: request.task_execution_id.clone(),
        };
        let item = WorkItem {
            request: Some(pb::work_item::Request::ActivityRequest(request)),
            ..Default::default()
        };
        self.workers.send(key, item, reply);
    }

    async fn tell_parent(
        &self,
        parent: &pb::ParentInstanceInfo,
        ending: &pb::ExecutionCompletedEvent,
    ) {
        let (Some(app), Some(instance)) = (&parent.app_id, &parent.workflow_instance) else {
            return;
        };
        let id = parent.task_scheduled_id;
        let kind = match pb::OrchestrationStatus::try_from(ending.workflow_status) {
            Ok(pb::OrchestrationStatus::Completed) => {
                EventType::ChildWorkflowInstanceCompleted(pb::ChildWorkflowInstanceCompletedEvent {
                    task_scheduled_id: id,
                    result: ending.result.clone(),
                    ..Default::default()
                })
            }
            _ => EventType::ChildWorkflowInstanceFailed(pb::ChildWorkflowInstanceFailedEvent {
                task_scheduled_id: id,
                failure_details: Some(ending.failure_details.clone().unwrap_or_else(|| {
                    pb::TaskFailureDetails {
                        error_type: "TaskFailedError".into(),
                        error_message: format!(
                            "the child workflow ended {}",
                            super::status_name(
                                pb::OrchestrationStatus::try_from(ending.workflow_status)
                                    .unwrap_or(pb::OrchestrationStatus::Failed)
                            )
                        ),
                        ..Default::default()
                    }
                })),
                ..Default::default()
            }),
        };
        let event = event(self.clock.now(), kind);
        if let Err(err) = self.add_event(app, &instance.instance_id, event).await {
            tracing::debug!("workflow {}: parent: {err}", instance.instance_id);
        }
    }

    /// Picks up `app`'s stored instances once per run (when its first worker connects):
    /// activities sent and not answered are sent again, non-empty inboxes are stepped.
    pub(super) async fn recover(&self, app: &str) {
        if !self.recovered.lock().insert(app.to_string()) {
            return;
        }
        let Ok(store) = self.store() else { return };
        let ids = match store::instance_ids(&store, app).await {
            Ok(ids) => ids,
            Err(err) => {
                tracing::warn!("{app}: cannot list the stored workflows: {err}");
                return;
            }
        };
        for instance in ids {
            let slot = self.slot(app, &instance);
            let Ok(mut guard) = self.locked(&slot).await else {
                continue;
            };
            let Some(state) = guard.as_mut() else {
                continue;
            };
            self.publish(&slot, state);
            if state.is_terminal() || !state.exists {
                continue;
            }
            let running = slot.running.load(Ordering::Acquire);
            for (id, task, router) in events::unanswered_tasks(&state.history, &state.inbox) {
                let target = router
                    .and_then(|r| r.target_app_id.clone())
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| app.to_string());
                let request = pb::ActivityRequest {
                    name: task.name.clone(),
                    version: task.version.clone(),
                    input: task.input.clone(),
                    workflow_instance: Some(pb::WorkflowInstance {
                        instance_id: instance.clone(),
                        execution_id: state
                            .started()
                            .and_then(|s| s.workflow_instance.as_ref())
                            .and_then(|w| w.execution_id.clone()),
                    }),
                    task_id: id,
                    task_execution_id: task.task_execution_id.clone(),
                    ..Default::default()
                };
                self.send_activity(app, target, request);
            }
            let stepping = !state.inbox.is_empty() && !running;
            drop(guard);
            if stepping {
                self.kick(&slot);
            }
        }
    }
}
