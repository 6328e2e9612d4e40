//! The engine's own time, measured where it is spent: from an input reaching an instance (a
//! start, an activity's result, a fired timer, an event) until its step is on its way to the
//! worker, and from the worker's answer until what it asked for is saved and handed out. Their
//! sum per step is what daca adds to a workflow's duration beyond the worker's own time.

use std::time::Instant;

use serde::Serialize;

use crate::sync::Mutex;

/// Samples kept per measure (the newest).
const KEPT: usize = 100_000;

#[derive(Default)]
struct Ring {
    samples: Vec<u32>,
    next: usize,
}

impl Ring {
    fn push(&mut self, micros: u32) {
        if self.samples.len() < KEPT {
            self.samples.push(micros);
        } else {
            self.samples[self.next] = micros;
            self.next = (self.next + 1) % KEPT;
        }
    }

    fn percentile(&self, p: f64) -> Option<f64> {
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).map(|us| f64::from(*us) / 1000.0)
    }
}

#[derive(Default)]
pub struct EngineStats {
    /// Input in → step out to the worker.
    to_step: Mutex<Ring>,
    /// Worker's answer in → saved and handed out.
    to_dispatch: Mutex<Ring>,
}

/// The medians and 99th percentiles, in milliseconds.
#[derive(Debug, Serialize)]
pub struct StatsView {
    pub steps: usize,
    pub to_step_p50_ms: Option<f64>,
    pub to_step_p99_ms: Option<f64>,
    pub to_dispatch_p50_ms: Option<f64>,
    pub to_dispatch_p99_ms: Option<f64>,
}

fn micros(since: Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

impl EngineStats {
    pub fn stepped(&self, input_at: Option<Instant>) {
        if let Some(at) = input_at {
            self.to_step.lock().push(micros(at));
        }
    }

    pub fn dispatched(&self, answered_at: Instant) {
        self.to_dispatch.lock().push(micros(answered_at));
    }

    pub fn view(&self) -> StatsView {
        let (to_step, to_dispatch) = (self.to_step.lock(), self.to_dispatch.lock());
        StatsView {
            steps: to_dispatch.samples.len(),
            to_step_p50_ms: to_step.percentile(0.5),
            to_step_p99_ms: to_step.percentile(0.99),
            to_dispatch_p50_ms: to_dispatch.percentile(0.5),
            to_dispatch_p99_ms: to_dispatch.percentile(0.99),
        }
    }

    /// Forgets what was measured (a benchmark's warm-up).
    pub fn reset(&self) {
        *self.to_step.lock() = Ring::default();
        *self.to_dispatch.lock() = Ring::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_what_was_kept() {
        let mut ring = Ring::default();
        for us in [1000, 2000, 3000, 4000, 5000] {
            ring.push(us);
        }
        assert_eq!(ring.percentile(0.5), Some(3.0));
        assert_eq!(Ring::default().percentile(0.5), None);
    }
}
