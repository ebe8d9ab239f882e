//! The control session state machine (`frp_proto::session::Session`), driven like the engine
//! drives it but by the input: server messages (structured or decoded from raw frames), dial
//! outcomes, transport failures, proxies added and removed, and a fake clock that moves by
//! input-chosen steps or jumps to the next deadline. The configuration (timeouts, backoff,
//! Login size, start time) comes from the input too.
//!
//! Invariants: no panic; after `handle_timeout(now)` the next deadline is never in the past,
//! and a driver that keeps calling it while the deadline is `now` gets past `now` within a few
//! calls (no timer that stays due); the run id kept, and every one reported, passes
//! `is_valid_run_id`; every transmit encodes within frp's frame limit; a Login carries the run
//! id in force; nothing queued for a lost connection is transmitted; only Login goes out before
//! the login succeeded; reconnect delays stay within the policy plus 10 % jitter; once stopped,
//! nothing more happens.

use super::Input;
use bytes::{BufMut, BytesMut};
use frp_proto::frame::encode_to_vec;
use frp_proto::msg::{Login, LoginResp, NewProxy, NewProxyResp, Pong, StringMap};
use frp_proto::session::{is_valid_run_id, Event, ReconnectPolicy, Session, SessionConfig};
use frp_proto::{decode_frame, Message, MessageType};
use std::time::{Duration, Instant};

/// Proxy names the input picks from (the wire name is `u.<name>`).
const NAMES: [&str; 4] = ["ssh", "web", "db", "x"];

/// Server error texts: empty, retryable, fatal (one per fatal class), odd.
const ERRORS: [&str; 7] = [
    "",
    "port unavailable",
    "proxy [u.ssh] already exists",
    "token in login doesn't match token from configuration",
    "Unauthorized",
    "tunnel is inactive",
    "\u{1b}[2J\r\n",
];

/// A duration from one byte: 0–63 ms, 0–3.15 s, 0–63 s or 0–63 min.
fn duration(b: u8) -> Duration {
    let n = u64::from(b & 63);
    match b >> 6 {
        0 => Duration::from_millis(n),
        1 => Duration::from_millis(n * 50),
        2 => Duration::from_secs(n),
        _ => Duration::from_secs(n * 60),
    }
}

fn text(input: &mut Input<'_>) -> String {
    let sel = input.byte();
    match sel % 4 {
        0 => ERRORS[(sel as usize / 4) % ERRORS.len()].to_owned(),
        1 => {
            let n = input.byte() as usize % 80;
            String::from_utf8_lossy(input.take(n)).into_owned()
        }
        2 => {
            // Run-id-like: letters and digits from the input bytes.
            let n = input.byte() as usize % 80;
            input
                .take(n)
                .iter()
                .map(|b| char::from(b"0123456789abcdefXYZ-_."[*b as usize % 22]))
                .collect()
        }
        _ => {
            // Long: the 10 200-character run id that once locked the client out, and others.
            let c = ['a', '0', '-', ' ', 'é', '\u{0}'][input.byte() as usize % 6];
            std::iter::repeat_n(c, input.u16() as usize % 12_000).collect()
        }
    }
}

fn config(input: &mut Input<'_>) -> SessionConfig {
    let metas_len = input.u16() as usize % 12_000;
    let mut metas = StringMap::new();
    if metas_len > 0 {
        metas.insert("binding_secret".to_owned(), "s".repeat(metas_len));
    }
    let login = Login {
        version: "0.66.0".into(),
        os: "linux".into(),
        arch: "amd64".into(),
        user: "u".into(),
        metas,
        pool_count: 1,
        ..Default::default()
    };
    let mut cfg = SessionConfig::new(login, "fuzz-token");
    let hb = input.byte();
    cfg.heartbeat_interval = (hb != 0).then(|| duration(hb));
    cfg.heartbeat_timeout = duration(input.byte());
    cfg.login_timeout = duration(input.byte());
    cfg.reconnect = ReconnectPolicy::new(
        duration(input.byte()),
        duration(input.byte()),
        duration(input.byte()),
    );
    let flags = input.byte();
    cfg.login_fail_exit = flags & 1 != 0;
    cfg.auth_heartbeats = flags & 2 != 0;
    cfg.jitter_seed = input.u64();
    cfg
}

fn default_message(ty: MessageType) -> Message {
    let mut frame = BytesMut::new();
    frame.put_u8(ty.byte());
    frame.put_i64(2);
    frame.extend_from_slice(b"{}");
    decode_frame(&mut frame)
        .expect("{} is every message")
        .expect("whole frame")
}

