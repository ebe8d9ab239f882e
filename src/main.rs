//! The `expose` command line. See `expose --help`.

mod cli;

use clap::Parser;
use cli::args::{Cli, Command};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn init_logging(out: &cli::args::OutputArgs) {
    // Human output is printed by the CLI itself; logs are for diagnosis and go to stderr.
    let level = if out.quiet {
        "error"
    } else {
        match out.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_env("EXPOSE_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{level},yamux=warn,rustls=warn,hyper=warn,reqwest=warn"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap exits 2 for usage errors and 0 for --help/--version.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli.output);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Http(args)) => cli::selfhosted::http(args, &cli.output).await,
            Some(Command::Tcp(args)) => cli::selfhosted::tcp(args, &cli.output).await,
            Some(Command::Bench(args)) => cli::bench::run(args, &cli.output).await,
            Some(Command::List(args)) => cli::prime::list(args, &cli.output).await,
            Some(Command::Status { id }) => cli::prime::status(id, &cli.output).await,
            Some(Command::Stop(args)) => cli::prime::stop(args, &cli.output).await,
            None => match cli.port {
                Some(port) => cli::prime::expose_port(port, cli.tunnel, &cli.output).await,
                None => anyhow::bail!("missing PORT; see `expose --help`"),
            },
        }
    });
    // Background tasks (the engine) must not outlive main's decision.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
