//! [`Tunnel`]: a local port behind a public Prime URL, in one call.
//!
//! ```no_run
//! # async fn demo() -> Result<(), expose::TunnelError> {
//! let tunnel = expose::Tunnel::builder().local_port(8765).start().await?;
//! println!("public URL: {}", tunnel.url());
//! // … serve …
//! tunnel.close().await?;
//! # Ok(()) }
//! ```
//!
//! `start` creates the tunnel through Prime's API, connects the frp engine with the settings
//! Prime's own tool gives frpc (TLS, tcpMux, pool of 10, user = tunnel id, `binding_secret` in
//! the Login metadata, one http proxy named and subdomained by the tunnel id, login failures
//! retried unless fatal) and returns once the proxy is registered. Any failure on the way deletes
//! the tunnel again, so nothing half-created is left behind.

use crate::frp::{self, Client, ClientConfig, Event, HttpOptions, ProxyConfig, ProxyKind, Stats};
use crate::prime::{CreateTunnelRequest, CreatedTunnel, PrimeClient, PrimeConfig, PrimeError};
use crate::secret::Secret;
use std::time::{Duration, SystemTime};
use tokio::sync::{broadcast, watch};

/// Prime's tool waits 30 s for frpc's "start proxy success"; so do we.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);

/// Pool size Prime's generated frpc config asks for (frps caps it at 5).
pub const PRIME_POOL_COUNT: u32 = 10;

/// `transport.dialServerKeepalive` in Prime's generated config.
pub const PRIME_TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// How long `close` and drop give the API DELETE.
const DELETE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a tunnel could not start or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelError {
    /// The builder was given something unusable.
    #[error("invalid tunnel settings: {0}")]
    Invalid(String),
    /// Prime's API failed (no key, 401, limit, …).
    #[error(transparent)]
    Api(#[from] PrimeError),
    /// The tunnel server refused us or the connection failed.
    #[error(transparent)]
    Frp(#[from] frp::Error),
    /// The proxy was not ready within the start timeout.
    #[error("the tunnel server did not accept the tunnel within {0:?}")]
    StartTimeout(Duration),
}

/// Builds a [`Tunnel`]; see [`Tunnel::builder`].
#[derive(Debug)]
pub struct TunnelBuilder {
    local_port: u16,
    local_host: String,
    request: CreateTunnelRequest,
    api: Option<PrimeClient>,
    start_timeout: Duration,
    tune: Option<fn(&mut ClientConfig)>,
    capture: Option<std::sync::Arc<crate::capture::CaptureStore>>,
}

impl TunnelBuilder {
    /// The local port to expose (required).
    pub fn local_port(mut self, port: u16) -> Self {
        self.local_port = port;
        self
    }

    /// The local host to forward to (default 127.0.0.1).
    pub fn local_host(mut self, host: impl Into<String>) -> Self {
        self.local_host = host.into();
        self
    }

    /// A name for the tunnel, shown in listings.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.request.name = Some(name.into());
        self
    }

    /// The team that owns the tunnel (default: from the Prime configuration).
    pub fn team_id(mut self, team: impl Into<String>) -> Self {
        self.request.team_id = Some(team.into());
        self
    }

    /// A label; call again for more.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.request.labels.push(label.into());
        self
    }

    /// Protect the URL with basic auth as this user; the API generates the password, available
    /// once from [`Tunnel::http_credentials`].
    pub fn http_user(mut self, user: impl Into<String>) -> Self {
        self.request.http_user = Some(user.into());
        self
    }

    /// Use this API client instead of one from [`PrimeConfig::load`].
    pub fn api(mut self, api: PrimeClient) -> Self {
        self.api = Some(api);
        self
    }

    /// How long to wait for the proxy to be registered.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Adjust the engine settings after Prime's defaults are applied (heartbeats, TLS
    /// verification, …). A plain `fn` so the builder stays `Debug` and `Send`.
    pub fn tune_frp(mut self, tune: fn(&mut ClientConfig)) -> Self {
        self.tune = Some(tune);
        self
    }

    /// Records the tunnel's exchanges into `store` for the local inspector
    /// ([`ClientConfig::capture`]).
    pub fn capture(mut self, store: std::sync::Arc<crate::capture::CaptureStore>) -> Self {
        self.capture = Some(store);
        self
    }

    /// Creates the tunnel, connects, and waits until the public URL serves the local port.
    pub async fn start(self) -> Result<Tunnel, TunnelError> {
        if self.local_port == 0 {
            return Err(TunnelError::Invalid("local port must be 1-65535".into()));
        }
        let api = match self.api {
            Some(api) => api,
            None => PrimeClient::new(PrimeConfig::load()?)?,
        };
        let mut request = self.request;
        request.local_port = self.local_port;
        let created = api.create_tunnel(&request).await?;
        tracing::info!(tunnel_id = %created.tunnel_id, "tunnel created");

        let mut config = frp_config(&created, &self.local_host, self.local_port);
        if let Some(tune) = self.tune {
            tune(&mut config);
        }
        config.capture = self.capture;
        let client = match Client::start(config) {
            Ok(c) => c,
            Err(e) => {
                delete_quietly(&api, &created.tunnel_id).await;
                return Err(e.into());
            }
        };
        let ready = tokio::time::timeout(self.start_timeout, client.ready()).await;
        let failure = match ready {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(TunnelError::Frp(e)),
            Err(_) => Some(TunnelError::StartTimeout(self.start_timeout)),
        };
        if let Some(e) = failure {
            let _ = client.shutdown().await;
            delete_quietly(&api, &created.tunnel_id).await;
            return Err(e);
        }
        let expires_at = created.expires_at_time().ok();
        Ok(Tunnel {
            created,
            expires_at,
            api,
            client,
            deleted: false,
        })
    }
}

