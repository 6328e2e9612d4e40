//! The workers connected to each app's sidecar (`GetWorkItems` streams) and the work items
//! they have been given. Items go round-robin to an app's streams; an item whose stream goes
//! away goes to another one, or waits for the next worker to connect, so nothing handed out is
//! lost when an app reloads or crashes.

use std::collections::{HashMap, VecDeque};

use tokio::sync::{mpsc, oneshot};

use super::pb::{self, WorkItem};
use crate::sync::Mutex;

/// What an item is for: a step of an instance, or one activity of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ItemKey {
    Step {
        app: String,
        instance: String,
    },
    Activity {
        app: String,
        instance: String,
        task: i32,
    },
}

impl ItemKey {
    fn app(&self) -> &str {
        match self {
            ItemKey::Step { app, .. } | ItemKey::Activity { app, .. } => app,
        }
    }
}

/// Who waits for an item's answer.
pub enum Reply {
    Step(oneshot::Sender<pb::WorkflowResponse>),
    /// The instance (app, id) whose activity it is.
    Activity {
        app: String,
        instance: String,
        /// The activity's `taskExecutionId`, repeated in its result.
        execution: String,
    },
}

struct Pending {
    item: WorkItem,
    stream: Option<u64>,
    reply: Reply,
}

#[derive(Default)]
struct AppWorkers {
    streams: Vec<(u64, mpsc::UnboundedSender<WorkItem>)>,
    turn: usize,
    waiting: VecDeque<ItemKey>,
}

#[derive(Default)]
struct Inner {
    apps: HashMap<String, AppWorkers>,
    pending: HashMap<ItemKey, Pending>,
    next_stream: u64,
}

#[derive(Default)]
pub struct Workers(Mutex<Inner>);

impl Inner {
    /// Hands `key`'s item to one of its app's streams, or queues it until one connects.
    fn assign(&mut self, key: ItemKey) {
        let Some(pending) = self.pending.get_mut(&key) else {
            return;
        };
        let workers = self.apps.entry(key.app().to_string()).or_default();
        while !workers.streams.is_empty() {
            workers.turn = (workers.turn + 1) % workers.streams.len();
            let (id, stream) = &workers.streams[workers.turn];
            if stream.send(pending.item.clone()).is_ok() {
                pending.stream = Some(*id);
                return;
            }
            // A stream whose body is gone: its disconnect is on its way.
            let gone = *id;
            workers.streams.retain(|(id, _)| *id != gone);
        }
        pending.stream = None;
        workers.waiting.push_back(key);
    }
}

impl Workers {
    /// A new worker of `app`: what waited for one goes to it.
    pub fn connect(&self, app: &str) -> (u64, mpsc::UnboundedReceiver<WorkItem>) {
        let mut inner = self.0.lock();
        let id = inner.next_stream;
        inner.next_stream += 1;
        let (sender, receiver) = mpsc::unbounded_channel();
        let workers = inner.apps.entry(app.to_string()).or_default();
        workers.streams.push((id, sender));
        let waiting: Vec<ItemKey> = workers.waiting.drain(..).collect();
        for key in waiting {
            inner.assign(key);
        }
        (id, receiver)
    }

    /// A worker's stream ended: its items go to the others, or wait.
    pub fn disconnect(&self, app: &str, id: u64) {
        let mut inner = self.0.lock();
        if let Some(workers) = inner.apps.get_mut(app) {
            workers.streams.retain(|(stream, _)| *stream != id);
        }
        let orphans: Vec<ItemKey> = inner
            .pending
            .iter()
            .filter(|(key, p)| p.stream == Some(id) && key.app() == app)
            .map(|(key, _)| key.clone())
            .collect();
        for key in orphans {
            inner.assign(key);
        }
    }

    pub fn connected(&self, app: &str) -> usize {
        self.0.lock().apps.get(app).map_or(0, |w| w.streams.len())
    }

    /// Gives `item` to a worker of the key's app. An item already out for the same key is
    /// replaced (its answer, if it comes, goes to the new reply).
    pub fn send(&self, key: ItemKey, item: WorkItem, reply: Reply) {
        let mut inner = self.0.lock();
        inner.pending.insert(
            key.clone(),
            Pending {
                item,
                stream: None,
                reply,
            },
        );
        inner.assign(key);
    }

    /// The answer to `key` came: who waited for it (none for an item no longer out).
    pub fn answered(&self, key: &ItemKey) -> Option<Reply> {
        let mut inner = self.0.lock();
        let pending = inner.pending.remove(key)?;
        if pending.stream.is_none()
            && let Some(workers) = inner.apps.get_mut(key.app())
        {
            workers.waiting.retain(|k| k != key);
        }
        Some(pending.reply)
    }

    /// Drops the items of an instance (it was purged).
    pub fn forget(&self, app: &str, instance: &str) {
        let mut inner = self.0.lock();
        inner.pending.retain(|key, _| match key {
            ItemKey::Step {
                app: a,
                instance: i,
            }
            | ItemKey::Activity {
                app: a,
                instance: i,
                ..
            } => !(a == app && i == instance),
        });
    }
}
