//! The session's rules, driven by a fake clock: no sockets, no sleeping.

use super::*;
use crate::msg::{NatHoleResp, ReqWorkConn, StringMap};

const SECOND: Duration = Duration::from_secs(1);
const UNIX0: i64 = 1_700_000_000;

struct Harness {
    s: Session,
    t0: Instant,
    now: Instant,
}

fn config() -> SessionConfig {
    let login = Login {
        version: "0.66.0".into(),
        os: "linux".into(),
        arch: "amd64".into(),
        user: "u".into(),
        pool_count: 1,
        ..Default::default()
    };
    SessionConfig::new(login, "secret-token")
}

fn new_proxy(wire: &str) -> NewProxy {
    NewProxy {
        proxy_name: wire.into(),
        proxy_type: "tcp".into(),
        ..Default::default()
    }
}

impl Harness {
    fn new(cfg: SessionConfig, proxies: &[&str]) -> Self {
        let t0 = Instant::now();
        let mut s = Session::new(cfg, t0, UNIX0);
        for p in proxies {
            s.add_proxy(*p, new_proxy(&format!("u.{p}")), t0).unwrap();
        }
        Harness { s, t0, now: t0 }
    }

    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    /// Moves the clock to `t0 + secs`, running the timers on the way as a driver would.
    fn advance_to(&mut self, secs: f64) {
        let target = self.at(secs);
        while let Some(due) = self.s.poll_timeout() {
            if due > target {
                break;
            }
            self.now = due.max(self.now);
            self.s.handle_timeout(self.now);
            if self.s.poll_timeout() == Some(due) {
                break;
            }
        }
        self.now = target;
        self.s.handle_timeout(target);
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    fn transmits(&mut self) -> Vec<Message> {
        std::iter::from_fn(|| self.s.poll_transmit()).collect()
    }

    /// Dial succeeds at once and the Login goes out; returns it.
    fn dial_ok(&mut self) -> Login {
        self.s.handle_timeout(self.now);
        let ev = self.events();
        assert!(
            ev.iter().any(|e| matches!(e, Event::Connect { .. })),
            "expected Connect, got {ev:?}"
        );
        self.s.connected(self.now);
        match self.transmits().as_slice() {
            [Message::Login(l)] => l.clone(),
            other => panic!("expected one Login, got {other:?}"),
        }
    }

    fn login_resp(&mut self, run_id: &str, error: &str) {
        let resp = LoginResp {
            run_id: run_id.into(),
            error: error.into(),
            ..Default::default()
        };
        self.s.handle(resp.into(), self.now);
    }

    /// Dial, Login, LoginResp(run_id): online. Returns what was sent after the login.
    fn online(&mut self, run_id: &str) -> Vec<Message> {
        self.dial_ok();
        self.login_resp(run_id, "");
        assert!(self.s.is_online());
        let ev = self.events();
        assert!(matches!(ev.as_slice(), [Event::LoggedIn { .. }]), "{ev:?}");
        self.transmits()
    }

    fn proxy_resp(&mut self, wire: &str, error: &str) {
        let resp = NewProxyResp {
            proxy_name: wire.into(),
            remote_addr: ":6000".into(),
            error: error.into(),
        };
        self.s.handle(resp.into(), self.now);
    }

    fn pong(&mut self) {
        self.s.handle(Pong::default().into(), self.now);
    }
}

fn names(msgs: &[Message]) -> Vec<String> {
    msgs.iter()
        .map(|m| match m {
            Message::NewProxy(p) => format!("NewProxy {}", p.proxy_name),
            Message::CloseProxy(p) => format!("CloseProxy {}", p.proxy_name),
            other => other.message_type().name().to_owned(),
        })
        .collect()
}

fn reconnect_delay(events: &[Event]) -> Duration {
    events
        .iter()
        .find_map(|e| match e {
            Event::Reconnecting { delay, .. } => Some(*delay),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Reconnecting in {events:?}"))
}

fn within_jitter(d: Duration, base: Duration) -> bool {
    d >= base && d <= base + base / 10
}

#[test]
fn first_login_sends_login_then_proxies_then_ping() {
    let mut h = Harness::new(config(), &["a", "b"]);
    assert_eq!(
        h.s.poll_timeout(),
        Some(h.t0),
        "a new session dials at once"
    );
    let login = h.dial_ok();
    assert_eq!(login.run_id, "");
    assert_eq!(login.timestamp, UNIX0);
    assert_eq!(
        login.privilege_key,
        crate::auth::privilege_key("secret-token", UNIX0)
    );
    assert_eq!(login.user, "u");
    h.login_resp("r1", "");
    assert_eq!(
        h.events(),
        vec![Event::LoggedIn {
            run_id: "r1".into(),
            reconnected: false
        }]
    );
    assert_eq!(
        names(&h.transmits()),
        ["NewProxy u.a", "NewProxy u.b", "Ping"]
    );
    h.proxy_resp("u.a", "");
    h.proxy_resp("u.b", "");
    assert_eq!(
        h.events(),
        vec![
            Event::ProxyReady {
                name: "a".into(),
                remote_addr: ":6000".into()
            },
            Event::ProxyReady {
                name: "b".into(),
                remote_addr: ":6000".into()
            },
        ]
    );
}

#[test]
fn ping_every_interval_and_pong_timeout_loses_the_session() {
    let mut h = Harness::new(config(), &["a"]);
    h.online("r1");
    h.proxy_resp("u.a", "");
    h.events();
    // Ping every 30 s; Pongs keep it alive.
    assert_eq!(h.s.poll_timeout(), Some(h.at(30.0)));
    h.advance_to(29.9);
    assert!(h.transmits().is_empty());
    h.advance_to(30.0);
    assert_eq!(names(&h.transmits()), ["Ping"]);
    h.pong();
    h.advance_to(60.0);
    assert_eq!(names(&h.transmits()), ["Ping"]);
    // No Pong since t=30: lost at 30 + 90 = 120, with Pings at 90 on the way.
    h.advance_to(119.9);
    assert_eq!(names(&h.transmits()), ["Ping"]);
    assert!(h.s.is_online());
    h.advance_to(120.0);
    let ev = h.events();
    assert_eq!(
        ev[0],
        Event::Lost {
            cause: Failure::PongTimeout,
            logged_in: true
        }
    );
    assert!(within_jitter(
        reconnect_delay(&ev),
        Duration::from_millis(200)
    ));
    assert!(h.transmits().is_empty());
}

#[test]
fn pong_error_loses_the_session() {
    let mut h = Harness::new(config(), &[]);
    h.online("r1");
    h.s.handle(
        Pong {
            error: "invalid token".into(),
        }
        .into(),
        h.now,
    );
    let ev = h.events();
    assert!(
        matches!(&ev[0], Event::Lost { cause: Failure::PongError(e), .. } if e == "invalid token")
    );
    assert!(!h.s.is_online());
}

#[test]
fn no_heartbeat_means_no_ping_and_no_timer_once_proxies_are_ready() {
    let mut cfg = config();
    cfg.heartbeat_interval = None;
    let mut h = Harness::new(cfg, &["a"]);
    assert_eq!(names(&h.online("r1")), ["NewProxy u.a"]);
    h.proxy_resp("u.a", "");
    assert_eq!(h.s.poll_timeout(), None);
    h.advance_to(10_000.0);
    assert!(h.transmits().is_empty());
    assert!(h.s.is_online());
}

/// Found by the `control_session` fuzz target: a zero Ping interval made a Ping due at every
/// instant, so `handle_timeout(now)` queued a Ping and left the deadline at `now`, and a driver
/// looping on its deadline flooded the server. Go frpc sends no Ping for an interval of zero.
#[test]
fn zero_heartbeat_interval_sends_no_ping_like_go() {
    let mut cfg = config();
    cfg.heartbeat_interval = Some(Duration::ZERO);
    let mut h = Harness::new(cfg, &["a"]);
    assert_eq!(names(&h.online("r1")), ["NewProxy u.a"]);
    h.proxy_resp("u.a", "");
    assert_eq!(h.s.poll_timeout(), None);
    for _ in 0..3 {
        h.s.handle_timeout(h.now);
    }
    assert!(h.transmits().is_empty());
    h.advance_to(10_000.0);
    assert!(h.transmits().is_empty());
    assert!(h.s.is_online());
}

/// Go frpc checks for Pongs only with a positive timeout; a zero timeout used to end every
/// session at its first timer, right after the login.
#[test]
fn zero_heartbeat_timeout_never_ends_the_session() {
    let mut cfg = config();
    cfg.heartbeat_timeout = Duration::ZERO;
    let mut h = Harness::new(cfg, &[]);
    assert_eq!(names(&h.online("r1")), ["Ping"]);
    h.advance_to(95.0);
    assert!(h.s.is_online(), "{:?}", h.events());
    assert_eq!(names(&h.transmits()), ["Ping", "Ping", "Ping"]);
}

#[test]
fn auth_heartbeats_sign_each_ping_with_the_current_time() {
    let mut cfg = config();
    cfg.auth_heartbeats = true;
    let mut h = Harness::new(cfg, &[]);
    h.advance_to(5.0);
    let sent = h.online("r1");
    let Message::Ping(p) = &sent[0] else {
        panic!("{sent:?}")
    };
    assert_eq!(p.timestamp, UNIX0 + 5);
    assert_eq!(
        p.privilege_key,
        crate::auth::privilege_key("secret-token", UNIX0 + 5)
    );
    h.pong();
    h.advance_to(35.0);
    let Message::Ping(p) = &h.transmits()[0] else {
        panic!()
    };
    assert_eq!(p.timestamp, UNIX0 + 35);
}

#[test]
fn unanswered_new_proxy_is_resent_after_20_seconds() {
    let mut h = Harness::new(config(), &["a"]);
    h.online("r1");
    h.advance_to(19.9);
    assert!(h.transmits().is_empty());
    h.advance_to(20.0);
    assert_eq!(names(&h.transmits()), ["NewProxy u.a"]);
    h.advance_to(39.9);
    assert_eq!(names(&h.transmits()), ["Ping"]);
    h.advance_to(40.0);
    assert_eq!(names(&h.transmits()), ["NewProxy u.a"]);
    h.proxy_resp("u.a", "");
    h.pong();
    h.advance_to(59.0);
    assert!(h.transmits().is_empty(), "a ready proxy is never resent");
}

#[test]
fn refused_proxy_is_retried_every_30_seconds_until_accepted() {
    let mut h = Harness::new(config(), &["a", "b"]);
    h.online("r1");
    h.advance_to(1.0);
    h.proxy_resp("u.a", "proxy [u.a] already exists");
    h.proxy_resp("u.b", "");
    let ev = h.events();
    assert_eq!(
        ev[0],
        Event::ProxyFailed {
            name: "a".into(),
            reason: "proxy [u.a] already exists".into()
        }
    );
    assert!(h.s.is_online(), "a non-fatal refusal keeps the session");
    h.advance_to(30.9);
    assert_eq!(names(&h.transmits()), ["Ping"]);
    h.pong();
    h.advance_to(31.0);
    assert_eq!(names(&h.transmits()), ["NewProxy u.a"]);
    h.advance_to(31.5);
    h.proxy_resp("u.a", "proxy [u.a] already exists");
    h.advance_to(61.4);
    h.pong();
    assert_eq!(names(&h.transmits()), ["Ping"]);
    h.advance_to(61.5);
    assert_eq!(names(&h.transmits()), ["NewProxy u.a"]);
    h.proxy_resp("u.a", "");
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, Event::ProxyReady { name, .. } if name == "a")));
}

