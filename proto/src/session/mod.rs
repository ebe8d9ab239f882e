//! The client side of an frp control session as a pure state machine.
//!
//! [`Session`] decides what to send and when: Login, NewProxy and its retries, Ping, CloseProxy,
//! when a login or a connection has failed, and how long to wait before dialling again. It never
//! touches a socket or reads a clock: the driver feeds it messages, transport outcomes and the
//! current [`Instant`], and sleeps until [`Session::poll_timeout`]. The driver's loop:
//!
//! 1. On [`Event::Connect`], dial (TCP, TLS, mux, control stream), then call
//!    [`Session::connected`] or [`Session::transport_failed`].
//! 2. Feed every control message to [`Session::handle`]; call [`Session::handle_timeout`] when
//!    the deadline from [`Session::poll_timeout`] passes; report a broken connection with
//!    [`Session::transport_failed`].
//! 3. After every input, drain [`Session::poll_event`] first, then [`Session::poll_transmit`]:
//!    [`Event::LoggedIn`] means the control stream is encrypted from the next transmit on.
//!
//! It holds any number of proxies; messages it does not own (NAT hole punching, anything a
//! later frp adds) come out as [`Event::Message`], and [`Session::send`] queues the driver's own
//! control messages, so visitors and other wire versions fit around it unchanged.

mod backoff;
mod event;
mod heartbeat;
mod proxies;
mod rules;
#[cfg(test)]
mod tests;

pub use backoff::{
    backoff, ReconnectPolicy, DEATH_WINDOW, FIRST_LOGIN_MAX_BACKOFF, QUICK_RESTARTS,
};
pub use event::{Event, Failure, ProxyError};
pub use proxies::{PROXY_RESEND_AFTER, PROXY_RETRY_AFTER};
pub use rules::{is_fatal_rejection, is_valid_run_id, MAX_RUN_ID_LEN};

use crate::frame::{encode_to_vec, FrameError};
use crate::msg::{CloseProxy, Login, LoginResp, NewProxy, NewProxyResp, Ping, Pong};
use crate::Message;
use backoff::Reconnect;
use heartbeat::{Due, Heartbeat};
use proxies::{Proxy, ProxyTable, Registration};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// What the session needs to know; everything else about the connection is the driver's.
#[derive(Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// The Login to send: every field but `privilege_key`, `timestamp` and `run_id`, which the
    /// session fills in for each attempt.
    pub login: Login,
    token: String,
    /// Put a fresh `privilege_key` in every Ping (frps's `HeartBeats` auth scope).
    pub auth_heartbeats: bool,
    /// Ping period; `None` or zero sends no Ping and checks no Pong (zero as in Go frpc).
    pub heartbeat_interval: Option<Duration>,
    /// The session is lost when no Pong came for this long; zero never checks.
    pub heartbeat_timeout: Duration,
    /// How long a sent Login may wait for LoginResp.
    pub login_timeout: Duration,
    /// Waits between attempts.
    pub reconnect: ReconnectPolicy,
    /// Stop for good when the very first login fails, instead of retrying.
    pub login_fail_exit: bool,
    /// Seed for the reconnect jitter (any value; fixed in tests).
    pub jitter_seed: u64,
}

