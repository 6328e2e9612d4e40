//! Dapr's time grammar, as dapr/kit and Go parse it: Go durations (`1h30m`, `0h0m9s0ms0μs`,
//! `-1.5s`), ISO 8601 durations with repetitions (`R5/PT1S`, `P1Y2M3DT4H`), and RFC 3339
//! points in time. Actor timers and reminders (and later jobs) take their `dueTime`, `period`
//! and `ttl` from here; what an SDK serialises must parse exactly as daprd would parse it
//! (the Python SDK rounds 1.5 s to `0h0m2s500ms0μs`, which Go reads as 2.5 s).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A signed span of time in nanoseconds, as Go's `time.Duration`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoDuration(pub i64);

impl GoDuration {
    /// The span, when it is not negative.
    pub fn to_std(self) -> Option<Duration> {
        u64::try_from(self.0).ok().map(Duration::from_nanos)
    }
}

fn invalid(what: &str, from: &str) -> String {
    format!("time: {what} \"{from}\"")
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units ns us µs μs ms s m h.
pub fn go_duration(from: &str) -> Result<GoDuration, String> {
    let mut s = from;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        (negative, s) = (true, rest);
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(GoDuration(0));
    }
    if s.is_empty() {
        return Err(invalid("invalid duration", from));
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let (value, rest) = duration_term(s, from)?;
        s = rest;
        total = total
            .checked_add(value)
            .filter(|t| *t <= 1 << 63)
            .ok_or_else(|| invalid("invalid duration", from))?;
    }
    if negative {
        return Ok(GoDuration((total as i64).wrapping_neg()));
    }
    i64::try_from(total)
        .map(GoDuration)
        .map_err(|_| invalid("invalid duration", from))
}

/// One `<number><unit>` of a Go duration, in nanoseconds, and what follows it.
fn duration_term<'a>(s: &'a str, from: &str) -> Result<(u64, &'a str), String> {
    let bytes = s.as_bytes();
    if !(bytes[0] == b'.' || bytes[0].is_ascii_digit()) {
        return Err(invalid("invalid duration", from));
    }
    let whole_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut whole: u64 = 0;
    for digit in &bytes[..whole_len] {
        whole = whole
            .checked_mul(10)
            .and_then(|w| w.checked_add(u64::from(digit - b'0')))
            .filter(|w| *w <= 1 << 63)
            .ok_or_else(|| invalid("invalid duration", from))?;
    }
    let mut rest = &s[whole_len..];
    let (mut fraction, mut scale, mut fraction_len) = (0u64, 1f64, 0);
    if let Some(after) = rest.strip_prefix('.') {
        fraction_len = after.bytes().take_while(|b| b.is_ascii_digit()).count();
        let mut overflow = false;
        for digit in after[..fraction_len].bytes() {
            if overflow || fraction > (i64::MAX as u64) / 10 {
                overflow = true; // Go keeps reading digits but stops adding them
                continue;
            }
            fraction = fraction * 10 + u64::from(digit - b'0');
            scale *= 10.0;
        }
        rest = &after[fraction_len..];
    }
    if whole_len == 0 && fraction_len == 0 {
        return Err(invalid("invalid duration", from));
    }
    let unit_len = rest
        .char_indices()
        .find(|(_, c)| *c == '.' || c.is_ascii_digit())
        .map_or(rest.len(), |(i, _)| i);
    if unit_len == 0 {
        return Err(invalid("missing unit in duration", from));
    }
    let unit: u64 = match &rest[..unit_len] {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        other => {
            return Err(format!(
                "time: unknown unit \"{other}\" in duration \"{from}\""
            ));
        }
    };
    let mut value = whole
        .checked_mul(unit)
        .filter(|v| *v <= 1 << 63)
        .ok_or_else(|| invalid("invalid duration", from))?;
    if fraction > 0 {
        value = value
            .checked_add((fraction as f64 * (unit as f64 / scale)) as u64)
            .filter(|v| *v <= 1 << 63)
            .ok_or_else(|| invalid("invalid duration", from))?;
    }
    Ok((value, &rest[unit_len..]))
}

