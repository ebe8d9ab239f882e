//! What one `expose bench` run does, after defaults: phase sizes and the client's settings.

use super::report::GIB;
use crate::cli::args::{BenchArgs, BenchPhase};
use expose::bench::load::Budget;
use std::time::Duration;

/// Everything the run needs to know, after defaults.
#[derive(Clone)]
pub(super) struct Plan {
    pub(super) budget: Budget,
    pub(super) streams: usize,
    pub(super) rounds: usize,
    pub(super) msg_size: usize,
    pub(super) conn_max: u64,
    pub(super) conn_time: Duration,
    pub(super) ttfb_runs: usize,
    pub(super) idle_conns: usize,
    pub(super) token: String,
    pub(super) tls: bool,
    pub(super) mux: bool,
    /// Put in the proxy names of a `--client-cmd` client's processes, so that they never
    /// reuse a name the built-in client registered.
    pub(super) launch_tag: &'static str,
    /// Phases to run; empty means all.
    pub(super) phases: Vec<BenchPhase>,
}

impl Plan {
    /// The plan for these arguments; `token` authenticates the client under test.
    pub(super) fn from_args(a: &BenchArgs, token: String) -> Plan {
        let budget = if a.quick {
            Budget {
                max_bytes: Some(64 << 20),
                max_time: Duration::from_secs(1),
            }
        } else if let Some(gib) = a.bytes {
            Budget {
                max_bytes: Some((gib * GIB) as u64),
                max_time: Duration::from_secs(3600),
            }
        } else {
            Budget {
                max_bytes: None,
                max_time: Duration::from_secs_f64(a.duration),
            }
        };
        Plan {
            budget,
            streams: usize::from(a.streams),
            rounds: if a.quick { 2000 } else { a.rounds.max(2000) },
            msg_size: a.msg_size as usize,
            conn_max: if a.quick { 300 } else { 5000 },
            conn_time: if a.quick {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(5)
            },
            ttfb_runs: if a.quick { 1 } else { 3 },
            idle_conns: a.idle_conns.unwrap_or(if a.quick { 100 } else { 1000 }),
            token,
            tls: !a.no_tls,
            mux: !a.no_mux,
            launch_tag: "",
            phases: a.phases.clone(),
        }
    }

    /// Whether `phase` runs.
    pub(super) fn runs(&self, phase: BenchPhase) -> bool {
        self.phases.is_empty() || self.phases.contains(&phase)
    }
}
