//! When to dial again after a failed login or a lost session.
//!
//! Two rules, both Go frpc's: failed logins back off exponentially (capped at 10 s until the
//! first success), and sessions that die soon after logging in restart quickly a few times per
//! minute, then back off too, so a server that accepts and then drops us is not hammered.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Before the first successful login Go frpc caps its backoff at 10 s.
pub const FIRST_LOGIN_MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Session deaths within this window count towards slowing down quick restarts.
pub const DEATH_WINDOW: Duration = Duration::from_secs(60);

/// Quick restarts allowed inside [`DEATH_WINDOW`] before backing off exponentially.
pub const QUICK_RESTARTS: usize = 3;

/// How the client waits between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// First backoff step after a failed login attempt (frpc: 2 s, doubling per failure).
    pub base: Duration,
    /// Largest backoff step (frpc: 20 s; 10 s before the first successful login).
    pub max: Duration,
    /// Delay before re-login after an established session died (frpc: ~200–300 ms for the first
    /// three deaths in a minute, then exponential up to `max`).
    pub quick_restart: Duration,
}

impl Default for ReconnectPolicy {
    /// Go frpc's: 2 s doubling to 20 s, 200 ms quick restart.
    fn default() -> Self {
        ReconnectPolicy {
            base: Duration::from_secs(2),
            max: Duration::from_secs(20),
            quick_restart: Duration::from_millis(200),
        }
    }
}

impl ReconnectPolicy {
    /// A policy with this first backoff step, largest step and delay after a lost session.
    pub fn new(base: Duration, max: Duration, quick_restart: Duration) -> Self {
        ReconnectPolicy {
            base,
            max,
            quick_restart,
        }
    }
}

/// `base · 2^failures`, capped at `max`.
pub fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(max)
}

/// The reconnect bookkeeping of one client: consecutive login failures and recent deaths.
#[derive(Debug)]
pub(crate) struct Reconnect {
    policy: ReconnectPolicy,
    /// Login failures in a row since the last success.
    pub failures: u32,
    /// When logged-in sessions died, oldest first, within [`DEATH_WINDOW`].
    deaths: VecDeque<Instant>,
    rng: Jitter,
}

impl Reconnect {
    pub fn new(policy: ReconnectPolicy, seed: u64) -> Self {
        Reconnect {
            policy,
            failures: 0,
            deaths: VecDeque::new(),
            rng: Jitter::new(seed),
        }
    }

    /// The wait after a failed login attempt.
    pub fn after_login_failure(&mut self, logged_in_once: bool) -> Duration {
        let cap = if logged_in_once {
            self.policy.max
        } else {
            self.policy.max.min(FIRST_LOGIN_MAX_BACKOFF)
        };
        let delay = backoff(self.policy.base, cap, self.failures);
        self.failures = self.failures.saturating_add(1);
        self.rng.apply(delay)
    }

    /// The wait after a logged-in session died at `now`.
    pub fn after_death(&mut self, now: Instant) -> Duration {
        self.failures = 0;
        self.deaths.push_back(now);
        while self
            .deaths
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > DEATH_WINDOW)
        {
            self.deaths.pop_front();
        }
        let delay = if self.deaths.len() <= QUICK_RESTARTS {
            self.policy.quick_restart
        } else {
            backoff(
                self.policy.quick_restart,
                self.policy.max,
                (self.deaths.len() - QUICK_RESTARTS) as u32,
            )
        };
        self.rng.apply(delay)
    }
}

/// Up to 10 % random extra delay, as frp's backoff adds, from a small seeded generator so the
/// state machine stays deterministic under test.
#[derive(Debug)]
struct Jitter(u64);

impl Jitter {
    fn new(seed: u64) -> Self {
        // xorshift never leaves zero; any other seed is fine.
        Jitter(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn apply(&mut self, delay: Duration) -> Duration {
        let max_extra = delay.as_millis() as u64 / 10;
        if max_extra == 0 {
            return delay;
        }
        delay + Duration::from_millis(self.next() % (max_extra + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let b = Duration::from_secs(2);
        let m = Duration::from_secs(20);
        let steps: Vec<u64> = (0..6).map(|n| backoff(b, m, n).as_secs()).collect();
        assert_eq!(steps, vec![2, 4, 8, 16, 20, 20]);
        assert_eq!(backoff(b, m, 1000), m);
    }

    #[test]
    fn jitter_adds_at_most_ten_percent() {
        let mut j = Jitter::new(42);
        let mut seen_extra = false;
        for _ in 0..1000 {
            let d = j.apply(Duration::from_secs(10));
            assert!(d >= Duration::from_secs(10) && d <= Duration::from_secs(11));
            seen_extra |= d > Duration::from_secs(10);
        }
        assert!(seen_extra);
        assert_eq!(j.apply(Duration::from_millis(5)), Duration::from_millis(5));
    }
}
