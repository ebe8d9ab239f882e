//! The `expose` command line: argument parsing, output, and one module per command family.

pub mod args;
pub mod bench;
pub mod output;
pub mod run;
pub mod selfhosted;

use expose::frp::Error as FrpError;

/// Exit status for an error, as documented in [`args::EXIT_CODES_HELP`].
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<FrpError>() {
            return match e {
                FrpError::LoginRejected(_) | FrpError::ProxyRejected { .. } => 5,
                _ => 1,
            };
        }
    }
    1
}
