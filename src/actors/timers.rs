//! Actor timers: in memory, with their actor, as Dapr keeps them. A timer fires `PUT
//! /actors/{type}/{id}/method/timer/{name}` in the actor's turn, at its due time and then at
//! a fixed rate (each next fire is the previous one plus the period, ISO 8601 calendar parts
//! included); it ends after its repetitions, past its ttl, or with its actor.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio_util::sync::DropGuard;

use super::{ActorError, Actors, Callback, check_name, check_reserved};
use crate::timespec::{self, Iso};

/// A timer as registered (`POST /v1.0/actors/{type}/{id}/timers/{name}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerSpec {
    pub due_time: Option<String>,
    pub period: Option<String>,
    pub ttl: Option<String>,
    pub callback: Option<String>,
    /// Raw JSON (`null` included); absent leaves `data` out of the callback body.
    pub data: Option<Vec<u8>>,
}

/// A running timer; dropping it stops it.
pub(super) struct Timer {
    _stop: DropGuard,
}

/// When a timer fires.
#[derive(Debug)]
struct Plan {
    first: SystemTime,
    period: Option<Iso>,
    expires: Option<SystemTime>,
}

fn plan(key: &str, spec: &TimerSpec, now: SystemTime) -> Result<Plan, ActorError> {
    let first = match spec.due_time.as_deref().filter(|d| !d.is_empty()) {
        Some(due) => timespec::point_in_time(due, now)
            .map_err(|e| ActorError::timer(format!("error parsing timer due time: {e}")))?,
        None => now,
    };
    let period = match spec.period.as_deref().filter(|p| !p.is_empty()) {
        Some(raw) => {
            let iso = timespec::period(raw).map_err(|e| {
                ActorError::timer(format!("invalid timer period: parse error: {e}"))
            })?;
            if iso.repetitions == Some(0) {
                return Err(ActorError::timer(format!(
                    "invalid timer period: timer {key} has zero repetitions"
                )));
            }
            Some(iso)
        }
        None => None,
    };
    let expires = match spec.ttl.as_deref().filter(|t| !t.is_empty()) {
        Some(ttl) => Some(
            timespec::point_in_time(ttl, first)
                .map_err(|e| ActorError::timer(format!("error parsing timer TTL: {e}")))?,
        ),
        None => None,
    };
    if let Some(expires) = expires
        && (expires < now || expires < first)
    {
        let due = spec.due_time.clone().unwrap_or_default();
        let ttl = spec.ttl.clone().unwrap_or_default();
        return Err(ActorError::timer(format!(
            "timer {key} has already expired: dueTime: {due} TTL: {ttl}"
        )));
    }
    Ok(Plan {
        first,
        period,
        expires,
    })
}

/// The callback body: `data` (compacted, when given), `callback`, `dueTime`, `period`, in
/// that order.
fn body(spec: &TimerSpec) -> Bytes {
    let quote = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let mut out = String::from("{");
    if let Some(data) = &spec.data {
        let value: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
        let compact = crate::pubsub::envelope::go_json(&value);
        out.push_str(&format!("\"data\":{},", String::from_utf8_lossy(&compact)));
    }
    out.push_str(&format!(
        "\"callback\":{},\"dueTime\":{},\"period\":{}}}",
        quote(spec.callback.as_deref().unwrap_or_default()),
        quote(spec.due_time.as_deref().unwrap_or_default()),
        quote(spec.period.as_deref().unwrap_or_default()),
    ));
    Bytes::from(out)
}

fn until(at: SystemTime) -> Duration {
    at.duration_since(SystemTime::now()).unwrap_or_default()
}

