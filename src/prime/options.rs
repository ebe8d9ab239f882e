//! [`ClientOptions`]: timeouts, retries and listing bounds of a [`super::PrimeClient`].

use std::time::Duration;

/// Our `User-Agent`.
pub const USER_AGENT: &str = concat!("expose/", env!("CARGO_PKG_VERSION"));

/// Per-request timeout, connect to last body byte (the SDK's 30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts for a GET or DELETE that fails in transport (the SDK's `stop_after_attempt(3)`).
pub const DEFAULT_TRANSPORT_ATTEMPTS: u32 = 3;

/// First transport backoff; doubles per retry (the SDK's `wait_exponential(0.1, min=0.1)`).
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(100);

/// Largest transport backoff (the SDK's `max=2`).
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Retries after HTTP 429, on top of the first request.
pub const DEFAULT_RATE_LIMIT_RETRIES: u32 = 3;

/// Longest wait honoured from a `Retry-After` header; a longer one is cut to this so a command
/// never hangs for the server's whole 60 s window.
pub const DEFAULT_RATE_LIMIT_MAX_WAIT: Duration = Duration::from_secs(10);

/// Wait after a 429 that has no usable `Retry-After`.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

/// Most tunnels [`super::PrimeClient::list_all_tunnels`] collects (200 pages of 50).
pub const DEFAULT_LIST_MAX_ENTRIES: usize = 10_000;

/// Most response bytes [`super::PrimeClient::list_all_tunnels`] reads over all its pages.
pub const DEFAULT_LIST_MAX_BYTES: usize = 16 << 20;

/// Longest [`super::PrimeClient::list_all_tunnels`] spends, retries included.
pub const DEFAULT_LIST_MAX_TIME: Duration = Duration::from_secs(60);

/// Knobs for timeouts, retries and listing bounds; the timeouts and retries mirror Prime's SDK.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Per-request timeout.
    pub timeout: Duration,
    /// Total attempts of a GET or DELETE that fails in transport (1 = no retry).
    pub transport_attempts: u32,
    /// First backoff between transport attempts; doubles each time.
    pub backoff_initial: Duration,
    /// Cap on the transport backoff.
    pub backoff_max: Duration,
    /// Retries after HTTP 429 (0 = give up at the first 429).
    pub rate_limit_retries: u32,
    /// Cap on the wait taken from `Retry-After`.
    pub rate_limit_max_wait: Duration,
    /// Wait after a 429 without a usable `Retry-After` (also capped by `rate_limit_max_wait`).
    pub rate_limit_default_wait: Duration,
    /// Honour `HTTP(S)_PROXY` from the environment (tests on loopback turn this off).
    pub use_system_proxy: bool,
    /// [`super::PrimeClient::list_all_tunnels`] stops after this many tunnels.
    pub list_max_entries: usize,
    /// [`super::PrimeClient::list_all_tunnels`] requests no further page once the bodies read
    /// add up to this many bytes (so it holds at most this plus one page).
    pub list_max_bytes: usize,
    /// [`super::PrimeClient::list_all_tunnels`] stops after this long, whatever page it is on.
    pub list_max_time: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: DEFAULT_TIMEOUT,
            transport_attempts: DEFAULT_TRANSPORT_ATTEMPTS,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            rate_limit_retries: DEFAULT_RATE_LIMIT_RETRIES,
            rate_limit_max_wait: DEFAULT_RATE_LIMIT_MAX_WAIT,
            rate_limit_default_wait: DEFAULT_RATE_LIMIT_WAIT,
            use_system_proxy: true,
            list_max_entries: DEFAULT_LIST_MAX_ENTRIES,
            list_max_bytes: DEFAULT_LIST_MAX_BYTES,
            list_max_time: DEFAULT_LIST_MAX_TIME,
        }
    }
}

impl ClientOptions {
    /// Sets the per-request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the total attempts of a GET or DELETE that fails in transport (1 = no retry).
    pub fn transport_attempts(mut self, attempts: u32) -> Self {
        self.transport_attempts = attempts;
        self
    }

    /// Sets the first transport backoff and its cap.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self
    }

    /// Sets the retries after HTTP 429 (0 = give up at the first 429).
    pub fn rate_limit_retries(mut self, retries: u32) -> Self {
        self.rate_limit_retries = retries;
        self
    }

    /// Sets the cap on the wait taken from `Retry-After`.
    pub fn rate_limit_max_wait(mut self, wait: Duration) -> Self {
        self.rate_limit_max_wait = wait;
        self
    }

    /// Sets the wait after a 429 without a usable `Retry-After`.
    pub fn rate_limit_default_wait(mut self, wait: Duration) -> Self {
        self.rate_limit_default_wait = wait;
        self
    }

    /// Honours `HTTP(S)_PROXY` from the environment, or not.
    pub fn use_system_proxy(mut self, on: bool) -> Self {
        self.use_system_proxy = on;
        self
    }

    /// Bounds [`super::PrimeClient::list_all_tunnels`]: at most `entries` tunnels, about
    /// `bytes` of responses, `time` in all.
    pub fn list_bounds(mut self, entries: usize, bytes: usize, time: Duration) -> Self {
        self.list_max_entries = entries;
        self.list_max_bytes = bytes;
        self.list_max_time = time;
        self
    }
}
