//! Receive-window auto-tuning: the session's round-trip time, measured with yamux pings, and
//! the rule that grows a stream's window.
//!
//! A stream's window limits it to one window per round trip. The window doubles (out of the
//! session's growth budget, up to [`MAX_STREAM_WINDOW`]) when the reader consumed half a window
//! within two round trips of the previous window update: then the window, not the reader, is
//! what holds the sender back. A slow reader takes longer than that and keeps its window, so
//! what a slow local service can make us buffer stays small. Until a round trip has been
//! measured no window grows.

use super::config::MAX_STREAM_WINDOW;
use super::frame::{Header, SYN};
use std::time::{Duration, Instant};

/// A measured round-trip time older than this is measured again (on the next window update,
/// so an idle session sends no pings of its own).
const RTT_REFRESH: Duration = Duration::from_secs(10);

/// A ping unanswered for this long no longer blocks the next one.
const PING_GIVE_UP: Duration = Duration::from_secs(10);

/// Round-trip measurement and the shared growth budget of one session.
pub(super) struct Tuning {
    /// Receive window that streams may still grow into, beyond their initial window.
    pub(super) growth_left: usize,
    /// The last measured round-trip time, and when it was measured.
    rtt: Option<(Duration, Instant)>,
    /// Our ping in flight: its opaque value and when it was queued.
    ping: Option<(u32, Instant)>,
    /// Opaque value of the next ping.
    ping_seq: u32,
}

impl Tuning {
    /// No round trip measured yet; `growth` bytes of window to grow into.
    pub(super) fn new(growth: usize) -> Self {
        Tuning {
            growth_left: growth,
            rtt: None,
            ping: None,
            ping_seq: 0,
        }
    }

    /// A window update is being sent at `now`: a ping to send first if the round-trip time is
    /// unknown or stale and none is in flight.
    pub(super) fn ping_due(&mut self, now: Instant) -> Option<Header> {
        let fresh = matches!(self.rtt, Some((_, at)) if now.duration_since(at) < RTT_REFRESH);
        let waiting = matches!(self.ping, Some((_, at)) if now.duration_since(at) < PING_GIVE_UP);
        if fresh || waiting {
            return None;
        }
        self.ping_seq = self.ping_seq.wrapping_add(1);
        self.ping = Some((self.ping_seq, now));
        Some(Header::ping(SYN, self.ping_seq))
    }

    /// The peer answered a ping with `opaque`; answers to pings not in flight are ignored.
    pub(super) fn on_pong(&mut self, opaque: u32) {
        if let Some((seq, sent)) = self.ping {
            if seq == opaque {
                let now = Instant::now();
                self.rtt = Some((now.duration_since(sent), now));
                self.ping = None;
            }
        }
    }

    /// The new receive window of a stream whose window `target` was last updated `since`
    /// ago, `consumed` bytes having been read since: doubled when the reader went at least as
    /// fast as half a window per two round trips, as far as the budget and
    /// [`MAX_STREAM_WINDOW`] allow; else `target`.
    pub(super) fn grown(&mut self, target: u32, consumed: usize, since: Duration) -> u32 {
        let Some((rtt, _)) = self.rtt else {
            return target;
        };
        // consumed / since >= (target / 2) / (2 * rtt), without dividing.
        let fast = since.as_nanos() * u128::from(target) < 4 * rtt.as_nanos() * consumed as u128;
        if target >= MAX_STREAM_WINDOW || !fast {
            return target;
        }
        let want = target.saturating_mul(2).min(MAX_STREAM_WINDOW) - target;
        let extra = (want as usize).min(self.growth_left) as u32;
        self.growth_left -= extra as usize;
        target + extra
    }

    /// A stream left, giving back `extra` bytes of window it had grown by.
    pub(super) fn give_back(&mut self, extra: u32) {
        self.growth_left += extra as usize;
    }
}
