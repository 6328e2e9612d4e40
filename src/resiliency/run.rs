//! Running one operation under a policy, in Dapr's order: the retry loop outside, the circuit
//! breaker around each attempt, the timeout inside it (`D:pkg/resiliency/policy.go`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::breaker::{Breaker, Refused};
use super::retry::Retry;

/// What applies to one operation; the default applies nothing (one attempt, no deadline).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub timeout: Option<Duration>,
    pub retry: Option<Arc<Retry>>,
    pub breaker: Option<Arc<Breaker>>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.timeout.is_none() && self.retry.is_none() && self.breaker.is_none()
    }
}

/// How an attempt ended, as the caller reads its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// A failure, with the status code it carries (HTTP or gRPC) when it has one: only
    /// those are subject to `matching`; other failures are always retried.
    Failure(Option<i32>),
    /// A failure no retry can help.
    Permanent,
}

/// Why daca, not the operation, ended an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// The per-attempt timeout passed.
    Timeout,
    /// The circuit breaker is open (or half-open and busy with its probes).
    Refused(Refused),
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Go's and gobreaker's texts, which Dapr passes on in its error messages.
        f.write_str(match self {
            Interrupted::Timeout => "context deadline exceeded",
            Interrupted::Refused(Refused::Open) => "circuit breaker is open",
            Interrupted::Refused(Refused::TooManyRequests) => "too many requests",
        })
    }
}

/// Runs `op` under `policy`. `judge` reads each attempt's result; when retries end (or a
/// failure is not one to retry) the last result is returned as it is, which is how the
/// caller of an invocation gets the callee's last answer. `what` names the operation in the
/// log line of its first retry.
pub async fn run<T, E, F, Fut>(
    policy: &Policy,
    what: impl Fn() -> String,
    judge: impl Fn(&Result<T, E>) -> Verdict,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<Interrupted>,
{
    if policy.is_empty() {
        return op().await;
    }
    let mut schedule = policy.retry.as_deref().map(Retry::schedule);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let (result, verdict) = attempt(policy, &judge, &mut op).await;
        let code = match verdict {
            Verdict::Success if attempts > 1 => {
                tracing::info!("{}: recovered after {attempts} attempts", what());
                return result;
            }
            Verdict::Success | Verdict::Permanent => return result,
            Verdict::Failure(code) => code,
        };
        let (Some(retry), Some(schedule)) = (policy.retry.as_deref(), schedule.as_mut()) else {
            return result;
        };
        if code.is_some_and(|code| !retry.wants(code)) {
            return result;
        }
        let Some(wait) = schedule.next() else {
            return result;
        };
        if attempts == 1 {
            tracing::warn!("{}: failed; retrying in {wait:?}", what());
        }
        // The failed answer is dropped before the wait (its connection goes back to the pool).
        drop(result);
        tokio::time::sleep(wait).await;
    }
}

/// One attempt: admitted by the breaker, cut by the timeout, recorded by the breaker.
async fn attempt<T, E, F, Fut>(
    policy: &Policy,
    judge: &impl Fn(&Result<T, E>) -> Verdict,
    op: &mut F,
) -> (Result<T, E>, Verdict)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<Interrupted>,
{
    let generation = match policy.breaker.as_deref().map(Breaker::before) {
        Some(Err(refused)) => {
            return (
                Err(Interrupted::Refused(refused).into()),
                Verdict::Permanent,
            );
        }
        Some(Ok(generation)) => Some(generation),
        None => None,
    };
    let (result, verdict) = match policy.timeout {
        Some(limit) => match tokio::time::timeout(limit, op()).await {
            Ok(result) => {
                let verdict = judge(&result);
                (result, verdict)
            }
            Err(_) => (Err(Interrupted::Timeout.into()), Verdict::Failure(None)),
        },
        None => {
            let result = op().await;
            let verdict = judge(&result);
            (result, verdict)
        }
    };
    if let (Some(breaker), Some(generation)) = (&policy.breaker, generation) {
        breaker.after(generation, verdict == Verdict::Success);
    }
    (result, verdict)
}

/// An operation's failure as a message (daca's own interruptions included).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure(pub String);

impl From<Interrupted> for Failure {
    fn from(why: Interrupted) -> Failure {
        Failure(why.to_string())
    }
}

/// The judge for operations whose errors carry no status code: Ok succeeds, Err is retried.
pub fn ok_or_retry<T, E>(result: &Result<T, E>) -> Verdict {
    match result {
        Ok(_) => Verdict::Success,
        Err(_) => Verdict::Failure(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, PartialEq)]
    enum Failed {
        Code(i32),
        Stopped(Interrupted),
    }

    impl From<Interrupted> for Failed {
        fn from(why: Interrupted) -> Failed {
            Failed::Stopped(why)
        }
    }

    fn judge(result: &Result<u32, Failed>) -> Verdict {
        match result {
            Ok(_) => Verdict::Success,
            Err(Failed::Code(code)) => Verdict::Failure(Some(*code)),
            Err(Failed::Stopped(_)) => Verdict::Failure(None),
        }
    }

    fn retrying(max: i64, matching: &str) -> Policy {
        let mut retry = Retry::constant(Duration::from_millis(1), max);
        retry.http_codes = super::super::retry::http_codes(matching).unwrap();
        Policy {
            retry: Some(Arc::new(retry)),
            ..Policy::default()
        }
    }

    /// Fails with 500 until the `succeed_at`-th call.
    async fn callee(calls: &AtomicU32, succeed_at: u32) -> Result<u32, Failed> {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= succeed_at {
            Ok(n)
        } else {
            Err(Failed::Code(500))
        }
    }

    #[tokio::test]
    async fn two_failures_then_a_success_is_one_success() {
        let calls = AtomicU32::new(0);
        let out = run(&retrying(3, ""), String::new, judge, || callee(&calls, 3)).await;
        assert_eq!(out, Ok(3));
        let calls = AtomicU32::new(0);
        let out = run(&retrying(3, ""), String::new, judge, || callee(&calls, 99)).await;
        assert_eq!(
            out,
            Err(Failed::Code(500)),
            "the last failure passes through"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_code_outside_matching_is_not_retried_and_no_policy_is_one_try() {
        let calls = AtomicU32::new(0);
        let out = run(&retrying(3, "503"), String::new, judge, || {
            callee(&calls, 3)
        })
        .await;
        assert_eq!(out, Err(Failed::Code(500)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let calls = AtomicU32::new(0);
        let _ = run(&Policy::default(), String::new, judge, || callee(&calls, 3)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_timeout_cuts_each_attempt() {
        let policy = Policy {
            timeout: Some(Duration::from_millis(20)),
            ..Policy::default()
        };
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<u32, Failed>(1)
        };
        let started = std::time::Instant::now();
        let out = run(&policy, String::new, judge, slow).await;
        assert_eq!(out, Err(Failed::Stopped(Interrupted::Timeout)));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
