//! What the user sees: a banner, a live status line on a terminal, plain lines otherwise, or
//! one JSON object per line with `--json`.
//!
//! Everything printed that came from the network (URLs, ids, server texts) goes through
//! [`clean`], so a hostile server cannot move the cursor or retitle the terminal. Everything
//! printed goes through the [`console`] writer thread, so a console that stops reading never
//! blocks the caller.

use super::args::OutputArgs;
use super::console;
use expose::frp::{Event, Stats};
use serde_json::json;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::{Duration, SystemTime};

/// Drops control characters (ESC, BEL, CR, …), Unicode bidi controls (which can reorder what a
/// line appears to say) and invisible format characters from text we did not write ourselves;
/// the rule is [`expose::text::is_unsafe_char`].
pub fn clean(s: &str) -> String {
    expose::text::strip_unsafe(s).into_owned()
}

/// A request path for the log: the query string is cut, since it often carries tokens.
pub fn display_path(path: &str) -> String {
    match path.split_once('?') {
        Some((p, _)) => format!("{}?…", clean(p)),
        None => clean(path),
    }
}

/// Human-readable byte count.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `1h 02m`, `4m 05s`, `12s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Facts for the banner.
pub struct Banner {
    /// Public URL or `host:port`.
    pub public: String,
    /// Local target `host:port`.
    pub local: String,
    /// Prime tunnel id, when there is one.
    pub tunnel_id: Option<String>,
    /// Expiry, when there is one.
    pub expires_at: Option<(String, SystemTime)>,
    /// Basic-auth user and password to show once: the API returns a generated password in its
    /// create answer only, so the banner (or the JSON `ready` event) is the one place the user
    /// ever sees it. Never logged.
    pub auth: Option<(String, String)>,
    /// The local inspector's URL, when it runs.
    pub inspector: Option<String>,
}

/// Prints in the chosen mode.
pub struct Reporter {
    json: bool,
    /// `-q`: notes, warnings and the status line are not shown; errors, the banner (stdout)
    /// and request lines (stdout) are.
    quiet: bool,
    tty: bool,
    status_shown: bool,
}

impl Reporter {
    /// A reporter; status lines are drawn in place only when stderr is a terminal.
    pub fn new(out: &OutputArgs) -> Self {
        let json = out.json;
        Reporter {
            json,
            quiet: out.quiet,
            tty: !json && !out.quiet && std::io::stderr().is_terminal(),
            status_shown: false,
        }
    }

    /// JSON-lines mode?
    pub fn json(&self) -> bool {
        self.json
    }

    fn clear_status(&mut self) {
        if self.status_shown {
            console::err("\r\x1b[2K");
            self.status_shown = false;
        }
    }

    /// A line of progress for humans (stderr), nothing in JSON mode or with `-q`.
    pub fn note(&mut self, text: &str) {
        if !self.json && !self.quiet {
            self.clear_status();
            console::err(format!("{text}\n"));
        }
    }

    /// A failure the user must see (stderr), even with `-q`; nothing in JSON mode.
    pub fn error_note(&mut self, text: &str) {
        if !self.json {
            self.clear_status();
            console::err(format!("{text}\n"));
        }
    }

    /// One JSON object on stdout; dropped if the console is far behind.
    pub fn json_line(&mut self, value: serde_json::Value) {
        console::out(format!("{value}\n"));
    }

    /// The banner once the tunnel is up; never dropped.
    pub fn ready(&mut self, b: &Banner) {
        if self.json {
            console::out_essential(format!(
                "{}\n",
                json!({
                    "event": "ready",
                    "url": clean(&b.public),
                    "local": b.local,
                    "id": b.tunnel_id.as_deref().map(clean),
                    "expires_at": b.expires_at.as_ref().map(|(t, _)| clean(t)),
                    "http_user": b.auth.as_ref().map(|(u, _)| clean(u)),
                    "http_password": b.auth.as_ref().map(|(_, p)| clean(p)),
                    "inspector": b.inspector,
                })
            ));
            return;
        }
        self.clear_status();
        let mut out = String::new();
        let _ = writeln!(out);
        let _ = writeln!(out, "  Forwarding  {}  ->  {}", clean(&b.public), b.local);
        if let Some(id) = &b.tunnel_id {
            let _ = writeln!(out, "  Tunnel id   {}", clean(id));
        }
        if let Some((text, at)) = &b.expires_at {
            let left = at
                .duration_since(SystemTime::now())
                .map(duration)
                .unwrap_or_else(|_| "expired".into());
            let _ = writeln!(out, "  Expires     {} ({left} left)", clean(text));
        }
        if let Some((user, pass)) = &b.auth {
            let _ = writeln!(
                out,
                "  Basic auth  {} / {}   (shown once; keep it)",
                clean(user),
                clean(pass)
            );
        }
        if let Some(url) = &b.inspector {
            let _ = writeln!(out, "  Inspector   {url}");
        }
        let _ = writeln!(out);
        console::out_essential(out);
    }