/// A proxy the driver cannot start (a plugin that fails) is closed on the server at once and
/// registered again 30 s later, as frpc retries a proxy in "start error".
#[test]
fn a_proxy_that_fails_to_start_is_closed_then_retried_after_30_seconds() {
    let mut h = Harness::new(config(), &["a"]);
    h.online("r1");
    h.advance_to(1.0);
    h.s.proxy_start_failed("a", "early".into(), h.now);
    assert!(h.events().is_empty(), "not registered yet");
    assert!(h.transmits().is_empty());
    h.proxy_resp("u.a", "");
    h.events();
    h.s.proxy_start_failed("a", "bad plugin".into(), h.now);
    assert_eq!(names(&h.transmits()), ["CloseProxy u.a"]);
    assert_eq!(
        h.events(),
        [Event::ProxyFailed {
            name: "a".into(),
            reason: "bad plugin".into()
        }]
    );
    h.s.proxy_start_failed("a", "again".into(), h.now);
    h.s.proxy_start_failed("nope", "unknown".into(), h.now);
    assert!(h.events().is_empty(), "only once, only for known proxies");
    assert!(h.transmits().is_empty());
    assert!(h.s.is_online());
    h.advance_to(30.9);
    assert_eq!(names(&h.transmits()), ["Ping"]);
    h.pong();
    h.advance_to(31.0);
    assert_eq!(names(&h.transmits()), ["NewProxy u.a"]);
}

