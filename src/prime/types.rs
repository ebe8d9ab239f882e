//! Requests and responses of the tunnel API, shaped exactly as the API sends them.
//!
//! Unknown response fields are ignored and missing optional ones become `None` (or empty), so a
//! newer API does not break us. Timestamps stay RFC 3339 text, as sent; [`super::time`] parses
//! them when a program needs a [`SystemTime`]. Everything secret is a [`Secret`].

use super::time::{self, TimestampError};
use super::validate::Checker;
use crate::secret::Secret;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// The frps port when the create response leaves `server_port` out (frp's default bind port).
pub const DEFAULT_SERVER_PORT: u16 = 7000;

/// The lifecycle state of a tunnel.
///
/// Parsed case-insensitively (the API documents lowercase, SDK fixtures use `CONNECTED`); a value
/// this client does not know is kept as [`TunnelStatus::Other`] rather than failing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TunnelStatus {
    /// Registered, frpc not connected yet.
    Pending,
    /// frpc is connected (not proof that the URL serves).
    Connected,
    /// frpc went away; the registration still exists.
    Disconnected,
    /// Past `expires_at`; terminal.
    Expired,
    /// Deleted or otherwise ended; terminal.
    Terminated,
    /// A status this client does not know, as the API spelled it.
    Other(String),
}

impl TunnelStatus {
    /// Reads a status, ignoring ASCII case and surrounding whitespace.
    pub fn parse(s: &str) -> Self {
        let t = s.trim();
        let known = [
            TunnelStatus::Pending,
            TunnelStatus::Connected,
            TunnelStatus::Disconnected,
            TunnelStatus::Expired,
            TunnelStatus::Terminated,
        ];
        known
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(t))
            .unwrap_or_else(|| TunnelStatus::Other(s.to_owned()))
    }

    /// The API's spelling: lowercase for known values, verbatim for [`TunnelStatus::Other`].
    pub fn as_str(&self) -> &str {
        match self {
            TunnelStatus::Pending => "pending",
            TunnelStatus::Connected => "connected",
            TunnelStatus::Disconnected => "disconnected",
            TunnelStatus::Expired => "expired",
            TunnelStatus::Terminated => "terminated",
            TunnelStatus::Other(s) => s,
        }
    }

    /// True for states a tunnel never leaves (`expired`, `terminated`): the URL is gone.
    pub fn is_terminal(&self) -> bool {
        matches!(self, TunnelStatus::Expired | TunnelStatus::Terminated)
    }
}

impl fmt::Display for TunnelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TunnelStatus {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(TunnelStatus::parse(s))
    }
}

impl From<&str> for TunnelStatus {
    fn from(s: &str) -> Self {
        TunnelStatus::parse(s)
    }
}

impl Serialize for TunnelStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TunnelStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| TunnelStatus::parse(&s))
    }
}

/// What to ask for when creating a tunnel (`POST /api/v1/tunnel`).
///
/// Only set fields are sent. A `team_id` of `None` falls back to the configured team
/// (`PRIME_TEAM_ID` or the config file); `Some("")` means "no team" even when one is configured.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateTunnelRequest {
    /// The local port the tunnel forwards to (1–65535).
    pub local_port: u16,
    /// A friendly name shown in listings (the API allows 1–64 characters); empty is not sent.
    pub name: Option<String>,
    /// The owning team; see the type's docs for the fallback.
    pub team_id: Option<String>,
    /// Labels for filtering in list and bulk delete; not sent when empty.
    pub labels: Vec<String>,
    /// Protect the URL with HTTP basic auth as this user; the API generates the password and
    /// returns it once, in [`CreatedTunnel::http_password`].
    pub http_user: Option<String>,
}

impl CreateTunnelRequest {
    /// A request for `local_port` with nothing else set.
    pub fn new(local_port: u16) -> Self {
        CreateTunnelRequest {
            local_port,
            name: None,
            team_id: None,
            labels: Vec::new(),
            http_user: None,
        }
    }

    /// Sets the name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the team (`""` for explicitly no team).
    pub fn team_id(mut self, team_id: impl Into<String>) -> Self {
        self.team_id = Some(team_id.into());
        self
    }

    /// Adds a label.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.labels.push(label.into());
        self
    }

    /// Asks for HTTP basic auth as `user`.
    pub fn http_user(mut self, user: impl Into<String>) -> Self {
        self.http_user = Some(user.into());
        self
    }
}

