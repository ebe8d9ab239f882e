//! What the session accepts from a server: which rejections are final, which run ids are kept.

/// Longest `run_id` kept from a server. frps makes 16 hex digits; anything far longer would make
/// every later Login too large to send.
pub const MAX_RUN_ID_LEN: usize = 64;

/// Server texts that mean retrying cannot help: a wrong token, or a hosted service's plugin
/// saying the tunnel's credentials or registration are no good.
const FATAL_REJECTIONS: &[&str] = &[
    "token in login doesn't match",
    "invalid authentication token",
    "invalid binding secret",
    "tunnel not registered",
    "tunnel is inactive",
    "authorization failed",
    "authentication failed",
    "unauthorized",
];

/// Whether a server's rejection text (of a Login or a proxy) is one retrying cannot fix.
pub fn is_fatal_rejection(reason: &str) -> bool {
    let lower = reason.to_ascii_lowercase();
    FATAL_REJECTIONS.iter().any(|s| lower.contains(s))
}

/// Whether a server-provided run id is safe to keep and send back: short, and made of the
/// characters frps uses.
pub fn is_valid_run_id(run_id: &str) -> bool {
    !run_id.is_empty()
        && run_id.len() <= MAX_RUN_ID_LEN
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}