#[test]
fn fatal_proxy_refusal_stops_the_client() {
    let mut h = Harness::new(config(), &["a"]);
    h.online("r1");
    h.proxy_resp("u.a", "Tunnel not registered");
    let ev = h.events();
    assert!(matches!(ev[0], Event::ProxyFailed { .. }));
    assert!(matches!(
        &ev[1],
        Event::Lost {
            cause: Failure::ProxyRejected { .. },
            logged_in: true
        }
    ));
    assert!(matches!(
        &ev[2],
        Event::Stopped {
            cause: Some(Failure::ProxyRejected { name, .. })
        } if name == "a"
    ));
    assert!(h.s.is_stopped());
    assert_eq!(h.s.poll_timeout(), None);
}

#[test]
fn login_rejections_are_classified() {
    for (text, fatal) in [
        (
            "token in login doesn't match token from configuration",
            true,
        ),
        ("invalid binding secret", true),
        ("Unauthorized", true),
        ("server is restarting", false),
        ("client_id [x] for user [u] is already online", false),
    ] {
        let mut h = Harness::new(config(), &["a"]);
        h.dial_ok();
        h.login_resp("", text);
        let ev = h.events();
        assert_eq!(
            ev[0],
            Event::Lost {
                cause: Failure::LoginRejected(text.into()),
                logged_in: false
            }
        );
        assert_eq!(
            h.s.is_stopped(),
            fatal,
            "{text}: fatal should be {fatal}, events {ev:?}"
        );
        assert_eq!(matches!(ev[1], Event::Stopped { .. }), fatal);
    }
}