/// The API's answer to a create: where to connect frpc and with which credentials.
///
/// `Debug` is safe to log: `frp_token`, `binding_secret` and `http_password` are [`Secret`]s.
/// Values are validated before a `CreatedTunnel` is handed out (see [`super::PrimeClient`]).
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct CreatedTunnel {
    /// Tunnel id; also the frp `user`, proxy name and subdomain.
    pub tunnel_id: String,
    /// Public host name, e.g. `t-1-0123456789abcdef.tunnel.pinfra.io`.
    pub hostname: String,
    /// Public URL, e.g. `https://t-1-0123456789abcdef.tunnel.pinfra.io`.
    pub url: String,
    /// frps auth token (frp `auth.token`).
    pub frp_token: Secret,
    /// Per-tunnel credential, sent as the login metadata `binding_secret`.
    pub binding_secret: Secret,
    /// frps host to connect to.
    pub server_host: String,
    /// frps port; [`DEFAULT_SERVER_PORT`] when the API leaves it out.
    #[serde(default = "default_server_port", deserialize_with = "port_or_default")]
    pub server_port: u16,
    /// When the registration ends (RFC 3339); fixed at creation, there is no extend call.
    pub expires_at: String,
    /// The name, if one was given.
    #[serde(default)]
    pub name: Option<String>,
    /// The local port as registered.
    #[serde(default)]
    pub local_port: Option<u16>,
    /// Labels as registered.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<String>,
    /// Basic-auth user, if requested.
    #[serde(default)]
    pub http_user: Option<String>,
    /// Basic-auth password; appears only in this response, never again.
    #[serde(default)]
    pub http_password: Option<Secret>,
    /// Owner.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Owning team.
    #[serde(default)]
    pub team_id: Option<String>,
    /// Status right after creation (normally `pending`).
    #[serde(default)]
    pub status: Option<TunnelStatus>,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// First connection time (RFC 3339).
    #[serde(default)]
    pub connected_at: Option<String>,
    /// End time (RFC 3339).
    #[serde(default)]
    pub terminated_at: Option<String>,
}

impl CreatedTunnel {
    /// `expires_at` as a point in time.
    pub fn expires_at_time(&self) -> Result<SystemTime, TimestampError> {
        time::parse_rfc3339(&self.expires_at)
    }

    /// Time left until `expires_at`, seen from `now`; zero once it has passed.
    pub fn time_left(&self, now: SystemTime) -> Result<Duration, TimestampError> {
        Ok(time::until(self.expires_at_time()?, now))
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        let mut c = Checker::default();
        c.tunnel_id("tunnel_id", &self.tunnel_id);
        c.hostname("hostname", &self.hostname);
        c.url("url", &self.url);
        c.secret("frp_token", self.frp_token.expose());
        c.secret("binding_secret", self.binding_secret.expose());
        c.host("server_host", &self.server_host);
        c.require(self.server_port != 0, || "`server_port` is 0".to_owned());
        c.text("expires_at", &self.expires_at);
        c.opt_text("name", self.name.as_deref());
        for l in &self.labels {
            c.text("labels", l);
        }
        c.opt_text("http_user", self.http_user.as_deref());
        if let Some(p) = &self.http_password {
            c.secret("http_password", p.expose());
        }
        c.opt_text("user_id", self.user_id.as_deref());
        c.opt_text("team_id", self.team_id.as_deref());
        c.opt_text("status", self.status.as_ref().map(TunnelStatus::as_str));
        c.opt_text("created_at", self.created_at.as_deref());
        c.opt_text("connected_at", self.connected_at.as_deref());
        c.opt_text("terminated_at", self.terminated_at.as_deref());
        c.finish()
    }
}

/// A tunnel as `get` and `list` describe it (no credentials: those exist only at creation).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct TunnelInfo {
    /// Tunnel id.
    pub tunnel_id: String,
    /// Public host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Public URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Current state.
    #[serde(default)]
    pub status: Option<TunnelStatus>,
    /// Name, if one was given.
    #[serde(default)]
    pub name: Option<String>,
    /// Local port as registered.
    #[serde(default)]
    pub local_port: Option<u16>,
    /// Labels.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<String>,
    /// Basic-auth user, if any (the password is never returned again).
    #[serde(default)]
    pub http_user: Option<String>,
    /// Owner.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Owning team.
    #[serde(default)]
    pub team_id: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Expiry time (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Last connection time (RFC 3339).
    #[serde(default)]
    pub connected_at: Option<String>,
    /// End time (RFC 3339).
    #[serde(default)]
    pub terminated_at: Option<String>,
}

