//! Cron schedules as Dapr reads them (robfig/cron through dapr/kit): 5 fields, or 6 with
//! seconds first; the descriptors `@yearly`, `@monthly`, `@weekly`, `@daily`/`@midnight`,
//! `@hourly` and `@every <Go duration>`; an optional `TZ=Zone ` or `CRON_TZ=Zone ` prefix,
//! else the machine's time zone. `bindings.cron` takes 5 or 6 fields; the jobs API exactly 6.

use std::time::{Duration, SystemTime};

use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// How many fields a schedule may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// `bindings.cron`: 5 (no seconds) or 6.
    FiveOrSix,
    /// The jobs API: exactly 6.
    Six,
}

/// A parsed schedule: when it fires after a given time.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    zone: TimeZone,
    /// `Local`, or the zone the prefix names (the cron binding's `timeZone` header).
    zone_name: String,
}

#[derive(Debug, Clone)]
enum Kind {
    Every(Duration),
    Cron(Box<croner::Cron>),
}

impl Schedule {
    /// Parses `text`; the error says what is wrong, in words a user can act on.
    pub fn parse(text: &str, fields: Fields) -> Result<Schedule, String> {
        let text = text.trim();
        let (zone_name, rest) = match text.split_once(' ') {
            Some((prefix, rest)) if prefix.starts_with("TZ=") || prefix.starts_with("CRON_TZ=") => {
                let name = prefix.split_once('=').map(|(_, n)| n).unwrap_or_default();
                (Some(name), rest.trim())
            }
            _ => (None, text),
        };
        let zone = match zone_name {
            Some(name) => TimeZone::get(name).map_err(|_| format!("unknown time zone `{name}`"))?,
            None => TimeZone::system(),
        };
        let kind = match rest.strip_prefix("@every") {
            Some(every) => {
                let duration = crate::timespec::go_duration(every.trim())
                    .ok()
                    .and_then(|d| d.to_std())
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        format!(
                            "`@every` needs a positive Go duration such as `15m`, not `{}`",
                            every.trim()
                        )
                    })?;
                Kind::Every(duration)
            }
            None => Kind::Cron(Box::new(cron(rest, fields)?)),
        };
        Ok(Schedule {
            kind,
            zone,
            zone_name: zone_name.unwrap_or("Local").to_string(),
        })
    }

    /// The first time it fires strictly after `after`; none when it never does again.
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        match &self.kind {
            // As robfig/cron: `@every d` of a second or more ticks on whole seconds, d cut to
            // whole seconds (kit's fork keeps a sub-second interval as it is).
            Kind::Every(every) if *every >= Duration::from_secs(1) => {
                let delay = Duration::from_secs(every.as_secs());
                round_down_to_second(after).checked_add(delay)
            }
            Kind::Every(every) => after.checked_add(*every),
            Kind::Cron(cron) => {
                let at = Timestamp::try_from(after).ok()?.to_zoned(self.zone.clone());
                let next: Zoned = cron.find_next_occurrence(&at, false).ok()?;
                Some(SystemTime::from(next.timestamp()))
            }
        }
    }

    /// The zone it runs in, as the cron binding's `timeZone` header says it.
    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }
}

fn round_down_to_second(time: SystemTime) -> SystemTime {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs())
}

/// A cron pattern or descriptor with the fields `fields` allows.
fn cron(text: &str, fields: Fields) -> Result<croner::Cron, String> {
    if text.is_empty() {
        return Err("the schedule is empty".into());
    }
    let count = text.split_whitespace().count();
    let descriptor = text.starts_with('@');
    if !descriptor {
        match (fields, count) {
            (Fields::FiveOrSix, 5 | 6) | (Fields::Six, 6) => {}
            (Fields::Six, _) => {
                return Err(format!(
                    "`{text}` has {count} fields; a job's schedule has 6 (seconds first), or is a descriptor such as `@every 1m`"
                ));
            }
            (Fields::FiveOrSix, _) => {
                return Err(format!(
                    "`{text}` has {count} fields; a cron schedule has 5, or 6 with seconds first"
                ));
            }
        }
    }
    if text.eq_ignore_ascii_case("@midnight") {
        return cron("@daily", fields);
    }
    let seconds = match (fields, count) {
        (_, 6) => Seconds::Required,
        _ => Seconds::Optional,
    };
    CronParser::builder()
        .seconds(seconds)
        .year(Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|err| format!("`{text}`: {err}"))
}