impl Actors {
    /// Registers (or replaces) a timer; the actor is activated on its host.
    pub async fn create_timer(
        self: &Arc<Self>,
        app: &str,
        actor_type: &str,
        id: &str,
        name: &str,
        spec: TimerSpec,
    ) -> Result<(), ActorError> {
        check_reserved(actor_type)?;
        for (what, value) in [("actorType", actor_type), ("actorId", id), ("name", name)] {
            check_name(what, value)?;
        }
        let key = format!("{actor_type}||{id}||{name}");
        if !self.hosts(app, actor_type) {
            return Err(ActorError::timer(format!(
                "can't create timer for actor {actor_type}||{id}: actor type not registered"
            )));
        }
        let plan = plan(&key, &spec, SystemTime::now())?;
        let active = self.activate(actor_type, id).await?;
        let stop = self.background.token.child_token();
        let run = fire(
            Arc::downgrade(self),
            Arc::downgrade(&active),
            name.to_string(),
            spec,
            plan,
        );
        let token = stop.clone();
        self.background.tasks.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                () = run => {}
            }
        });
        let timer = Timer {
            _stop: stop.drop_guard(),
        };
        active.timers.lock().insert(name.to_string(), timer);
        Ok(())
    }

    /// Stops a timer; unknown timers are fine, as in Dapr.
    pub fn delete_timer(&self, actor_type: &str, id: &str, name: &str) -> Result<(), ActorError> {
        check_reserved(actor_type)?;
        check_name("name", name)?;
        if let Some(active) = self.active(actor_type, id) {
            active.timers.lock().remove(name);
        }
        Ok(())
    }
}

/// A timer's fires, until its plan ends (or its actor does: the task is cancelled then).
async fn fire(
    actors: Weak<Actors>,
    active: Weak<super::Active>,
    name: String,
    spec: TimerSpec,
    plan: Plan,
) {
    let mut next = plan.first;
    let mut fired: i64 = 0;
    loop {
        tokio::time::sleep(until(next)).await;
        if plan.expires.is_some_and(|e| next > e) {
            break;
        }
        let (Some(actors), Some(active)) = (actors.upgrade(), active.upgrade()) else {
            return;
        };
        let method = format!("timer/{name}");
        let callback = Callback {
            method: &method,
            query: None,
            headers: json_headers(),
            body: body(&spec),
        };
        let flight = crate::pubsub::envelope::uuid_v4();
        match actors.call(&active, callback, &flight).await {
            Ok(answer) if answer.status == 200 => {}
            Ok(answer) => tracing::warn!(
                "{}: timer {name} of {}/{} answered {}",
                active.host,
                active.actor_type,
                active.id,
                answer.status
            ),
            Err(err) => tracing::warn!(
                "timer {name} of {}/{}: {}",
                active.actor_type,
                active.id,
                err.message
            ),
        }
        fired += 1;
        let Some(period) = plan.period else { break };
        if period.repetitions.is_some_and(|n| fired >= n) {
            break;
        }
        match timespec::after(next, &period) {
            Some(after) if after > next => next = after,
            _ => break, // a zero period would fire without end
        }
    }
    if let Some(active) = active.upgrade() {
        active.timers.lock().remove(&name);
    }
}

pub(super) fn json_headers() -> axum::http::HeaderMap {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_body_is_daprds() {
        let spec = TimerSpec {
            due_time: Some("0s".into()),
            data: Some(br#"{  "foo": [ 12, 4 ] }"#.to_vec()),
            ..TimerSpec::default()
        };
        assert_eq!(
            body(&spec),
            r#"{"data":{"foo":[12,4]},"callback":"","dueTime":"0s","period":""}"#
        );
        let none = TimerSpec::default();
        assert_eq!(body(&none), r#"{"callback":"","dueTime":"","period":""}"#);
        let null = TimerSpec {
            data: Some(b"null".to_vec()),
            ..TimerSpec::default()
        };
        assert!(body(&null).starts_with(br#"{"data":null,"#));
    }

    #[test]
    fn plans_follow_daprs_rules() {
        let now = SystemTime::now();
        let key = "T||1||t";
        let plain = plan(key, &TimerSpec::default(), now).unwrap();
        assert_eq!(plain.first, now, "no dueTime fires at once");
        let zero = TimerSpec {
            period: Some("R0/PT1S".into()),
            ..TimerSpec::default()
        };
        assert!(
            plan(key, &zero, now)
                .unwrap_err()
                .message
                .contains("zero repetitions")
        );
        let days = TimerSpec {
            period: Some("P1D".into()),
            ..TimerSpec::default()
        };
        assert!(
            plan(key, &days, now).is_ok(),
            "timers take calendar periods"
        );
        let bad = TimerSpec {
            due_time: Some("soon".into()),
            ..TimerSpec::default()
        };
        assert!(
            plan(key, &bad, now)
                .unwrap_err()
                .message
                .contains("error parsing timer due time")
        );
        let expired = TimerSpec {
            ttl: Some("2000-01-01T00:00:00Z".into()),
            ..TimerSpec::default()
        };
        assert!(
            plan(key, &expired, now)
                .unwrap_err()
                .message
                .contains("has already expired")
        );
    }
}