/// The engine settings Prime's own tool gives frpc (TLS, tcpMux, a pool of 10, 60 s keepalive,
/// user = tunnel id, `binding_secret` in the Login metas, one http proxy named and subdomained
/// by the tunnel id), with our own additions:
/// frp-level heartbeats (rust-yamux sends no keepalives) and fatal-rejection handling.
pub fn frp_config(t: &CreatedTunnel, local_host: &str, local_port: u16) -> ClientConfig {
    let mut cfg = ClientConfig::new(
        t.server_host.clone(),
        t.server_port,
        Secret::new(t.frp_token.expose()),
    );
    cfg.user = t.tunnel_id.clone();
    cfg.metas.insert(
        "binding_secret".into(),
        Secret::new(t.binding_secret.expose()),
    );
    cfg.tcp_mux = true;
    cfg.pool_count = PRIME_POOL_COUNT;
    cfg.tcp_keepalive = Some(PRIME_TCP_KEEPALIVE);
    cfg.login_fail_exit = false;
    let mut proxy = ProxyConfig::new(
        t.tunnel_id.clone(),
        local_port,
        ProxyKind::Http(HttpOptions {
            subdomain: Some(t.tunnel_id.clone()),
            ..Default::default()
        }),
    );
    proxy.local_host = local_host.to_owned();
    cfg.proxies.push(proxy);
    cfg
}

async fn delete_quietly(api: &PrimeClient, id: &str) {
    match tokio::time::timeout(DELETE_TIMEOUT, api.delete_tunnel(id)).await {
        Ok(Ok(_)) => tracing::info!(tunnel_id = %id, "tunnel deleted"),
        Ok(Err(e)) => tracing::warn!(tunnel_id = %id, error = %e, "could not delete the tunnel"),
        Err(_) => tracing::warn!(tunnel_id = %id, "deleting the tunnel timed out"),
    }
}

