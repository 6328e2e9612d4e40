//! Go and ISO 8601 durations, periods, points in time and cron schedules (jobs, reminders,
//! TTLs, timeouts, `bindings.cron`): a value or an error, never a panic or an endless search.
#![no_main]

use std::time::{Duration, SystemTime};

use daca::cron::{Fields, Schedule};
use daca::timespec;

libfuzzer_sys::fuzz_target!(|text: &str| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    if let Ok(duration) = timespec::go_duration(text) {
        let _ = timespec::go_string(duration);
        let _ = timespec::shift(now, duration);
    }
    if let Ok(iso) = timespec::iso8601(text) {
        let _ = timespec::after(now, &iso);
    }
    let _ = timespec::period(text);
    let _ = timespec::point_in_time(text, now);
    let _ = timespec::rfc3339(text);
    for fields in [Fields::FiveOrSix, Fields::Six] {
        if let Ok(schedule) = Schedule::parse(text, fields) {
            let _ = schedule.next_after(now);
        }
    }
});