#[test]
fn login_timeout_then_exponential_backoff_capped_at_10s_before_first_login() {
    let mut h = Harness::new(config(), &["a"]);
    h.dial_ok();
    assert_eq!(h.s.poll_timeout(), Some(h.at(10.0)));
    h.advance_to(9.99);
    assert!(h.events().is_empty());
    let mut t = 10.0;
    let mut delays = Vec::new();
    for attempt in 2..=6u32 {
        h.advance_to(t);
        let ev = h.events();
        assert_eq!(
            ev[0],
            Event::Lost {
                cause: Failure::LoginTimeout,
                logged_in: false
            }
        );
        let Event::Reconnecting {
            attempt: a, delay, ..
        } = ev[1].clone()
        else {
            panic!("{ev:?}")
        };
        assert_eq!(a, attempt);
        delays.push(delay);
        // Dial again once the delay is over; login times out 10 s later.
        t += delay.as_secs_f64();
        h.advance_to(t);
        let ev = h.events();
        assert_eq!(ev, vec![Event::Connect { attempt }]);
        h.s.connected(h.now);
        h.transmits();
        t += 10.0;
    }
    for (d, base) in delays.iter().zip([2, 4, 8, 10, 10]) {
        assert!(within_jitter(*d, base * SECOND), "{delays:?}");
    }
}

#[test]
fn backoff_caps_at_20s_after_a_successful_login() {
    let mut h = Harness::new(config(), &[]);
    h.online("r1");
    h.s.transport_failed(h.now, false);
    h.events();
    let mut delays = Vec::new();
    for _ in 0..5 {
        h.advance_to((h.now + SECOND * 25 - h.t0).as_secs_f64());
        h.events();
        h.s.transport_failed(h.now, false);
        delays.push(reconnect_delay(&h.events()));
    }
    for (d, base) in delays.iter().zip([2, 4, 8, 16, 20]) {
        assert!(within_jitter(*d, base * SECOND), "{delays:?}");
    }
}

#[test]
fn dial_failure_is_a_login_failure_and_success_resets_the_count() {
    let mut h = Harness::new(config(), &[]);
    h.s.handle_timeout(h.now);
    assert_eq!(h.events(), vec![Event::Connect { attempt: 1 }]);
    h.s.transport_failed(h.now, false);
    let ev = h.events();
    assert_eq!(
        ev[0],
        Event::Lost {
            cause: Failure::Transport { fatal: false },
            logged_in: false
        }
    );
    assert!(matches!(ev[1], Event::Reconnecting { attempt: 2, .. }));
    h.advance_to(3.0);
    assert_eq!(h.events(), vec![Event::Connect { attempt: 2 }]);
    h.s.connected(h.now);
    h.login_resp("r1", "");
    h.s.transport_failed(h.now, false);
    let ev = h.events();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Reconnecting { attempt: 1, .. })),
        "{ev:?}"
    );
}

