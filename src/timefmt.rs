//! UTC timestamps without a date crate, shared by the supervisor's `@@@` lifecycle lines and
//! the console (its notices and its log file), so every line in the stream uses one format.

use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC), the stamp of `@@@` lines.
pub fn rfc3339(t: SystemTime) -> String {
    let (date, time, _) = split(t);
    format!("{date}T{time}Z")
}

/// `YYYY-MM-DD HH:MM:SS.mmm` (UTC), the stamp of each line of the console log file.
pub fn log_stamp(t: SystemTime) -> String {
    let (date, time, ms) = split(t);
    format!("{date} {time}.{ms:03}")
}

/// Date, time of day and milliseconds of a UTC instant.
fn split(t: SystemTime) -> (String, String, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    (
        format!("{y:04}-{m:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
        d.subsec_millis(),
    )
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms)
    }

    #[test]
    fn stamps_match_known_dates() {
        // `date -u -d @0`, `@951827696` (leap day 2000, a leap century), `@1795833000`
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_827_696, 789)), "2000-02-29T12:34:56Z");
        assert_eq!(log_stamp(at(951_827_696, 789)), "2000-02-29 12:34:56.789");
        assert_eq!(log_stamp(at(1_795_833_000, 42)), "2026-11-28 02:30:00.042");
    }
}
