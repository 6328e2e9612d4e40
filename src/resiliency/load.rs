//! Reading one `kind: Resiliency` document into a checked [`Document`]. Dapr logs a bad
//! resource and runs without it; daca refuses it at `file:line:col`, since a policy the user
//! believes in but that never runs is worse than an error.

#![allow(non_snake_case)] // field names are Dapr's camelCase keys

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::breaker::BreakerSpec;
use super::retry::{self, Backoff, Retry};
use super::{ActorScope, ActorTarget, AppTarget, ComponentTarget, Document, Names};
use crate::manifest::Diagnostic;
use crate::manifest::EnvValue;
use crate::pubsub::cel::Expr;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResiliencyWire {
    #[allow(dead_code, reason = "read so that it is not refused as unknown")]
    apiVersion: Option<String>,
    #[allow(dead_code, reason = "read so that it is not refused as unknown")]
    kind: String,
    #[serde(default)]
    metadata: MetadataWire,
    #[serde(default)]
    scopes: Vec<String>,
    spec: Spanned<SpecWire>,
}

#[derive(Deserialize, Default)]
struct MetadataWire {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecWire {
    #[serde(default)]
    policies: PoliciesWire,
    #[serde(default)]
    targets: TargetsWire,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PoliciesWire {
    #[serde(default)]
    timeouts: BTreeMap<String, Spanned<EnvValue>>,
    #[serde(default)]
    retries: BTreeMap<String, Spanned<RetryWire>>,
    #[serde(default)]
    circuitBreakers: BTreeMap<String, Spanned<BreakerWire>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryWire {
    policy: Option<Spanned<String>>,
    duration: Option<Spanned<EnvValue>>,
    initialInterval: Option<Spanned<EnvValue>>,
    maxInterval: Option<Spanned<EnvValue>>,
    maxElapsedTime: Option<Spanned<EnvValue>>,
    multiplier: Option<f64>,
    randomizationFactor: Option<f64>,
    maxRetries: Option<i64>,
    matching: Option<MatchingWire>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchingWire {
    httpStatusCodes: Option<Spanned<EnvValue>>,
    gRPCStatusCodes: Option<Spanned<EnvValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BreakerWire {
    maxRequests: Option<u32>,
    interval: Option<Spanned<EnvValue>>,
    timeout: Option<Spanned<EnvValue>>,
    trip: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TargetsWire {
    #[serde(default)]
    apps: BTreeMap<String, NamesWire>,
    #[serde(default)]
    actors: BTreeMap<String, Spanned<NamesWire>>,
    #[serde(default)]
    components: BTreeMap<String, ComponentWire>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NamesWire {
    timeout: Option<Spanned<String>>,
    retry: Option<Spanned<String>>,
    circuitBreaker: Option<Spanned<String>>,
    circuitBreakerCacheSize: Option<usize>,
    circuitBreakerScope: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentWire {
    inbound: Option<NamesWire>,
    outbound: Option<NamesWire>,
}

/// The built-in retries, with the minimum an override keeps (`DaprBuiltInActorNotFoundRetries`
/// may not be overridden at all).
pub(super) const BUILT_IN: &[&str] = &[
    "DaprBuiltInServiceRetries",
    "DaprBuiltInActorRetries",
    "DaprBuiltInActorReminderRetries",
    "DaprBuiltInInitializationRetries",
    "DaprBuiltInActorNotFoundRetries",
];

/// A built-in retry as daprd defines it when no document overrides it
/// (`D:pkg/resiliency/resiliency.go addBuiltInPolicies`).
pub(super) fn built_in(name: &str) -> Retry {
    let exponential = |max_interval, max_elapsed, max_retries| Retry {
        backoff: Backoff::Exponential {
            initial: Duration::from_millis(500),
            multiplier: 1.5,
            randomization: 0.5,
            max_interval,
            max_elapsed,
        },
        ..Retry::constant(Duration::ZERO, max_retries)
    };
    match name {
        "DaprBuiltInActorReminderRetries" => {
            exponential(Duration::from_secs(60), Duration::from_secs(900), -1)
        }
        "DaprBuiltInInitializationRetries" => {
            exponential(Duration::from_secs(1), Duration::from_secs(10), 3)
        }
        "DaprBuiltInActorNotFoundRetries" => Retry::constant(Duration::from_secs(1), 5),
        // DaprBuiltInServiceRetries, DaprBuiltInActorRetries.
        _ => Retry::constant(Duration::from_secs(1), 3),
    }
}

/// Reads one Resiliency document, the `offset` lines into its file: the document and what the
/// user should know about it (overrides Dapr adjusts), or every problem found.
pub fn read(document: &str, offset: u64) -> Result<(Document, Vec<String>), Vec<Diagnostic>> {
    let options = serde_saphyr::options! { with_snippet: false };
    let wire = serde_saphyr::from_str_with_options::<ResiliencyWire>(document, options)
        .map_err(|err| {
            vec![crate::components::yaml_diagnostic(&err, offset).hint(
                "a Resiliency has `spec.policies` (timeouts, retries, circuitBreakers) and `spec.targets` (apps, actors, components)",
            )]
        })?;
    let mut reader = Reader {
        offset,
        problems: Vec::new(),
        notices: Vec::new(),
    };
    let spec = wire.spec.value;
    let mut document = Document {
        name: wire.metadata.name.unwrap_or_else(|| "unnamed".into()),
        origin: String::new(),
        scopes: wire.scopes,
        ..Document::default()
    };
    for (name, value) in &spec.policies.timeouts {
        if let Some(limit) = reader.duration(value, "timeout") {
            document.timeouts.insert(name.clone(), limit);
        }
    }
    for (name, wire) in &spec.policies.retries {
        if let Some(retry) = reader.retry(name, wire) {
            document
                .retries
                .insert(name.clone(), std::sync::Arc::new(retry));
        }
    }
    for (name, wire) in &spec.policies.circuitBreakers {
        if let Some(breaker) = reader.breaker(wire) {
            document.breakers.insert(name.clone(), breaker);
        }
    }
    reader.targets(&spec.targets, &mut document);
    if reader.problems.is_empty() {
        Ok((document, reader.notices))
    } else {
        Err(reader.problems)
    }
}

struct Reader {
    offset: u64,
    problems: Vec<Diagnostic>,
    notices: Vec<String>,
}

impl Reader {
    fn at<T>(&self, spanned: &Spanned<T>) -> (u64, u64) {
        crate::components::at(spanned, self.offset)
    }

    fn problem<T>(&mut self, spanned: &Spanned<T>, message: String, hint: &str) {
        let (line, column) = self.at(spanned);
        self.problems
            .push(Diagnostic::at(line, column, message).hint(hint));
    }

    /// A Go duration, or a bare integer of milliseconds, as dapr/kit decodes them.
    fn duration(&mut self, value: &Spanned<EnvValue>, what: &str) -> Option<Duration> {
        let text = value.value.to_env_string();
        let parsed = match text.trim().parse::<i64>() {
            Ok(ms) => u64::try_from(ms).ok().map(Duration::from_millis),
            Err(_) => crate::timespec::go_duration(text.trim())
                .ok()
                .and_then(|d| d.to_std()),
        };
        if parsed.is_none() {
            self.problem(
                value,
                format!("invalid {what} `{text}`"),
                "a Go duration such as 500ms, 5s or 1m30s, or a number of milliseconds",
            );
        }
        parsed
    }

    fn retry(&mut self, name: &str, wire: &Spanned<RetryWire>) -> Option<Retry> {
        let r = &wire.value;
        let mut duration = |value: &Option<Spanned<EnvValue>>, default: Duration, what| {
            value
                .as_ref()
                .map_or(Some(default), |value| self.duration(value, what))
        };
        let every = duration(&r.duration, Duration::from_secs(5), "duration");
        let initial = duration(
            &r.initialInterval,
            Duration::from_millis(500),
            "initialInterval",
        );
        let max_interval = duration(&r.maxInterval, Duration::from_secs(60), "maxInterval");
        let max_elapsed = duration(
            &r.maxElapsedTime,
            Duration::from_secs(900),
            "maxElapsedTime",
        );
        let policy = r.policy.as_ref().map(|p| p.value.to_ascii_lowercase());
        let backoff = match policy.as_deref() {
            None | Some("constant") => Backoff::Constant(every?),
            Some("exponential") => Backoff::Exponential {
                initial: initial?,
                multiplier: r.multiplier.unwrap_or(1.5),
                randomization: r.randomizationFactor.unwrap_or(0.5).clamp(0.0, 1.0),
                max_interval: max_interval?,
                max_elapsed: max_elapsed?,
            },
            Some(other) => {
                let at = r.policy.as_ref().expect("UNWRAP: matched Some");
                let message = format!("unexpected back off policy type `{other}`");
                self.problem(at, message, "`policy` is `constant` or `exponential`");
                return None;
            }
        };
        let mut max_retries = r.maxRetries.unwrap_or(-1);
        if max_retries < -1 {
            let message = format!("`maxRetries` {max_retries} is below -1");
            self.problem(
                wire,
                message,
                "-1 retries forever, 0 never, N retries N times",
            );
            return None;
        }
        if name == "DaprBuiltInActorNotFoundRetries" {
            self.notices.push(format!(
                "`{name}` is protected; Dapr ignores an override of it, and so does daca"
            ));
            return None;
        }
        if BUILT_IN.contains(&name) && max_retries < 3 {
            self.notices.push(format!(
                "`{name}` sets maxRetries {max_retries}, (below 3, or forever) for a built-in policy; it is reset to 3, as Dapr does"
            ));
            max_retries = 3;
        }
        let (http_codes, grpc_codes) = self.matching(r.matching.as_ref());
        Some(Retry {
            backoff,
            max_retries,
            http_codes,
            grpc_codes,
        })
    }

    /// `matching.httpStatusCodes` and `matching.gRPCStatusCodes` (empty when absent or bad).
    #[allow(
        clippy::type_complexity,
        reason = "two lists of ranges, named at the caller"
    )]
    fn matching(&mut self, matching: Option<&MatchingWire>) -> (Vec<(i32, i32)>, Vec<(i32, i32)>) {
        let mut codes = |value: Option<&Spanned<EnvValue>>,
                         parse: fn(&str) -> Result<_, String>| {
            let value = value?;
            match parse(&value.value.to_env_string()) {
                Ok(list) => Some(list),
                Err(err) => {
                    self.problem(
                        value,
                        err,
                        "a comma list of codes and ranges, e.g. 429,500-599",
                    );
                    None
                }
            }
        };
        let http = codes(
            matching.and_then(|m| m.httpStatusCodes.as_ref()),
            retry::http_codes,
        );
        let grpc = codes(
            matching.and_then(|m| m.gRPCStatusCodes.as_ref()),
            retry::grpc_codes,
        );
        (http.unwrap_or_default(), grpc.unwrap_or_default())
    }

    fn breaker(&mut self, wire: &Spanned<BreakerWire>) -> Option<BreakerSpec> {
        let b = &wire.value;
        let interval = match &b.interval {
            Some(value) => self.duration(value, "interval")?,
            None => Duration::ZERO,
        };
        let timeout = match &b.timeout {
            Some(value) => self.duration(value, "timeout")?,
            None => Duration::ZERO,
        };
        let trip = match &b.trip {
            None => None,
            Some(text) => match check_trip(&text.value) {
                Ok(expr) => Some((expr, text.value.clone())),
                Err(err) => {
                    self.problem(
                        text,
                        format!("invalid `trip` expression: {err}"),
                        "a CEL expression over requests, totalSuccesses, totalFailures, consecutiveSuccesses, consecutiveFailures, e.g. consecutiveFailures > 5",
                    );
                    return None;
                }
            },
        };
        Some(BreakerSpec {
            // gobreaker's defaults for zero values: one probe, a 60 s open state.
            max_requests: b.maxRequests.filter(|n| *n > 0).unwrap_or(1),
            interval,
            timeout: if timeout.is_zero() {
                Duration::from_secs(60)
            } else {
                timeout
            },
            trip,
        })
    }
}

impl Reader {
    fn targets(&mut self, targets: &TargetsWire, document: &mut Document) {
        for (app, wire) in &targets.apps {
            if let Some(scope) = &wire.circuitBreakerScope {
                let message = "`circuitBreakerScope` is for actor targets".to_string();
                self.problem(
                    scope,
                    message,
                    "remove it; an app's breakers are per method",
                );
            }
            let target = AppTarget {
                names: self.names(wire),
                cache_size: wire.circuitBreakerCacheSize.unwrap_or(100).max(1),
            };
            document.apps.insert(app.clone(), target);
        }
        for (actor_type, wire) in &targets.actors {
            let names = self.names(&wire.value);
            let scope = match wire.value.circuitBreakerScope.as_ref() {
                None if names.circuit_breaker.is_some() => {
                    let message = format!(
                        "actor target `{actor_type}` has a circuit breaker but no `circuitBreakerScope`"
                    );
                    self.problem(
                        wire,
                        message,
                        "add `circuitBreakerScope: type`, `id` or `both`",
                    );
                    continue;
                }
                None => ActorScope::Type,
                Some(scope) => match scope.value.as_str() {
                    "type" => ActorScope::Type,
                    "id" => ActorScope::Id,
                    "both" => ActorScope::Both,
                    other => {
                        let message = format!("unknown circuit breaker scope `{other}`");
                        self.problem(scope, message, "`type`, `id` or `both`");
                        continue;
                    }
                },
            };
            let target = ActorTarget {
                names,
                scope,
                cache_size: wire.value.circuitBreakerCacheSize.unwrap_or(5000).max(1),
            };
            document.actors.insert(actor_type.clone(), target);
        }
        for (component, wire) in &targets.components {
            let mut side = |names: &Option<NamesWire>| match names {
                Some(names) => {
                    if let Some(scope) = &names.circuitBreakerScope {
                        let message = "`circuitBreakerScope` is for actor targets".to_string();
                        self.problem(scope, message, "remove it; a component has one breaker");
                    }
                    self.names(names)
                }
                None => Names::default(),
            };
            let target = ComponentTarget {
                inbound: side(&wire.inbound),
                outbound: side(&wire.outbound),
            };
            document.components.insert(component.clone(), target);
        }
    }

    fn names(&self, wire: &NamesWire) -> Names {
        let reference = |r: &Option<Spanned<String>>| {
            r.as_ref().map(|r| super::Ref {
                name: r.value.clone(),
                at: self.at(r),
            })
        };
        Names {
            timeout: reference(&wire.timeout),
            retry: reference(&wire.retry),
            circuit_breaker: reference(&wire.circuitBreaker),
        }
    }
}

/// Parses a `trip` expression and evaluates it once over zero counts, so that a name it
/// misspells or a result that is not a bool is found now rather than never tripping.
fn check_trip(text: &str) -> Result<Expr, String> {
    let expr = Expr::parse(text)?;
    expr.eval_vars(&super::breaker::Counts::default().vars())?;
    Ok(expr)
}
