//! What each client call makes of a reply it has read in full: status check, JSON parsing,
//! validation. Pure functions, so the fuzz target (`super::fuzzing`) runs exactly the code the
//! client runs.

use super::error::PrimeError;
use super::response::{error_for_status, parse_json, Reply};
use super::types::{BulkDeleteResult, TunnelInfo, TunnelPage};
use super::validate::{clean_text, Checker, MAX_QUOTED_CHARS};
use reqwest::StatusCode;

/// `GET /tunnel/{id}`: `None` for 404 (gone); the answer must be about `tunnel_id`.
pub(crate) fn tunnel(reply: &Reply, tunnel_id: &str) -> Result<Option<TunnelInfo>, PrimeError> {
    if reply.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !reply.status.is_success() {
        return Err(error_for_status(reply));
    }
    let info: TunnelInfo = parse_json(reply)?;
    info.validate().map_err(PrimeError::InvalidResponse)?;
    if info.tunnel_id != tunnel_id {
        return Err(PrimeError::InvalidResponse(format!(
            "asked for tunnel {tunnel_id} but got {}",
            info.tunnel_id
        )));
    }
    Ok(Some(info))
}

/// `GET /tunnel`: one page, every tunnel on it validated.
pub(crate) fn page(reply: &Reply) -> Result<TunnelPage, PrimeError> {
    if !reply.status.is_success() {
        return Err(error_for_status(reply));
    }
    let page: TunnelPage = parse_json(reply)?;
    for t in &page.tunnels {
        t.validate().map_err(PrimeError::InvalidResponse)?;
    }
    Ok(page)
}

/// `DELETE /tunnel/{id}`: `true` when deleted, `false` when it was already gone (404).
pub(crate) fn deleted(reply: &Reply) -> Result<bool, PrimeError> {
    match reply.status {
        StatusCode::NOT_FOUND => Ok(false),
        s if s.is_success() => Ok(true),
        _ => Err(error_for_status(reply)),
    }
}

/// `DELETE /tunnel` with a body: an empty answer means nothing to report.
pub(crate) fn bulk_deleted(reply: &Reply) -> Result<BulkDeleteResult, PrimeError> {
    if !reply.status.is_success() {
        return Err(error_for_status(reply));
    }
    if reply.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(BulkDeleteResult::default());
    }
    let mut result: BulkDeleteResult = parse_json(reply)?;
    let mut c = Checker::default();
    for id in &result.succeeded {
        c.text("succeeded", id);
    }
    for f in &mut result.failed {
        c.text("failed.tunnel_id", &f.tunnel_id);
        f.error = clean_text(&f.error, MAX_QUOTED_CHARS);
    }
    c.finish().map_err(PrimeError::InvalidResponse)?;
    Ok(result)
}