impl TunnelInfo {
    /// True when the status says the tunnel is over (`expired` or `terminated`).
    pub fn is_gone(&self) -> bool {
        self.status.as_ref().is_some_and(TunnelStatus::is_terminal)
    }

    /// `expires_at` as a point in time; `None` when missing or unparseable.
    pub fn expires_at_time(&self) -> Option<SystemTime> {
        time::parse_rfc3339(self.expires_at.as_deref()?).ok()
    }

    /// Time left until `expires_at`, seen from `now` (zero once passed); `None` when unknown.
    pub fn time_left(&self, now: SystemTime) -> Option<Duration> {
        Some(time::until(self.expires_at_time()?, now))
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        let mut c = Checker::default();
        c.tunnel_id("tunnel_id", &self.tunnel_id);
        if let Some(h) = &self.hostname {
            c.hostname("hostname", h);
        }
        if let Some(u) = &self.url {
            c.url("url", u);
        }
        c.opt_text("status", self.status.as_ref().map(TunnelStatus::as_str));
        c.opt_text("name", self.name.as_deref());
        for l in &self.labels {
            c.text("labels", l);
        }
        c.opt_text("http_user", self.http_user.as_deref());
        c.opt_text("user_id", self.user_id.as_deref());
        c.opt_text("team_id", self.team_id.as_deref());
        c.opt_text("created_at", self.created_at.as_deref());
        c.opt_text("expires_at", self.expires_at.as_deref());
        c.opt_text("connected_at", self.connected_at.as_deref());
        c.opt_text("terminated_at", self.terminated_at.as_deref());
        c.finish()
    }
}

/// The column a list is sorted by (`sortBy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SortBy {
    /// `createdAt` (the API's default).
    #[default]
    CreatedAt,
    /// `status`.
    Status,
    /// `name`.
    Name,
    /// `expiresAt`.
    ExpiresAt,
    /// `connectedAt`.
    ConnectedAt,
}

impl SortBy {
    /// The query-string spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SortBy::CreatedAt => "createdAt",
            SortBy::Status => "status",
            SortBy::Name => "name",
            SortBy::ExpiresAt => "expiresAt",
            SortBy::ConnectedAt => "connectedAt",
        }
    }
}

/// Sort direction (`sortOrder`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SortOrder {
    /// Newest / largest first (the API's default).
    #[default]
    Desc,
    /// Oldest / smallest first.
    Asc,
}

impl SortOrder {
    /// The query-string spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SortOrder::Desc => "desc",
            SortOrder::Asc => "asc",
        }
    }
}

/// Default page size of a list (the SDK's and CLI's).
pub const DEFAULT_PER_PAGE: u32 = 50;

/// Filters and paging for `GET /api/v1/tunnel`.
///
/// `page`, `perPage`, `sortBy` and `sortOrder` are always sent; the filters only when set.
/// A `team_id` of `None` falls back to the configured team; `Some("")` means no team filter.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListQuery {
    /// Page number, from 1.
    pub page: u32,
    /// Tunnels per page.
    pub per_page: u32,
    /// Sort column.
    pub sort_by: SortBy,
    /// Sort direction.
    pub sort_order: SortOrder,
    /// Team whose tunnels to include (see the type's docs for the fallback).
    pub team_id: Option<String>,
    /// Only tunnels carrying all of these labels (sent as repeated `labels=`).
    pub labels: Vec<String>,
    /// Only tunnels in this state.
    pub status: Option<TunnelStatus>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            sort_by: SortBy::default(),
            sort_order: SortOrder::default(),
            team_id: None,
            labels: Vec::new(),
            status: None,
        }
    }
}

impl ListQuery {
    /// The first page of 50, newest first, no filters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the page number.
    pub fn page(mut self, page: u32) -> Self {
        self.page = page;
        self
    }

    /// Sets the page size.
    pub fn per_page(mut self, per_page: u32) -> Self {
        self.per_page = per_page;
        self
    }

    /// Sets the sort column and direction.
    pub fn sort(mut self, by: SortBy, order: SortOrder) -> Self {
        self.sort_by = by;
        self.sort_order = order;
        self
    }

