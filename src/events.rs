//! The project's timeline for the dashboard: starts, exits, crashes, reloads (with their
//! durations) and component reloads. A bounded ring for the page's first view, and a broadcast
//! for the live one; nothing is kept or sent when nobody asks.

use crate::sync::Mutex;
use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::logs::now_ms;

/// How many events the ring keeps.
const KEEP: usize = 500;

/// One thing that happened.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub ts_ms: u64,
    /// `app`, `reload` or `components`.
    pub kind: String,
    pub app: Option<String>,
    pub message: String,
    pub duration_ms: Option<u64>,
}

/// The ring and the broadcast.
pub struct EventLog {
    ring: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            ring: Mutex::new(VecDeque::with_capacity(KEEP)),
            live: broadcast::channel(256).0,
        }
    }
}

impl EventLog {
    pub fn push(&self, kind: &str, app: Option<&str>, message: String, duration_ms: Option<u64>) {
        let event = Event {
            ts_ms: now_ms(),
            kind: kind.to_string(),
            app: app.map(String::from),
            message,
            duration_ms,
        };
        let mut ring = self.ring.lock();
        if ring.len() == KEEP {
            ring.pop_front();
        }
        ring.push_back(event.clone());
        let _ = self.live.send(event);
    }

    /// Oldest first.
    pub fn recent(&self) -> Vec<Event> {
        let ring = self.ring.lock();
        ring.iter().cloned().collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }
}
