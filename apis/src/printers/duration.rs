//! Human-readable ages, matching upstream's `duration.HumanDuration` so that AGE and
//! LAST SEEN read exactly as they do against a real apiserver.

use chrono::{DateTime, TimeDelta, Utc};

/// Formats a duration with two to three significant figures: "45s", "5m30s", "25m", "3h10m",
/// "20h", "2d3h", "30d", "2y10d", "9y". Clock skew of under two seconds into the future
/// reads as "0s"; anything further in the future is "<invalid>".
pub fn human_duration(d: TimeDelta) -> String {
    let seconds = d.num_milliseconds() / 1000;
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_remainder(minutes, "m", seconds % 60, "s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return with_remainder(days, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return with_remainder(years, "y", days % 365, "d");
    }
    format!("{years}y")
}

/// "<major><unit>" followed by "<minor><unit>" unless the minor part is zero.
fn with_remainder(major: i64, major_unit: &str, minor: i64, minor_unit: &str) -> String {
    if minor == 0 {
        format!("{major}{major_unit}")
    } else {
        format!("{major}{major_unit}{minor}{minor_unit}")
    }
}

/// The age of a timestamp at `now`; "<unknown>" when it is unset, as upstream prints it.
pub(super) fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> String {
        human_duration(TimeDelta::seconds(s))
    }

    #[test]
    fn thresholds() {
        assert_eq!(secs(-5), "<invalid>");
        assert_eq!(secs(-1), "0s");
        assert_eq!(human_duration(TimeDelta::milliseconds(-1999)), "0s");
        assert_eq!(secs(0), "0s");
        assert_eq!(secs(45), "45s");
        assert_eq!(secs(119), "119s");
        assert_eq!(secs(120), "2m");
        assert_eq!(secs(5 * 60 + 30), "5m30s");
        assert_eq!(secs(9 * 60 + 59), "9m59s");
        assert_eq!(secs(10 * 60 + 59), "10m");
        assert_eq!(secs(179 * 60), "179m");
        assert_eq!(secs(3 * 3600), "3h");
        assert_eq!(secs(3 * 3600 + 10 * 60), "3h10m");
        assert_eq!(secs(8 * 3600 + 59 * 60), "8h");
        assert_eq!(secs(47 * 3600), "47h");
        assert_eq!(secs(48 * 3600), "2d");
        assert_eq!(secs(51 * 3600), "2d3h");
        assert_eq!(secs(7 * 86400 + 23 * 3600), "7d23h");
        assert_eq!(secs(8 * 86400 + 5 * 3600), "8d");
        assert_eq!(secs(729 * 86400), "729d");
        assert_eq!(secs(730 * 86400), "2y");
        assert_eq!(secs(740 * 86400), "2y10d");
        assert_eq!(secs(8 * 365 * 86400 + 30 * 86400), "8y");
    }

    #[test]
    fn unknown_when_unset() {
        assert_eq!(since(None, Utc::now()), "<unknown>");
    }
}