    /// An engine event worth telling the user.
    pub fn event(&mut self, e: &Event) {
        if self.json {
            match e {
                Event::Reconnecting {
                    attempt,
                    delay,
                    cause,
                } => self.json_line(json!({
                    "event": "reconnecting",
                    "attempt": attempt,
                    "delay_ms": delay.as_millis() as u64,
                    "cause": clean(cause),
                })),
                Event::LocalUnreachable {
                    local_addr,
                    error,
                    suppressed,
                    ..
                } => self.json_line(json!({
                    "event": "local_unreachable",
                    "local": local_addr,
                    "error": clean(error),
                    "suppressed": suppressed,
                })),
                Event::ProxyFailed { name, reason } => self.json_line(json!({
                    "event": "proxy_failed",
                    "name": clean(name),
                    "reason": clean(reason),
                })),
                Event::VisitorStarted { name, bind_addr } => self.json_line(json!({
                    "event": "visitor_started",
                    "name": clean(name),
                    "bind_addr": bind_addr.map(|a| a.to_string()),
                })),
                Event::VisitorFailed { name, error } => self.json_line(json!({
                    "event": "visitor_failed",
                    "name": clean(name),
                    "error": clean(error),
                })),
                Event::HttpRequest(r) => self.json_line(json!({
                    "event": "request",
                    "method": clean(&r.method),
                    "path": display_path(&r.path),
                    "status": r.status,
                    "duration_ms": r.duration.as_secs_f64() * 1000.0,
                    "bytes": r.response_bytes,
                })),
                _ => {}
            }
            return;
        }
        match e {
            Event::Reconnecting { delay, cause, .. } => self.note(&format!(
                "connection lost ({}); reconnecting in {:.1}s",
                clean(cause),
                delay.as_secs_f64()
            )),
            Event::LoggedIn { .. } => {}
            Event::ProxyReady(_) => {}
            Event::ProxyFailed { name, reason } => self.error_note(&format!(
                "server refused proxy {}: {}",
                clean(name),
                clean(reason)
            )),
            Event::LocalUnreachable {
                local_addr,
                error,
                suppressed: 0,
                ..
            } => self.note(&format!(
                "cannot reach the local service at {local_addr}: {} (visitors get a 502)",
                clean(error)
            )),
            Event::LocalUnreachable {
                local_addr,
                error,
                suppressed,
                ..
            } => self.note(&format!(
                "…and {suppressed} more visitors could not reach {local_addr} in the last {} s \
                 (last error: {})",
                expose::frp::REPEAT_WINDOW.as_secs(),
                clean(error)
            )),
            Event::HttpRequest(r) => {
                self.clear_status();
                console::out(format!(
                    "  {:<7} {:<40} {} {:>8} {:>10}\n",
                    clean(&r.method),
                    display_path(&r.path),
                    r.status,
                    format!("{:.1}ms", r.duration.as_secs_f64() * 1000.0),
                    bytes(r.response_bytes)
                ));
            }
            Event::VisitorStarted {
                name,
                bind_addr: Some(addr),
            } => self.note(&format!("visitor {} listening on {addr}", clean(name))),
            Event::VisitorFailed { name, error } => {
                self.error_note(&format!("visitor {}: {}", clean(name), clean(error)))
            }
            // Connecting, Stopped and whatever the engine adds later: nothing to show.
            _ => {}
        }
    }

    /// The in-place status line (terminal only).
    pub fn status(&mut self, state: &str, stats: &Stats, expires_in: Option<Duration>) {
        if !self.tty {
            return;
        }
        let mut line = format!(
            "  {state} | open {} | total {} | in {} | out {} | reconnects {}",
            stats.active_work_conns,
            stats.total_work_conns,
            bytes(stats.bytes_to_local),
            bytes(stats.bytes_from_local),
            stats.reconnects
        );
        if let Some(left) = expires_in {
            line.push_str(&format!(" | expires in {}", duration(left)));
        }
        console::err(format!("\r\x1b[2K{line}"));
        self.status_shown = true;
    }

    /// The closing message; never dropped.
    pub fn closed(&mut self, reason: &str, ok: bool) {
        if self.json {
            let line = json!({"event": "closed", "reason": clean(reason), "ok": ok});
            console::out_essential(format!("{line}\n"));
        } else if ok && self.quiet {
            // A requested stop is not an error: `-q` shows nothing for it.
        } else {
            self.clear_status();
            console::err_essential(format!("{}\n", clean(reason)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_drops_escapes() {
        assert_eq!(clean("a\x1b]0;pwned\x07b\r\n"), "a]0;pwnedb");
        assert_eq!(clean("evil\u{202E}moc.elpmaxe"), "evilmoc.elpmaxe");
    }

    #[test]
    fn query_strings_are_hidden() {
        assert_eq!(display_path("/a/b?token=x"), "/a/b?…");
        assert_eq!(display_path("/plain"), "/plain");
    }

    #[test]
    fn formats() {
        assert_eq!(bytes(10), "10 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(duration(Duration::from_secs(3725)), "1h 02m");
        assert_eq!(duration(Duration::from_secs(65)), "1m 05s");
    }
}