    /// Sets the team (`""` for no team filter).
    pub fn team_id(mut self, team_id: impl Into<String>) -> Self {
        self.team_id = Some(team_id.into());
        self
    }

    /// Adds a required label.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.labels.push(label.into());
        self
    }

    /// Filters by status.
    pub fn status(mut self, status: impl Into<TunnelStatus>) -> Self {
        self.status = Some(status.into());
        self
    }
}

/// One page of a list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct TunnelPage {
    /// The tunnels on this page.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tunnels: Vec<TunnelInfo>,
    /// Tunnels matching the query, over all pages.
    #[serde(default, deserialize_with = "null_as_default")]
    pub total: u64,
    /// This page's number.
    #[serde(default, deserialize_with = "null_as_default")]
    pub page: u32,
    /// Page size the server used.
    #[serde(default, deserialize_with = "null_as_default")]
    pub per_page: u32,
    /// Whether another page follows.
    #[serde(default, deserialize_with = "null_as_default")]
    pub has_next: bool,
}

/// What to delete in one `DELETE /api/v1/tunnel`.
///
/// Nothing falls back to the configuration here: set `team_id`/`user_id` explicitly (the client
/// exposes the configured ones). Empty lists and `None`s are not sent; `all_users` always is.
/// The client refuses a request with no ids and no filter, so a mistake cannot wipe everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkDeleteRequest {
    /// Delete tunnels of every user the key can see (team admins), not just the caller's.
    pub all_users: bool,
    /// Delete exactly these tunnels.
    pub tunnel_ids: Vec<String>,
    /// Delete tunnels carrying all of these labels.
    pub labels: Vec<String>,
    /// Delete tunnels in this state (`pending`, `connected` or `disconnected`).
    pub status: Option<TunnelStatus>,
    /// Restrict to this team.
    pub team_id: Option<String>,
    /// Restrict to this user.
    pub user_id: Option<String>,
}

impl BulkDeleteRequest {
    /// Delete these tunnels (the caller's own; `all_users` false).
    pub fn ids<I, S>(ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        BulkDeleteRequest {
            tunnel_ids: ids.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// Deletes tunnels of every user the key can see, not just the caller's.
    pub fn all_users(mut self, all: bool) -> Self {
        self.all_users = all;
        self
    }

    /// Only tunnels carrying this label (call again: all must match).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.labels.push(label.into());
        self
    }

    /// Only tunnels in this state.
    pub fn status(mut self, status: impl Into<TunnelStatus>) -> Self {
        self.status = Some(status.into());
        self
    }

    /// Only tunnels of this team.
    pub fn team_id(mut self, team_id: impl Into<String>) -> Self {
        self.team_id = Some(team_id.into());
        self
    }

    /// Only tunnels of this user.
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// True when the request names ids or sets at least one filter.
    pub fn has_selector(&self) -> bool {
        !self.tunnel_ids.is_empty()
            || !self.labels.is_empty()
            || self.status.is_some()
            || self.team_id.as_deref().is_some_and(|t| !t.is_empty())
            || self.user_id.as_deref().is_some_and(|u| !u.is_empty())
    }
}

/// The outcome of a bulk delete.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct BulkDeleteResult {
    /// Ids deleted.
    #[serde(default, deserialize_with = "null_as_default")]
    pub succeeded: Vec<String>,
    /// Ids not deleted, with the reason.
    #[serde(default, deserialize_with = "null_as_default")]
    pub failed: Vec<BulkDeleteFailure>,
}

/// One tunnel a bulk delete could not delete.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct BulkDeleteFailure {
    /// The tunnel.
    #[serde(default)]
    pub tunnel_id: String,
    /// Why (free text from the API, cleaned of control characters).
    #[serde(default, deserialize_with = "null_as_default")]
    pub error: String,
}

impl BulkDeleteFailure {
    /// True when the reason says the tunnel was already gone.
    pub fn is_not_found(&self) -> bool {
        self.error.to_ascii_lowercase().contains("not found")
    }
}

fn default_server_port() -> u16 {
    DEFAULT_SERVER_PORT
}

/// `server_port`, with `null` read as the default.
fn port_or_default<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    Ok(Option::<u16>::deserialize(d)?.unwrap_or(DEFAULT_SERVER_PORT))
}

/// A field where `null` means the same as absent.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
