//! What the session tells its driver: events to act on, and why a connection ended.

use super::rules::{is_fatal_rejection, MAX_RUN_ID_LEN};
use crate::frame::MAX_BODY_LEN;
use crate::Message;
use std::fmt;
use std::time::Duration;

/// Why a login or a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The server refused the Login with this text.
    LoginRejected(String),
    /// No LoginResp within the login timeout.
    LoginTimeout,
    /// The server sent something else where only one message type may come.
    UnexpectedMessage {
        /// What the protocol requires here.
        expected: &'static str,
        /// What came.
        got: &'static str,
    },
    /// The server's run id is unusable (too long or odd characters); it was not kept.
    InvalidRunId {
        /// Its length in bytes.
        len: usize,
    },
    /// One of our own messages would exceed the frame limit: a bug or an oversized setting,
    /// never healed by retrying.
    MessageTooLarge {
        /// The message type.
        kind: &'static str,
        /// Its encoded body length.
        len: usize,
    },
    /// No Pong within the heartbeat timeout.
    PongTimeout,
    /// The server answered a Ping with an error (heartbeat authentication failed).
    PongError(String),
    /// The server refused a proxy with a text that retrying cannot fix.
    ProxyRejected {
        /// The proxy's name without the user prefix.
        name: String,
        /// The server's text.
        reason: String,
    },
    /// The driver reported the connection broken; it holds the details.
    Transport {
        /// Retrying cannot help.
        fatal: bool,
    },
}

impl Failure {
    /// True when retrying cannot fix this.
    pub fn is_fatal(&self) -> bool {
        match self {
            Failure::LoginRejected(reason) | Failure::ProxyRejected { reason, .. } => {
                is_fatal_rejection(reason)
            }
            Failure::MessageTooLarge { .. } => true,
            Failure::Transport { fatal } => *fatal,
            _ => false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::LoginRejected(r) => write!(f, "login rejected by the server: {r}"),
            Failure::LoginTimeout => f.write_str("timed out waiting for LoginResp"),
            Failure::UnexpectedMessage { expected, got } => {
                write!(f, "protocol error: expected {expected}, got {got}")
            }
            Failure::InvalidRunId { len } => write!(
                f,
                "protocol error: the server sent an unusable run_id ({len} bytes; at most \
                 {MAX_RUN_ID_LEN} letters, digits, '-', '_' or '.')"
            ),
            Failure::MessageTooLarge { kind, len } => write!(
                f,
                "internal error: our {kind} message is {len} bytes, over frp's {MAX_BODY_LEN}-byte \
                 limit (shorten the metadata or proxy settings)"
            ),
            Failure::PongTimeout => f.write_str("timed out waiting for Pong (heartbeat timeout)"),
            Failure::PongError(e) => write!(f, "protocol error: Pong error: {e}"),
            Failure::ProxyRejected { name, reason } => {
                write!(f, "proxy {name} rejected by the server: {reason}")
            }
            Failure::Transport { .. } => f.write_str("connection failed"),
        }
    }
}

/// What the driver must act on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// Dial the server now (attempt 1 is the first since the last successful login).
    Connect {
        /// Attempt number.
        attempt: u32,
    },
    /// Login accepted: encrypt and decrypt the control stream from here on.
    LoggedIn {
        /// The run id in force.
        run_id: String,
        /// A login after an earlier successful one.
        reconnected: bool,
    },
    /// The server registered a proxy.
    ProxyReady {
        /// The name without the user prefix.
        name: String,
        /// The server's `remote_addr`.
        remote_addr: String,
    },
    /// The server refused a proxy; it is retried unless the refusal is fatal.
    ProxyFailed {
        /// The name without the user prefix.
        name: String,
        /// The server's text.
        reason: String,
    },
    /// frps asks for a work connection (one `ReqWorkConn`).
    WorkConnRequested,
    /// A control message the session does not handle itself.
    Message(Box<Message>),
    /// The connection is over: drop it. `Reconnecting` or `Stopped` follows.
    Lost {
        /// Why.
        cause: Failure,
        /// Whether the session had logged in on this connection.
        logged_in: bool,
    },
    /// The next dial comes after `delay`.
    Reconnecting {
        /// Attempt number of the next dial.
        attempt: u32,
        /// Wait before it.
        delay: Duration,
        /// Why the last connection ended.
        cause: Failure,
    },
    /// The session is over for good: `None` after [`super::Session::close`].
    Stopped {
        /// The fatal failure, if any.
        cause: Option<Failure>,
    },
}

/// Why [`super::Session::add_proxy`] refused a proxy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// A proxy with this name exists.
    #[error("duplicate proxy name {0:?}")]
    Duplicate(String),
    /// Its NewProxy would exceed the frame limit.
    #[error(
        "proxy {name}: registration message is {len} bytes, over the {MAX_BODY_LEN}-byte limit"
    )]
    TooLarge {
        /// The proxy's name.
        name: String,
        /// Encoded body length.
        len: usize,
    },
}
