//! One instance's state as the engine holds it.

use super::events;
use super::pb::{self, HistoryEvent, OrchestrationStatus};

/// An instance as the engine holds it; saved in Dapr's layout by `store.rs`.
#[derive(Debug, Default, Clone)]
pub struct State {
    pub exists: bool,
    pub history: Vec<HistoryEvent>,
    pub inbox: Vec<HistoryEvent>,
    pub generation: u64,
    pub custom_status: Option<String>,
    /// How many history entries the store holds as they are here.
    pub history_saved: usize,
    /// How many `history-NNNNNN` and `inbox-NNNNNN` keys the store has.
    pub history_keys: usize,
    pub inbox_keys: usize,
}

impl State {
    pub fn status(&self) -> OrchestrationStatus {
        events::status(&self.history)
    }

    pub fn is_terminal(&self) -> bool {
        events::is_terminal(self.status())
    }

    /// The instance's name and app as started (from the inbox before its first step).
    pub fn started(&self) -> Option<&pb::ExecutionStartedEvent> {
        events::started(&self.history)
            .or_else(|| events::started(&self.inbox))
            .map(|(_, s)| s)
    }

    /// Starts afresh (a new start of a finished instance, or continue-as-new): the history
    /// goes, the generation moves on so the old timers no longer count.
    pub fn reset(&mut self) {
        self.history.clear();
        self.history_saved = 0;
        self.inbox.clear();
        self.custom_status = None;
        self.generation += 1;
    }
}