/// A running Prime tunnel.
///
/// Close it with [`Tunnel::close`]: CloseProxy to the tunnel server, then DELETE to the API.
/// Dropping it without `close` still sends CloseProxy and a best-effort DELETE from background
/// tasks if a tokio runtime is running, but nothing waits for them: a process that exits right
/// after the drop may leave the registration to expire on its own at `expires_at`.
pub struct Tunnel {
    created: CreatedTunnel,
    expires_at: Option<SystemTime>,
    api: PrimeClient,
    client: Client,
    /// Set once `close` has sent its DELETE, so Drop does not send another.
    deleted: bool,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("id", &self.created.tunnel_id)
            .field("url", &self.created.url)
            .field("expires_at", &self.created.expires_at)
            .finish_non_exhaustive()
    }
}

impl Tunnel {
    /// A builder; `local_port` is required.
    pub fn builder() -> TunnelBuilder {
        TunnelBuilder {
            local_port: 0,
            local_host: "127.0.0.1".into(),
            request: CreateTunnelRequest::new(0),
            api: None,
            start_timeout: DEFAULT_START_TIMEOUT,
            tune: None,
            capture: None,
        }
    }

    /// The public URL.
    pub fn url(&self) -> &str {
        &self.created.url
    }

    /// The tunnel id.
    pub fn id(&self) -> &str {
        &self.created.tunnel_id
    }

    /// The public host name.
    pub fn hostname(&self) -> &str {
        &self.created.hostname
    }

    /// When the tunnel expires, if the API's timestamp parsed.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// `expires_at` as the API wrote it.
    pub fn expires_at_text(&self) -> &str {
        &self.created.expires_at
    }

    /// Basic-auth user and password when the tunnel was created with [`TunnelBuilder::http_user`].
    pub fn http_credentials(&self) -> Option<(&str, &Secret)> {
        match (&self.created.http_user, &self.created.http_password) {
            (Some(u), Some(p)) => Some((u.as_str(), p)),
            _ => None,
        }
    }

    /// Everything the API said at creation (secrets stay redacted in `Debug`).
    pub fn details(&self) -> &CreatedTunnel {
        &self.created
    }

    /// Engine events from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.client.events()
    }

    /// Live engine state.
    pub fn state(&self) -> watch::Receiver<frp::ClientState> {
        self.client.state()
    }

    /// Counters: connections, bytes, reconnects.
    pub fn stats(&self) -> Stats {
        self.client.stats()
    }

    /// A handle on the tunnel's engine (state, counters, metrics) for other tasks.
    pub fn handle(&self) -> frp::ClientHandle {
        self.client.handle()
    }

    /// Waits until the engine stops by itself: a fatal rejection (for example the server says the
    /// tunnel is no longer registered). Transient losses are retried inside and do not return.
    pub async fn wait(&mut self) -> Result<(), TunnelError> {
        self.client.wait().await.map_err(TunnelError::Frp)
    }

    /// CloseProxy to the tunnel server, then DELETE the tunnel. The DELETE is attempted even if
    /// the engine had already failed; its own failure is returned.
    pub async fn close(mut self) -> Result<(), TunnelError> {
        if let Err(e) = self.client.close().await {
            tracing::debug!(error = %e, "engine had stopped with an error");
        }
        self.deleted = true;
        let id = &self.created.tunnel_id;
        let result = tokio::time::timeout(DELETE_TIMEOUT, self.api.delete_tunnel(id)).await;
        match result {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(TunnelError::Api(PrimeError::Transport {
                message: "DELETE timed out".into(),
                timeout: true,
            })),
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        // The engine's own Drop sends CloseProxy in the background.
        if self.deleted {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let api = self.api.clone();
                let id = self.created.tunnel_id.clone();
                handle.spawn(async move { delete_quietly(&api, &id).await });
            }
            Err(_) => tracing::warn!(
                tunnel_id = %self.created.tunnel_id,
                "tunnel dropped outside a runtime; it stays registered until it expires"
            ),
        }
    }
}
