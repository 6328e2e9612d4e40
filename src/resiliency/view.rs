//! What the dashboard shows of the resiliency policies: each policy, each target and each
//! breaker with its live state.

use serde::Serialize;
use serde_json::{Value, json};

use super::breaker::label;
use super::retry::{Backoff, Retry};
use super::{Document, Names, Resiliency};

#[derive(Serialize)]
pub struct Overview {
    pub policies: Vec<Value>,
    pub targets: Vec<Value>,
    pub breakers: Vec<Value>,
}

fn humanize(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn retries(max: i64) -> String {
    match max {
        n if n < 0 => "retries forever".into(),
        1 => "1 retry".into(),
        n => format!("{n} retries"),
    }
}

fn codes(list: &[(i32, i32)]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    items.join(",")
}

pub fn overview(resiliency: &Resiliency) -> Overview {
    let mut policies = Vec::new();
    let mut targets = Vec::new();
    for d in resiliency.documents() {
        policies.extend(policy_rows(d));
        targets.extend(target_rows(d));
    }
    let breakers = resiliency
        .breakers()
        .into_iter()
        .flat_map(|(app, breakers)| {
            breakers.into_iter().map(move |b| {
                let (state, counts) = b.state();
                json!({"app": app, "name": b.name, "policy": b.policy,
                    "state": label(state), "counts": counts})
            })
        })
        .collect();
    Overview {
        policies,
        targets,
        breakers,
    }
}

fn policy_rows(d: &Document) -> Vec<Value> {
    let row = |kind: &str, name: &str, detail: String| {
        json!({"resource": d.name, "origin": d.origin, "scopes": d.scopes,
            "kind": kind, "name": name, "detail": detail})
    };
    let mut rows = Vec::new();
    for (name, limit) in &d.timeouts {
        rows.push(row("timeout", name, humanize(*limit)));
    }
    for (name, r) in &d.retries {
        rows.push(row("retry", name, retry_detail(r)));
    }
    for (name, b) in &d.breakers {
        let trip = b
            .trip
            .as_ref()
            .map_or("consecutiveFailures > 5", |(_, t)| t.as_str());
        let detail = format!(
            "trips when {trip}; open {}, {} probe(s)",
            humanize(b.timeout),
            b.max_requests
        );
        rows.push(row("circuitBreaker", name, detail));
    }
    rows
}

fn retry_detail(r: &Retry) -> String {
    let mut detail = match &r.backoff {
        Backoff::Constant(every) => format!("constant {}", humanize(*every)),
        Backoff::Exponential {
            initial,
            max_interval,
            ..
        } => format!(
            "exponential from {} up to {}",
            humanize(*initial),
            humanize(*max_interval)
        ),
    };
    detail.push_str(&format!(", {}", retries(r.max_retries)));
    if !r.http_codes.is_empty() {
        detail.push_str(&format!(", HTTP {}", codes(&r.http_codes)));
    }
    if !r.grpc_codes.is_empty() {
        detail.push_str(&format!(", gRPC {}", codes(&r.grpc_codes)));
    }
    detail
}

fn target_rows(d: &Document) -> Vec<Value> {
    let target = |kind: &str, name: &str, names: &Names| {
        let of = |r: &Option<super::Ref>| r.as_ref().map(|r| r.name.clone());
        json!({"resource": d.name, "kind": kind, "target": name,
            "timeout": of(&names.timeout), "retry": of(&names.retry),
            "circuitBreaker": of(&names.circuit_breaker)})
    };
    let mut rows = Vec::new();
    for (name, t) in &d.apps {
        rows.push(target("app", name, &t.names));
    }
    for (name, t) in &d.actors {
        rows.push(target("actor", name, &t.names));
    }
    for (name, t) in &d.components {
        for (side, names) in [("inbound", &t.inbound), ("outbound", &t.outbound)] {
            if *names != Names::default() {
                rows.push(target(&format!("component {side}"), name, names));
            }
        }
    }
    rows
}
