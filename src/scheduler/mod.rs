//! The durable scheduler: what Dapr's Scheduler service does for reminders, workflow timers
//! and the Jobs API, inside daca. A job has a first due time, an optional interval or cron
//! schedule, an optional number of fires and an optional expiry; when it is due, the target
//! registered for its key's prefix gets it (`actorreminder||…` → the actor runtime, `app||…`
//! → the app, `crate::jobs`). Each job's store is daca's
//! own (`.daca/scheduler.jsonl`, see `store.rs`), not Redis: Dapr keeps these in the
//! Scheduler's etcd, so nothing reads their layout, and they survive a SIGKILLed daca.
//!
//! How it works: one task sleeps until the earliest due job, then hands every due one to its
//! target on a task of its own, at most 256 under way at once. A
//! delivery that fails is tried again by the job's failure policy (Dapr's default: after 1 s,
//! three times);
//! one whose target is not there yet (the hosting app is reloading) waits without counting.
//! Missed ticks are not replayed: after an outage a periodic job fires once, then keeps its
//! rhythm from now.

mod store;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::sync::{Mutex, RwLock};

/// How long a delivery whose target is not there waits before it looks again.
const NOT_THERE_WAIT: Duration = Duration::from_millis(100);
/// Deliveries under way at once. 10,000 reminders due together would otherwise open 10,000
/// connections to their app at the same instant, past its listen backlog (a refused SYN is
/// tried again by the kernel a second later); 256 at a time reuse their connections.
const MAX_DELIVERIES: usize = 256;

/// A job as it was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub key: String,
    /// The first fire, as nanoseconds since the Unix epoch.
    pub due_ns: u64,
    /// The interval after each fire; none fires once.
    pub every_ns: Option<u64>,
    /// How many fires in all; none has no end.
    pub repeats: Option<u64>,
    /// No fire after this time (nanoseconds since the Unix epoch).
    pub expires_ns: Option<u64>,
    /// What the target gets back (raw JSON for reminders).
    pub data: Option<Vec<u8>>,
    /// The user's own words (`dueTime`, `period`, `ttl`), for reading the job back.
    pub spec: BTreeMap<String, String>,
    /// A calendar schedule (a job's `0 30 * * * *`): each next fire comes from it instead of
    /// `every_ns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// What a failed delivery does; none is Dapr's default (again after 1 s, three times).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailurePolicy>,
}

/// A job's `failurePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailurePolicy {
    /// Give up on this fire after the first failure.
    Drop,
    /// Try again every `interval_ns`, at most `max_retries` times (none: until it works).
    Constant {
        interval_ns: u64,
        max_retries: Option<u32>,
    },
}

impl FailurePolicy {
    /// Dapr's default: constant 1 s, 3 retries.
    pub const DEFAULT: FailurePolicy = FailurePolicy::Constant {
        interval_ns: 1_000_000_000,
        max_retries: Some(3),
    };
}

/// What a delivery came to.
pub enum Delivered {
    Done,
    /// The target answered with an error; tried again by the failure policy.
    Failed(String),
    /// Nobody can take it now (the host is away): wait, and do not count a try.
    NotThere,
}

/// Whoever handles the jobs of one key prefix.
pub trait Target: Send + Sync + 'static {
    fn deliver(&self, job: Job) -> Pin<Box<dyn Future<Output = Delivered> + Send + '_>>;
}

/// Why a job could not be scheduled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0}")]
    Store(String),
}

struct Entry {
    job: Job,
    fired: u64,
    next_ns: u64,
    /// A delivery of it is under way.
    running: bool,
    /// Which `put` made it: a delivery of a job since replaced must not move the new one on.
    generation: u64,
}

/// The jobs and when each fires next, earliest first. The queue may hold stale times (a job
/// deleted, replaced or moved on): an item counts only when it matches its job's next fire.
#[derive(Default)]
struct Jobs {
    entries: BTreeMap<String, Entry>,
    queue: BinaryHeap<Reverse<(u64, String)>>,
}

impl Jobs {
    fn insert(&mut self, entry: Entry) {
        self.queue
            .push(Reverse((entry.next_ns, entry.job.key.clone())));
        self.entries.insert(entry.job.key.clone(), entry);
    }
}

struct Inner {
    jobs: Mutex<Jobs>,
    generations: std::sync::atomic::AtomicU64,
    store: Option<store::Log>,
    targets: RwLock<Vec<(String, Arc<dyn Target>)>>,
    wake: Notify,
    deliveries: tokio::sync::Semaphore,
}

