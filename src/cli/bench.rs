//! `expose bench`: measure a tunnel end to end (being written).

use super::args::OutputArgs;
use clap::Args;

/// Options of `expose bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {}

/// Runs the benchmark.
pub async fn run(_args: BenchArgs, _out: &OutputArgs) -> anyhow::Result<()> {
    anyhow::bail!("expose bench is not implemented yet")
}
