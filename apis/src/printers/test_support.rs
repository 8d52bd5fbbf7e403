//! Fixed clock for printer tests, so ages in expected cells are exact.

use chrono::{DateTime, TimeDelta, Utc};

/// The "current" time every printer test uses.
pub(super) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_717_243_200, 0).unwrap_or_default()
}

/// An RFC 3339 timestamp `seconds` before [`now`].
pub(super) fn ago(seconds: i64) -> String {
    (now() - TimeDelta::seconds(seconds)).to_rfc3339()
}
