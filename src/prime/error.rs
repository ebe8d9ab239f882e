//! [`PrimeError`]: everything that can go wrong talking to the Prime API, worded for a person.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What the Prime client reports when a call fails.
///
/// Messages are written for the person at the terminal: they name the HTTP status and the API's
/// own explanation when there is one. Text that came from the server has control characters
/// removed and is cut to a readable length before it gets here, and no variant ever holds a
/// secret (API key, frp token, binding secret, password).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrimeError {
    /// No API key in `PRIME_API_KEY` or in `~/.prime/config.json`.
    #[error(
        "no Prime API key found: set one with `export PRIME_API_KEY=...` \
         or run `prime login` (which writes ~/.prime/config.json)"
    )]
    MissingApiKey,

    /// A config file exists but cannot be read or is not the JSON object we expect.
    #[error("invalid Prime config file {}: {reason}", path.display())]
    ConfigFile {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The configuration is unusable for another reason (bad `PRIME_CONTEXT`, bad base URL...).
    #[error("invalid Prime configuration: {0}")]
    Config(String),

    /// The caller asked for something the client refuses to send (bad tunnel id, bad user name).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// HTTP 401: the API key was not accepted.
    #[error("API key unauthorized (HTTP 401): check PRIME_API_KEY or run `prime login`")]
    Unauthorized,

    /// HTTP 402: the account cannot pay for tunnels.
    #[error("payment required (HTTP 402): {0}")]
    PaymentRequired(String),

    /// HTTP 400 saying a "maximum number of" something was reached (the concurrent-tunnel cap).
    #[error("tunnel limit reached: {0}")]
    LimitReached(String),

    /// Any other HTTP 400, with the API's `detail`.
    #[error("request rejected by the Prime API (HTTP 400): {0}")]
    BadRequest(String),

    /// HTTP 404 where the operation has no "gone" meaning (for example on create).
    #[error("not found (HTTP 404): {0}")]
    NotFound(String),

    /// HTTP 422: the API rejected some parameters; one entry per parameter.
    #[error("request rejected by the Prime API (HTTP 422): {}", JoinFields(.0))]
    Validation(Vec<FieldError>),

    /// HTTP 429 on every attempt, retries used up.
    #[error("rate limited by the Prime API (HTTP 429) after {attempts} attempts{}", RetryHint(*.retry_after))]
    RateLimited {
        /// The server's last `Retry-After`, if it sent a usable one.
        retry_after: Option<Duration>,
        /// How many requests were made in total.
        attempts: u32,
    },

    /// HTTP 5xx.
    #[error("Prime API server error (HTTP {status}): {detail}")]
    Server {
        /// The HTTP status code.
        status: u16,
        /// The API's explanation, or the start of the body.
        detail: String,
    },

    /// Any other unexpected HTTP status (403, 409, a redirect we could not follow...).
    #[error("unexpected HTTP {status} from the Prime API: {detail}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The API's explanation, or the start of the body.
        detail: String,
    },

    /// The body could not be understood: not JSON, malformed JSON, or JSON of the wrong shape.
    #[error("unexpected response from the API (HTTP {status}): {reason}")]
    UnexpectedResponse {
        /// The HTTP status code of the response.
        status: u16,
        /// What was wrong, with the start of the body when that is safe to show.
        reason: String,
    },

    /// The response parsed but a value failed validation (bad hostname, control characters...).
    #[error("invalid response from the API: {0}")]
    InvalidResponse(String),

    /// The request did not complete: connection refused, DNS failure, timeout, reset.
    #[error("cannot reach the Prime API: {message}")]
    Transport {
        /// What happened, including the innermost cause.
        message: String,
        /// True when the failure was a timeout.
        timeout: bool,
    },
}

/// Coarse classes of [`PrimeError`], for choosing an exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Authentication or configuration: no key, 401, 402, a broken config file.
    Auth,
    /// A limit: the concurrent-tunnel cap (400 "maximum number of") or 429 after retries.
    Limit,
    /// Everything else.
    Other,
}

impl PrimeError {
    /// Which class this error belongs to (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            PrimeError::MissingApiKey
            | PrimeError::ConfigFile { .. }
            | PrimeError::Config(_)
            | PrimeError::Unauthorized
            | PrimeError::PaymentRequired(_) => ErrorKind::Auth,
            PrimeError::LimitReached(_) | PrimeError::RateLimited { .. } => ErrorKind::Limit,
            _ => ErrorKind::Other,
        }
    }

    /// The HTTP status behind this error, when it came from an HTTP response.
    pub fn status(&self) -> Option<u16> {
        match self {
            PrimeError::Unauthorized => Some(401),
            PrimeError::PaymentRequired(_) => Some(402),
            PrimeError::LimitReached(_) | PrimeError::BadRequest(_) => Some(400),
            PrimeError::NotFound(_) => Some(404),
            PrimeError::Validation(_) => Some(422),
            PrimeError::RateLimited { .. } => Some(429),
            PrimeError::Server { status, .. }
            | PrimeError::Http { status, .. }
            | PrimeError::UnexpectedResponse { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One rejected parameter of an HTTP 422 answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldError {
    /// The parameter, e.g. `local_port` (FastAPI's `loc` without its `body`/`query` prefix);
    /// empty when the API did not name one.
    pub param: String,
    /// What is wrong with it.
    pub details: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.param.is_empty() {
            f.write_str(&self.details)
        } else {
            write!(f, "{}: {}", self.param, self.details)
        }
    }
}

/// Formats a list of field errors as `a: x; b: y`.
struct JoinFields<'a>(&'a [FieldError]);

impl fmt::Display for JoinFields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no details given");
        }
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Formats `; retry in N s` when a `Retry-After` is known.
struct RetryHint(Option<Duration>);

impl fmt::Display for RetryHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => write!(f, "; the server asks to retry in {} s", d.as_secs()),
            None => Ok(()),
        }
    }
}