/// Go's `time.Time.String()` of `time` in UTC, as the cron binding's `readTimeUTC` header
/// carries it: `2026-08-21 10:00:00.123456789 +0000 UTC`, trailing zeros of the fraction cut.
pub fn go_utc_string(time: SystemTime) -> String {
    let Ok(at) = Timestamp::try_from(time) else {
        return String::new();
    };
    let utc = at.to_zoned(TimeZone::UTC);
    let mut text = utc.strftime("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = utc.subsec_nanosecond();
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push_str(" +0000 UTC");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        SystemTime::from(text.parse::<Timestamp>().unwrap())
    }

    fn next(schedule: &str, fields: Fields, after: &str) -> String {
        let schedule = Schedule::parse(schedule, fields).unwrap();
        let next = schedule.next_after(at(after)).unwrap();
        Timestamp::try_from(next).unwrap().to_string()
    }

    #[test]
    fn five_or_six_fields_and_descriptors() {
        let t = "2026-08-21T10:00:00.5Z";
        assert_eq!(
            next("TZ=UTC */5 * * * *", Fields::FiveOrSix, t),
            "2026-08-21T10:05:00Z"
        );
        assert_eq!(
            next("TZ=UTC 30 * * * * *", Fields::FiveOrSix, t),
            "2026-08-21T10:00:30Z"
        );
        assert_eq!(
            next("TZ=UTC @hourly", Fields::Six, t),
            "2026-08-21T11:00:00Z"
        );
        assert_eq!(
            next("CRON_TZ=UTC @midnight", Fields::Six, t),
            "2026-08-22T00:00:00Z"
        );
        assert_eq!(next("@every 15m", Fields::Six, t), "2026-08-21T10:15:00Z");
        assert_eq!(
            next("@every 1s", Fields::FiveOrSix, t),
            "2026-08-21T10:00:01Z"
        );
        // The zone moves the wall clock: 10:00 UTC is 12:00 in Berlin in August.
        assert_eq!(
            next("TZ=Europe/Berlin 0 0 13 * * *", Fields::Six, t),
            "2026-08-21T11:00:00Z"
        );
        let berlin = Schedule::parse("TZ=Europe/Berlin @daily", Fields::Six).unwrap();
        assert_eq!(berlin.zone_name(), "Europe/Berlin");
        assert_eq!(
            Schedule::parse("@daily", Fields::Six).unwrap().zone_name(),
            "Local"
        );
    }

    #[test]
    fn bad_schedules_say_why() {
        let error = |s: &str, f| Schedule::parse(s, f).unwrap_err();
        assert!(error("*/5 * * * *", Fields::Six).contains("has 5 fields"));
        assert!(error("* * *", Fields::FiveOrSix).contains("has 3 fields"));
        assert!(error("@every soon", Fields::Six).contains("Go duration"));
        assert!(error("TZ=Mars/Olympus @daily", Fields::Six).contains("unknown time zone"));
        assert!(error("99 * * * *", Fields::FiveOrSix).starts_with("`99 * * * *`"));
        assert!(error("", Fields::FiveOrSix).contains("empty"));
    }

    #[test]
    fn read_time_is_go_s_utc_string() {
        assert_eq!(
            go_utc_string(at("2026-08-21T10:00:00.123456789Z")),
            "2026-08-21 10:00:00.123456789 +0000 UTC"
        );
        assert_eq!(
            go_utc_string(at("2026-08-21T10:00:00.5Z")),
            "2026-08-21 10:00:00.5 +0000 UTC"
        );
        assert_eq!(
            go_utc_string(at("2026-08-21T10:00:00Z")),
            "2026-08-21 10:00:00 +0000 UTC"
        );
    }
}
