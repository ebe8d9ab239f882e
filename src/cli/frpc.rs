//! `expose frpc …`, or the binary run under the name `frpc`: Go frpc's command line over a
//! config file, with frpc's output lines and exit codes so scripts written for frpc keep working.
//!
//! frpc prints its errors on stdout and exits 1 for every failure, usage errors included; so
//! does this. Log lines have frpc's shape (`DATE TIME [I] [file:line] [run id] text`, times in
//! UTC) and go to stdout, where frpc's console log goes.

use super::console;
use super::frpc_admin;
use super::frpc_ctl;
use super::frpc_quick::{self, QuickArgs};
use super::run::{exit_on_second_interrupt, interrupted};
use clap::{ArgAction, Parser, Subcommand};
use expose::frp::{Client, Event, Phase, DEFAULT_FRP_VERSION};
use expose::frpc::{load, FrpcConfig, LoadOptions};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;

/// Ends the admin server with the client it serves.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// frpc's command line (cobra flags, persistent across subcommands).
#[derive(Debug, Parser)]
#[command(
    name = "frpc",
    about = "frpc is the client of frp (https://github.com/fatedier/frp)",
    disable_version_flag = true
)]
struct FrpcArgs {
    /// config file of frpc
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        default_value = "./frpc.ini"
    )]
    config: PathBuf,
    /// config directory, run one frpc service for each file in config directory
    #[arg(long = "config_dir", alias = "config-dir", global = true)]
    config_dir: Option<PathBuf>,
    /// version of frpc
    #[arg(short = 'v', long = "version", global = true)]
    version: bool,
    /// strict config parsing mode, unknown fields will cause an errors
    #[arg(
        long = "strict_config",
        alias = "strict-config",
        global = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true"
    )]
    strict_config: bool,
    /// allowed unsafe features, one or more of: TokenSourceExec
    #[arg(
        long = "allow-unsafe",
        alias = "allow_unsafe",
        global = true,
        value_delimiter = ','
    )]
    allow_unsafe: Vec<String>,
    #[command(subcommand)]
    command: Option<FrpcCommand>,
}

#[derive(Debug, Subcommand)]
enum FrpcCommand {
    /// Verify that the configures is valid
    Verify,
    /// Overview of all proxies status
    Status(AdminArgs),
    /// Stop the running frpc
    Stop(AdminArgs),
    /// Run frpc with a single tcp proxy
    Tcp(QuickArgs),
    /// Run frpc with a single http proxy
    Http(QuickArgs),
    /// Run frpc with a single https proxy
    Https(QuickArgs),
    /// frpc's other subcommands: recognised, not implemented yet.
    #[command(external_subcommand)]
    Other(Vec<OsString>),
}

/// Options of the admin-API subcommands.
#[derive(Debug, clap::Args)]
struct AdminArgs {
    /// Timeout for admin API calls
    #[arg(long = "api-timeout", alias = "api_timeout", default_value = "30s", value_parser = frpc_ctl::parse_duration)]
    api_timeout: Duration,
}

/// frpc's subcommands that this client does not have yet.
const NOT_YET: &[&str] = &["reload", "udp", "tcpmux", "stcp", "sudp", "xtcp", "nathole"];

/// The arguments for frpc mode: the binary was started as `frpc`, or as `expose frpc …`.
pub fn invocation(args: &[OsString]) -> Option<Vec<OsString>> {
    let argv0 = args.first().map(Path::new)?;
    let stem = argv0.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if stem == "frpc" {
        return Some(args[1..].to_vec());
    }
    match args.get(1).and_then(|a| a.to_str()) {
        Some("frpc") => Some(args[2..].to_vec()),
        _ => None,
    }
}

