//! Retries of transient failures: exponential backoff with jitter, bounded.

use crate::error::Error;
use std::time::Duration;

/// How a follower retries a transient failure (a lost connection, a timeout, a serialization
/// failure or a deadlock: every [`Error::Operational`]): after `initial`, then twice as long
/// each time up to `max`, each wait drawn at random between half and all of it (jitter, so that
/// many followers do not retry in step), at most `attempts` times in a row. Then the failure
/// stops the follower, and is reported.
///
/// ```
/// use es_runtime::process::Backoff;
/// use std::time::Duration;
/// let b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1), 5);
/// let d = b.delay(3); // the third retry: between 20 ms and 40 ms
/// assert!(d >= Duration::from_millis(20) && d <= Duration::from_millis(40));
/// assert!(b.delay(50) <= Duration::from_secs(1));
/// assert!(b.allows(5) && !b.allows(6));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// How many retries in a row, at most (0: none).
    pub attempts: u32,
}

impl Default for Backoff {
    /// 50 ms doubling up to 5 s, 10 retries in a row (about 20 s in all).
    fn default() -> Self {
        Backoff::new(Duration::from_millis(50), Duration::from_secs(5), 10)
    }
}

impl Backoff {
    /// Waits from `initial` doubling up to `max`, at most `attempts` retries in a row.
    pub fn new(initial: Duration, max: Duration, attempts: u32) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            attempts,
        }
    }

    /// True if retry number `attempt` (1 for the first) is allowed.
    pub fn allows(&self, attempt: u32) -> bool {
        attempt >= 1 && attempt <= self.attempts
    }

    /// The wait before retry number `attempt` (1 for the first): `initial * 2^(attempt-1)`,
    /// at most `max`, with jitter (between half and all of it).
    pub fn delay(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(30);
        let full = self.initial.saturating_mul(1u32 << shift).min(self.max);
        let half = full / 2;
        let spread = (full - half).as_nanos() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            rand::random::<u64>() % (spread + 1)
        };
        half + Duration::from_nanos(jitter)
    }
}

/// True if `e` is worth retrying as it is: the database or the network failed
/// ([`Error::Operational`]: connection lost, timeout, serialization failure, deadlock), also
/// when it is the cause of an [`Error::Processing`] or of an [`Error::Handler`] (a handler
/// whose own reads or writes met a lost connection). A policy's own failure, a conflict that
/// outlived its re-runs, bad data or configuration are not.
pub fn is_transient(e: &Error) -> bool {
    match e {
        Error::Operational(_) => true,
        Error::Processing { source, .. } | Error::Handler { source, .. } => is_transient(source),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_bounded() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800), 3);
        for attempt in 1..=10 {
            let full = Duration::from_millis(100 * (1 << (attempt - 1).min(3)));
            let d = b.delay(attempt);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
        assert!(!b.allows(0) && b.allows(1) && b.allows(3) && !b.allows(4));
        assert!(!Backoff::new(Duration::ZERO, Duration::ZERO, 0).allows(1));
    }

    #[test]
    fn only_operational_failures_are_transient() {
        let op = || Error::Operational("connection reset".into());
        assert!(is_transient(&op()));
        assert!(is_transient(&Error::Processing {
            application: "a".into(),
            upstream: "b".into(),
            notification_id: 1,
            source: Box::new(op()),
        }));
        assert!(!is_transient(&Error::Processing {
            application: "a".into(),
            upstream: "b".into(),
            notification_id: 1,
            source: Box::new(Error::NotFound("x".into())),
        }));
        assert!(!is_transient(&Error::Concurrency("x".into())));
        assert!(is_transient(&Error::handler("Balances::deposited", op())));
        assert!(!is_transient(&Error::handler(
            "Balances::deposited",
            Error::NotFound("account".into())
        )));
    }
}