#[test]
fn fatal_transport_failure_stops() {
    let mut h = Harness::new(config(), &[]);
    h.s.handle_timeout(h.now);
    h.s.transport_failed(h.now, true);
    let ev = h.events();
    assert!(matches!(
        ev.last(),
        Some(Event::Stopped {
            cause: Some(Failure::Transport { fatal: true })
        })
    ));
}

#[test]
fn login_fail_exit_stops_only_before_the_first_login() {
    let mut cfg = config();
    cfg.login_fail_exit = true;
    let mut h = Harness::new(cfg.clone(), &[]);
    h.dial_ok();
    h.login_resp("", "server is restarting");
    assert!(h.s.is_stopped());

    let mut h = Harness::new(cfg, &[]);
    h.online("r1");
    h.s.transport_failed(h.now, false);
    h.events();
    h.advance_to(1.0);
    h.dial_ok();
    h.login_resp("", "server is restarting");
    assert!(!h.s.is_stopped(), "after a success, failures are retried");
}

#[test]
fn relogin_reuses_the_run_id_and_counts_as_a_reconnect() {
    let mut h = Harness::new(config(), &["a"]);
    h.online("r1");
    h.proxy_resp("u.a", "");
    h.s.transport_failed(h.now, false);
    h.events();
    h.advance_to(1.0);
    let login = h.dial_ok();
    assert_eq!(login.run_id, "r1");
    // An empty run_id in the answer keeps ours.
    h.login_resp("", "");
    assert_eq!(
        h.events(),
        vec![Event::LoggedIn {
            run_id: "r1".into(),
            reconnected: true
        }]
    );
    assert_eq!(
        names(&h.transmits()),
        ["NewProxy u.a", "Ping"],
        "proxies are registered again on every new connection"
    );
}

#[test]
fn an_unusable_run_id_is_refused_and_never_sent_back() {
    let mut h = Harness::new(config(), &["a"]);
    h.online("good-run_1.x");
    h.s.transport_failed(h.now, false);
    h.events();
    h.advance_to(1.0);
    h.dial_ok();
    h.login_resp(&"x".repeat(10_200), "");
    let ev = h.events();
    assert_eq!(
        ev[0],
        Event::Lost {
            cause: Failure::InvalidRunId { len: 10_200 },
            logged_in: false
        }
    );
    assert!(!h.s.is_stopped(), "a broken server is retried with backoff");
    h.advance_to(10.0);
    let login = h.dial_ok();
    assert_eq!(login.run_id, "good-run_1.x");
    for bad in ["has space", "new\nline", "\u{e9}t\u{e9}", "q\"uote"] {
        assert!(!is_valid_run_id(bad), "{bad:?}");
    }
    assert!(is_valid_run_id("0123456789abcdef"));
    assert!(!is_valid_run_id(&"a".repeat(MAX_RUN_ID_LEN + 1)));
}

#[test]
fn a_login_too_large_to_send_is_fatal_not_a_loop() {
    let mut cfg = config();
    let mut metas = StringMap::new();
    metas.insert("blob".into(), "y".repeat(20_000));
    cfg.login.metas = metas;
    let mut h = Harness::new(cfg, &[]);
    h.s.handle_timeout(h.now);
    h.s.connected(h.now);
    assert!(h.transmits().is_empty());
    let ev = h.events();
    assert!(matches!(
        ev.last(),
        Some(Event::Stopped {
            cause: Some(Failure::MessageTooLarge { kind: "Login", .. })
        })
    ));
    let text = Failure::MessageTooLarge {
        kind: "Login",
        len: 20_100,
    }
    .to_string();
    assert!(text.contains("Login") && text.contains("10240"), "{text}");
}

