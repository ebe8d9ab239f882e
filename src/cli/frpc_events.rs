//! frpc's log lines for what the engine reports: login, proxies, visitors, health checks and
//! reconnects, worded and placed as frpc 0.66 logs them.

use super::frpc_log::{Level, Log};
use expose::frp::Event;

/// What the log loop has seen so far.
#[derive(Default)]
pub struct Progress {
    /// A login succeeded at least once.
    pub logged_in: bool,
    /// The current session is logged in.
    pub online: bool,
    /// Connection attempts so far.
    pub attempts: u32,
}

/// The names (with the user prefix) of the proxies and visitors in force.
#[derive(Default)]
pub struct Names {
    pub proxies: Vec<String>,
    pub visitors: Vec<String>,
}

/// Logs what frpc logs for `ev`.
pub fn on_event(
    ev: &Event,
    log: &mut Log,
    progress: &mut Progress,
    names: &Names,
    wire: &dyn Fn(&str) -> String,
) {
    match ev {
        Event::LoggedIn { run_id } => {
            progress.logged_in = true;
            progress.online = true;
            log.run_id = run_id.clone();
            log.line(
                Level::Info,
                "client/service.go:323",
                &format!("login to server success, get run id [{run_id}]"),
            );
            // Each login starts its own proxy and visitor managers, which log what they add.
            if !names.proxies.is_empty() {
                log.line(
                    Level::Info,
                    "proxy/proxy_manager.go:180",
                    &format!("proxy added: [{}]", names.proxies.join(" ")),
                );
            }
            if !names.visitors.is_empty() {
                log.line(
                    Level::Info,
                    "visitor/visitor_manager.go:179",
                    &format!("visitor added: [{}]", names.visitors.join(" ")),
                );
            }
        }
        Event::ProxyReady(r) => log.line(
            Level::Info,
            "client/control.go:172",
            &format!("[{}] start proxy success", wire(&r.name)),
        ),
        Event::ProxyFailed { name, reason } => log.line(
            Level::Warn,
            "client/control.go:170",
            &format!("[{}] start error: {reason}", wire(name)),
        ),
        Event::Connecting { .. } => {
            // frpc announces every attempt but the first.
            if progress.attempts > 0 {
                log.line(
                    Level::Info,
                    "client/service.go:331",
                    "try to connect to server...",
                );
            }
            progress.attempts += 1;
        }
        Event::Reconnecting { cause, .. } => {
            if std::mem::take(&mut progress.online) {
                log.line(
                    Level::Warn,
                    "client/control.go:231",
                    &format!("control is closed: {cause}"),
                );
            } else {
                log.line(
                    Level::Warn,
                    "client/service.go:334",
                    &format!("connect to server error: {cause}"),
                );
            }
        }
        Event::HealthCheckFailed { name, error } => log.line(
            Level::Warn,
            "health/health.go:128",
            &format!("[{}] do one health check failed: {error}", wire(name)),
        ),
        Event::HealthChanged {
            name,
            healthy: true,
        } => {
            let name = wire(name);
            log.line(
                Level::Info,
                "health/health.go:123",
                &format!("[{name}] health check status change to success"),
            );
            log.line(
                Level::Info,
                "proxy/proxy_wrapper.go:245",
                &format!("[{name}] health check success"),
            );
        }
        Event::HealthChanged {
            name,
            healthy: false,
        } => {
            let name = wire(name);
            log.line(
                Level::Warn,
                "health/health.go:131",
                &format!("[{name}] health check status change to failed"),
            );
            log.line(
                Level::Info,
                "proxy/proxy_wrapper.go:257",
                &format!("[{name}] health check failed"),
            );
        }
        Event::LocalUnreachable {
            name,
            local_addr,
            error,
            suppressed,
        } => {
            let more = if *suppressed > 0 {
                format!(" ({suppressed} more)")
            } else {
                String::new()
            };
            log.line(
                Level::Warn,
                "proxy/proxy.go:200",
                &format!(
                    "[{}] connect to local service [{local_addr}] error: {error}{more}",
                    wire(name)
                ),
            );
        }
        Event::VisitorStarted { .. } => log.line(
            Level::Info,
            "visitor/visitor_manager.go:128",
            "start visitor success",
        ),
        Event::VisitorFailed { name, error } if error.starts_with("listen on") => log.line(
            Level::Warn,
            "visitor/visitor_manager.go:125",
            &format!("start error: {error}"),
        ),
        Event::VisitorFailed { name, error } => log.line(
            Level::Warn,
            "visitor/stcp.go:132",
            &format!(
                "[{}] start new visitor connection error: {error}",
                wire(name)
            ),
        ),
        _ => {}
    }
}
