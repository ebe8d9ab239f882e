//! The xtcp visitor's tunnel: one QUIC connection to the proxy's client over a punched UDP
//! path, made on demand (or kept open), whose streams carry the visitor's connections.
//!
//! As in frpc, a user connection asks for a stream; without a live connection that asks for a
//! punch (at most one at a time, at least 10 s apart) and retries every 500 ms for up to 20 s
//! (or `fallbackTimeoutMs` when a fallback visitor is configured). `keepTunnelOpen` punches at
//! start and checks the connection every `minRetryInterval`, re-punching at most
//! `maxRetriesAnHour` times an hour.

use super::super::error::Error;
use super::super::transport::BoxStream;
use super::super::visitor_config::VisitorConfig;
use super::{check_resp, discover, punch, quic, Link, QuicStream};
use frp_proto::crypto::Key;
use frp_proto::msg::NatHoleVisitor;
use frp_proto::nathole::EXCHANGE_TIMEOUT;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// frpc gives up opening a tunnel stream after this long.
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);
/// Between two tries to get a stream.
const RETRY_INTERVAL: Duration = Duration::from_millis(500);
/// Punches start at least this far apart.
const PUNCH_SPACING: Duration = Duration::from_secs(10);

/// Reports a failed punch (the visitor turns it into a `VisitorFailed` event).
pub(crate) type OnError = Box<dyn Fn(String) + Send + Sync>;

/// One visitor's tunnel.
pub(crate) struct Tunnel {
    link: Arc<Link>,
    config: VisitorConfig,
    /// `user.serverName` as frps knows the proxy.
    server_name: String,
    session: Mutex<Option<(quinn::Endpoint, quinn::Connection)>>,
    start: mpsc::Sender<()>,
    on_error: OnError,
}

