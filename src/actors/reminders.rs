//! Actor reminders: jobs of the durable scheduler under `actorreminder||<type>||<id>||<name>`,
//! made as Dapr's Scheduler makes them (`period` as `@every <duration>` plus repeats, the first
//! fire at `dueTime` or one interval after creation, `ttl` needing a schedule). When one is
//! due, the actor's host (any app hosting the type) gets `PUT
//! /actors/{type}/{id}/method/remind/{name}` with `{"data":…,"dueTime":"","period":""}`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Weak;
use std::time::SystemTime;

use bytes::Bytes;
use serde_json::{Value, json};

use super::{ActorError, Actors, Callback, check_name, check_reserved};
use crate::scheduler::{Delivered, Job, ScheduleError, Target, check_job_name, point_in_time};
use crate::timespec::{self, GoDuration};

pub const PREFIX: &str = "actorreminder||";

/// A reminder as registered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReminderSpec {
    pub due_time: Option<String>,
    pub period: Option<String>,
    pub ttl: Option<String>,
    /// Raw JSON (`null` included); absent leaves `data` out.
    pub data: Option<Vec<u8>>,
    /// Replace one of the same name (the default); false fails when there is one.
    pub overwrite: Option<bool>,
}

fn job_key(actor_type: &str, id: &str, name: &str) -> String {
    format!("{PREFIX}{actor_type}||{id}||{name}")
}

