//! The scheduler with a recording target, on the real clock (its jobs are wall-clock times).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;

/// Counts fires; answers as told.
struct Counting {
    fires: Mutex<Vec<(String, u64)>>,
    fail_first: AtomicU32,
    away: std::sync::atomic::AtomicBool,
}

impl Counting {
    fn new() -> Arc<Counting> {
        Arc::new(Counting {
            fires: Mutex::default(),
            fail_first: AtomicU32::new(0),
            away: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn count(&self, key: &str) -> usize {
        self.fires.lock().iter().filter(|(k, _)| k == key).count()
    }
}

impl Target for Counting {
    fn deliver(&self, job: Job) -> Pin<Box<dyn Future<Output = Delivered> + Send + '_>> {
        Box::pin(async move {
            if self.away.load(Ordering::SeqCst) {
                return Delivered::NotThere;
            }
            self.fires.lock().push((job.key.clone(), now_ns()));
            if self.fail_first.load(Ordering::SeqCst) > 0 {
                self.fail_first.fetch_sub(1, Ordering::SeqCst);
                return Delivered::Failed("told to".into());
            }
            Delivered::Done
        })
    }
}

fn job(key: &str, due_in: Duration, every: Option<Duration>, repeats: Option<u64>) -> Job {
    Job {
        key: key.into(),
        due_ns: now_ns() + due_in.as_nanos() as u64,
        every_ns: every.map(|e| e.as_nanos() as u64),
        repeats,
        expires_ns: None,
        data: None,
        spec: BTreeMap::new(),
        cron: None,
        failure: None,
    }
}

fn running(scheduler: &Scheduler) -> CancellationToken {
    let token = CancellationToken::new();
    tokio::spawn(scheduler.clone().run(token.clone(), TaskTracker::new()));
    token
}

async fn until(limit: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}

#[tokio::test]
async fn a_job_fires_its_repeats_and_is_gone() {
    let scheduler = Scheduler::in_memory();
    let target = Counting::new();
    scheduler.serve("t||", target.clone());
    let token = running(&scheduler);
    let every = Duration::from_millis(50);
    scheduler
        .put(job("t||five", every, Some(every), Some(5)), true)
        .unwrap();
    scheduler
        .put(job("t||once", Duration::ZERO, None, None), true)
        .unwrap();
    assert!(until(Duration::from_secs(5), || target.count("t||five") == 5).await);
    assert!(
        until(Duration::from_secs(1), || scheduler
            .get("t||five")
            .is_none())
        .await
    );
    assert_eq!(target.count("t||once"), 1);
    assert!(scheduler.get("t||once").is_none());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(target.count("t||five"), 5, "no sixth");
    token.cancel();
}

#[tokio::test]
async fn overwrite_false_refuses_and_delete_stops_it() {
    let scheduler = Scheduler::in_memory();
    let first = job("t||r", Duration::from_secs(3600), None, None);
    scheduler.put(first.clone(), true).unwrap();
    assert_eq!(
        scheduler.put(first.clone(), false),
        Err(ScheduleError::Exists("t||r".into()))
    );
    assert!(scheduler.put(first, true).is_ok());
    assert_eq!(scheduler.list("t||").len(), 1);
    assert!(scheduler.delete("t||r").unwrap());
    assert!(!scheduler.delete("t||r").unwrap());
}

#[tokio::test]
async fn a_failed_delivery_is_tried_again_and_a_missing_target_waits_uncounted() {
    let scheduler = Scheduler::in_memory();
    let target = Counting::new();
    target.fail_first.store(2, Ordering::SeqCst);
    target.away.store(true, Ordering::SeqCst);
    scheduler.serve("t||", target.clone());
    let token = running(&scheduler);
    scheduler
        .put(job("t||r", Duration::ZERO, None, None), true)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(target.count("t||r"), 0);
    assert!(scheduler.get("t||r").is_some(), "waiting for its target");
    target.away.store(false, Ordering::SeqCst);
    // Two failures, a second apart, then the success.
    assert!(until(Duration::from_secs(5), || target.count("t||r") == 3).await);
    assert!(until(Duration::from_secs(1), || scheduler.get("t||r").is_none()).await);
    let fires = target.fires.lock().clone();
    let gap = Duration::from_nanos(fires[1].1 - fires[0].1);
    assert!(gap >= Duration::from_millis(950), "{gap:?}");
    token.cancel();
}

#[tokio::test]
async fn jobs_survive_a_restart_and_a_missed_tick_fires_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scheduler.jsonl");
    let scheduler = Scheduler::durable(&file).unwrap();
    let every = Duration::from_millis(100);
    scheduler
        .put(job("t||kept", every, Some(every), None), true)
        .unwrap();
    scheduler
        .put(job("t||gone", every, None, None), true)
        .unwrap();
    scheduler.delete("t||gone").unwrap();
    drop(scheduler);
    // daca is away for ten periods.
    tokio::time::sleep(every * 10).await;
    let again = Scheduler::durable(&file).unwrap();
    assert_eq!(again.list("t||").len(), 1);
    let target = Counting::new();
    again.serve("t||", target.clone());
    let token = running(&again);
    assert!(until(Duration::from_secs(2), || target.count("t||kept") >= 1).await);
    tokio::time::sleep(every / 2).await;
    // Ten ticks were missed; replayed, they would fire at once. The next tick keeps the job's
    // phase, so it may come at any time within a period of the first (a slow machine sees it
    // within the half period waited here): at most that one.
    let fired = target.count("t||kept");
    assert!(
        fired <= 2,
        "the missed ticks are not replayed: {fired} fires"
    );
    assert!(until(Duration::from_secs(2), || target.count("t||kept") >= 3).await);
    token.cancel();
}

#[test]
fn a_torn_last_line_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scheduler.jsonl");
    {
        let scheduler = Scheduler::durable(&file).unwrap();
        let due = Duration::from_secs(60);
        scheduler.put(job("t||a", due, None, None), true).unwrap();
    }
    use std::io::Write;
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    log.write_all(b"{\"put\":{\"key\":\"t||b\",\"du").unwrap();
    drop(log);
    let again = Scheduler::durable(&file).unwrap();
    assert!(again.get("t||a").is_some());
    assert!(again.get("t||b").is_none());
}

/// Holds each delivery for a moment and remembers how many were under way at once.
struct Slow {
    now: AtomicU32,
    most: AtomicU32,
    done: AtomicU32,
}

impl Target for Slow {
    fn deliver(&self, _: Job) -> Pin<Box<dyn Future<Output = Delivered> + Send + '_>> {
        Box::pin(async move {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            self.done.fetch_add(1, Ordering::SeqCst);
            Delivered::Done
        })
    }
}

#[tokio::test]
async fn a_thousand_jobs_due_together_are_delivered_256_at_a_time() {
    let scheduler = Scheduler::in_memory();
    let slow = Arc::new(Slow {
        now: AtomicU32::new(0),
        most: AtomicU32::new(0),
        done: AtomicU32::new(0),
    });
    scheduler.serve("k", slow.clone());
    for i in 0..1000 {
        scheduler
            .put(job(&format!("k{i}"), Duration::ZERO, None, None), true)
            .unwrap();
    }
    let _token = running(&scheduler);
    let all = until(Duration::from_secs(10), || {
        slow.done.load(Ordering::SeqCst) == 1000
    })
    .await;
    assert!(all, "{} delivered", slow.done.load(Ordering::SeqCst));
    assert_eq!(slow.most.load(Ordering::SeqCst), MAX_DELIVERIES as u32);
}
