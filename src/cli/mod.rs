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
pub mod nofile;
pub mod output;
pub mod prime;
pub mod run;
pub mod runtime;
pub mod selfhosted;

use expose::frp::Error as FrpError;
use expose::prime::{ErrorKind, PrimeError};
use expose::TunnelError;

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