fn new_proxy(wire: &str, extra: usize) -> NewProxy {
    NewProxy {
        proxy_name: wire.to_owned(),
        proxy_type: "http".into(),
        custom_domains: if extra > 0 {
            vec!["d".repeat(extra)]
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

/// The session, its clock and what the checks remember between inputs.
struct Driver {
    s: Session,
    now: Instant,
    policy: ReconnectPolicy,
    stopped: bool,
    /// Events seen, for the caller's statistics.
    events: usize,
}

impl Driver {
    /// Drains events and transmits after one input and checks them. `closing` when the input
    /// was `close()`, the one call that may queue messages (CloseProxy) as the session ends.
    fn check(&mut self, closing: bool) {
        let events: Vec<Event> = std::iter::from_fn(|| self.s.poll_event()).collect();
        let transmits: Vec<Message> = std::iter::from_fn(|| self.s.poll_transmit()).collect();
        self.events += events.len();
        let run_id = self.s.run_id();
        assert!(
            run_id.is_empty() || is_valid_run_id(run_id),
            "kept run id {run_id:?}"
        );
        if self.stopped {
            assert!(
                events.is_empty() && transmits.is_empty(),
                "activity after Stopped"
            );
            assert!(self.s.is_stopped() && self.s.poll_timeout().is_none());
            return;
        }
        let max_delay = self.policy.max.max(self.policy.quick_restart);
        for e in &events {
            match e {
                Event::LoggedIn { run_id, .. } => {
                    assert!(run_id.is_empty() || is_valid_run_id(run_id));
                }
                Event::Reconnecting { delay, .. } => {
                    assert!(*delay <= max_delay + max_delay / 10, "delay {delay:?}");
                }
                Event::Stopped { .. } => self.stopped = true,
                _ => {}
            }
        }
        if self.stopped {
            assert!(self.s.is_stopped() && self.s.poll_timeout().is_none());
            assert!(matches!(events.last(), Some(Event::Stopped { .. })));
        }
        let lost = events.iter().any(|e| matches!(e, Event::Lost { .. }));
        if lost {
            assert!(
                transmits.is_empty(),
                "queued for a lost connection: {transmits:?}"
            );
        }
        for m in &transmits {
            if let Err(e) = encode_to_vec(m) {
                panic!("{} does not encode: {e}", m.message_type().name());
            }
            if let Message::Login(l) = m {
                assert_eq!(
                    l.run_id,
                    self.s.run_id(),
                    "Login carries the run id in force"
                );
            }
        }
        if !closing && !transmits.is_empty() && !self.s.is_online() {
            assert!(
                matches!(transmits.as_slice(), [Message::Login(_)]),
                "sent before logging in: {transmits:?}"
            );
        }
    }

    /// Runs the timers at `now` as the engine does, and checks the next deadline.
    fn timeout(&mut self) {
        let now = self.now;
        for _ in 0..8 {
            self.s.handle_timeout(now);
            self.check(false);
            match self.s.poll_timeout() {
                Some(at) if at < now => panic!("deadline {:?} in the past", now - at),
                Some(at) if at == now => continue,
                _ => return,
            }
        }
        panic!("a timer stays due at the same instant");
    }
}

/// Drives one session through the input; returns how many events it produced.
pub fn run(data: &[u8]) -> usize {
    let mut input = Input(data);
    let cfg = config(&mut input);
    let unix = input.u64() as i64;
    let t0 = Instant::now();
    let mut d = Driver {
        policy: cfg.reconnect.clone(),
        s: Session::new(cfg, t0, unix),
        now: t0,
        stopped: false,
        events: 0,
    };
    let proxies = input.byte();
    for (i, name) in NAMES.iter().enumerate() {
        if proxies & (1 << i) != 0 {
            let _ = d.s.add_proxy(*name, new_proxy(&format!("u.{name}"), 0), t0);
        }
    }
    d.check(false);
    while !input.is_empty() {
        let op = input.byte();
        let mut closing = false;
        match op % 13 {
            0 => {
                d.now += duration(input.byte());
                d.timeout();
            }
            1 => {
                if let Some(at) = d.s.poll_timeout() {
                    d.now = d.now.max(at);
                }
                d.timeout();
            }
            2 => d.s.connected(d.now),
            3 => d.s.transport_failed(d.now, input.byte() & 1 != 0),
            4 => {
                let resp = LoginResp {
                    version: "0.66.0".into(),
                    run_id: text(&mut input),
                    error: text(&mut input),
                };
                d.s.handle(resp.into(), d.now);
            }
            5 => {
                let which = input.byte();
                let proxy_name = match NAMES.get(which as usize % 8) {
                    Some(name) => format!("u.{name}"),
                    None => text(&mut input),
                };
                let resp = NewProxyResp {
                    proxy_name,
                    remote_addr: ":6000".into(),
                    error: text(&mut input),
                };
                d.s.handle(resp.into(), d.now);
            }
            6 => {
                let error = if input.byte() & 7 == 0 {
                    text(&mut input)
                } else {
                    String::new()
                };
                d.s.handle(Pong { error }.into(), d.now);
            }
            7 => {
                let ty = MessageType::ALL[input.byte() as usize % MessageType::ALL.len()];
                d.s.handle(default_message(ty), d.now);
            }
            8 => {
                let n = input.u16() as usize % 2048;
                let mut frame = BytesMut::from(input.take(n));
                if let Ok(Some(msg)) = decode_frame(&mut frame) {
                    d.s.handle(msg, d.now);
                }
            }
            9 => {
                let name = NAMES[input.byte() as usize % NAMES.len()];
                let extra = match input.byte() {
                    b if b < 0xf0 => 0,
                    b => (b as usize - 0xf0) * 1024,
                };
                let _ =
                    d.s.add_proxy(name, new_proxy(&format!("u.{name}"), extra), d.now);
            }
            10 => {
                d.s.remove_proxy(NAMES[input.byte() as usize % NAMES.len()]);
            }
            11 => {
                // The driver's own messages (visitors, NAT hole punching); never a Login, which
                // is the session's alone.
                let ty = MessageType::ALL[input.byte() as usize % MessageType::ALL.len()];
                if ty != MessageType::Login {
                    let online = d.s.is_online();
                    assert_eq!(d.s.send(default_message(ty)), online);
                }
            }
            _ => {
                d.s.close();
                closing = true;
            }
        }
        d.check(closing);
    }
    d.events
}