fn nanos(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The job for a reminder, or why the Scheduler would refuse it.
fn job(key: String, spec: &ReminderSpec, now: SystemTime) -> Result<Job, String> {
    let due = spec.due_time.as_deref().filter(|d| !d.is_empty());
    let ttl = spec.ttl.as_deref().filter(|t| !t.is_empty());
    let (every, repeats) = match spec.period.as_deref().filter(|p| !p.is_empty()) {
        Some(raw) => {
            let iso = timespec::period(raw)?;
            if iso.has_calendar() || iso.duration.0 <= 0 {
                return Err(format!("unsupported period format: {raw}"));
            }
            // R0 means no end for reminders (only n > 0 is passed on).
            (Some(iso.duration), iso.repetitions.filter(|n| *n > 0))
        }
        None => (None, None),
    };
    if due.is_none() && every.is_none() {
        return Err("job must have either a due time or a schedule".into());
    }
    if every.is_none() && ttl.is_some() {
        return Err("job must have a schedule to have a ttl".into());
    }
    let first = match (due, every) {
        (Some(due), _) => point_in_time(due, now)?,
        (None, Some(every)) => timespec::shift(now, every).ok_or("schedule out of range")?,
        (None, None) => now,
    };
    let expires = match ttl {
        Some(ttl) => {
            let from = if due.is_some() { first } else { now };
            let at = point_in_time(ttl, from).map_err(|_| "ttl format not recognized")?;
            if due.is_some() && first > at {
                return Err("ttl must be greater than due time".into());
            }
            Some(nanos(at))
        }
        None => None,
    };
    let mut words = BTreeMap::new();
    for (field, value) in [
        ("dueTime", due),
        ("period", spec.period.as_deref()),
        ("ttl", ttl),
    ] {
        if let Some(value) = value {
            words.insert(field.to_string(), value.to_string());
        }
    }
    Ok(Job {
        key,
        due_ns: nanos(first),
        every_ns: every.map(|e| e.0 as u64),
        repeats: repeats.map(|n| n as u64),
        expires_ns: expires,
        data: spec.data.clone(),
        spec: words,
        cron: None,
        failure: None,
    })
}

impl Actors {
    fn checked_reminder(
        &self,
        app: &str,
        actor_type: &str,
        id: &str,
        name: &str,
    ) -> Result<String, ActorError> {
        check_reserved(actor_type)?;
        for (what, value) in [("actorType", actor_type), ("actorId", id), ("name", name)] {
            check_name(what, value)?;
        }
        if !self.hosts(app, actor_type) {
            return Err(ActorError::reminder_non_hosted());
        }
        Ok(job_key(actor_type, id, name))
    }

    pub fn create_reminder(
        &self,
        app: &str,
        actor_type: &str,
        id: &str,
        name: &str,
        spec: ReminderSpec,
    ) -> Result<(), ActorError> {
        let key = self.checked_reminder(app, actor_type, id, name)?;
        if self.components.get().actor_store().is_none() {
            return Err(ActorError::no_store());
        }
        check_job_name(&format!(
            "actorreminder||default||{actor_type}||{id}||{name}"
        ))
        .map_err(ActorError::reminder_create)?;
        let job = job(key, &spec, SystemTime::now()).map_err(ActorError::reminder_create)?;
        match self.scheduler.put(job, spec.overwrite.unwrap_or(true)) {
            Ok(()) => Ok(()),
            Err(ScheduleError::Exists(_)) => Err(ActorError::reminder_exists(name)),
            Err(ScheduleError::Store(err)) => Err(ActorError::reminder_create(err)),
        }
    }

    /// A reminder as Dapr's GET shows it.
    pub fn get_reminder(
        &self,
        app: &str,
        actor_type: &str,
        id: &str,
        name: &str,
    ) -> Result<Value, ActorError> {
        let key = self.checked_reminder(app, actor_type, id, name)?;
        let job = self
            .scheduler
            .get(&key)
            .ok_or_else(|| ActorError::reminder_not_found(name))?;
        Ok(reminder_view(actor_type, id, &job))
    }

    pub fn delete_reminder(
        &self,
        app: &str,
        actor_type: &str,
        id: &str,
        name: &str,
    ) -> Result<(), ActorError> {
        let key = self.checked_reminder(app, actor_type, id, name)?;
        self.scheduler
            .delete(&key)
            .map(|_| ())
            .map_err(|e| ActorError::reminder_delete(e.to_string()))
    }

    /// Reminders of a type (and id), with when each fires next.
    pub fn reminders(&self, actor_type: &str, id: Option<&str>) -> Vec<(Job, u64)> {
        let prefix = match id {
            Some(id) => format!("{PREFIX}{actor_type}||{id}||"),
            None => format!("{PREFIX}{actor_type}||"),
        };
        self.scheduler.list(&prefix)
    }

    /// One reminder fire into its actor.
    async fn remind(&self, job: Job) -> Delivered {
        let Some(rest) = job.key.strip_prefix(PREFIX) else {
            return Delivered::Done;
        };
        let mut parts = rest.splitn(3, "||");
        let (Some(actor_type), Some(id), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            return Delivered::Done;
        };
        let Ok(active) = self.activate(actor_type, id).await else {
            return Delivered::NotThere; // no app hosts the type now; it waits for one
        };
        if !self
            .apps
            .instance(&active.host)
            .is_some_and(|c| c.is_ready())
        {
            return Delivered::NotThere; // reloading: the reminder waits for it
        }
        let mut body = serde_json::Map::new();
        if let Some(data) = &job.data {
            let value: Value = serde_json::from_slice(data).unwrap_or_default();
            body.insert("data".into(), value);
        }
        body.insert("dueTime".into(), "".into());
        body.insert("period".into(), "".into());
        let method = format!("remind/{name}");
        let callback = Callback {
            method: &method,
            query: None,
            headers: super::timers::json_headers(),
            body: Bytes::from(ordered(&body)),
        };
        let flight = crate::pubsub::envelope::uuid_v4();
        match self.call(&active, callback, &flight).await {
            Ok(answer) if answer.status == 200 => Delivered::Done,
            Ok(answer) => Delivered::Failed(format!("the app answered {}", answer.status)),
            Err(err) => Delivered::Failed(err.message),
        }
    }
}

/// `{"data":…,"dueTime":"","period":""}` in that order, `data` compacted as Go does.
fn ordered(body: &serde_json::Map<String, Value>) -> Vec<u8> {
    let mut out = b"{".to_vec();
    if let Some(data) = body.get("data") {
        out.extend_from_slice(b"\"data\":");
        out.extend(crate::pubsub::envelope::go_json(data));
        out.push(b',');
    }
    out.extend_from_slice(br#""dueTime":"","period":""}"#);
    out
}

/// Dapr's GET reminder body: `period` as the Scheduler's `@every`, `ttl` only when absolute.
fn reminder_view(actor_type: &str, id: &str, job: &Job) -> Value {
    let mut view = json!({ "actorID": id, "actorType": actor_type });
    if let Some(data) = job
        .data
        .as_ref()
        .and_then(|d| serde_json::from_slice::<Value>(d).ok())
    {
        view["data"] = data;
    }
    if let Some(due) = job.spec.get("dueTime") {
        view["dueTime"] = due.clone().into();
    }
    if let Some(every) = job.every_ns {
        view["period"] = format!("@every {}", timespec::go_string(GoDuration(every as i64))).into();
    }
    if let Some(ttl) = job
        .spec
        .get("ttl")
        .filter(|t| timespec::rfc3339(t).is_some())
    {
        view["ttl"] = ttl.clone().into();
    }
    view
}

/// The scheduler's way into the runtime (weakly: the scheduler outlives nothing).
pub(super) struct Deliver(pub Weak<Actors>);

impl Target for Deliver {
    fn deliver(&self, job: Job) -> Pin<Box<dyn Future<Output = Delivered> + Send + '_>> {
        Box::pin(async move {
            match self.0.upgrade() {
                Some(actors) => actors.remind(job).await,
                None => Delivered::Done,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec(due: Option<&str>, period: Option<&str>, ttl: Option<&str>) -> ReminderSpec {
        ReminderSpec {
            due_time: due.map(String::from),
            period: period.map(String::from),
            ttl: ttl.map(String::from),
            ..ReminderSpec::default()
        }
    }

    #[test]
    fn reminders_are_scheduled_as_daprs_scheduler_does() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ns = |s: u64| nanos(now + Duration::from_secs(s));
        let five = job("k".into(), &spec(Some("1s"), Some("R5/PT1S"), None), now).unwrap();
        assert_eq!(
            (five.due_ns, five.every_ns, five.repeats),
            (ns(1), Some(1_000_000_000), Some(5))
        );
        let later = job("k".into(), &spec(None, Some("90s"), None), now).unwrap();
        assert_eq!(
            later.due_ns,
            ns(90),
            "no dueTime: one interval after creation"
        );
        let once = job("k".into(), &spec(Some("0s"), None, None), now).unwrap();
        assert_eq!((once.due_ns, once.every_ns), (ns(0), None));
        let endless = job("k".into(), &spec(None, Some("R0/PT1S"), None), now).unwrap();
        assert_eq!(endless.repeats, None, "R0 has no end for reminders");
        let fail = |s: ReminderSpec| job("k".into(), &s, now).unwrap_err();
        assert_eq!(
            fail(spec(None, Some("P1D"), None)),
            "unsupported period format: P1D"
        );
        assert_eq!(
            fail(spec(None, None, None)),
            "job must have either a due time or a schedule"
        );
        assert_eq!(
            fail(spec(Some("1s"), None, Some("5s"))),
            "job must have a schedule to have a ttl"
        );
        assert_eq!(
            fail(spec(
                Some("2030-01-01T00:00:00Z"),
                Some("1s"),
                Some("1970-02-01T00:00:00Z")
            )),
            "ttl must be greater than due time"
        );
    }

    #[test]
    fn the_get_body_and_the_fire_body_are_daprds() {
        let now = SystemTime::now();
        let mut reminder = spec(Some("1s"), Some("1s"), Some("2552-01-01T00:00:00Z"));
        reminder.data = Some(br#""reminderdata""#.to_vec());
        let job = job("k".into(), &reminder, now).unwrap();
        assert_eq!(
            reminder_view("foo", "1234", &job).to_string(),
            r#"{"actorID":"1234","actorType":"foo","data":"reminderdata","dueTime":"1s","period":"@every 1s","ttl":"2552-01-01T00:00:00Z"}"#
        );
        let relative = job_with_ttl_20s();
        assert!(reminder_view("foo", "1", &relative).get("ttl").is_none());
        let mut body = serde_json::Map::new();
        body.insert("data".into(), json!(true));
        assert_eq!(ordered(&body), br#"{"data":true,"dueTime":"","period":""}"#);
        assert_eq!(
            ordered(&serde_json::Map::new()),
            br#"{"dueTime":"","period":""}"#
        );
    }

    fn job_with_ttl_20s() -> Job {
        job(
            "k".into(),
            &spec(None, Some("1s"), Some("20s")),
            SystemTime::now(),
        )
        .unwrap()
    }

    #[test]
    fn names_follow_the_schedulers_rule() {
        assert!(check_job_name("actorreminder||default||Counter||1||my_reminder").is_ok());
        assert!(check_job_name("actorreminder||default||T||user@example.com||r").is_err());
    }
}