/// Runs frpc mode with `args` (without the program name).
pub fn main(args: Vec<OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from("frpc")).chain(args);
    let cli = match FrpcArgs::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // cobra prints usage errors as `Error: …` and exits 1.
            let _ = e.print();
            return ExitCode::from(1);
        }
    };
    if cli.version {
        println!("{DEFAULT_FRP_VERSION}");
        return ExitCode::SUCCESS;
    }
    let code = match &cli.command {
        Some(FrpcCommand::Verify) => verify(&cli),
        Some(FrpcCommand::Status(a)) => admin(&cli, frpc_ctl::Call::Status, a.api_timeout),
        Some(FrpcCommand::Stop(a)) => admin(&cli, frpc_ctl::Call::Stop, a.api_timeout),
        Some(FrpcCommand::Tcp(a)) => quick("tcp", a),
        Some(FrpcCommand::Http(a)) => quick("http", a),
        Some(FrpcCommand::Https(a)) => quick("https", a),
        Some(FrpcCommand::Other(words)) => other(words),
        None => match &cli.config_dir {
            Some(dir) => run_dir(&cli, dir),
            None => run(&cli),
        },
    };
    console::flush(Duration::from_secs(5));
    ExitCode::from(code)
}

/// frpc writes results and errors to stdout.
fn say(text: String) {
    console::out_essential(format!("{text}\n"));
}

fn options(cli: &FrpcArgs) -> LoadOptions {
    LoadOptions::new(cli.strict_config)
}

fn load_or_say(cli: &FrpcArgs) -> Option<FrpcConfig> {
    match load(&cli.config, &options(cli)) {
        Ok(c) => {
            for w in &c.warnings {
                say(format!("WARNING: {w}"));
            }
            Some(c)
        }
        Err(e) => {
            say(e.to_string());
            None
        }
    }
}

/// `frpc verify`: frpc's success line and exit 0, or the first error and exit 1.
fn verify(cli: &FrpcArgs) -> u8 {
    if cli.config.as_os_str().is_empty() {
        say("frpc: the configuration file is not specified".into());
        return 0;
    }
    match load_or_say(cli) {
        Some(_) => {
            say(format!(
                "frpc: the configuration file {} syntax is ok",
                cli.config.display()
            ));
            0
        }
        None => 1,
    }
}

/// `frpc status|stop`: a call to the admin API named by the config file's `webServer`.
fn admin(cli: &FrpcArgs, call: frpc_ctl::Call, timeout: Duration) -> u8 {
    let loaded = match load(&cli.config, &options(cli)) {
        Ok(l) => l,
        Err(e) => {
            say(e.to_string());
            return 1;
        }
    };
    if loaded.web_server.port == 0 {
        say("web server port should be set if you want to use this feature".into());
        return 1;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            say(format!("cannot start the async runtime: {e}"));
            return 1;
        }
    };
    let result = runtime.block_on(frpc_ctl::run(&loaded.web_server, call, timeout));
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(text) => {
            console::out_essential(text);
            0
        }
        Err(e) => {
            say(e);
            1
        }
    }
}

fn other(words: &[OsString]) -> u8 {
    let name = words.first().and_then(|w| w.to_str()).unwrap_or("");
    if NOT_YET.contains(&name) {
        say(format!("frpc {name} is not supported yet"));
    } else {
        say(format!("Error: unknown command \"{name}\" for \"frpc\""));
    }
    1
}

/// The level of frpc's log lines that are shown (`log.level`).
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Level {
    Info,
    Warn,
    Error,
}

struct Log {
    min: Level,
    run_id: String,
}

impl Log {
    fn line(&self, level: Level, caller: &str, text: &str) {
        if level < self.min {
            return;
        }
        let tag = match level {
            Level::Info => "I",
            Level::Warn => "W",
            Level::Error => "E",
        };
        let prefix = if self.run_id.is_empty() {
            String::new()
        } else {
            format!("[{}] ", self.run_id)
        };
        let text = expose::text::escape_unsafe(text);
        console::out(format!(
            "{} [{tag}] [{caller}] {prefix}{text}\n",
            timestamp()
        ));
    }
}

/// `frpc -c FILE`: runs every proxy of the file until Ctrl-C, SIGTERM or a fatal error.
fn run(cli: &FrpcArgs) -> u8 {
    let Some(loaded) = load_or_say(cli) else {
        return 1;
    };
    start(loaded, cli.config.clone())
}

/// Runs one loaded config until it ends; `path` is empty without a config file.
fn start(loaded: FrpcConfig, path: PathBuf) -> u8 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            say(format!("cannot start the async runtime: {e}"));
            return 1;
        }
    };
    let code = runtime.block_on(serve(loaded, path));
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

