//! Cron schedules as CronJobs write them (what upstream's standard cron parser accepts): five
//! fields (minute, hour, day of month, month, day of week) with `*`, `?`, lists, ranges, steps
//! and month/day names, the `@hourly`-style descriptors, or `@every <duration>` (a constant
//! interval after the previous activation); evaluated in the CronJob's time zone. When both day
//! fields are restricted a day matches if either does, as in classic cron.

use std::time::Duration;

use jiff::{civil::DateTime, tz::TimeZone, SignedDuration, Timestamp, ToSpan, Zoned};

/// Why a schedule cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("unparseable schedule {schedule:?}: {reason}")]
pub struct ScheduleError {
    schedule: String,
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    allowed: u64,
    star: bool,
}

impl Field {
    fn has(&self, v: i8) -> bool {
        v >= 0 && self.allowed & (1u64 << v) != 0
    }
}

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Fields(Fields),
    /// `@every <duration>`, in whole seconds (at least one).
    Every(Duration),
}

/// The five cron fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    minute: Field,
    hour: Field,
    dom: Field,
    month: Field,
    dow: Field,
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(s: &str, names: &[&str], offset: u32) -> Option<u32> {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|i| i as u32 + offset)
        .or_else(|| s.parse().ok())
}

fn field(
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name_offset: u32,
) -> Result<Field, String> {
    let mut allowed = 0u64;
    let mut star = false;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| format!("bad step in {part:?}"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("zero step in {part:?}"));
        }
        let (lo, hi) = if range == "*" || range == "?" {
            star = step == 1;
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = value(a, names, name_offset).ok_or_else(|| format!("bad value {a:?}"))?;
            let b = value(b, names, name_offset).ok_or_else(|| format!("bad value {b:?}"))?;
            (a, b)
        } else {
            let a =
                value(range, names, name_offset).ok_or_else(|| format!("bad value {range:?}"))?;
            // `a/step` runs from a to the end of the range.
            (a, if part.contains('/') { max } else { a })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{part:?} is outside {min}-{max}"));
        }
        let mut v = lo;
        while v <= hi {
            allowed |= 1 << v;
            v += step;
        }
    }
    Ok(Field { allowed, star })
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let err = |reason: String| ScheduleError {
            schedule: text.to_string(),
            reason,
        };
        if let Some(interval) = text.trim().strip_prefix("@every ") {
            let d = component_base::component_config::parse_duration(interval.trim())
                .map_err(|e| err(e.to_string()))?;
            // As upstream's parser: whole seconds, at least one.
            return Ok(Schedule::Every(Duration::from_secs(d.as_secs().max(1))));
        }
        Fields::parse(text).map(Schedule::Fields).map_err(err)
    }

    /// The first activation strictly after `after`, in `tz`; `None` if none within five years.
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match self {
            Schedule::Fields(fields) => fields.next(after, tz),
            Schedule::Every(interval) => {
                let whole = Timestamp::from_second(after.as_second()).ok()?;
                whole
                    .checked_add(SignedDuration::try_from(*interval).ok()?)
                    .ok()
            }
        }
    }
}

impl Fields {
    fn parse(text: &str) -> Result<Fields, String> {
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!("expected 5 fields, found {}", parts.len()));
        }
        let mut dow = field(parts[4], 0, 7, DAYS, 0)?;
        // 7 is Sunday too.
        if dow.allowed & (1 << 7) != 0 {
            dow.allowed = (dow.allowed & !(1 << 7)) | 1;
        }
        Ok(Fields {
            minute: field(parts[0], 0, 59, &[], 0)?,
            hour: field(parts[1], 0, 23, &[], 0)?,
            dom: field(parts[2], 1, 31, &[], 0)?,
            month: field(parts[3], 1, 12, MONTHS, 1)?,
            dow,
        })
    }

    fn day_matches(&self, t: &DateTime) -> bool {
        let dom = self.dom.has(t.day());
        let dow = self.dow.has(t.weekday().to_sunday_zero_offset());
        if self.dom.star || self.dow.star {
            dom && dow
        } else {
            dom || dow
        }
    }

    fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = after.to_zoned(tz.clone()).datetime();
        // Whole minutes only: the next candidate is the start of the following minute.
        let mut t = start
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let limit = start.checked_add(5.years()).ok()?;
        while t < limit {
            if !self.month.has(t.month()) {
                t = t
                    .date()
                    .first_of_month()
                    .checked_add(1.month())
                    .ok()?
                    .to_datetime(jiff::civil::Time::midnight());
                continue;
            }
            if !self.day_matches(&t) {
                t = t
                    .date()
                    .checked_add(1.day())
                    .ok()?
                    .to_datetime(jiff::civil::Time::midnight());
                continue;
            }
            if !self.hour.has(t.hour()) {
                t = t
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if !self.minute.has(t.minute()) {
                t = t.checked_add(1.minute()).ok()?;
                continue;
            }
            let zoned: Zoned = t.to_zoned(tz.clone()).ok()?;
            let ts = zoned.timestamp();
            if ts > after {
                return Some(ts);
            }
            t = t.checked_add(1.minute()).ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn next_activation_in_utc() {
        let utc = TimeZone::UTC;
        let every_15 = Schedule::parse("*/15 * * * *").unwrap();
        assert_eq!(
            every_15.next(ts("2026-01-01T10:07:30Z"), &utc),
            Some(ts("2026-01-01T10:15:00Z"))
        );
        let weekdays = Schedule::parse("30 9 * * mon-fri").unwrap();
        // 2026-01-03 is a Saturday.
        assert_eq!(
            weekdays.next(ts("2026-01-03T00:00:00Z"), &utc),
            Some(ts("2026-01-05T09:30:00Z"))
        );
        let yearly = Schedule::parse("@yearly").unwrap();
        assert_eq!(
            yearly.next(ts("2026-03-01T00:00:00Z"), &utc),
            Some(ts("2027-01-01T00:00:00Z"))
        );
        let either_day = Schedule::parse("0 0 13 * 5").unwrap();
        // The 13th (a Tuesday) or any Friday, whichever comes first.
        assert_eq!(
            either_day.next(ts("2026-01-10T00:00:00Z"), &utc),
            Some(ts("2026-01-13T00:00:00Z"))
        );
        let every = Schedule::parse("@every 1m30s").unwrap();
        assert_eq!(every, Schedule::Every(Duration::from_secs(90)));
        assert_eq!(
            every.next(ts("2026-01-01T10:07:30.250Z"), &utc),
            Some(ts("2026-01-01T10:09:00Z"))
        );
        assert_eq!(
            Schedule::parse("@every 10ms").unwrap(),
            Schedule::Every(Duration::from_secs(1))
        );
        assert!(Schedule::parse("@every soon").is_err());
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("* * *").is_err());
    }

    #[test]
    fn time_zones_shift_the_activation() {
        let ny = TimeZone::get("America/New_York").unwrap();
        let nine = Schedule::parse("0 9 * * *").unwrap();
        assert_eq!(
            nine.next(ts("2026-01-15T00:00:00Z"), &ny),
            Some(ts("2026-01-15T14:00:00Z"))
        );
        assert_eq!(
            nine.next(ts("2026-07-15T00:00:00Z"), &ny),
            Some(ts("2026-07-15T13:00:00Z"))
        );
    }
}
