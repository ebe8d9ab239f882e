//! [`PrimeClient`]: the HTTP calls, their retries, and the mapping of answers to results.
//!
//! Retries follow Prime's own SDK where it has a rule and stay bounded everywhere:
//! - Transport failures (refused, reset, timed out) are retried for GET and DELETE only, three
//!   attempts in all with exponential backoff from 100 ms, capped at 2 s. A POST is never
//!   resent after a transport failure: the server may have created the tunnel already.
//! - HTTP 429 is retried for every method (the request was not processed), at most three
//!   times, each after the server's `Retry-After` capped at 10 s.
//!
//! Nothing here logs a header, a request body or a response body: the API key travels in a
//! header and the create response holds the frp token, binding secret and basic-auth password.

use super::config::{check_base_url, normalize_base_url, PrimeConfig};
use super::error::PrimeError;
use super::options::{ClientOptions, USER_AGENT};
use super::read;
use super::response::{error_for_status, parse_json, Reply};
use super::time;
use super::types::{
    BulkDeleteRequest, BulkDeleteResult, CreateTunnelRequest, CreatedTunnel, TunnelInfo,
};
use super::validate::{clean_text, is_valid_tunnel_id, MAX_QUOTED_CHARS};
use crate::text::has_unsafe_chars;
use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

/// Responses are read up to this size; the API's are a few KiB, a list page maybe 100 KiB.
const MAX_BODY_BYTES: usize = 4 << 20;

/// A client of the tunnel API, authenticated as one user.
///
/// Cheap to clone (the connection pool is shared). `Debug` shows the base URL and team only.
#[derive(Clone)]
pub struct PrimeClient {
    http: reqwest::Client,
    config: PrimeConfig,
    options: ClientOptions,
    /// `<base>/api/v1/tunnel`.
    tunnels_url: String,
}

impl fmt::Debug for PrimeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrimeClient")
            .field("base_url", &self.config.base_url)
            .field("team_id", &self.config.team_id)
            .field("api_key", &self.config.api_key)
            .finish_non_exhaustive()
    }
}

/// Why one attempt did not produce a [`Reply`].
enum AttemptError {
    /// Transport failure, maybe worth retrying.
    Transport(reqwest::Error),
    /// Not worth retrying.
    Fatal(PrimeError),
}

impl PrimeClient {
    /// A client with the default timeouts and retries.
    pub fn new(config: PrimeConfig) -> Result<Self, PrimeError> {
        Self::with_options(config, ClientOptions::default())
    }

    /// A client with explicit timeouts and retries.
    pub fn with_options(
        mut config: PrimeConfig,
        options: ClientOptions,
    ) -> Result<Self, PrimeError> {
        config.base_url = normalize_base_url(&config.base_url);
        check_base_url(&config.base_url)
            .map_err(|why| PrimeError::Config(format!("base URL {why}: {:?}", config.base_url)))?;
        let key = config.api_key.expose();
        if key.trim().is_empty() {
            return Err(PrimeError::MissingApiKey);
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PrimeError::Config(
                "the API key contains spaces, control or non-ASCII characters".to_owned(),
            ));
        }
        if config.base_url.to_ascii_lowercase().starts_with("http://")
            && !is_loopback_url(&config.base_url)
        {
            tracing::warn!(
                base_url = %config.base_url,
                "the Prime API base URL is plain http: the API key travels unencrypted"
            );
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(options.timeout)
            .redirect(reqwest::redirect::Policy::limited(5));
        if !options.use_system_proxy {
            builder = builder.no_proxy();
        }
        let http = builder
            .build()
            .map_err(|e| PrimeError::Config(format!("cannot set up the HTTP client: {e}")))?;
        let tunnels_url = format!("{}/api/v1/tunnel", config.base_url);
        Ok(PrimeClient {
            http,
            config,
            options,
            tunnels_url,
        })
    }

    /// The configuration in use (key, base URL, default team, user).
    pub fn config(&self) -> &PrimeConfig {
        &self.config
    }

