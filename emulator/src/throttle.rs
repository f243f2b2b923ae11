//! The portal's throttle: at most `limit` requests in any rolling `window`
//! (30 per minute per tenant on the real portal).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub(crate) struct Throttle {
    limit: usize,
    window: Duration,
    /// When each request still inside the window was accepted, oldest first.
    accepted: VecDeque<Instant>,
}

impl Throttle {
    pub(crate) fn new(limit: u32, window: Duration) -> Throttle {
        Throttle {
            limit: limit as usize,
            window,
            accepted: VecDeque::new(),
        }
    }

    /// Takes a slot for a request arriving at `now`, or says how long until
    /// one frees. A refused request takes no slot.
    pub(crate) fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        while let Some(&oldest) = self.accepted.front() {
            if oldest + self.window <= now {
                self.accepted.pop_front();
            } else {
                break;
            }
        }
        if self.accepted.len() < self.limit {
            self.accepted.push_back(now);
            return Ok(());
        }
        let frees_at = self.accepted.front().map_or(now, |&t| t + self.window);
        Err(frees_at.saturating_duration_since(now))
    }
}

/// A wait as whole seconds, rounded up (a `Retry-After` value).
pub(crate) fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn the_31st_request_in_a_minute_is_refused() {
        // GIVEN the portal's throttle and 30 requests within one minute
        let mut throttle = Throttle::new(30, MINUTE);
        let start = Instant::now();
        for i in 0..30 {
            assert!(throttle.admit(start + Duration::from_secs(i)).is_ok());
        }
        // WHEN the 31st arrives in the same minute
        let refused = throttle.admit(start + Duration::from_secs(30));
        // THEN it is refused until the first request leaves the window
        assert_eq!(refused, Err(Duration::from_secs(30)));
    }

    #[test]
    fn slots_free_as_requests_leave_the_window() {
        let mut throttle = Throttle::new(2, MINUTE);
        let start = Instant::now();
        assert!(throttle.admit(start).is_ok());
        assert!(throttle.admit(start + Duration::from_secs(10)).is_ok());
        assert!(throttle.admit(start + Duration::from_secs(59)).is_err());
        // The first request leaves the window at 60 s: one slot, not two.
        assert!(throttle.admit(start + MINUTE).is_ok());
        assert_eq!(throttle.admit(start + MINUTE), Err(Duration::from_secs(10)));
        // Long after, the whole window is free again.
        let later = start + 3 * MINUTE;
        assert!(throttle.admit(later).is_ok());
        assert!(throttle.admit(later).is_ok());
    }

    #[test]
    fn refused_requests_take_no_slot() {
        let mut throttle = Throttle::new(1, MINUTE);
        let start = Instant::now();
        assert!(throttle.admit(start).is_ok());
        for s in 1..50 {
            assert!(throttle.admit(start + Duration::from_secs(s)).is_err());
        }
        assert!(throttle.admit(start + MINUTE).is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(whole_seconds(Duration::ZERO), 0);
    }
}
