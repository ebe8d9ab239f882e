//! The `expose` command line: argument parsing, output, and one module per command family.

pub mod args;
#[cfg(feature = "bench")]
pub mod bench;
pub mod console;
pub mod frpc;
pub mod frpc_admin;
pub mod frpc_ctl;
pub mod frpc_events;
pub mod frpc_log;
pub mod frpc_logfile;
pub mod frpc_quick;
pub mod inspect;
pub mod log_filter;
pub mod nofile;
pub mod output;
pub mod prime;
pub mod run;
pub mod runtime;
pub mod selfhosted;

use expose::frp::Error as FrpError;
use expose::prime::{ErrorKind, PrimeError};
use expose::TunnelError;

/// An error and its causes on one line, each cause once.
///
/// Errors that print their source in their own message *and* return it from `source()` would
/// otherwise show it twice (`cannot connect to h: refused: refused`), and an I/O error wrapped
/// at several layers as often; a cause whose text the line already ends with is skipped.
pub fn error_text(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Exit status for an error, as documented in [`args::EXIT_CODES_HELP`].
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<TunnelError>() {
            // Written without an exhaustive match: the error types may grow variants.
            if let TunnelError::Api(p) = e {
                return prime_code(p);
            }
            if let TunnelError::Frp(f) = e {
                return frp_code(f);
            }
            return 1;
        }
        if let Some(e) = cause.downcast_ref::<PrimeError>() {
            return prime_code(e);
        }
        if let Some(e) = cause.downcast_ref::<FrpError>() {
            return frp_code(e);
        }
        #[cfg(feature = "bench")]
        if let Some(e) = cause.downcast_ref::<bench::ClientExited>() {
            return e.exit_code();
        }
    }
    1
}

fn prime_code(e: &PrimeError) -> u8 {
    match e.kind() {
        ErrorKind::Auth => 3,
        ErrorKind::Limit => 4,
        _ => 1,
    }
}

fn frp_code(e: &FrpError) -> u8 {
    match e {
        FrpError::LoginRejected(_) | FrpError::ProxyRejected { .. } => 5,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot connect to h:1: {0}")]
    struct Connect(#[source] std::io::Error);

    #[test]
    fn every_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = anyhow::Error::new(Connect(io)).context("the tunnel did not start");
        assert_eq!(
            error_text(&e),
            "the tunnel did not start: cannot connect to h:1: refused"
        );
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_text(&e), "outer: inner");
    }
}
