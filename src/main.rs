//! The `expose` command line. See `expose --help`.

mod cli;

use clap::Parser;
use cli::args::{Cli, Command};
use expose::text::escape_unsafe;
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{debug_fn, Writer};
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
    // Log fields carry servers' texts (a refused login's reason, a proxy's address, a run id).
    // tracing-subscriber escapes escape sequences in the message only, so every field value is
    // escaped here: a hostile server can neither drive the terminal nor forge log lines.
    let fields = debug_fn(
        |w: &mut Writer<'_>, field: &Field, value: &dyn std::fmt::Debug| {
            let raw = format!("{value:?}");
            let text = escape_unsafe(&raw);
            if field.name() == "message" {
                write!(w, "{text}")
            } else {
                write!(w, "{field}={text}")
            }
        },
    )
    .delimited(" ");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(fields)
        // Colour codes only for a terminal: piped or redirected logs stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
        // Through the console thread: a stderr that stops reading never blocks a log call.
        .with_writer(|| cli::console::LogWriter)
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
    // Each visitor holds a file descriptor: a soft limit of 256 would cap the tunnel long before
    // the hard limit does.
    match cli::nofile::raise() {
        Ok(Some(r)) => tracing::debug!(from = ?r.from, to = ?r.to, "raised the open-file limit"),
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %e, "could not raise the open-file limit"),
    }
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
            #[cfg(feature = "bench")]
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
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The chain quotes servers' own texts (a refused proxy, a login error): escaped so
            // a hostile server cannot send escape sequences to the terminal.
            cli::console::err_essential(format!("error: {}\n", escape_unsafe(&format!("{e:#}"))));
            ExitCode::from(cli::exit_code(&e))
        }
    };
    // The last lines (the `closed` event, the error) are written before exit, unless the
    // console does not read for this long.
    cli::console::flush(EXIT_FLUSH);
    code
}

/// How long the process waits at exit for a console that does not read.
const EXIT_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);