impl Tunnel {
    /// The tunnel of one visitor; its workers end with `stop`.
    pub(crate) fn start(
        link: Arc<Link>,
        config: VisitorConfig,
        server_name: String,
        on_error: OnError,
        stop: CancellationToken,
    ) -> Arc<Tunnel> {
        let (start, mut starts) = mpsc::channel(1);
        let tunnel = Arc::new(Tunnel {
            link,
            config,
            server_name,
            session: Mutex::new(None),
            start,
            on_error,
        });
        let t = tunnel.clone();
        let s = stop.clone();
        tokio::spawn(async move {
            let work = async {
                while starts.recv().await.is_some() {
                    if t.lock().is_some() {
                        // Asked while the previous punch was under way; it succeeded.
                        continue;
                    }
                    let began = Instant::now();
                    t.punch().await;
                    tokio::time::sleep_until(began + PUNCH_SPACING).await;
                }
            };
            tokio::select! {
                _ = work => {}
                _ = s.cancelled() => {}
            }
            t.close();
        });
        if tunnel.config.xtcp.keep_tunnel_open {
            let t = tunnel.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = t.keep_open() => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
        tunnel
    }

    /// A new stream to the proxy's end, within 20 s or `limit` if shorter.
    pub(crate) async fn open(&self, limit: Option<Duration>) -> Result<BoxStream, Error> {
        let wait = limit.map_or(OPEN_TIMEOUT, |l| l.min(OPEN_TIMEOUT));
        let attempt = async {
            loop {
                match self.stream().await {
                    Ok(s) => return s,
                    Err(e) => {
                        if let Some(e) = e {
                            tracing::warn!(visitor = %self.config.name, error = %e, "get tunnel connection error");
                        }
                        tokio::time::sleep(RETRY_INTERVAL).await;
                    }
                }
            }
        };
        tokio::time::timeout(wait, attempt)
            .await
            .map_err(|_| Error::Timeout("open tunnel timeout"))
    }

    /// A stream on the live connection; without one (`Err(None)`) or when it fails, a punch
    /// is asked for.
    async fn stream(&self) -> Result<BoxStream, Option<quinn::ConnectionError>> {
        let conn = self.lock().as_ref().map(|(_, c)| c.clone());
        let result = match conn {
            Some(c) => c.open_bi().await.map_err(Some),
            None => Err(None),
        };
        match result {
            Ok((send, recv)) => Ok(Box::new(QuicStream::new(send, recv))),
            Err(e) => {
                self.close();
                let _ = self.start.try_send(());
                Err(e)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(quinn::Endpoint, quinn::Connection)>> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self) {
        if let Some((endpoint, conn)) = self.lock().take() {
            conn.close(quinn::VarInt::from_u32(0), b"");
            endpoint.close(quinn::VarInt::from_u32(0), b"");
        }
    }

    /// One punch; failures are logged and reported, never fatal.
    async fn punch(&self) {
        match self.make_hole().await {
            Ok(session) => *self.lock() = Some(session),
            Err(e) => {
                // frpc's own texts, without our error kind in front.
                let text = super::text(e);
                tracing::warn!(visitor = %self.config.name, error = %text, "xtcp tunnel not established");
                (self.on_error)(text);
            }
        }
    }

    /// frpc's `makeNatHole`: pre-check, discover, exchange, punch, QUIC.
    async fn make_hole(&self) -> Result<(quinn::Endpoint, quinn::Connection), Error> {
        let pre = NatHoleVisitor {
            transaction_id: super::new_transaction_id(),
            proxy_name: self.server_name.clone(),
            pre_check: true,
            ..Default::default()
        };
        let id = pre.transaction_id.clone();
        let resp = self
            .link
            .exchange(pre.into(), &id, EXCHANGE_TIMEOUT)
            .await
            .map_err(|e| Error::Protocol(format!("nathole precheck error: {}", super::text(e))))?;
        if !resp.error.is_empty() {
            return Err(Error::Protocol(format!(
                "nathole precheck error: {}",
                resp.error
            )));
        }
        let opts = &self.config.xtcp;
        let prepared =
            discover::prepare(&self.link.settings.stun_server, opts.disable_assisted_addrs).await?;
        let secret = self.config.secret_key.expose();
        let timestamp = super::super::wire::unix_now();
        let hello = NatHoleVisitor {
            transaction_id: super::new_transaction_id(),
            proxy_name: self.server_name.clone(),
            pre_check: false,
            protocol: opts.protocol.clone(),
            sign_key: frp_proto::udp::sign_key(secret, timestamp),
            timestamp,
            mapped_addrs: prepared.mapped.clone(),
            assisted_addrs: prepared.assisted.clone(),
        };
        let id = hello.transaction_id.clone();
        let resp = self
            .link
            .exchange(hello.into(), &id, EXCHANGE_TIMEOUT)
            .await
            .and_then(check_resp)
            .map_err(|e| {
                Error::Protocol(format!("nathole exchange info error: {}", super::text(e)))
            })?;
        let (socket, peer) = punch::make_hole(prepared.socket, &resp, &Key::derive(secret)).await?;
        tracing::info!(visitor = %self.config.name, sid = %resp.sid, remote = %peer, "establishing nat hole connection successful");
        quic::connect(socket, peer)
            .await
            .map_err(|e| Error::Protocol(format!("init tunnel session error: {}", super::text(e))))
    }

    /// `keepTunnelOpen`: punch now, then check every `minRetryInterval`; a failed check waits
    /// for the hourly retry budget.
    async fn keep_open(&self) {
        let opts = &self.config.xtcp;
        let mut budget = RetryBudget::new(opts.max_retries_an_hour);
        let _ = self.start.try_send(());
        let mut ticker = tokio::time::interval(opts.min_retry_interval);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            match self.stream().await {
                Ok(s) => drop(s),
                Err(_) => budget.wait().await,
            }
        }
    }
}

/// frpc's `rate.Limiter(Every(hour / n), n)`: `n` tokens, refilled evenly over an hour.
struct RetryBudget {
    capacity: f64,
    tokens: f64,
    per_token: Duration,
    at: Instant,
}

impl RetryBudget {
    fn new(per_hour: u32) -> Self {
        let n = per_hour.max(1);
        RetryBudget {
            capacity: f64::from(n),
            tokens: f64::from(n),
            per_token: Duration::from_secs(3600) / n,
            at: Instant::now(),
        }
    }

    async fn wait(&mut self) {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() / self.per_token.as_secs_f64();
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.at = now;
        if self.tokens < 1.0 {
            let missing = self.per_token.mul_f64(1.0 - self.tokens);
            tokio::time::sleep(missing).await;
            self.tokens = 1.0;
            self.at = Instant::now();
        }
        self.tokens -= 1.0;
    }
}