/// `frpc tcp|http|https FLAGS…`: one proxy described by flags, no config file.
fn quick(kind: &str, args: &QuickArgs) -> u8 {
    match frpc_quick::config(kind, args) {
        Ok(loaded) => start(loaded, PathBuf::new()),
        Err(e) => {
            say(e.to_string());
            1
        }
    }
}

/// `frpc --config_dir DIR`: one client per file under DIR, all at once; as in frpc, a file that
/// fails is reported by name only and the exit status is 0 once all have ended.
fn run_dir(cli: &FrpcArgs, dir: &Path) -> u8 {
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            say(format!("cannot start the async runtime: {e}"));
            return 1;
        }
    };
    let opts = options(cli);
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for file in files {
            let failed = format!("frpc service error for config file [{}]", file.display());
            match load(&file, &opts) {
                Ok(loaded) => {
                    tasks.spawn(async move {
                        if serve(loaded, file).await != 0 {
                            say(failed);
                        }
                    });
                }
                Err(_) => say(failed),
            }
        }
        while tasks.join_next().await.is_some() {}
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
    0
}

/// Every file under `dir`, recursively (unreadable entries are skipped, as frpc's walk does).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out),
            Ok(_) => out.push(path),
            Err(_) => {}
        }
    }
}

async fn serve(loaded: FrpcConfig, path: PathBuf) -> u8 {
    let min = match loaded.log_level.as_str() {
        "warn" => Level::Warn,
        "error" => Level::Error,
        _ => Level::Info,
    };
    let mut log = Log {
        min,
        run_id: String::new(),
    };
    let file = path.display().to_string();
    if !file.is_empty() {
        log.line(
            Level::Info,
            "sub/root.go:159",
            &format!("start frpc service for config file [{file}]"),
        );
    }
    let cfg = loaded.client;
    let user = cfg.user.clone();
    let wire = |name: &str| {
        if user.is_empty() {
            name.to_owned()
        } else {
            format!("{user}.{name}")
        }
    };
    let names: Vec<String> = cfg.proxies.iter().map(|p| wire(&p.name)).collect();
    let admin_config = cfg.clone();
    let mut client = match Client::start(cfg) {
        Ok(c) => c,
        Err(e) => {
            say(e.to_string());
            return 1;
        }
    };
    let mut events = client.events();
    let mut state = client.state();
    let stop = Arc::new(Notify::new());
    let _admin = if loaded.web_server.port > 0 {
        let listener = match frpc_admin::bind(&loaded.web_server).await {
            Ok(l) => l,
            Err(e) => {
                say(format!(
                    "listen tcp {}:{}: {e}",
                    loaded.web_server.addr, loaded.web_server.port
                ));
                let _ = client.close().await;
                return 1;
            }
        };
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        log.line(
            Level::Info,
            "client/service.go:210",
            &format!("admin server listen on {addr}"),
        );
        let admin = Arc::new(frpc_admin::Admin {
            web: loaded.web_server.clone(),
            config: admin_config,
            file: path.clone(),
            state: client.state(),
            stop: stop.clone(),
        });
        Some(AbortOnDrop(tokio::spawn(frpc_admin::serve(
            listener, admin,
        ))))
    } else {
        None
    };
    let mut progress = Progress::default();
    let interrupt = interrupted();
    tokio::pin!(interrupt);
    let code = loop {
        if let Phase::Stopped(e) = &state.borrow_and_update().phase {
            let e = e.clone().unwrap_or(expose::frp::Error::Stopped);
            if progress.logged_in {
                say(e.to_string());
            } else {
                log.line(
                    Level::Warn,
                    "client/service.go:334",
                    &format!("connect to server error: {e}"),
                );
                say(format!("login to the server failed: {e}. With loginFailExit enabled, no additional retries will be attempted"));
            }
            break 1;
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => on_event(&ev, &mut log, &mut progress, &names, &wire),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => {}
            },
            changed = state.changed() => {
                if changed.is_err() {
                    break 1;
                }
            }
            _ = stop.notified() => {
                let _ = client.close().await;
                break 0;
            }
            _ = &mut interrupt => {
                exit_on_second_interrupt();
                let _ = client.close().await;
                break 0;
            }
        }
    };
    if !file.is_empty() {
        log.line(
            Level::Info,
            "sub/root.go:160",
            &format!("frpc service for config file [{file}] stopped"),
        );
    }
    code
}

