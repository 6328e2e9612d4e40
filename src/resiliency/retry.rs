//! Retry policies as dapr/kit builds them on cenkalti/backoff: constant or exponential waits,
//! a budget of retries, and the status codes worth retrying (`matching`).

use std::time::{Duration, Instant};

/// How long to wait between attempts.
#[derive(Debug, Clone, PartialEq)]
pub enum Backoff {
    Constant(Duration),
    /// cenkalti/backoff's exponential backoff: each wait is the current interval ± the
    /// randomization factor; the interval grows by `multiplier` up to `max_interval`; retries
    /// end once `max_elapsed` has passed (0 = never).
    Exponential {
        initial: Duration,
        multiplier: f64,
        randomization: f64,
        max_interval: Duration,
        max_elapsed: Duration,
    },
}

/// A named retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub backoff: Backoff,
    /// Retries after the first attempt; negative = no limit (Dapr's default, -1).
    pub max_retries: i64,
    /// `matching.httpStatusCodes`: inclusive ranges; empty = every failing code.
    pub http_codes: Vec<(i32, i32)>,
    /// `matching.gRPCStatusCodes`.
    pub grpc_codes: Vec<(i32, i32)>,
}

const HTTP_CODES: (i32, i32) = (100, 599);
const GRPC_CODES: (i32, i32) = (0, 16);

impl Retry {
    pub fn constant(duration: Duration, max_retries: i64) -> Retry {
        Retry {
            backoff: Backoff::Constant(duration),
            max_retries,
            http_codes: Vec::new(),
            grpc_codes: Vec::new(),
        }
    }

    /// Whether a failure that carries `code` is retried. gRPC codes (0–16) and HTTP codes
    /// (100–599) are told apart by value, as Dapr does; other values are never retried.
    pub fn wants(&self, code: i32) -> bool {
        let within = |list: &[(i32, i32)]| {
            list.is_empty() || list.iter().any(|(from, to)| (*from..=*to).contains(&code))
        };
        if (GRPC_CODES.0..=GRPC_CODES.1).contains(&code) {
            within(&self.grpc_codes)
        } else if (HTTP_CODES.0..=HTTP_CODES.1).contains(&code) {
            within(&self.http_codes)
        } else {
            false
        }
    }

    /// The waits of one operation's retries, from its first failure on.
    pub fn schedule(&self) -> Schedule<'_> {
        let current = match &self.backoff {
            Backoff::Constant(every) => *every,
            Backoff::Exponential { initial, .. } => *initial,
        };
        Schedule {
            retry: self,
            done: 0,
            started: Instant::now(),
            current,
        }
    }
}

/// The waits left for one operation.
pub struct Schedule<'a> {
    retry: &'a Retry,
    done: i64,
    started: Instant,
    current: Duration,
}

impl Iterator for Schedule<'_> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.retry.max_retries >= 0 && self.done >= self.retry.max_retries {
            return None;
        }
        self.done += 1;
        match &self.retry.backoff {
            Backoff::Constant(every) => Some(*every),
            Backoff::Exponential {
                multiplier,
                randomization,
                max_interval,
                max_elapsed,
                ..
            } => {
                let spread = self.current.as_secs_f64() * randomization;
                let low = self.current.as_secs_f64() - spread;
                let wait = Duration::from_secs_f64((low + 2.0 * spread * unit_random()).max(0.0));
                let grown = self.current.as_secs_f64() * multiplier;
                self.current = if grown >= max_interval.as_secs_f64() {
                    *max_interval
                } else {
                    Duration::from_secs_f64(grown)
                };
                let over = !max_elapsed.is_zero() && self.started.elapsed() + wait > *max_elapsed;
                (!over).then_some(wait)
            }
        }
    }
}

/// A number in [0, 1) for the jitter; splitmix64 over a counter seeded by the clock, which is
/// all jitter needs (no cryptography, no shared state worth a dependency).
fn unit_random() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = STATE.load(Ordering::Relaxed);
    let seed = if seed == 0 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1)
    } else {
        seed
    };
    let next = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    STATE.store(next, Ordering::Relaxed);
    let mut z = next;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A `matching` list (`"429,500-599"`), each code or range within `valid`; Dapr's messages.
pub fn codes(list: &str, valid: (i32, i32), what: &str) -> Result<Vec<(i32, i32)>, String> {
    let mut ranges = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (from, to) = item.split_once('-').unwrap_or((item, item));
        let parse = |text: &str| {
            text.trim().parse::<i32>().map_err(|_| {
                format!("invalid {what} `{item}`: not a number or a range like 500-599")
            })
        };
        let (from, to) = (parse(from)?, parse(to)?);
        if from > to {
            return Err(format!(
                "invalid {what} range `{item}`: it starts after it ends"
            ));
        }
        if from < valid.0 || to > valid.1 {
            return Err(format!(
                "{what} `{item}` is outside {}-{}",
                valid.0, valid.1
            ));
        }
        ranges.push((from, to));
    }
    Ok(ranges)
}

pub fn http_codes(list: &str) -> Result<Vec<(i32, i32)>, String> {
    codes(list, HTTP_CODES, "HTTP status code")
}

pub fn grpc_codes(list: &str) -> Result<Vec<(i32, i32)>, String> {
    codes(list, GRPC_CODES, "gRPC status code")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_policy_waits_the_same_each_time_and_stops_after_max_retries() {
        let retry = Retry::constant(Duration::from_secs(5), 3);
        let waits: Vec<_> = retry.schedule().collect();
        assert_eq!(waits, vec![Duration::from_secs(5); 3]);
        let forever = Retry::constant(Duration::from_millis(1), -1);
        assert_eq!(forever.schedule().take(1000).count(), 1000);
        assert_eq!(Retry::constant(Duration::ZERO, 0).schedule().next(), None);
    }

    #[test]
    fn exponential_waits_grow_within_the_jitter_and_the_cap() {
        let retry = Retry {
            backoff: Backoff::Exponential {
                initial: Duration::from_millis(500),
                multiplier: 1.5,
                randomization: 0.5,
                max_interval: Duration::from_secs(2),
                max_elapsed: Duration::from_secs(900),
            },
            ..Retry::constant(Duration::ZERO, 6)
        };
        let waits: Vec<_> = retry.schedule().collect();
        assert_eq!(waits.len(), 6);
        let mut interval: f64 = 0.5;
        for wait in waits {
            let wait = wait.as_secs_f64();
            assert!(
                wait >= interval * 0.5 - 1e-9 && wait <= interval * 1.5 + 1e-9,
                "{wait} vs {interval}"
            );
            interval = (interval * 1.5).min(2.0);
        }
    }

    #[test]
    fn matching_tells_http_from_grpc_codes_and_empty_lists_retry_all() {
        let mut retry = Retry::constant(Duration::ZERO, 1);
        assert!(retry.wants(500) && retry.wants(404) && retry.wants(14));
        assert!(!retry.wants(700) && !retry.wants(-1));
        retry.http_codes = http_codes("429,500-599").unwrap();
        retry.grpc_codes = grpc_codes("1-4, 14").unwrap();
        assert!(retry.wants(429) && retry.wants(503) && !retry.wants(404));
        assert!(retry.wants(2) && retry.wants(14) && !retry.wants(5));
        assert!(http_codes("600").unwrap_err().contains("outside 100-599"));
        assert!(grpc_codes("a-3").unwrap_err().contains("not a number"));
        assert!(http_codes("599-500").unwrap_err().contains("starts after"));
    }
}
