//! CrashLoopBackOff (and ImagePullBackOff): the delay before restarting a container that exited
//! (or retrying a failed pull) starts at 10 s, doubles per attempt up to 5 minutes, and resets
//! once the container ran for 10 minutes (or the pull succeeded).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

const INITIAL: Duration = Duration::from_secs(10);
const MAX: Duration = Duration::from_secs(300);
const RESET_AFTER: Duration = Duration::from_secs(600);

/// Per-container restart back-off of one pod.
#[derive(Debug, Default)]
pub struct Backoff {
    entries: HashMap<String, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    delay: Duration,
    not_before: Instant,
}

impl Backoff {
    /// How long the restart of `container` must still wait; `None` when it may restart now.
    /// `ran_for` is how long its last instance ran, which resets the back-off when long enough.
    pub fn remaining(
        &mut self,
        container: &str,
        ran_for: Duration,
        now: Instant,
    ) -> Option<Duration> {
        if ran_for >= RESET_AFTER {
            self.entries.remove(container);
        }
        let entry = self.entries.get(container)?;
        (entry.not_before > now).then(|| entry.not_before - now)
    }

    /// The delay currently applying to `container`, for the CrashLoopBackOff message.
    pub fn delay(&self, container: &str) -> Duration {
        self.entries
            .get(container)
            .map(|e| e.delay)
            .unwrap_or(INITIAL)
    }

    /// Forgets `container`'s back-off (it succeeded).
    pub fn reset(&mut self, container: &str) {
        self.entries.remove(container);
    }

    /// Records a restart: the next one waits longer.
    pub fn restarted(&mut self, container: &str, now: Instant) {
        let delay = match self.entries.get(container) {
            Some(e) => (e.delay * 2).min(MAX),
            None => INITIAL,
        };
        self.entries.insert(
            container.to_string(),
            Entry {
                delay,
                not_before: now + delay,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert_eq!(b.remaining("c", Duration::ZERO, t0), None);
        b.restarted("c", t0);
        assert_eq!(b.remaining("c", Duration::ZERO, t0), Some(INITIAL));
        assert_eq!(b.remaining("c", Duration::ZERO, t0 + INITIAL), None);
        for _ in 0..10 {
            b.restarted("c", t0);
        }
        assert_eq!(b.delay("c"), MAX);
        assert_eq!(b.remaining("c", RESET_AFTER, t0), None);
        assert_eq!(b.delay("c"), INITIAL);
        b.restarted("c", t0);
        b.reset("c");
        assert_eq!(b.remaining("c", Duration::ZERO, t0), None);
    }
}
