//! Workflow timers and delayed starts, as jobs of daca's durable scheduler (Dapr keeps them as
//! reminders in its Scheduler service): a timer's job holds its `timerFired` event and the
//! generation it belongs to, so a timer of an execution since continued-as-new or restarted
//! does nothing.

use prost::Message;

use super::events::{self, event};
use super::pb::history_event::EventType;
use super::pb::{self, HistoryEvent};
use super::{START_PREFIX, Slot, TIMER_PREFIX, Workflows};
use crate::scheduler::{Delivered, Job, Target};

impl Workflows {
    pub(super) fn timer(
        &self,
        slot: &Slot,
        generation: u64,
        id: i32,
        fire_at: prost_types::Timestamp,
    ) {
        // The SDK's "never" (9999-12-31, an external event without a timeout) is past what
        // the scheduler holds (u64 nanoseconds end in 2262): it stays in the history only.
        let Some(due_ns) = events::ns_of(&fire_at) else {
            return;
        };
        let fired = event(
            self.clock.now(),
            EventType::TimerFired(pb::TimerFiredEvent {
                fire_at: Some(fire_at),
                timer_id: id,
            }),
        );
        let job = Job {
            key: format!(
                "{TIMER_PREFIX}{}||{}||{generation}||{id}",
                slot.app, slot.instance
            ),
            due_ns,
            every_ns: None,
            repeats: Some(1),
            expires_ns: None,
            data: Some(fired.encode_to_vec()),
            spec: Default::default(),
            cron: None,
            failure: None,
        };
        if let Err(err) = self.scheduler.put(job, true) {
            tracing::warn!("workflow {}: timer {id}: {err}", slot.instance);
        }
    }

    pub(super) fn drop_timers(&self, app: &str, instance: &str) {
        self.drop_timers_before(app, instance, u64::MAX);
    }

    pub(super) fn drop_timers_before(&self, app: &str, instance: &str, generation: u64) {
        let prefix = format!("{TIMER_PREFIX}{app}||{instance}||");
        for (job, _) in self.scheduler.list(&prefix) {
            let rest = job.key.strip_prefix(&prefix).unwrap_or_default();
            let old = rest
                .split("||")
                .next()
                .and_then(|g| g.parse::<u64>().ok())
                .is_some_and(|g| g < generation);
            if old {
                let _ = self.scheduler.delete(&job.key);
            }
        }
        let _ = self
            .scheduler
            .delete(&format!("{START_PREFIX}{app}||{instance}"));
    }

    /// A fired timer joins the inbox of its instance, unless the instance has moved on.
    async fn fire(&self, job: Job) -> Delivered {
        if let Some(rest) = job.key.strip_prefix(START_PREFIX) {
            let Some((app, instance)) = rest.split_once("||") else {
                return Delivered::Done;
            };
            let slot = self.slot(app, instance);
            self.kick(&slot);
            return Delivered::Done;
        }
        let rest = job.key.strip_prefix(TIMER_PREFIX).unwrap_or_default();
        let parts: Vec<&str> = rest.rsplitn(3, "||").collect();
        let [_, generation, head] = parts[..] else {
            return Delivered::Done;
        };
        let Some((app, instance)) = head.split_once("||") else {
            return Delivered::Done;
        };
        let Ok(generation) = generation.parse::<u64>() else {
            return Delivered::Done;
        };
        let Some(fired) = job.data.and_then(|d| HistoryEvent::decode(&d[..]).ok()) else {
            return Delivered::Done;
        };
        let slot = self.slot(app, instance);
        let result = async {
            let mut guard = self.locked(&slot).await?;
            let Some(state) = guard.as_mut() else {
                return Ok(());
            };
            if !state.exists || state.generation != generation || state.is_terminal() {
                return Ok(());
            }
            state.inbox.push(fired);
            self.save(&slot, state).await
        }
        .await;
        match result {
            Ok(()) => {
                self.kick(&slot);
                Delivered::Done
            }
            Err(err) => Delivered::Failed(err.to_string()),
        }
    }
}

/// The scheduler's target for workflow timers and delayed starts.
pub(super) struct Fired(pub std::sync::Weak<Workflows>);

impl Target for Fired {
    fn deliver(
        &self,
        job: Job,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Delivered> + Send + '_>> {
        Box::pin(async move {
            match self.0.upgrade() {
                Some(workflows) => workflows.fire(job).await,
                None => Delivered::Done,
            }
        })
    }
}
