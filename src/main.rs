//! The `expose` command line. See `expose --help`.

mod cli;

use cli::args::{Cli, Command};
use expose::text::escape_unsafe;
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{debug_fn, Writer};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Who the logs are for: `expose`'s own front end prints what a user needs itself (banner,
/// notes, one `error:` line), so its logs are diagnostics and stay silent unless asked for with
/// `-v`; frpc prints its log lines as its output, and of the engine's logs only descriptor
/// exhaustion (`EXPOSE_LOG` turns the rest on).
#[derive(Clone, Copy, PartialEq)]
enum LogAudience {
    Expose,
    Frpc,
}

fn init_logging(out: &cli::args::OutputArgs, audience: LogAudience) {
    // Without -v only what the user must act on and that the output does not say otherwise: a
    // tunnel that could not be deleted, a plain-http API URL, descriptor exhaustion.
    const USER_WARNINGS: &str = "expose::tunnel=warn,expose::prime=warn,expose::nofile=warn";
    let level = match (audience, out.quiet, out.verbose) {
        (LogAudience::Expose, true, _) => "off,expose::tunnel=warn".to_owned(),
        (LogAudience::Expose, false, 0) => format!("off,{USER_WARNINGS}"),
        // frpc's own lines are its output; the engine's logs would repeat them in another form.
        (LogAudience::Frpc, _, _) => "off,expose::nofile=warn".to_owned(),
        (_, false, 1) => "info".to_owned(),
        (_, false, 2) => "debug".to_owned(),
        _ => "trace".to_owned(),
    };
    let chosen = std::env::var_os("EXPOSE_LOG").map(|spec| {
        let parsed = spec.to_str().ok_or(cli::log_filter::InvalidFilter);
        parsed.and_then(cli::log_filter::parse).map_err(|_| spec)
    });
    let filter = match chosen {
        Some(Ok(filter)) => filter,
        other => {
            // As `EnvFilter` did, a filter that does not parse leaves the default in place; unlike
            // it, the user learns why the logs they asked for do not appear.
            if let Some(Err(spec)) = other {
                cli::console::err(format!(
                    "warning: EXPOSE_LOG={} is not a log filter (say `debug` or \
                     `expose=trace,yamux=warn`); using the default\n",
                    escape_unsafe(&spec.to_string_lossy())
                ));
            }
            let default = format!("{level},yamux=warn,rustls=warn,hyper=warn,reqwest=warn");
            cli::log_filter::parse(&default).unwrap_or_default()
        }
    };
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
    let output = tracing_subscriber::fmt::layer()
        .fmt_fields(fields)
        // Colour codes only for a terminal: piped or redirected logs stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
        // Through the console thread: a stderr that stops reading never blocks a log call.
        .with_writer(|| cli::console::LogWriter)
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init();
}

/// Size of the block [`raise_malloc_trim_threshold`] allocates and frees. glibc adjusts its
/// thresholds only for blocks up to 32 MiB *including* its chunk header, so a round 32 MiB is
/// just too big; 16 MiB makes the trim threshold 32 MiB.
const MALLOC_PRIMER: usize = 16 * 1024 * 1024;

/// Stops glibc from handing freed heap memory back to the kernel after every yamux frame.
///
/// rust-yamux allocates a fresh `Vec` for every frame it reads or writes, and rustls one per
/// record. With glibc's default 128 KiB trim threshold, freeing a 64 KiB frame shrinks the
/// thread arena's heap and the next frame faults the same pages in again: `expose bench`
/// counts about 30 times more minor page faults per GiB forwarded without this (see
/// docs/benchmarks.md, "Allocator"). glibc raises its mmap threshold to the size of any mmapped
/// block that is freed, and its trim threshold to twice that (mallopt(3), "dynamic mmap
/// threshold"), so allocating and freeing one 16 MiB block does what
/// `mallopt(M_TRIM_THRESHOLD)` would, without `unsafe` or a libc binding. The cost: up to
/// 32 MiB of freed heap may stay mapped. Other allocators ignore it.
///
/// This is a decision for the whole process, so the binary makes it; the library leaves the
/// allocator to the application that embeds it.
fn raise_malloc_trim_threshold() {
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        // By value through `black_box`: the optimiser may remove an allocation nobody uses.
        drop(std::hint::black_box(Vec::<u8>::with_capacity(
            MALLOC_PRIMER,
        )));
    }
}

fn main() -> ExitCode {
    raise_malloc_trim_threshold();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(frpc_args) = cli::frpc::invocation(&args) {
        // frpc's own lines go to stdout; the engine's warnings (say, the open-file limit
        // reached) still reach stderr.
        init_logging(&cli::args::OutputArgs::default(), LogAudience::Frpc);
        let _ = cli::nofile::raise();
        return cli::frpc::main(frpc_args);
    }
    let cli = match Cli::parse_args(args) {
        Ok(c) => c,
        Err(e) => {
            // clap exits 2 for usage errors and 0 for --help/--version.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli.output, LogAudience::Expose);
    // Each visitor holds a file descriptor: a soft limit of 256 would cap the tunnel long before
    // the hard limit does.
    match cli::nofile::raise() {
        Ok(Some(r)) => tracing::debug!(from = ?r.from, to = ?r.to, "raised the open-file limit"),
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %e, "could not raise the open-file limit"),
    }
    #[cfg(feature = "bench")]
    let bench = matches!(cli.command, Some(Command::Bench(_)));
    #[cfg(not(feature = "bench"))]
    let bench = false;
    let runtime = if bench {
        cli::runtime::multi_thread()
    } else {
        cli::runtime::client()
    };
    let runtime = match runtime {
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
            Some(Command::Udp(args)) => cli::selfhosted::udp(args, &cli.output).await,
            Some(Command::Stcp(args)) => cli::selfhosted::secret(args, false, &cli.output).await,
            Some(Command::Sudp(args)) => cli::selfhosted::secret(args, true, &cli.output).await,
            Some(Command::Visit(args)) => cli::selfhosted::visit(args, &cli.output).await,
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
            cli::console::err_essential(format!(
                "error: {}\n",
                escape_unsafe(&cli::error_text(&e))
            ));
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
