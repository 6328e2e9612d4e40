//! Dapr Workflow, served in-process: the durabletask engine that daprd runs on its actors,
//! without actors, placement or a scheduler service.
//!
//! How it works: each instance has a slot (its state, loaded from the actor state store on
//! first use, and a watch of its status for the callers that wait). Whatever happens to an
//! instance (a start, an event, an activity's result, a fired timer) is added to its durable
//! inbox and kicks its stepper: one task per instance at a time, which sends the worker a
//! step (`pastEvents` = history, `newEvents` = `workflowStarted` + inbox), applies the
//! actions the worker answers (`step.rs`), saves the instance in Dapr's key layout
//! (`store.rs`), and only then does what the actions ask: activities to the workers
//! (`workers.rs`), timers to daca's durable scheduler, children and events to other
//! instances. A restart loses nothing: inboxes are durable, unanswered activities are sent
//! again when the app's first worker connects, timers live in the scheduler.

mod engine;
mod events;
mod ops;
mod state;
mod stats;
mod step;
mod store;
#[cfg(test)]
mod tests;
mod timers;
pub mod view;
mod workers;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::watch;

pub use dapr_durabletask_proto as pb;
pub use events::ns_of;
use events::{is_terminal, status_name};
pub use ops::Start;
pub use view::Snapshot;

use crate::actors::Background;
use crate::scheduler::Scheduler;
use crate::sidecar::ComponentSet;
use crate::sync::Mutex;
use state::State;
use workers::Workers;

/// Why a workflow call failed. The texts are those the SDKs match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    #[error("no such instance exists")]
    NotFound,
    #[error("an active workflow with ID '{0}' already exists")]
    AlreadyExists(String),
    #[error("orchestration has not yet completed")]
    NotCompleted,
    #[error(
        "the state store is not configured to use the actor runtime. Have you set the - name: actorStateStore value: \"true\" in your state store component file?"
    )]
    NoStore,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Store(String),
}

/// What a waiting caller waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Any status but pending.
    Started,
    /// A terminal status.
    Completed,
    /// Suspended, or terminal.
    Suspended,
    /// Running, or terminal.
    Resumed,
}

impl Until {
    fn reached(self, status: pb::OrchestrationStatus) -> bool {
        use pb::OrchestrationStatus as S;
        match self {
            Until::Started => status != S::Pending,
            Until::Completed => is_terminal(status),
            Until::Suspended => status == S::Suspended || is_terminal(status),
            Until::Resumed => status == S::Running || is_terminal(status),
        }
    }
}

/// An instance: its state (none until loaded) and its status for the waiting callers.
struct Slot {
    app: String,
    instance: String,
    state: tokio::sync::Mutex<Option<State>>,
    status: watch::Sender<Option<Arc<Snapshot>>>,
    /// Its stepper is running.
    running: AtomicBool,
    /// When the oldest input its stepper has not yet sent on came in (the engine's time).
    input_at: crate::sync::Mutex<Option<std::time::Instant>>,
}

impl Slot {
    /// An input came in: the engine's time for it starts now.
    fn arrived(&self) {
        self.input_at
            .lock()
            .get_or_insert_with(std::time::Instant::now);
    }
}

/// Every app's workflows.
pub struct Workflows {
    components: ComponentSet,
    scheduler: Scheduler,
    background: Background,
    workers: Workers,
    slots: Mutex<HashMap<(String, String), Arc<Slot>>>,
    clock: events::Clock,
    /// The apps whose stored instances were picked up again in this run.
    recovered: Mutex<HashSet<String>>,
    stats: stats::EngineStats,
    me: std::sync::Weak<Workflows>,
}

/// Scheduler keys: a workflow timer, and a start at a later time.
const TIMER_PREFIX: &str = "workflowtimer||";
const START_PREFIX: &str = "workflowstart||";

impl Workflows {
    pub fn new(
        components: ComponentSet,
        scheduler: Scheduler,
        background: Background,
    ) -> Arc<Workflows> {
        let workflows = Arc::new_cyclic(|me| Workflows {
            components,
            scheduler: scheduler.clone(),
            background,
            workers: Workers::default(),
            slots: Mutex::default(),
            clock: events::Clock::default(),
            recovered: Mutex::default(),
            stats: stats::EngineStats::default(),
            me: me.clone(),
        });
        let target = Arc::new(timers::Fired(Arc::downgrade(&workflows)));
        scheduler.serve(TIMER_PREFIX, target.clone());
        scheduler.serve(START_PREFIX, target);
        workflows
    }

    /// How many workers are connected to `app`'s sidecar (the metadata API shows it).
    pub fn connected_workers(&self, app: &str) -> usize {
        self.workers.connected(app)
    }

    /// The engine's own time per step (`scripts/bench/workflows` reads it).
    pub fn stats(&self) -> stats::StatsView {
        self.stats.view()
    }

    pub fn reset_stats(&self) {
        self.stats.reset();
    }

    fn store(&self) -> Result<crate::state::StateStore, WorkflowError> {
        let components = self.components.get();
        let (_, entry) = components.actor_store().ok_or(WorkflowError::NoStore)?;
        Ok(entry.store.clone())
    }

    fn slot(&self, app: &str, instance: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock();
        slots
            .entry((app.to_string(), instance.to_string()))
            .or_insert_with(|| {
                Arc::new(Slot {
                    app: app.to_string(),
                    instance: instance.to_string(),
                    state: tokio::sync::Mutex::new(None),
                    status: watch::channel(None).0,
                    running: AtomicBool::new(false),
                    input_at: crate::sync::Mutex::new(None),
                })
            })
            .clone()
    }
}
