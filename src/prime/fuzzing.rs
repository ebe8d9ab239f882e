//! The client's response-reading steps without HTTP, for the `prime_response` fuzz target in
//! `fuzz/` and its regression replays in `tests/fuzz_regressions.rs`.
//!
//! Not a supported API (hidden from the docs; it may change at any time). The readings are the
//! client's own (`super::read`), except `create`, whose client side interleaves clean-up of a
//! half-usable answer: its reading steps are repeated here (status, JSON, validation).

use super::error::PrimeError;
use super::read;
use super::response::{error_for_status, parse_json, Reply};
use super::types::{BulkDeleteResult, CreatedTunnel, TunnelInfo, TunnelPage};
use reqwest::StatusCode;

/// The client's RFC 3339 parser (`expires_at`, `created_at`).
pub fn parse_rfc3339(input: &str) -> Result<std::time::SystemTime, super::TimestampError> {
    super::time::parse_rfc3339(input)
}

/// The client's HTTP-date parser (`Retry-After`).
pub fn parse_http_date(input: &str) -> Option<std::time::SystemTime> {
    super::time::parse_http_date(input)
}

/// Time from `now` to `deadline`, zero when it has passed.
pub fn until(deadline: std::time::SystemTime, now: std::time::SystemTime) -> std::time::Duration {
    super::time::until(deadline, now)
}

/// The check every tunnel id from the API passes.
pub fn is_valid_tunnel_id(id: &str) -> bool {
    super::validate::is_valid_tunnel_id(id)
}

/// The check every public host name from the API passes.
pub fn is_valid_hostname(name: &str) -> bool {
    super::validate::is_valid_hostname(name)
}

/// The check every server host from the API passes.
pub fn is_valid_host(host: &str) -> bool {
    super::validate::is_valid_host(host)
}

/// What each call of the client makes of one reply.
#[derive(Debug)]
pub struct Readings {
    /// `create_tunnel`.
    pub create: Result<CreatedTunnel, PrimeError>,
    /// `get_tunnel` of the id given to [`read_reply`].
    pub get: Result<Option<TunnelInfo>, PrimeError>,
    /// `list_tunnels`.
    pub list: Result<TunnelPage, PrimeError>,
    /// `delete_tunnel`.
    pub delete: Result<bool, PrimeError>,
    /// `bulk_delete_tunnels`.
    pub bulk_delete: Result<BulkDeleteResult, PrimeError>,
}

impl Readings {
    /// Every error among the readings.
    pub fn errors(&self) -> Vec<&PrimeError> {
        [
            self.create.as_ref().err(),
            self.get.as_ref().err(),
            self.list.as_ref().err(),
            self.delete.as_ref().err(),
            self.bulk_delete.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Reads a reply with HTTP `status` and `body` as every call of the client would; `tunnel_id`
/// is the id `get_tunnel` asked for. `None` when `status` is not a valid HTTP status code.
pub fn read_reply(status: u16, body: &[u8], tunnel_id: &str) -> Option<Readings> {
    let reply = Reply {
        status: StatusCode::from_u16(status).ok()?,
        body: body.to_vec(),
    };
    Some(Readings {
        create: create(&reply),
        get: read::tunnel(&reply, tunnel_id),
        list: read::page(&reply),
        delete: read::deleted(&reply),
        bulk_delete: read::bulk_deleted(&reply),
    })
}

fn create(reply: &Reply) -> Result<CreatedTunnel, PrimeError> {
    if !reply.status.is_success() {
        return Err(error_for_status(reply));
    }
    let tunnel: CreatedTunnel = parse_json(reply)?;
    tunnel.validate().map_err(PrimeError::InvalidResponse)?;
    Ok(tunnel)
}