/// The scheduler; cheap to clone.
#[derive(Clone)]
pub struct Scheduler(Arc<Inner>);

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Scheduler {
    /// A scheduler that forgets everything when daca stops (tests, the embedded store).
    pub fn in_memory() -> Scheduler {
        Scheduler::with_store(None, Vec::new())
    }

    /// A scheduler whose jobs live in `file` (created when missing).
    pub fn durable(file: &std::path::Path) -> Result<Scheduler, ScheduleError> {
        let (log, jobs) =
            store::Log::open(file).map_err(|e| ScheduleError::Store(e.to_string()))?;
        Ok(Scheduler::with_store(Some(log), jobs))
    }

    fn with_store(store: Option<store::Log>, loaded: Vec<store::Stored>) -> Scheduler {
        let mut jobs = Jobs::default();
        for (job, fired, next_ns) in loaded {
            jobs.insert(Entry {
                job,
                fired,
                next_ns,
                running: false,
                generation: 0,
            });
        }
        Scheduler(Arc::new(Inner {
            jobs: Mutex::new(jobs),
            generations: std::sync::atomic::AtomicU64::new(1),
            store,
            targets: RwLock::default(),
            wake: Notify::new(),
            deliveries: tokio::sync::Semaphore::new(MAX_DELIVERIES),
        }))
    }

    /// Jobs whose key starts with `prefix` go to `target`.
    pub fn serve(&self, prefix: &str, target: Arc<dyn Target>) {
        self.0.targets.write().push((prefix.to_string(), target));
        self.0.wake.notify_one();
    }

    /// Schedules `job`; an existing one with its key is replaced unless `overwrite` is false.
    pub fn put(&self, job: Job, overwrite: bool) -> Result<(), ScheduleError> {
        let mut jobs = self.0.jobs.lock();
        if !overwrite && jobs.entries.contains_key(&job.key) {
            return Err(ScheduleError::Exists(job.key));
        }
        if let Some(store) = &self.0.store {
            store
                .put(&job)
                .map_err(|e| ScheduleError::Store(e.to_string()))?;
        }
        let generation = self
            .0
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        jobs.insert(Entry {
            next_ns: job.due_ns,
            job,
            fired: 0,
            running: false,
            generation,
        });
        drop(jobs);
        self.0.wake.notify_one();
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<Job> {
        self.0.jobs.lock().entries.get(key).map(|e| e.job.clone())
    }

    /// The jobs whose key starts with `prefix`, with when each fires next.
    pub fn list(&self, prefix: &str) -> Vec<(Job, u64)> {
        let jobs = self.0.jobs.lock();
        jobs.entries
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(_, e)| (e.job.clone(), e.next_ns))
            .collect()
    }

    /// Removes a job; true when there was one.
    pub fn delete(&self, key: &str) -> Result<bool, ScheduleError> {
        let removed = self.0.jobs.lock().entries.remove(key).is_some();
        if removed && let Some(store) = &self.0.store {
            store
                .delete(key)
                .map_err(|e| ScheduleError::Store(e.to_string()))?;
        }
        Ok(removed)
    }

    /// Fires jobs until `token` is cancelled; deliveries run on `tasks`.
    pub async fn run(self, token: CancellationToken, tasks: TaskTracker) {
        loop {
            let next = self.fire_due(&token, &tasks);
            let sleep = async {
                match next {
                    Some(at) => {
                        let wait = Duration::from_nanos(at.saturating_sub(now_ns()));
                        tokio::time::sleep(wait).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = token.cancelled() => return,
                () = self.0.wake.notified() => {}
                () = sleep => {}
            }
        }
    }

    /// Starts a delivery of every due job; returns when the next one is due.
    fn fire_due(&self, token: &CancellationToken, tasks: &TaskTracker) -> Option<u64> {
        let now = now_ns();
        let mut due = Vec::new();
        let next = {
            let mut jobs = self.0.jobs.lock();
            let Jobs { entries, queue } = &mut *jobs;
            while let Some(Reverse((at, _))) = queue.peek()
                && *at <= now
            {
                let Some(Reverse((at, key))) = queue.pop() else {
                    break;
                };
                if let Some(entry) = entries.get_mut(&key)
                    && !entry.running
                    && entry.next_ns == at
                {
                    entry.running = true;
                    due.push((entry.job.clone(), entry.generation));
                }
            }
            queue.peek().map(|Reverse((at, _))| *at)
        };
        for (job, generation) in due {
            let (scheduler, token) = (self.clone(), token.clone());
            tasks.spawn(async move {
                tokio::select! {
                    _ = token.cancelled() => {}
                    () = scheduler.deliver(job, generation) => {}
                }
            });
        }
        next
    }

    fn target_for(&self, key: &str) -> Option<Arc<dyn Target>> {
        let targets = self.0.targets.read();
        targets
            .iter()
            .find(|(prefix, _)| key.starts_with(prefix.as_str()))
            .map(|(_, target)| target.clone())
    }

    /// One fire: its tries, then the job's next fire (or its end).
    async fn deliver(&self, job: Job, generation: u64) {
        let (wait, retries) = match job.failure.unwrap_or(FailurePolicy::DEFAULT) {
            FailurePolicy::Drop => (Duration::ZERO, Some(0)),
            FailurePolicy::Constant {
                interval_ns,
                max_retries,
            } => (Duration::from_nanos(interval_ns), max_retries),
        };
        let mut failures = 0;
        loop {
            let Some(target) = self.target_for(&job.key) else {
                tokio::time::sleep(NOT_THERE_WAIT).await;
                continue;
            };
            let delivered = {
                let _permit = self.0.deliveries.acquire().await;
                target.deliver(job.clone()).await
            };
            match delivered {
                Delivered::Done => break,
                Delivered::NotThere => tokio::time::sleep(NOT_THERE_WAIT).await,
                Delivered::Failed(why) => {
                    failures += 1;
                    if retries.is_some_and(|r| failures > r) {
                        tracing::warn!(
                            "{}: not delivered after {failures} tries ({why}); skipped until its next fire",
                            job.key,
                        );
                        break;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
        self.advance(&job.key, generation);
    }

    /// Counts a fire and sets the next one; a job that has no more is removed.
    fn advance(&self, key: &str, generation: u64) {
        let now = now_ns();
        let mut jobs = self.0.jobs.lock();
        let Jobs { entries, queue } = &mut *jobs;
        let Some(entry) = entries.get_mut(key).filter(|e| e.generation == generation) else {
            return; // deleted or replaced meanwhile
        };
        entry.running = false;
        entry.fired += 1;
        let next = match &entry.job.cron {
            Some(cron) => next_of(cron, entry.next_ns.max(now)),
            None => entry.job.every_ns.filter(|every| *every > 0).map(|every| {
                let missed = now.saturating_sub(entry.next_ns) / every;
                entry.next_ns + every * (missed + 1)
            }),
        };
        let done = next.is_none()
            || entry.job.repeats.is_some_and(|n| entry.fired >= n)
            || next.zip(entry.job.expires_ns).is_some_and(|(n, e)| n > e);
        let result = match (done, next) {
            (false, Some(next)) => {
                entry.next_ns = next;
                queue.push(Reverse((next, key.to_string())));
                self.0
                    .store
                    .as_ref()
                    .map(|s| s.tick(key, entry.fired, next))
            }
            _ => {
                entries.remove(key);
                self.0.store.as_ref().map(|s| s.delete(key))
            }
        };
        drop(jobs);
        if let Some(Err(err)) = result {
            tracing::error!("the scheduler could not record {key}: {err}");
        }
        self.0.wake.notify_one();
    }
}

/// The Scheduler's name rule: each `||` segment, without `_ : - space` and in lower case, a
/// DNS-1123 subdomain.
pub fn check_job_name(key: &str) -> Result<(), String> {
    let sanitized: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | ':' | '-' | ' '))
        .collect();
    for segment in sanitized.to_lowercase().split("||") {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if segment.len() > 253 || !segment.split('.').all(label_ok) {
            return Err(format!(
                "job name is invalid {sanitized:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ));
        }
    }
    Ok(())
}

/// The Scheduler's point-in-time order: RFC 3339, then a Go duration, then ISO 8601.
pub fn point_in_time(raw: &str, from: SystemTime) -> Result<SystemTime, String> {
    if let Some(at) = crate::timespec::rfc3339(raw) {
        return Ok(at);
    }
    if let Ok(duration) = crate::timespec::go_duration(raw) {
        return crate::timespec::shift(from, duration)
            .ok_or_else(|| "due time out of range".into());
    }
    let iso =
        crate::timespec::iso8601(raw).map_err(|_| "due time format not recognized".to_string())?;
    if iso.repetitions.is_some_and(|n| n > 0) {
        return Err("repeats not supported for due time".into());
    }
    crate::timespec::after(from, &iso).ok_or_else(|| "due time out of range".into())
}

/// The fire of calendar schedule `cron` after `after_ns` (nanoseconds since the epoch).
pub fn next_of(cron: &str, after_ns: u64) -> Option<u64> {
    let schedule = crate::cron::Schedule::parse(cron, crate::cron::Fields::Six).ok()?;
    let after = SystemTime::UNIX_EPOCH + Duration::from_nanos(after_ns);
    let next = schedule.next_after(after)?;
    next.duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests;
