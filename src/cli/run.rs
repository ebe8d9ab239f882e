//! The foreground life of a tunnel: wait for ready, show the banner, follow events and
//! counters, watch expiry, and stop cleanly on Ctrl-C or SIGTERM.

use super::output::{Banner, Reporter};
use anyhow::Context as _;
use expose::frp::{Client, ClientState, Error as FrpError, Event, Phase, Stats};
use std::time::{Duration, SystemTime};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

/// How the foreground loop ended.
pub enum Ended {
    /// Ctrl-C or SIGTERM: clean up and exit 0.
    Interrupted,
    /// The tunnel's `expires_at` passed.
    Expired,
    /// The client stopped on a fatal error.
    Failed(FrpError),
}

/// The tunnel expired; exit non-zero.
#[derive(Debug, thiserror::Error)]
#[error("the tunnel expired")]
pub struct Expired;

/// Resolves on the first Ctrl-C or SIGTERM.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// After the first interrupt, a second one exits at once, without cleanup.
pub fn exit_on_second_interrupt() {
    tokio::spawn(async {
        interrupted().await;
        super::console::err_essential("\ninterrupted again; exiting without cleanup\n");
        // A console that does not read must not keep the process alive.
        super::console::flush(Duration::from_millis(200));
        std::process::exit(130);
    });
}

/// Waits for every proxy to be ready, or an interrupt (`Ok(None)`).
pub async fn wait_ready(
    client: &Client,
    timeout: Duration,
) -> anyhow::Result<Option<Vec<expose::frp::ProxyReady>>> {
    tokio::select! {
        r = tokio::time::timeout(timeout, client.ready()) => match r {
            Ok(Ok(ready)) => Ok(Some(ready)),
            Ok(Err(e)) => Err(e).context("the tunnel did not start"),
            Err(_) => anyhow::bail!("the tunnel did not start within {}s", timeout.as_secs()),
        },
        _ = interrupted() => Ok(None),
    }
}

/// Follows the running client until it stops, expires or is interrupted. `events` must be
/// subscribed before the ready banner is shown, or a visitor who is quick to follow the URL
/// could have their request happen before anyone listens.
pub async fn follow(
    client: &mut Client,
    events: broadcast::Receiver<Event>,
    reporter: &mut Reporter,
    expires: Option<SystemTime>,
) -> Ended {
    let state = client.state();
    follow_parts(events, Some(state), || client.stats(), reporter, expires).await
}

/// The loop behind [`follow`], over the pieces any engine owner can hand out: the event stream,
/// the state watch (whose `Stopped` phase ends the loop), and a way to read the counters.
pub async fn follow_parts(
    mut events: broadcast::Receiver<Event>,
    state: Option<watch::Receiver<ClientState>>,
    stats: impl Fn() -> Stats,
    reporter: &mut Reporter,
    expires: Option<SystemTime>,
) -> Ended {
    let Some(mut state) = state else {
        return Ended::Failed(FrpError::Stopped);
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut warned = false;
    let interrupt = interrupted();
    tokio::pin!(interrupt);
    loop {
        if let Phase::Stopped(e) = &state.borrow_and_update().phase {
            return Ended::Failed(e.clone().unwrap_or(FrpError::Stopped));
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(e) => reporter.event(&e),
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => {}
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return Ended::Failed(FrpError::Stopped);
                }
            }
            _ = ticker.tick() => {
                let left = expires.map(|at| at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO));
                if let Some(left) = left {
                    if left.is_zero() {
                        return Ended::Expired;
                    }
                    if !warned && left <= super::args::EXPIRY_WARNING {
                        warned = true;
                        reporter.note(&format!(
                            "warning: the tunnel expires in {}",
                            super::output::duration(left)
                        ));
                        if reporter.json() {
                            reporter.json_line(serde_json::json!({
                                "event": "expiring", "seconds_left": left.as_secs()
                            }));
                        }
                    }
                }
                let phase = match &state.borrow().phase {
                    Phase::Online => "online",
                    Phase::Connecting => "connecting",
                    Phase::Reconnecting => "reconnecting",
                    _ => "stopped",
                };
                reporter.status(phase, &stats(), left);
            }
            _ = &mut interrupt => return Ended::Interrupted,
        }
    }
}

/// A warning when nothing listens on the local address yet (the tunnel still starts).
pub async fn probe_local(host: &str, port: u16, reporter: &mut Reporter) {
    let probe = tokio::net::TcpStream::connect((host, port));
    let ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(_))
    );
    if !ok {
        reporter.note(&format!(
            "warning: nothing is listening on {host}:{port} yet; visitors get a 502 page until something does"
        ));
        if reporter.json() {
            reporter.json_line(serde_json::json!({
                "event": "warning",
                "message": format!("nothing is listening on {host}:{port}"),
            }));
        }
    }
}

/// Shows the banner built from the ready proxy.
pub fn show_ready(reporter: &mut Reporter, banner: &Banner) {
    reporter.ready(banner);
    reporter.note("Press Ctrl-C to stop.");
}