impl SessionConfig {
    /// Go frpc's defaults: Ping every 30 s, 90 s Pong timeout, 10 s for LoginResp, retry logins.
    pub fn new(login: Login, token: impl Into<String>) -> Self {
        SessionConfig {
            login,
            token: token.into(),
            auth_heartbeats: false,
            heartbeat_interval: Some(Duration::from_secs(30)),
            heartbeat_timeout: Duration::from_secs(90),
            login_timeout: Duration::from_secs(10),
            reconnect: ReconnectPolicy::default(),
            login_fail_exit: false,
            jitter_seed: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("login", &self.login)
            .field("token", &"<redacted>")
            .field("auth_heartbeats", &self.auth_heartbeats)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .field("login_timeout", &self.login_timeout)
            .field("reconnect", &self.reconnect)
            .field("login_fail_exit", &self.login_fail_exit)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting until this time before the next dial.
    Waiting(Instant),
    /// [`Event::Connect`] emitted; the driver is dialling.
    Dialing,
    /// Login queued; LoginResp due by the deadline.
    LoggingIn { deadline: Instant },
    /// Logged in.
    Online {
        last_ping: Option<Instant>,
        last_pong: Instant,
    },
    /// Over for good.
    Stopped,
}

/// The frp control session of one client, across all its connections.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    phase: Phase,
    run_id: String,
    logged_in_once: bool,
    reconnect: Reconnect,
    heartbeat: Heartbeat,
    proxies: ProxyTable,
    transmits: VecDeque<Message>,
    events: VecDeque<Event>,
    /// Wall-clock seconds at `clock_base`, for the timestamps in Login and Ping.
    unix_base: i64,
    clock_base: Instant,
}

impl Session {
    /// A session that wants to dial at once. `unix_now` is the wall clock (Unix seconds) at
    /// `now`; later timestamps are derived from the `Instant`s the driver passes in.
    pub fn new(config: SessionConfig, now: Instant, unix_now: i64) -> Self {
        Session {
            reconnect: Reconnect::new(config.reconnect.clone(), config.jitter_seed),
            heartbeat: Heartbeat::new(config.heartbeat_interval, config.heartbeat_timeout),
            config,
            phase: Phase::Waiting(now),
            run_id: String::new(),
            logged_in_once: false,
            proxies: ProxyTable::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            unix_base: unix_now,
            clock_base: now,
        }
    }

    /// Adds a proxy; its `msg.proxy_name` is the wire name. When online it is registered at once.
    pub fn add_proxy(
        &mut self,
        name: impl Into<String>,
        msg: NewProxy,
        now: Instant,
    ) -> Result<(), ProxyError> {
        let name = name.into();
        if self.proxies.contains(&name) {
            return Err(ProxyError::Duplicate(name));
        }
        if let Some(len) = oversized(&Message::NewProxy(msg.clone())) {
            return Err(ProxyError::TooLarge { name, len });
        }
        let mut proxy = Proxy {
            name,
            msg,
            status: Registration::Unsent,
        };
        if self.is_online() {
            self.transmits.push_back(proxy.msg.clone().into());
            proxy.status = Registration::Pending(now);
        }
        self.proxies.push(proxy);
        Ok(())
    }

    /// Removes a proxy, with CloseProxy when the server may hold it. False if unknown.
    pub fn remove_proxy(&mut self, name: &str) -> bool {
        let Some(proxy) = self.proxies.remove(name) else {
            return false;
        };
        if self.is_online() && proxy.status.may_be_registered() {
            self.transmits.push_back(close_proxy(&proxy));
        }
        true
    }

    /// The driver could not start a proxy the server just registered (frpc: a plugin that
    /// fails to start): CloseProxy is queued, [`Event::ProxyFailed`] comes out with `reason`,
    /// and the proxy counts as refused now, so its NewProxy is sent again after
    /// [`PROXY_RETRY_AFTER`], as frpc retries a proxy in "start error". Nothing happens for a
    /// proxy that is unknown or not registered.
    pub fn proxy_start_failed(&mut self, name: &str, reason: String, now: Instant) {
        let online = self.is_online();
        let Some(proxy) = self.proxies.iter_mut().find(|p| p.name == name) else {
            return;
        };
        if !online || proxy.status != Registration::Ready {
            return;
        }
        proxy.status = Registration::Failed(now);
        let close = close_proxy(proxy);
        self.transmits.push_back(close);
        self.events.push_back(Event::ProxyFailed {
            name: name.to_owned(),
            reason,
        });
    }

    /// The run id in force (empty before the first login).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Logged in on the current connection.
    pub fn is_online(&self) -> bool {
        matches!(self.phase, Phase::Online { .. })
    }

    /// Over for good.
    pub fn is_stopped(&self) -> bool {
        matches!(self.phase, Phase::Stopped)
    }

    /// Queues a control message of the driver's own. False, and nothing queued, when not
    /// online or when the message would not fit a frame (frps would drop the connection).
    pub fn send(&mut self, msg: Message) -> bool {
        if !self.is_online() || oversized(&msg).is_some() {
            return false;
        }
        self.transmits.push_back(msg);
        true
    }