/// Go's `Duration.String()`: `1h0m0s`, `1m30s`, `1.5s`, `500ms`, `0s`.
pub fn go_string(duration: GoDuration) -> String {
    let negative = duration.0 < 0;
    let nanos = duration.0.unsigned_abs();
    let mut out = if nanos < 1_000_000_000 {
        let (unit, precision) = match nanos {
            0 => return "0s".into(),
            1..=999 => ("ns", 0),
            1_000..=999_999 => ("\u{b5}s", 3),
            _ => ("ms", 6),
        };
        let (whole, fraction) = split(nanos, precision);
        format!("{whole}{fraction}{unit}")
    } else {
        let (seconds, fraction) = split(nanos, 9);
        let (minutes, hours) = (seconds / 60, seconds / 3600);
        match (hours, minutes) {
            (0, 0) => format!("{}{fraction}s", seconds % 60),
            (0, _) => format!("{}m{}{fraction}s", minutes % 60, seconds % 60),
            _ => format!("{hours}h{}m{}{fraction}s", minutes % 60, seconds % 60),
        }
    };
    if negative {
        out.insert(0, '-');
    }
    out
}

/// `value / 10^precision` as a whole part and `.digits` without trailing zeros (none when 0).
fn split(value: u64, precision: u32) -> (u64, String) {
    let scale = 10u64.pow(precision);
    let fraction = value % scale;
    if fraction == 0 {
        return (value / scale, String::new());
    }
    let digits = format!("{fraction:0width$}", width = precision as usize);
    (value / scale, format!(".{}", digits.trim_end_matches('0')))
}

/// An ISO 8601 duration as dapr/kit reads it: calendar parts kept apart from the exact part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Iso {
    pub years: i64,
    pub months: i64,
    pub days: i64,
    pub duration: GoDuration,
    /// `Rn/`; `None` repeats without end.
    pub repetitions: Option<i64>,
}

impl Iso {
    /// Whether it has years, months or days (which only a calendar can add).
    pub fn has_calendar(&self) -> bool {
        self.years != 0 || self.months != 0 || self.days != 0
    }
}

/// dapr/kit's `ParseISO8601Duration`, quirks included (`P1X` is a zero duration).
pub fn iso8601(from: &str) -> Result<Iso, String> {
    let fail = || format!("unsupported ISO8601 duration format: {from}");
    let bytes = from.as_bytes();
    if bytes.len() < 2 {
        return Err(fail());
    }
    let mut iso = Iso::default();
    let mut i = 0;
    if bytes[0] == b'R' {
        let slash = bytes.iter().position(|b| *b == b'/').unwrap_or(bytes.len());
        if slash < 2 {
            return Err(fail());
        }
        iso.repetitions = Some(from[1..slash].parse::<i64>().map_err(|_| fail())?);
        i = slash + 1;
        if i >= bytes.len() {
            return Ok(iso);
        }
    }
    if bytes[i] != b'P' {
        return Err(fail());
    }
    i += 1;
    let (mut start, mut time) = (i, false);
    while i < bytes.len() {
        let number = || from[start..i].parse::<i64>().map_err(|_| fail());
        match bytes[i] {
            b'T' if start == i => (time, start) = (true, i + 1),
            b'T' => return Err(fail()),
            b'Y' | b'W' | b'D' | b'H' | b'S' | b'M' if start == i => return Err(fail()),
            b'Y' | b'W' | b'D' if time => return Err(fail()),
            b'H' | b'S' if !time => return Err(fail()),
            b'Y' => (iso.years, start) = (number()?, i + 1),
            b'W' => (iso.days, start) = (iso.days + number()? * 7, i + 1),
            b'D' => (iso.days, start) = (iso.days + number()?, i + 1),
            b'H' => (iso.duration, start) = (add(iso.duration, number()?, 3600)?, i + 1),
            b'S' => (iso.duration, start) = (add(iso.duration, number()?, 1)?, i + 1),
            b'M' if time => (iso.duration, start) = (add(iso.duration, number()?, 60)?, i + 1),
            b'M' => (iso.months, start) = (number()?, i + 1),
            _ => {}
        }
        i += 1;
    }
    Ok(iso)
}

