//! Circuit breakers as Dapr runs them (sony/gobreaker): closed, open after `trip` holds,
//! half-open after `timeout` with `maxRequests` probes, counts cleared every `interval`.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::pubsub::cel::Expr;
use crate::sync::Mutex;

/// A `circuitBreakers` entry: the template each breaker instance is made from.
#[derive(Debug, Clone)]
pub struct BreakerSpec {
    pub max_requests: u32,
    /// How often a closed breaker clears its counts; zero = never.
    pub interval: Duration,
    /// How long an open breaker stays open before it lets probes through.
    pub timeout: Duration,
    /// The `trip` expression, with its text; None = gobreaker's `consecutiveFailures > 5`.
    pub trip: Option<(Expr, String)>,
}

impl BreakerSpec {
    fn ready_to_trip(&self, counts: &Counts) -> bool {
        let Some((expr, _)) = &self.trip else {
            return counts.consecutive_failures > 5;
        };
        // An expression that fails to evaluate never trips, as in Dapr.
        expr.eval_vars(&counts.vars()).unwrap_or(false)
    }
}

/// The counts a breaker keeps for its current generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub requests: u32,
    pub total_successes: u32,
    pub total_failures: u32,
    pub consecutive_successes: u32,
    pub consecutive_failures: u32,
}

impl Counts {
    /// The names a `trip` expression reads.
    pub fn vars(&self) -> serde_json::Map<String, serde_json::Value> {
        [
            ("requests", self.requests),
            ("totalSuccesses", self.total_successes),
            ("totalFailures", self.total_failures),
            ("consecutiveSuccesses", self.consecutive_successes),
            ("consecutiveFailures", self.consecutive_failures),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
        .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Closed,
    HalfOpen,
    Open,
}

/// Why a breaker refused a call; never retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Open,
    TooManyRequests,
}

/// One breaker instance (per target app and method, actor, or component).
#[derive(Debug)]
pub struct Breaker {
    pub name: String,
    /// The policy's name, for the dashboard.
    pub policy: String,
    spec: BreakerSpec,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: State,
    generation: u64,
    counts: Counts,
    /// When a closed breaker clears its counts, or an open one half-opens.
    expiry: Option<Instant>,
}

impl Breaker {
    pub fn new(name: String, policy: &str, spec: &BreakerSpec) -> Breaker {
        let breaker = Breaker {
            name,
            policy: policy.to_string(),
            spec: spec.clone(),
            inner: Mutex::new(Inner {
                state: State::Closed,
                generation: 0,
                counts: Counts::default(),
                expiry: None,
            }),
        };
        breaker.inner.lock().expiry = breaker.expiry_of(State::Closed, Instant::now());
        breaker
    }

    /// Admits one call, returning its generation for [`Breaker::after`].
    pub fn before(&self) -> Result<u64, Refused> {
        let mut inner = self.inner.lock();
        self.advance(&mut inner, Instant::now());
        match inner.state {
            State::Open => return Err(Refused::Open),
            State::HalfOpen if inner.counts.requests >= self.spec.max_requests => {
                return Err(Refused::TooManyRequests);
            }
            _ => {}
        }
        inner.counts.requests = inner.counts.requests.saturating_add(1);
        Ok(inner.generation)
    }

    /// Records how a call admitted in `generation` ended; a call from an older generation
    /// (the breaker changed state meanwhile) no longer counts.
    pub fn after(&self, generation: u64, success: bool) {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        self.advance(&mut inner, now);
        if inner.generation != generation {
            return;
        }
        let counts = &mut inner.counts;
        if success {
            counts.total_successes = counts.total_successes.saturating_add(1);
            counts.consecutive_successes = counts.consecutive_successes.saturating_add(1);
            counts.consecutive_failures = 0;
            if inner.state == State::HalfOpen
                && inner.counts.consecutive_successes >= self.spec.max_requests
            {
                self.set(&mut inner, State::Closed, now);
            }
        } else {
            counts.total_failures = counts.total_failures.saturating_add(1);
            counts.consecutive_failures = counts.consecutive_failures.saturating_add(1);
            counts.consecutive_successes = 0;
            let trip = match inner.state {
                State::Closed => self.spec.ready_to_trip(&inner.counts),
                State::HalfOpen => true,
                State::Open => false,
            };
            if trip {
                self.set(&mut inner, State::Open, now);
            }
        }
    }

