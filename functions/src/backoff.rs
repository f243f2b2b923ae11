//! Pauses between tries that grow, with jitter: for polling a new key until
//! it authenticates (and, later, for a throttled portal).

use std::time::Duration;

/// Pauses that start at `first`, grow by half each time up to `max`, plus a
/// random 0-20 % so that many callers do not retry in step.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            next: first.min(max),
            max,
        }
    }

    /// The pause to take now; the following one will be longer (up to `max`).
    pub fn next_pause(&mut self) -> Duration {
        let base = self.next;
        self.next = base.saturating_add(base / 2).min(self.max);
        let jitter_ms = u64::try_from(base.as_millis() / 5).unwrap_or(u64::MAX);
        base.saturating_add(Duration::from_millis(fastrand::u64(0..=jitter_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_half_up_to_the_max_with_bounded_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let bases = [100u64, 150, 225, 337, 400, 400];
        for base in bases {
            let pause = b.next_pause().as_millis() as u64;
            assert!(
                pause >= base && pause <= base + base / 5,
                "{pause} vs {base}"
            );
        }
    }
}