    /// The driver's connection is up and the control stream open: the Login is queued.
    pub fn connected(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Dialing) {
            return;
        }
        let timestamp = self.unix_at(now);
        let login = Login {
            privilege_key: crate::auth::privilege_key(&self.config.token, timestamp),
            timestamp,
            run_id: self.run_id.clone(),
            ..self.config.login.clone()
        };
        let msg = Message::Login(login);
        if let Some(len) = oversized(&msg) {
            self.fail(now, Failure::MessageTooLarge { kind: "Login", len });
            return;
        }
        self.transmits.push_back(msg);
        self.phase = Phase::LoggingIn {
            deadline: now + self.config.login_timeout,
        };
    }

    /// The connection failed: the dial, the handshake, a read or a write, or the server closed
    /// it. `fatal` when the driver knows retrying cannot help.
    pub fn transport_failed(&mut self, now: Instant, fatal: bool) {
        if matches!(self.phase, Phase::Waiting(_) | Phase::Stopped) {
            return;
        }
        self.fail(now, Failure::Transport { fatal });
    }

    /// One control message from the server.
    pub fn handle(&mut self, msg: Message, now: Instant) {
        match self.phase {
            Phase::LoggingIn { .. } => match msg {
                Message::LoginResp(resp) => self.on_login_resp(resp, now),
                other => self.fail(
                    now,
                    Failure::UnexpectedMessage {
                        expected: "LoginResp",
                        got: other.message_type().name(),
                    },
                ),
            },
            Phase::Online { .. } => match msg {
                Message::ReqWorkConn(_) => self.events.push_back(Event::WorkConnRequested),
                Message::NewProxyResp(resp) => self.on_new_proxy_resp(resp, now),
                Message::Pong(pong) => self.on_pong(pong, now),
                other => self.events.push_back(Event::Message(Box::new(other))),
            },
            // Nothing can arrive without a connection; a late message from a dropped one is moot.
            Phase::Waiting(_) | Phase::Dialing | Phase::Stopped => {}
        }
    }

    /// Ends the session at the driver's request: CloseProxy for every proxy the server may hold
    /// (when online), then [`Event::Stopped`] with no cause. The driver sends the transmits it
    /// can within its grace period and closes.
    pub fn close(&mut self) {
        if self.is_stopped() {
            return;
        }
        if self.is_online() {
            let closes: Vec<Message> = self
                .proxies
                .iter()
                .filter(|p| p.status.may_be_registered())
                .map(close_proxy)
                .collect();
            self.transmits.extend(closes);
        }
        self.phase = Phase::Stopped;
        self.events.push_back(Event::Stopped { cause: None });
    }