    /// The state now and the counts of its generation.
    pub fn state(&self) -> (State, Counts) {
        let mut inner = self.inner.lock();
        self.advance(&mut inner, Instant::now());
        (inner.state, inner.counts)
    }

    /// A closed breaker whose interval ended starts new counts; an open one whose timeout
    /// ended half-opens.
    fn advance(&self, inner: &mut Inner, now: Instant) {
        let due = inner.expiry.is_some_and(|at| at <= now);
        match inner.state {
            State::Closed if due => self.new_generation(inner, now),
            State::Open if due => self.set(inner, State::HalfOpen, now),
            _ => {}
        }
    }

    fn set(&self, inner: &mut Inner, state: State, now: Instant) {
        if inner.state == state {
            return;
        }
        let from = inner.state;
        inner.state = state;
        self.new_generation(inner, now);
        tracing::info!(
            "circuit breaker {:?} changed state from {} to {}",
            self.name,
            label(from),
            label(state)
        );
    }

    fn new_generation(&self, inner: &mut Inner, now: Instant) {
        inner.generation += 1;
        inner.counts = Counts::default();
        inner.expiry = self.expiry_of(inner.state, now);
    }

    fn expiry_of(&self, state: State, now: Instant) -> Option<Instant> {
        match state {
            State::Closed if !self.spec.interval.is_zero() => now.checked_add(self.spec.interval),
            State::Open => now.checked_add(self.spec.timeout),
            _ => None,
        }
    }
}

pub fn label(state: State) -> &'static str {
    match state {
        State::Closed => "closed",
        State::HalfOpen => "half-open",
        State::Open => "open",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(trip: &str, timeout: Duration) -> BreakerSpec {
        BreakerSpec {
            max_requests: 1,
            interval: Duration::ZERO,
            timeout,
            trip: Some((Expr::parse(trip).unwrap(), trip.to_string())),
        }
    }

    fn call(breaker: &Breaker, success: bool) -> Result<(), Refused> {
        let generation = breaker.before()?;
        breaker.after(generation, success);
        Ok(())
    }

    #[test]
    fn it_opens_when_trip_holds_and_half_opens_after_its_timeout() {
        let breaker = Breaker::new(
            "cb".into(),
            "cb",
            &spec("consecutiveFailures > 2", Duration::from_millis(50)),
        );
        for _ in 0..3 {
            call(&breaker, false).unwrap();
        }
        assert_eq!(breaker.state().0, State::Open);
        assert_eq!(call(&breaker, true), Err(Refused::Open));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(breaker.state().0, State::HalfOpen);
        // One probe at a time: a second caller is refused while the first is out.
        let probe = breaker.before().unwrap();
        assert_eq!(breaker.before(), Err(Refused::TooManyRequests));
        breaker.after(probe, true);
        assert_eq!(breaker.state().0, State::Closed);
    }

    #[test]
    fn a_failed_probe_opens_it_again_and_a_success_resets_consecutive_failures() {
        let breaker = Breaker::new(
            "cb".into(),
            "cb",
            &spec("consecutiveFailures >= 2", Duration::from_millis(20)),
        );
        call(&breaker, false).unwrap();
        call(&breaker, true).unwrap();
        call(&breaker, false).unwrap();
        assert_eq!(breaker.state().0, State::Closed);
        call(&breaker, false).unwrap();
        assert_eq!(breaker.state().0, State::Open);
        std::thread::sleep(Duration::from_millis(30));
        call(&breaker, false).unwrap();
        assert_eq!(breaker.state().0, State::Open);
    }

    #[test]
    fn without_trip_it_opens_after_six_consecutive_failures() {
        let spec = BreakerSpec {
            trip: None,
            ..spec("true", Duration::from_secs(60))
        };
        let breaker = Breaker::new("cb".into(), "cb", &spec);
        for _ in 0..5 {
            call(&breaker, false).unwrap();
        }
        assert_eq!(breaker.state().0, State::Closed);
        call(&breaker, false).unwrap();
        assert_eq!(breaker.state().0, State::Open);
    }
}