    /// The timeouts, retries and bounds in use.
    pub(super) fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Registers a tunnel (`POST /api/v1/tunnel`) and returns where and how to connect frpc.
    ///
    /// The returned values are validated; if the API's answer fails validation the client tries
    /// once to delete the half-usable registration before returning
    /// [`PrimeError::InvalidResponse`].
    pub async fn create_tunnel(
        &self,
        request: &CreateTunnelRequest,
    ) -> Result<CreatedTunnel, PrimeError> {
        if request.local_port == 0 {
            return Err(PrimeError::InvalidRequest(
                "local port must be 1-65535".to_owned(),
            ));
        }
        let mut body = Map::new();
        body.insert("local_port".into(), json!(request.local_port));
        if let Some(name) = request.name.as_deref().filter(|n| !n.is_empty()) {
            body.insert("name".into(), json!(name));
        }
        if let Some(team) = self.team_or_default(request.team_id.as_deref()) {
            body.insert("teamId".into(), json!(team));
        }
        if !request.labels.is_empty() {
            body.insert("labels".into(), json!(request.labels));
        }
        if let Some(user) = &request.http_user {
            check_http_user(user)?;
            body.insert("http_user".into(), json!(user));
        }

        let reply = self
            .execute(Method::POST, "", &[], Some(&Value::Object(body)))
            .await?;
        if !reply.status.is_success() {
            return Err(error_for_status(&reply));
        }
        let tunnel: CreatedTunnel = match parse_json(&reply) {
            Ok(t) => t,
            Err(e) => {
                // The API says it created a tunnel but the answer is unusable. If its id can
                // still be read, delete the registration rather than leave it until it expires.
                if let Some(id) = created_tunnel_id(&reply.body) {
                    tracing::warn!(
                        tunnel_id = %id,
                        "create response could not be parsed; deleting the registration"
                    );
                    let _ = self.delete_tunnel(&id).await;
                }
                return Err(e);
            }
        };
        if let Err(problem) = tunnel.validate() {
            if is_valid_tunnel_id(&tunnel.tunnel_id) {
                tracing::warn!(
                    tunnel_id = %tunnel.tunnel_id,
                    "create response failed validation; deleting the registration"
                );
                let _ = self.delete_tunnel(&tunnel.tunnel_id).await;
            }
            return Err(PrimeError::InvalidResponse(problem));
        }
        tracing::debug!(tunnel_id = %tunnel.tunnel_id, url = %tunnel.url, "tunnel created");
        Ok(tunnel)
    }

    /// One tunnel (`GET /api/v1/tunnel/{id}`); `Ok(None)` when the API says 404 (gone).
    pub async fn get_tunnel(&self, tunnel_id: &str) -> Result<Option<TunnelInfo>, PrimeError> {
        check_tunnel_id(tunnel_id)?;
        let reply = self
            .execute(Method::GET, &format!("/{tunnel_id}"), &[], None)
            .await?;
        read::tunnel(&reply, tunnel_id)
    }

    /// Deletes a tunnel (`DELETE /api/v1/tunnel/{id}`): `Ok(true)` when deleted, `Ok(false)` when
    /// it was already gone (404).
    pub async fn delete_tunnel(&self, tunnel_id: &str) -> Result<bool, PrimeError> {
        check_tunnel_id(tunnel_id)?;
        let reply = self
            .execute(Method::DELETE, &format!("/{tunnel_id}"), &[], None)
            .await?;
        read::deleted(&reply)
    }

    /// Deletes several tunnels at once (`DELETE /api/v1/tunnel` with a JSON body).
    ///
    /// Refuses a request with neither ids nor a filter (see [`BulkDeleteRequest`]).
    pub async fn bulk_delete_tunnels(
        &self,
        request: &BulkDeleteRequest,
    ) -> Result<BulkDeleteResult, PrimeError> {
        if !request.has_selector() {
            return Err(PrimeError::InvalidRequest(
                "a bulk delete needs tunnel ids or at least one filter".to_owned(),
            ));
        }
        for id in &request.tunnel_ids {
            check_tunnel_id(id)?;
        }
        let mut body = Map::new();
        body.insert("all_users".into(), json!(request.all_users));
        if !request.tunnel_ids.is_empty() {
            body.insert("tunnel_ids".into(), json!(request.tunnel_ids));
        }
        if !request.labels.is_empty() {
            body.insert("labels".into(), json!(request.labels));
        }
        if let Some(status) = &request.status {
            body.insert("status".into(), json!(status.as_str()));
        }
        if let Some(team) = request.team_id.as_deref().filter(|t| !t.is_empty()) {
            body.insert("teamId".into(), json!(team));
        }
        if let Some(user) = request.user_id.as_deref().filter(|u| !u.is_empty()) {
            body.insert("userId".into(), json!(user));
        }
        let reply = self
            .execute(Method::DELETE, "", &[], Some(&Value::Object(body)))
            .await?;
        read::bulk_deleted(&reply)
    }

    /// The team to send: the request's if given (empty meaning none), else the configured one.
    pub(super) fn team_or_default<'a>(&'a self, requested: Option<&'a str>) -> Option<&'a str> {
        requested
            .or(self.config.team_id.as_deref())
            .filter(|t| !t.is_empty())
    }