    /// When [`Session::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting(until) => Some(until),
            Phase::Dialing | Phase::Stopped => None,
            Phase::LoggingIn { deadline } => Some(deadline),
            Phase::Online {
                last_ping,
                last_pong,
            } => [
                self.heartbeat.next(last_ping, last_pong),
                self.proxies.next_due(),
            ]
            .into_iter()
            .flatten()
            .min(),
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Waiting(until) if now >= until => {
                self.phase = Phase::Dialing;
                self.events.push_back(Event::Connect {
                    attempt: self.reconnect.failures + 1,
                });
            }
            Phase::LoggingIn { deadline } if now >= deadline => {
                self.fail(now, Failure::LoginTimeout);
            }
            Phase::Online {
                last_ping,
                last_pong,
            } => {
                match self.heartbeat.due(now, last_ping, last_pong) {
                    Due::PongTimeout => {
                        self.fail(now, Failure::PongTimeout);
                        return;
                    }
                    Due::Ping => {
                        self.transmits.push_back(self.ping(now));
                        self.phase = Phase::Online {
                            last_ping: Some(now),
                            last_pong,
                        };
                    }
                    Due::Nothing => {}
                }
                self.register_due(now);
            }
            _ => {}
        }
    }

    /// The next message to write on the control stream.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmits.pop_front()
    }

    /// The next thing the driver must act on.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn unix_at(&self, now: Instant) -> i64 {
        let elapsed = now.saturating_duration_since(self.clock_base).as_secs();
        self.unix_base
            .saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
    }

    fn ping(&self, now: Instant) -> Message {
        let ping = if self.config.auth_heartbeats {
            let timestamp = self.unix_at(now);
            Ping {
                privilege_key: crate::auth::privilege_key(&self.config.token, timestamp),
                timestamp,
            }
        } else {
            Ping::default()
        };
        ping.into()
    }

    fn on_login_resp(&mut self, resp: LoginResp, now: Instant) {
        if !resp.error.is_empty() {
            self.fail(now, Failure::LoginRejected(resp.error));
            return;
        }
        if !resp.run_id.is_empty() {
            if !is_valid_run_id(&resp.run_id) {
                let len = resp.run_id.len();
                self.fail(now, Failure::InvalidRunId { len });
                return;
            }
            self.run_id = resp.run_id;
        }
        let reconnected = self.logged_in_once;
        self.logged_in_once = true;
        self.reconnect.failures = 0;
        self.phase = Phase::Online {
            last_ping: None,
            last_pong: now,
        };
        self.events.push_back(Event::LoggedIn {
            run_id: self.run_id.clone(),
            reconnected,
        });
        self.proxies.reset();
        self.register_due(now);
        // Go frpc pings right after registering its proxies.
        self.handle_timeout(now);
    }

    fn on_new_proxy_resp(&mut self, resp: NewProxyResp, now: Instant) {
        let Some(proxy) = self.proxies.by_wire_name(&resp.proxy_name) else {
            // An answer for a proxy removed meanwhile, or never ours: nothing to update.
            return;
        };
        let name = proxy.name.clone();
        if resp.error.is_empty() {
            proxy.status = Registration::Ready;
            self.events.push_back(Event::ProxyReady {
                name,
                remote_addr: resp.remote_addr,
            });
            return;
        }
        proxy.status = Registration::Failed(now);
        self.events.push_back(Event::ProxyFailed {
            name: name.clone(),
            reason: resp.error.clone(),
        });
        if is_fatal_rejection(&resp.error) {
            self.fail(
                now,
                Failure::ProxyRejected {
                    name,
                    reason: resp.error,
                },
            );
        }
    }

    fn on_pong(&mut self, pong: Pong, now: Instant) {
        if !pong.error.is_empty() {
            self.fail(now, Failure::PongError(pong.error));
            return;
        }
        if let Phase::Online { last_ping, .. } = self.phase {
            self.phase = Phase::Online {
                last_ping,
                last_pong: now,
            };
        }
    }

    /// (Re)sends NewProxy for proxies never sent on this connection, unanswered for 20 s, or
    /// refused 30 s ago.
    fn register_due(&mut self, now: Instant) {
        for p in self.proxies.iter_mut() {
            let due = match p.status.due() {
                Some(None) => true,
                Some(Some(at)) => now >= at,
                None => false,
            };
            if due {
                self.transmits.push_back(p.msg.clone().into());
                p.status = Registration::Pending(now);
            }
        }
    }

    /// The current connection is over: decide between retrying and stopping.
    fn fail(&mut self, now: Instant, cause: Failure) {
        let logged_in = self.is_online();
        // Nothing queued for a dead connection may leak into the next one.
        self.transmits.clear();
        self.events.push_back(Event::Lost {
            cause: cause.clone(),
            logged_in,
        });
        let give_up =
            cause.is_fatal() || (!logged_in && !self.logged_in_once && self.config.login_fail_exit);
        if give_up {
            self.phase = Phase::Stopped;
            self.events.push_back(Event::Stopped { cause: Some(cause) });
            return;
        }
        let delay = if logged_in {
            self.reconnect.after_death(now)
        } else {
            self.reconnect.after_login_failure(self.logged_in_once)
        };
        self.phase = Phase::Waiting(now + delay);
        self.events.push_back(Event::Reconnecting {
            attempt: self.reconnect.failures + 1,
            delay,
            cause,
        });
    }
}

/// The body length of `msg` when it is over frp's limit.
fn oversized(msg: &Message) -> Option<usize> {
    match encode_to_vec(msg) {
        Err(FrameError::TooLong(len)) => Some(usize::try_from(len).unwrap_or(usize::MAX)),
        _ => None,
    }
}

fn close_proxy(p: &Proxy) -> Message {
    CloseProxy {
        proxy_name: p.wire_name().to_owned(),
    }
    .into()
}