fn add(duration: GoDuration, count: i64, seconds: i64) -> Result<GoDuration, String> {
    count
        .checked_mul(seconds * 1_000_000_000)
        .and_then(|n| n.checked_add(duration.0))
        .map(GoDuration)
        .ok_or_else(|| "the duration is too long".to_string())
}

/// An interval as Dapr reads a `period`: ISO 8601 first, else a Go duration (which repeats
/// without end).
pub fn period(from: &str) -> Result<Iso, String> {
    if let Ok(iso) = iso8601(from) {
        return Ok(iso);
    }
    go_duration(from)
        .map(|duration| Iso {
            duration,
            ..Iso::default()
        })
        .map_err(|_| format!("unsupported duration format: {from}"))
}

/// dapr/kit's `ParseTime`: an ISO 8601 duration (no repetitions) or a Go duration after
/// `offset`, else an RFC 3339 time.
pub fn point_in_time(from: &str, offset: SystemTime) -> Result<SystemTime, String> {
    if let Ok(iso) = iso8601(from) {
        if iso.repetitions.is_some() {
            return Err("repetitions are not allowed".into());
        }
        return after(offset, &iso).ok_or_else(|| format!("{from} is out of range"));
    }
    if let Ok(duration) = go_duration(from) {
        return shift(offset, duration).ok_or_else(|| format!("{from} is out of range"));
    }
    rfc3339(from).ok_or_else(|| format!("unsupported time/duration format: {from}"))
}

/// `time` moved by a signed duration.
pub fn shift(time: SystemTime, by: GoDuration) -> Option<SystemTime> {
    let span = Duration::from_nanos(by.0.unsigned_abs());
    if by.0 >= 0 {
        time.checked_add(span)
    } else {
        time.checked_sub(span)
    }
}

/// `time` plus an ISO duration: calendar parts as Go's `AddDate` (in UTC), then the rest.
pub fn after(time: SystemTime, iso: &Iso) -> Option<SystemTime> {
    let dated = if iso.has_calendar() {
        add_date(time, iso.years, iso.months, iso.days)?
    } else {
        time
    };
    shift(dated, iso.duration)
}

/// Go's `Time.AddDate` in UTC: out-of-range months and days roll over (Oct 31 + 1 month is
/// Dec 1).
fn add_date(time: SystemTime, years: i64, months: i64, days: i64) -> Option<SystemTime> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    let (day, in_day) = (
        (since.as_secs() / 86_400) as i64,
        since - Duration::from_secs(since.as_secs() / 86_400 * 86_400),
    );
    let (y, m, d) = civil_from_days(day);
    let month_index = (m as i64 - 1) + months;
    let year = y + years + month_index.div_euclid(12);
    let month = month_index.rem_euclid(12) + 1;
    let day = days_from_civil(year, month, 1) + (d as i64 - 1) + days;
    let seconds = u64::try_from(day.checked_mul(86_400)?).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds) + in_day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An RFC 3339 time (`2026-01-02T03:04:05.123Z`, `…+02:00`), as Go's `RFC3339Nano` parses it.