    /// Sends a request to `<base>/api/v1/tunnel<path>` with the retry rules in the module docs
    /// and reads the whole response. Any HTTP status is returned except a 429 that outlasted
    /// its retries.
    pub(super) async fn execute(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Reply, PrimeError> {
        let url = format!("{}{}", self.tunnels_url, path);
        let idempotent = method != Method::POST;
        let mut transport_failures = 0u32;
        let mut rate_limited = 0u32;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let started = Instant::now();
            tracing::debug!(
                %method,
                path = %format_args!("/api/v1/tunnel{path}"),
                attempt = attempts,
                "Prime API request"
            );
            match self.attempt(&method, &url, query, body).await {
                Ok((reply, headers)) => {
                    tracing::debug!(
                        %method,
                        status = reply.status.as_u16(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "Prime API response"
                    );
                    if reply.status != StatusCode::TOO_MANY_REQUESTS {
                        return Ok(reply);
                    }
                    let retry_after = retry_after(&headers);
                    if rate_limited >= self.options.rate_limit_retries {
                        return Err(PrimeError::RateLimited {
                            retry_after,
                            attempts,
                        });
                    }
                    rate_limited += 1;
                    let wait = retry_after
                        .unwrap_or(self.options.rate_limit_default_wait)
                        .min(self.options.rate_limit_max_wait);
                    tracing::info!(
                        %method,
                        wait_ms = wait.as_millis() as u64,
                        retry = rate_limited,
                        "rate limited by the Prime API; waiting"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Transport(e)) => {
                    transport_failures += 1;
                    let retryable = idempotent && !e.is_builder() && !e.is_redirect();
                    if !retryable || transport_failures >= self.options.transport_attempts {
                        return Err(self.transport_error(&method, path, &e));
                    }
                    let wait = self.backoff(transport_failures);
                    tracing::warn!(
                        %method,
                        error = %innermost_cause(&e),
                        wait_ms = wait.as_millis() as u64,
                        "Prime API request failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One request, response read in full.
    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(Reply, HeaderMap), AttemptError> {
        let mut req = self
            .http
            .request(method.clone(), url)
            .bearer_auth(self.config.api_key.expose())
            .header(ACCEPT, "application/json");
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let mut resp = req.send().await.map_err(AttemptError::Transport)?;
        let status = resp.status();
        let headers = std::mem::take(resp.headers_mut());
        let mut data = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(AttemptError::Transport)? {
            if data.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(AttemptError::Fatal(PrimeError::UnexpectedResponse {
                    status: status.as_u16(),
                    reason: format!("body larger than {} MiB", MAX_BODY_BYTES >> 20),
                }));
            }
            data.extend_from_slice(&chunk);
        }
        Ok((Reply { status, body: data }, headers))
    }

    /// Wait before transport retry number `n` (1-based): initial × 2^(n-1), capped.
    fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(16);
        self.options
            .backoff_initial
            .saturating_mul(factor)
            .min(self.options.backoff_max)
    }

    fn transport_error(&self, method: &Method, path: &str, e: &reqwest::Error) -> PrimeError {
        let what = if e.is_timeout() {
            format!(
                "no answer within {:.1} s",
                self.options.timeout.as_secs_f64()
            )
        } else if e.is_connect() {
            "connection failed".to_owned()
        } else {
            "request failed".to_owned()
        };
        PrimeError::Transport {
            message: format!(
                "{method} {}/api/v1/tunnel{path}: {what}: {}",
                self.config.base_url,
                innermost_cause(e)
            ),
            timeout: e.is_timeout(),
        }
    }
}

/// The `tunnel_id` of a create answer that did not parse as a whole, if it is a valid id.
fn created_tunnel_id(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let id = value.get("tunnel_id")?.as_str()?;
    is_valid_tunnel_id(id).then(|| id.to_owned())
}

/// True when the URL's host is `localhost` or a loopback address (test servers, local proxies).
fn is_loopback_url(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let host = u.host_str().unwrap_or_default();
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The last error in `e`'s source chain, cleaned for display.
fn innermost_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    clean_text(&cause.to_string(), MAX_QUOTED_CHARS)
}

/// `Retry-After` as a wait: delta-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = time::parse_http_date(value)?;
    Some(time::until(at, SystemTime::now()))
}

fn check_tunnel_id(id: &str) -> Result<(), PrimeError> {
    if is_valid_tunnel_id(id) {
        Ok(())
    } else {
        Err(PrimeError::InvalidRequest(format!(
            "{:?} is not a valid tunnel id (1-63 letters, digits and hyphens)",
            id.chars().take(80).collect::<String>()
        )))
    }
}

/// The CLI's rule for basic-auth user names: non-empty, no spaces, no `:`.
fn check_http_user(user: &str) -> Result<(), PrimeError> {
    if user.is_empty()
        || user.contains(':')
        || user.chars().any(char::is_whitespace)
        || has_unsafe_chars(user)
    {
        return Err(PrimeError::InvalidRequest(
            "the basic-auth user must be non-empty, without spaces or ':'".to_owned(),
        ));
    }
    Ok(())
}
