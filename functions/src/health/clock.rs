//! The time of a run, as the checks and the report read it: milliseconds
//! since the Unix epoch, and dates as people read them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A day, in seconds.
pub const DAY: i64 = 86_400;

pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `secs` since the Unix epoch as an HTTP date.
pub fn http_date(secs: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or_default());
    httpdate::fmt_http_date(at)
}