#[test]
fn quick_restarts_then_backoff_within_the_death_window() {
    let mut h = Harness::new(config(), &[]);
    let mut delays = Vec::new();
    for _ in 0..6 {
        h.online("r1");
        h.s.transport_failed(h.now, false);
        delays.push(reconnect_delay(&h.events()));
        h.advance_to((h.now - h.t0).as_secs_f64() + 1.0);
    }
    let quick = Duration::from_millis(200);
    for (d, base) in delays
        .iter()
        .zip([quick, quick, quick, quick * 2, quick * 4, quick * 8])
    {
        assert!(within_jitter(*d, base), "{delays:?}");
    }
    // A minute later the old deaths no longer count.
    h.advance_to((h.now - h.t0).as_secs_f64() + 61.0);
    h.online("r1");
    h.s.transport_failed(h.now, false);
    assert!(within_jitter(reconnect_delay(&h.events()), quick));
}

#[test]
fn unexpected_message_before_login_resp_fails_the_login() {
    let mut h = Harness::new(config(), &[]);
    h.dial_ok();
    h.s.handle(ReqWorkConn::default().into(), h.now);
    assert_eq!(
        h.events()[0],
        Event::Lost {
            cause: Failure::UnexpectedMessage {
                expected: "LoginResp",
                got: "ReqWorkConn"
            },
            logged_in: false
        }
    );
}

#[test]
fn work_requests_and_foreign_messages_reach_the_driver() {
    let mut h = Harness::new(config(), &[]);
    h.online("r1");
    h.events();
    h.s.handle(ReqWorkConn::default().into(), h.now);
    h.s.handle(ReqWorkConn::default().into(), h.now);
    let hole: Message = NatHoleResp::default().into();
    h.s.handle(hole.clone(), h.now);
    assert_eq!(
        h.events(),
        vec![
            Event::WorkConnRequested,
            Event::WorkConnRequested,
            Event::Message(Box::new(hole))
        ]
    );
    // Answers for proxies we do not have change nothing.
    h.proxy_resp("u.nobody", "");
    assert!(h.events().is_empty());
    assert!(h.s.send(Ping::default().into()));
    assert_eq!(names(&h.transmits()), ["Ping"]);
    let mut huge = new_proxy("u.huge");
    huge.custom_domains = vec!["d".repeat(11_000)];
    assert!(
        !h.s.send(huge.into()),
        "a message over the frame limit is refused"
    );
    assert!(h.transmits().is_empty());
}

#[test]
fn close_sends_close_proxy_for_what_the_server_may_hold() {
    let mut h = Harness::new(config(), &["a", "b"]);
    h.online("r1");
    h.proxy_resp("u.a", "");
    h.s.close();
    assert_eq!(names(&h.transmits()), ["CloseProxy u.a", "CloseProxy u.b"]);
    assert_eq!(h.events().last(), Some(&Event::Stopped { cause: None }));
    assert!(h.s.is_stopped());
    h.s.handle(ReqWorkConn::default().into(), h.now);
    assert!(h.events().is_empty(), "nothing happens after close");

    let mut h = Harness::new(config(), &["a"]);
    h.dial_ok();
    h.s.close();
    assert!(h.transmits().is_empty(), "no CloseProxy before login");
    assert_eq!(h.events(), vec![Event::Stopped { cause: None }]);
}

#[test]
fn proxies_added_and_removed_while_online() {
    let mut h = Harness::new(config(), &["a"]);
    h.online("r1");
    h.s.add_proxy("b", new_proxy("u.b"), h.now).unwrap();
    assert_eq!(names(&h.transmits()), ["NewProxy u.b"]);
    assert_eq!(
        h.s.add_proxy("b", new_proxy("u.b"), h.now),
        Err(ProxyError::Duplicate("b".into()))
    );
    assert!(h.s.remove_proxy("a"));
    assert!(!h.s.remove_proxy("a"));
    assert_eq!(names(&h.transmits()), ["CloseProxy u.a"]);
    let mut huge = new_proxy("u.c");
    huge.custom_domains = vec!["d".repeat(11_000)];
    assert!(matches!(
        h.s.add_proxy("c", huge, h.now),
        Err(ProxyError::TooLarge { .. })
    ));
}

#[test]
fn a_failed_connection_drops_its_unsent_messages() {
    let mut h = Harness::new(config(), &["a", "b"]);
    h.dial_ok();
    h.login_resp("r1", "");
    // NewProxy and Ping are queued but the connection dies before they are written.
    h.s.transport_failed(h.now, false);
    assert!(h.transmits().is_empty());
}

#[test]
fn session_config_debug_hides_the_token() {
    let text = format!("{:?}", config());
    assert!(!text.contains("secret-token"), "{text}");
}
