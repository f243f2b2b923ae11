//! Time arithmetic that never panics: a deadline, a pause or a lifetime
//! taken from a setting, a header or a field of an answer may be anything
//! (a `Retry-After` of 2^63 seconds, say), and `Instant + Duration`
//! panics when it overflows. Past the representable future, a year stands in.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// `t + d`, saturating (a year ahead stands for "never").
pub fn add(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(YEAR))
        .unwrap_or(t)
}

/// `now + d`, saturating.
pub fn from_now(d: Duration) -> Instant {
    add(Instant::now(), d)
}

/// `t - d`, or now when that would be before the process's time began.
pub fn sub(t: Instant, d: Duration) -> Instant {
    t.checked_sub(d).unwrap_or_else(Instant::now)
}

/// True when a wait of `d` from now would reach `deadline`.
pub fn reaches(d: Duration, deadline: Instant) -> bool {
    Instant::now().checked_add(d).is_none_or(|t| t >= deadline)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, as_millis)
}

/// `d` in milliseconds, saturating.
pub fn as_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `d` in milliseconds as the hub's table counts time (signed), saturating.
pub fn signed_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The last second an HTTP date can show (9999-12-31T23:59:59Z).
const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// `secs` since the Unix epoch as an HTTP date; a time before the epoch is
/// the epoch, one past the year 9999 is the last second of 9999.
pub fn http_date(secs: i64) -> String {
    let secs = u64::try_from(secs).unwrap_or_default().min(LAST_HTTP_DATE);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_overflows() {
        let now = Instant::now();
        assert!(add(now, Duration::MAX) > now);
        assert!(from_now(Duration::MAX) > now);
        assert!(reaches(Duration::MAX, now));
        assert!(!reaches(Duration::ZERO, now + Duration::from_secs(60)));
        assert!(sub(now, Duration::MAX) >= now);
        assert_eq!(as_millis(Duration::from_micros(1_500_900)), 1_500);
        assert_eq!(as_millis(Duration::MAX), u64::MAX);
        assert_eq!(signed_millis(Duration::from_secs(20 * 60)), 1_200_000);
        assert_eq!(signed_millis(Duration::MAX), i64::MAX);
        // An activity in the year 10000 (milliseconds) is shown, not a panic.
        let year_10000 = 253_402_300_800_000i64 / 1000;
        assert_eq!(http_date(year_10000), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(http_date(i64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(http_date(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