/// What the log loop has seen so far.
#[derive(Default)]
struct Progress {
    /// A login succeeded at least once.
    logged_in: bool,
    /// The current session is logged in.
    online: bool,
    /// Connection attempts so far.
    attempts: u32,
}

fn on_event(
    ev: &Event,
    log: &mut Log,
    progress: &mut Progress,
    names: &[String],
    wire: &dyn Fn(&str) -> String,
) {
    match ev {
        Event::LoggedIn { run_id } => {
            progress.logged_in = true;
            progress.online = true;
            log.run_id = run_id.clone();
            log.line(
                Level::Info,
                "client/service.go:323",
                &format!("login to server success, get run id [{run_id}]"),
            );
            log.line(
                Level::Info,
                "proxy/proxy_manager.go:180",
                &format!("proxy added: [{}]", names.join(" ")),
            );
        }
        Event::ProxyReady(r) => log.line(
            Level::Info,
            "client/control.go:172",
            &format!("[{}] start proxy success", wire(&r.name)),
        ),
        Event::ProxyFailed { name, reason } => log.line(
            Level::Warn,
            "client/control.go:170",
            &format!("[{}] start error: {reason}", wire(name)),
        ),
        Event::Connecting { .. } => {
            // frpc announces every attempt but the first.
            if progress.attempts > 0 {
                log.line(
                    Level::Info,
                    "client/service.go:331",
                    "try to connect to server...",
                );
            }
            progress.attempts += 1;
        }
        Event::Reconnecting { cause, .. } => {
            if std::mem::take(&mut progress.online) {
                log.line(
                    Level::Warn,
                    "client/control.go:231",
                    &format!("control is closed: {cause}"),
                );
            } else {
                log.line(
                    Level::Warn,
                    "client/service.go:334",
                    &format!("connect to server error: {cause}"),
                );
            }
        }
        Event::LocalUnreachable {
            name,
            local_addr,
            error,
            suppressed,
        } => {
            let more = if *suppressed > 0 {
                format!(" ({suppressed} more)")
            } else {
                String::new()
            };
            log.line(
                Level::Warn,
                "proxy/proxy.go:200",
                &format!(
                    "[{}] connect to local service [{local_addr}] error: {error}{more}",
                    wire(name)
                ),
            );
        }
        _ => {}
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC, frp's log time layout.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn frpc_mode_by_name_or_subcommand() {
        assert_eq!(
            invocation(&os(&["/usr/bin/frpc", "-c", "x"])),
            Some(os(&["-c", "x"]))
        );
        assert_eq!(
            invocation(&os(&["expose", "frpc", "verify"])),
            Some(os(&["verify"]))
        );
        assert_eq!(invocation(&os(&["expose", "8080"])), None);
        assert_eq!(invocation(&os(&["frpc-helper"])), None);
    }

    #[test]
    fn frpc_flags() {
        use clap::CommandFactory;
        FrpcArgs::command().debug_assert();
        let c = FrpcArgs::try_parse_from(["frpc", "verify", "-c", "a.toml"]).unwrap();
        assert!(matches!(c.command, Some(FrpcCommand::Verify)));
        assert_eq!(c.config, PathBuf::from("a.toml"));
        assert!(c.strict_config);
        let c = FrpcArgs::try_parse_from(["frpc", "--strict_config=false"]).unwrap();
        assert!(!c.strict_config);
        assert_eq!(c.config, PathBuf::from("./frpc.ini"));
        let c = FrpcArgs::try_parse_from(["frpc", "--strict-config", "-c=b.yaml"]).unwrap();
        assert!(c.strict_config);
        assert_eq!(c.config, PathBuf::from("b.yaml"));
        let c = FrpcArgs::try_parse_from(["frpc", "reload", "-c", "x"]).unwrap();
        assert!(matches!(c.command, Some(FrpcCommand::Other(_))));
        assert!(FrpcArgs::try_parse_from(["frpc", "-v"]).unwrap().version);
    }

    #[test]
    fn timestamp_shape() {
        let t = timestamp();
        assert_eq!(t.len(), 23, "{t}");
        assert_eq!(&t[4..5], "-");
        assert_eq!(&t[10..11], " ");
        assert_eq!(&t[19..20], ".");
    }
}
