//! Batching file events per target (watchexec's `throttle_collect`): an editor's save is
//! several events (a temp file, a rename, a chmod), and a `git checkout` is hundreds, but each
//! should be one reload. A target's batch is due once it has been quiet for [`QUIET`], or at
//! the latest [`LONGEST`] after its first event while events keep coming.
//!
//! Pure and on tokio's clock, so its tests run under paused time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use super::{Change, Target};

/// Quiet time that ends a batch.
pub const QUIET: Duration = Duration::from_millis(30);
/// Longest a batch waits while events keep coming.
pub const LONGEST: Duration = Duration::from_millis(400);

struct Batch {
    paths: Vec<PathBuf>,
    first: Instant,
    last: Instant,
}

impl Batch {
    fn due_at(&self) -> Instant {
        (self.last + QUIET).min(self.first + LONGEST)
    }
}

/// The batches being collected, one per target.
#[derive(Default)]
pub struct Debouncer {
    pending: BTreeMap<Target, Batch>,
}

impl Debouncer {
    /// Adds one changed path of `target`, seen at `now`.
    pub fn add(&mut self, target: Target, path: PathBuf, now: Instant) {
        let batch = self.pending.entry(target).or_insert_with(|| Batch {
            paths: Vec::new(),
            first: now,
            last: now,
        });
        if !batch.paths.contains(&path) {
            batch.paths.push(path);
        }
        batch.last = now;
    }

    /// When the next batch is due, if any is being collected.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.values().map(Batch::due_at).min()
    }

    /// The batches due at `now`, removed.
    pub fn take_due(&mut self, now: Instant) -> Vec<Change> {
        let due: Vec<Target> = self
            .pending
            .iter()
            .filter(|(_, batch)| batch.due_at() <= now)
            .map(|(target, _)| target.clone())
            .collect();
        due.into_iter()
            .filter_map(|target| {
                let batch = self.pending.remove(&target)?;
                Some(Change {
                    target,
                    paths: batch.paths,
                    first_seen: batch.first,
                })
            })
            .collect()
    }

    /// How many targets have a batch being collected.
    pub fn len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::AppId;

    fn web() -> Target {
        Target::App(AppId::parse("web").unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_save_is_one_batch_once_quiet() {
        let mut debouncer = Debouncer::default();
        let start = Instant::now();
        debouncer.add(web(), "/p/.main.py.tmp".into(), start);
        tokio::time::advance(Duration::from_millis(5)).await;
        debouncer.add(web(), "/p/main.py".into(), Instant::now());
        debouncer.add(web(), "/p/main.py".into(), Instant::now());
        assert!(
            debouncer.take_due(Instant::now()).is_empty(),
            "not quiet yet"
        );
        assert_eq!(
            debouncer.next_due(),
            Some(start + Duration::from_millis(5) + QUIET)
        );
        tokio::time::advance(QUIET).await;
        let due = debouncer.take_due(Instant::now());
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].target, web());
        assert_eq!(due[0].paths.len(), 2, "each path once");
        assert_eq!(due[0].first_seen, start);
        assert!(debouncer.len() == 0 && debouncer.next_due().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn events_that_keep_coming_are_cut_at_the_longest_wait() {
        let mut debouncer = Debouncer::default();
        let start = Instant::now();
        let mut batches = 0;
        for _ in 0..100 {
            debouncer.add(web(), "/p/out.txt".into(), Instant::now());
            tokio::time::advance(Duration::from_millis(10)).await;
            batches += debouncer.take_due(Instant::now()).len();
        }
        // 1000 ms of events every 10 ms: never quiet, so cut every LONGEST.
        assert_eq!(batches, 2, "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn targets_are_batched_apart() {
        let mut debouncer = Debouncer::default();
        debouncer.add(web(), "/p/web/a.py".into(), Instant::now());
        tokio::time::advance(Duration::from_millis(20)).await;
        debouncer.add(Target::Manifest, "/p/daca.yaml".into(), Instant::now());
        assert_eq!(debouncer.len(), 2);
        tokio::time::advance(Duration::from_millis(10)).await;
        let first = debouncer.take_due(Instant::now());
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].target, web());
        tokio::time::advance(Duration::from_millis(20)).await;
        let second = debouncer.take_due(Instant::now());
        assert_eq!(second[0].target, Target::Manifest);
    }
}