pub fn rfc3339(from: &str) -> Option<SystemTime> {
    let b = from.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| from.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[16] != b':' || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &from[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let padded = format!("{:0<9}", &fraction[..digits]);
        nanos = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let (h, m) = (
                rest[1..3].parse::<i64>().ok()?,
                rest[4..6].parse::<i64>().ok()?,
            );
            if &rest[3..4] != ":" || h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let span = Duration::new(seconds.unsigned_abs(), nanos);
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(span)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(seconds.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nanos)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(from: &str) -> i64 {
        go_duration(from).unwrap().0
    }

    #[test]
    fn go_durations_parse_as_go_parses_them() {
        assert_eq!(ns("300ms"), 300_000_000);
        assert_eq!(ns("1h30m"), 5_400_000_000_000);
        assert_eq!(ns("-1.5s"), -1_500_000_000);
        assert_eq!(ns("0"), 0);
        assert_eq!(ns("1.5h"), 5_400_000_000_000);
        assert_eq!(ns(".5s"), 500_000_000);
        assert_eq!(ns("2us"), 2_000);
        // What the Python SDK sends: μ (U+03BC) and µ (U+00B5) both mean micro.
        assert_eq!(ns("1h0m0s0ms0\u{3bc}s"), 3_600_000_000_000);
        assert_eq!(ns("0h0m30s0ms0\u{b5}s"), 30_000_000_000);
        assert_eq!(ns("0h0m2s500ms0\u{3bc}s"), 2_500_000_000, "the SDK's 1.5 s");
        for bad in [
            "",
            "1",
            "s",
            "1x",
            ".s",
            "1.s.",
            "-",
            "9999999999999999999h",
        ] {
            assert!(go_duration(bad).is_err(), "{bad}");
        }
        assert!(
            go_duration("1x")
                .unwrap_err()
                .contains("unknown unit \"x\"")
        );
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        let s = |nanos: i64| go_string(GoDuration(nanos));
        assert_eq!(s(90_000_000_000), "1m30s");
        assert_eq!(s(60_000_000_000), "1m0s");
        assert_eq!(s(3_600_000_000_000), "1h0m0s");
        assert_eq!(s(1_500_000_000), "1.5s");
        assert_eq!(s(1_000_000_000), "1s");
        assert_eq!(s(500_000_000), "500ms");
        assert_eq!(s(1_500), "1.5\u{b5}s");
        assert_eq!(s(0), "0s");
        assert_eq!(s(-2_000_000_000), "-2s");
    }

    #[test]
    fn iso_durations_parse_as_dapr_kit_parses_them() {
        let iso = iso8601("R5/PT1S").unwrap();
        assert_eq!((iso.repetitions, iso.duration.0), (Some(5), 1_000_000_000));
        let iso = iso8601("P1Y2M3W4DT5H6M7S").unwrap();
        assert_eq!((iso.years, iso.months, iso.days), (1, 2, 25));
        assert_eq!(iso.duration.0, (5 * 3600 + 6 * 60 + 7) * 1_000_000_000);
        assert_eq!(iso8601("PT1M").unwrap().duration.0, 60_000_000_000);
        assert_eq!(iso8601("P1X").unwrap(), Iso::default(), "dapr/kit's quirk");
        for bad in ["P", "PT1.5S", "PT1X2S", "1s", "R/PT1S", "PT", "P1H", "PT1D"] {
            if bad == "PT" {
                assert!(iso8601(bad).is_ok(), "two characters pass as in dapr/kit");
                continue;
            }
            assert!(iso8601(bad).is_err(), "{bad}");
        }
        assert_eq!(iso8601("R3/").unwrap().repetitions, Some(3));
    }

    #[test]
    fn periods_fall_back_to_go_durations() {
        assert_eq!(period("90s").unwrap().duration.0, 90_000_000_000);
        assert_eq!(period("PT1M").unwrap().duration.0, 60_000_000_000);
        assert!(period("P1D").unwrap().has_calendar());
        assert!(period("soon").is_err());
    }

    #[test]
    fn points_in_time_are_iso_go_or_rfc3339() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            point_in_time("5s", now).unwrap(),
            now + Duration::from_secs(5)
        );
        assert_eq!(
            point_in_time("PT1H", now).unwrap(),
            now + Duration::from_secs(3600)
        );
        assert!(
            point_in_time("R2/PT1S", now)
                .unwrap_err()
                .contains("repetitions")
        );
        let at = point_in_time("2552-01-01T00:00:00Z", now).unwrap();
        assert_eq!(
            at.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            18_366_134_400
        );
        let offset = rfc3339("2026-01-02T03:04:05.5+02:00").unwrap();
        let utc = rfc3339("2026-01-02T01:04:05.500Z").unwrap();
        assert_eq!(offset, utc);
        assert!(point_in_time("tomorrow", now).is_err());
    }

    #[test]
    fn calendar_parts_roll_over_as_go_add_date_does() {
        let oct31 = rfc3339("2026-10-31T12:00:00Z").unwrap();
        let month = Iso {
            months: 1,
            ..Iso::default()
        };
        assert_eq!(after(oct31, &month), rfc3339("2026-12-01T12:00:00Z"));
        let year = Iso {
            years: 1,
            days: 1,
            ..Iso::default()
        };
        assert_eq!(after(oct31, &year), rfc3339("2027-11-01T12:00:00Z"));
    }
}
