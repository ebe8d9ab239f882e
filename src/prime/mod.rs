//! The client of Prime Intellect's hosted tunnel API: create, get, list and delete tunnels.
//!
//! A tunnel is a registration on Prime's side: [`PrimeClient::create_tunnel`] returns the frps
//! to connect to and the credentials for it ([`CreatedTunnel`]), which the [`crate::frp`] engine
//! then uses.
//!
//! - `config`: [`PrimeConfig`], where the key and URLs come from (env, `~/.prime`).
//! - `client`: [`PrimeClient`], the HTTP calls and their retries.
//! - `options`: [`ClientOptions`], timeouts, retries and listing bounds.
//! - `list`: listing, one page or all of them within bounds ([`TunnelList`]).
//! - `response`: response bodies into types, error statuses into [`PrimeError`]s.
//! - `types`: request and response shapes.
//! - `error`: [`PrimeError`] and its [`ErrorKind`] for exit codes.
//! - `time`: RFC 3339 parsing for `expires_at`, HTTP dates for `Retry-After`.
//! - `validate`: checks on every value the API returns before anyone uses it.
//!
//! Secrets (API key, frp token, binding secret, basic-auth password) are [`Secret`]s and are
//! never logged: no header or body is ever written to the logs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), expose::prime::PrimeError> {
//! use expose::prime::{CreateTunnelRequest, PrimeClient, PrimeConfig};
//! let client = PrimeClient::new(PrimeConfig::load()?)?;
//! let tunnel = client.create_tunnel(&CreateTunnelRequest::new(8080).name("demo")).await?;
//! println!("{}", tunnel.url);
//! client.delete_tunnel(&tunnel.tunnel_id).await?;
//! # Ok(()) }
//! ```

mod client;
mod config;
mod error;
/// The response-reading steps without HTTP, for the fuzz targets; not a supported API.
#[doc(hidden)]
pub mod fuzzing;
mod list;
mod options;
mod read;
mod response;
mod time;
mod types;
mod validate;

pub use crate::secret::Secret;
pub use client::PrimeClient;
pub use config::{PrimeConfig, DEFAULT_BASE_URL};
pub use error::{ErrorKind, FieldError, PrimeError};
pub use list::{ListCut, TunnelList};
pub use options::{
    ClientOptions, DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, DEFAULT_LIST_MAX_BYTES,
    DEFAULT_LIST_MAX_ENTRIES, DEFAULT_LIST_MAX_TIME, DEFAULT_RATE_LIMIT_MAX_WAIT,
    DEFAULT_RATE_LIMIT_RETRIES, DEFAULT_RATE_LIMIT_WAIT, DEFAULT_TIMEOUT,
    DEFAULT_TRANSPORT_ATTEMPTS, USER_AGENT,
};
pub use time::TimestampError;
pub use types::{
    BulkDeleteFailure, BulkDeleteRequest, BulkDeleteResult, CreateTunnelRequest, CreatedTunnel,
    ListQuery, SortBy, SortOrder, TunnelInfo, TunnelPage, TunnelStatus, DEFAULT_PER_PAGE,
    DEFAULT_SERVER_PORT,
};
