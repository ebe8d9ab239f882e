//! When to Ping and when a missing Pong ends the session.
//!
//! Go frpc sends Pings only with a positive interval, and checks for Pongs only when it pings and
//! the timeout is positive too. Zero durations therefore switch the feature off here as well: a
//! zero interval would otherwise make a Ping due at every instant (a flood), and a zero timeout
//! would end every session right after its login.

use std::time::{Duration, Instant};

/// The heartbeat rules of one session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heartbeat {
    /// Ping period, if pinging.
    every: Option<Duration>,
    /// How long without a Pong ends the session, if checked.
    timeout: Option<Duration>,
}

/// What is due at a given time.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing.
    Nothing,
    /// A Ping.
    Ping,
    /// No Pong came in time: the session is lost.
    PongTimeout,
}

impl Heartbeat {
    pub fn new(interval: Option<Duration>, timeout: Duration) -> Self {
        let every = interval.filter(|d| !d.is_zero());
        Heartbeat {
            every,
            timeout: every.and(Some(timeout).filter(|d| !d.is_zero())),
        }
    }

    /// The next heartbeat deadline; the first Ping is due at once (at `last_pong`, the login).
    pub fn next(&self, last_ping: Option<Instant>, last_pong: Instant) -> Option<Instant> {
        let ping = self
            .every
            .map(|every| last_ping.map_or(last_pong, |t| t + every));
        let pong = self.timeout.map(|timeout| last_pong + timeout);
        ping.into_iter().chain(pong).min()
    }

    /// What is due at `now`.
    pub fn due(&self, now: Instant, last_ping: Option<Instant>, last_pong: Instant) -> Due {
        if self
            .timeout
            .is_some_and(|timeout| now >= last_pong + timeout)
        {
            return Due::PongTimeout;
        }
        match self.every {
            Some(every) if last_ping.is_none_or(|t| now >= t + every) => Due::Ping,
            _ => Due::Nothing,
        }
    }
}
