//! Restart delays after crashes: exponential, capped, reset once an app has stayed up a while,
//! so a crash loop is slowed down instead of spun hot and a rare crash restarts at once.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(250);
const CAP: Duration = Duration::from_secs(30);
/// A process that ran this long before exiting was not crash-looping.
const STABLE: Duration = Duration::from_secs(10);
/// Quick exits in a row after which we call it a crash loop.
pub const LOOP_AFTER: u32 = 4;

/// Counts quick exits in a row.
#[derive(Debug, Default)]
pub struct Backoff {
    quick_exits: u32,
}

impl Backoff {
    /// The delay before the next start, given how long the last process ran.
    pub fn next(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= STABLE {
            self.quick_exits = 0;
        }
        let delay = FIRST.saturating_mul(1 << self.quick_exits.min(16)).min(CAP);
        self.quick_exits += 1;
        delay
    }

    /// Quick exits in a row so far.
    pub fn quick_exits(&self) -> u32 {
        self.quick_exits
    }

    /// Forget the history (after a manual start).
    pub fn reset(&mut self) {
        self.quick_exits = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets_after_a_stable_run() {
        let mut backoff = Backoff::default();
        let quick = Duration::from_millis(10);
        let delays: Vec<u64> = (0..9)
            .map(|_| backoff.next(quick).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
        assert_eq!(backoff.next(Duration::from_secs(11)), FIRST);
    }
}
