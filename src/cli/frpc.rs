//! `expose frpc …`, or the binary run under the name `frpc`: Go frpc's command line over a
//! config file, with frpc's output lines and exit codes so scripts written for frpc keep working.
//!
//! frpc prints its errors on stdout and exits 1 for every failure, usage errors included; so
//! does this. Log lines have frpc's shape (`DATE TIME [I] [file:line] [run id] text`, times in
//! UTC) and go to stdout, where frpc's console log goes.

use super::console;
use super::frpc_admin;
use super::frpc_ctl;
use super::frpc_events::{on_event, Names, Progress};
use super::frpc_log::{Level, Log};
use super::frpc_logfile::{self, LogFile};
use super::frpc_quick::{self, QuickArgs, VisitorArgs};
use super::run::{exit_on_second_interrupt, interrupted};
use clap::{ArgAction, Parser, Subcommand};
use expose::frp::{Client, Event, Phase, DEFAULT_FRP_VERSION};
use expose::frpc::{load, FrpcConfig, LoadOptions};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
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
    /// expose: serve the local inspector for http proxies on ADDR (off unless given)
    #[arg(long = "inspect", global = true, value_name = "ADDR")]
    inspect: Option<std::net::SocketAddr>,
    /// expose: show secret header values in the inspector
    #[arg(long = "inspect-secrets", global = true)]
    inspect_secrets: bool,
    #[command(subcommand)]
    command: Option<FrpcCommand>,
}

/// The inspector flags, set once from the command line: frpc mode starts no inspector unless
/// `--inspect` asks, so a drop-in frpc prints and listens on nothing new.
static INSPECT: std::sync::OnceLock<super::inspect::InspectArgs> = std::sync::OnceLock::new();

#[derive(Debug, Subcommand)]
enum FrpcCommand {
    /// Verify that the configures is valid
    Verify,
    /// Hot-Reload frpc configuration
    Reload(AdminArgs),
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
    /// Run frpc with a single tcpmux proxy
    Tcpmux(QuickArgs),
    /// Run frpc with a single udp proxy
    Udp(QuickArgs),
    /// Run frpc with a single stcp proxy
    Stcp(SecretArgs),
    /// Run frpc with a single sudp proxy
    Sudp(SecretArgs),
    /// Run frpc with a single xtcp proxy
    Xtcp(SecretArgs),
    /// frpc's other subcommands: recognised, not implemented yet.
    #[command(external_subcommand)]
    Other(Vec<OsString>),
}

/// `frpc stcp|sudp|xtcp`: a proxy, or with `visitor` a visitor of that type.
#[derive(Debug, clap::Args)]
struct SecretArgs {
    #[command(flatten)]
    args: QuickArgs,
    #[command(subcommand)]
    visitor: Option<VisitorCommand>,
}

#[derive(Debug, Subcommand)]
enum VisitorCommand {
    /// Run frpc with a single visitor
    Visitor(VisitorArgs),
}

/// Options of the admin-API subcommands.
#[derive(Debug, clap::Args)]
struct AdminArgs {
    /// Timeout for admin API calls
    #[arg(long = "api-timeout", alias = "api_timeout", default_value = "30s", value_parser = frpc_ctl::parse_duration)]
    api_timeout: Duration,
}

/// frpc's subcommands that this client does not have yet.
const NOT_YET: &[&str] = &["nathole"];

/// The arguments for frpc mode: the binary was started as `frpc`, or as `expose frpc …`, or
/// with an frpc command line that means nothing to `expose` itself (`expose -c FILE`,
/// `expose --config_dir DIR`, `expose verify -c FILE`), so that a harness handed this binary
/// under its own name as "frpc" still gets frpc.
pub fn invocation(args: &[OsString]) -> Option<Vec<OsString>> {
    let argv0 = args.first().map(Path::new)?;
    let stem = argv0.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if stem == "frpc" {
        return Some(args[1..].to_vec());
    }
    match args.get(1).and_then(|a| a.to_str()) {
        Some("frpc") => Some(args[2..].to_vec()),
        Some(first) if frpc_only(first, &args[2..]) => Some(args[1..].to_vec()),
        _ => None,
    }
}

/// A command line only frpc has: its config flags first (`-c`, `--config`, `--config_dir`,
/// with `_` or `-`, joined to their value or not); `verify`, `reload`, or a proxy type expose
/// has no command for; `stcp|sudp|xtcp visitor`; or a proxy type with one of frpc's
/// one-letter flags (`frpc tcp -s HOST -P PORT -l 22 …`), none of which `expose tcp` has.
fn frpc_only(first: &str, rest: &[OsString]) -> bool {
    const SHORT: &[&str] = &["-s", "-P", "-p", "-t", "-u", "-l", "-r", "-n", "-i", "-d"];
    let flag = first.split_once('=').map_or(first, |(name, _)| name);
    let short_flag = || {
        rest.iter()
            .filter_map(|a| a.to_str())
            .any(|a| a.get(..2).is_some_and(|head| SHORT.contains(&head)) && !a.starts_with("--"))
    };
    let second = rest.first().and_then(|a| a.to_str());
    match first {
        "verify" | "reload" | "https" | "tcpmux" | "xtcp" => true,
        "stcp" | "sudp" if second == Some("visitor") => true,
        "tcp" | "udp" | "http" | "stcp" | "sudp" => short_flag(),
        _ => {
            first.starts_with("-c") || matches!(flag, "--config" | "--config_dir" | "--config-dir")
        }
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
    let _ = INSPECT.set(super::inspect::InspectArgs {
        inspect: cli.inspect,
        no_inspect: false,
        inspect_secrets: cli.inspect_secrets,
    });
    let code = match &cli.command {
        Some(FrpcCommand::Verify) => verify(&cli),
        Some(FrpcCommand::Reload(a)) => admin(
            &cli,
            frpc_ctl::Call::Reload {
                strict: cli.strict_config,
            },
            a.api_timeout,
        ),
        Some(FrpcCommand::Status(a)) => admin(&cli, frpc_ctl::Call::Status, a.api_timeout),
        Some(FrpcCommand::Stop(a)) => admin(&cli, frpc_ctl::Call::Stop, a.api_timeout),
        Some(FrpcCommand::Tcp(a)) => quick("tcp", a),
        Some(FrpcCommand::Http(a)) => quick("http", a),
        Some(FrpcCommand::Https(a)) => quick("https", a),
        Some(FrpcCommand::Tcpmux(a)) => quick("tcpmux", a),
        Some(FrpcCommand::Udp(a)) => quick("udp", a),
        Some(FrpcCommand::Stcp(a)) => secret("stcp", a),
        Some(FrpcCommand::Sudp(a)) => secret("sudp", a),
        Some(FrpcCommand::Xtcp(a)) => secret("xtcp", a),
        Some(FrpcCommand::Other(words)) => other(words),
        None => match &cli.config_dir {
            Some(dir) => run_dir(&cli, dir),
            None => run(&cli),
        },
    };
    frpc_logfile::flush_all(Duration::from_secs(5));
    console::flush(Duration::from_secs(5));
    ExitCode::from(code)
}

/// frpc's line for a config in the INI format.
const LEGACY_WARNING: &str = "WARNING: ini format is deprecated and the support will be removed in the future, please use yaml/json/toml format instead!";

/// frpc writes results and errors to stdout.
fn say(text: String) {
    console::out_essential(format!("{text}\n"));
}

fn options(cli: &FrpcArgs) -> LoadOptions {
    LoadOptions::new(cli.strict_config).allow_unsafe(cli.allow_unsafe.clone())
}

/// Loads the file, printing frpc's warnings; `running` adds the INI deprecation line that frpc
/// prints when it runs a legacy file (not when it verifies one).
fn load_or_say(cli: &FrpcArgs, running: bool) -> Option<FrpcConfig> {
    match load(&cli.config, &options(cli)) {
        Ok(c) => {
            if running && c.legacy_ini {
                say(LEGACY_WARNING.into());
            }
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
    match load_or_say(cli, false) {
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

/// `frpc reload|status|stop`: a call to the admin API named by the config file's `webServer`.
fn admin(cli: &FrpcArgs, call: frpc_ctl::Call, timeout: Duration) -> u8 {
    // frpc only parses the file here (for webServer); it does not check unsafe features.
    let opts = options(cli).allow_unsafe(vec![expose::frpc::TOKEN_SOURCE_EXEC.into()]);
    let loaded = match load(&cli.config, &opts) {
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
    let runtime = match super::runtime::client() {
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

/// `frpc -c FILE`: runs every proxy of the file until Ctrl-C, SIGTERM or a fatal error.
fn run(cli: &FrpcArgs) -> u8 {
    let Some(loaded) = load_or_say(cli, true) else {
        return 1;
    };
    start(loaded, cli.config.clone(), cli.allow_unsafe.clone())
}

/// Runs one loaded config until it ends; `path` is empty without a config file.
fn start(loaded: FrpcConfig, path: PathBuf, allow_unsafe: Vec<String>) -> u8 {
    let runtime = match super::runtime::client() {
        Ok(rt) => rt,
        Err(e) => {
            say(format!("cannot start the async runtime: {e}"));
            return 1;
        }
    };
    let code = runtime.block_on(serve(loaded, path, allow_unsafe));
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

/// `frpc tcp|http|https FLAGS…`: one proxy described by flags, no config file.
fn quick(kind: &str, args: &QuickArgs) -> u8 {
    match frpc_quick::config(kind, args) {
        Ok(loaded) => start(loaded, PathBuf::new(), Vec::new()),
        Err(e) => {
            say(e.to_string());
            1
        }
    }
}

/// `frpc stcp|sudp|xtcp [visitor] FLAGS…`: one proxy or one visitor described by flags.
fn secret(kind: &str, cmd: &SecretArgs) -> u8 {
    let loaded = match &cmd.visitor {
        None => frpc_quick::config(kind, &cmd.args),
        Some(VisitorCommand::Visitor(v)) => frpc_quick::visitor_config(kind, &cmd.args, v),
    };
    match loaded {
        Ok(loaded) => start(loaded, PathBuf::new(), Vec::new()),
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
    let runtime = match super::runtime::client() {
        Ok(rt) => rt,
        Err(e) => {
            say(format!("cannot start the async runtime: {e}"));
            return 1;
        }
    };
    let opts = options(cli);
    let allow_unsafe = cli.allow_unsafe.clone();
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for file in files {
            let failed = format!("frpc service error for config file [{}]", file.display());
            match load(&file, &opts) {
                Ok(loaded) => {
                    if loaded.legacy_ini {
                        say(LEGACY_WARNING.into());
                    }
                    let allow_unsafe = allow_unsafe.clone();
                    tasks.spawn(async move {
                        if serve(loaded, file, allow_unsafe).await != 0 {
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

async fn serve(loaded: FrpcConfig, path: PathBuf, allow_unsafe: Vec<String>) -> u8 {
    let min = match loaded.log_level.as_str() {
        "warn" => Level::Warn,
        "error" => Level::Error,
        _ => Level::Info,
    };
    // frpc's log.to: its log lines go to the file; what it prints itself stays on the console.
    let log_file = if loaded.log_to == "console" {
        None
    } else {
        LogFile::open(Path::new(&loaded.log_to), loaded.log_max_days)
    };
    let mut log = Log {
        min,
        run_id: String::new(),
        file: log_file.clone(),
    };
    let file = path.display().to_string();
    if !file.is_empty() {
        log.line(
            Level::Info,
            "sub/root.go:159",
            &format!("start frpc service for config file [{file}]"),
        );
    }
    // frpc reads auth.tokenSource when its service is created, after announcing the file.
    let resolved = if loaded.token_source.is_some() {
        // It may run a program: off the async threads.
        tokio::task::spawn_blocking(move || {
            let mut loaded = loaded;
            loaded.resolve_token().map(|()| loaded)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    } else {
        Ok(loaded)
    };
    let loaded = match resolved {
        Ok(l) => l,
        Err(e) => {
            if !file.is_empty() {
                log.line(
                    Level::Info,
                    "sub/root.go:160",
                    &format!("frpc service for config file [{file}] stopped"),
                );
            }
            say(e.to_string());
            return 1;
        }
    };
    let mut cfg = loaded.client;
    let inspector = match INSPECT.get() {
        Some(args) => super::inspect::start(args, false)
            .await
            .unwrap_or_else(|e| {
                log.line(Level::Warn, "expose/inspect", &e);
                Default::default()
            }),
        None => Default::default(),
    };
    cfg.capture = inspector.store();
    if let Some(url) = inspector.url() {
        log.line(
            Level::Info,
            "expose/inspect",
            &format!("inspector listen on {url}"),
        );
    }
    let user = cfg.user.clone();
    let wire = |name: &str| {
        if user.is_empty() {
            name.to_owned()
        } else {
            format!("{user}.{name}")
        }
    };
    let mut names = Names {
        proxies: cfg.proxies.iter().map(|p| wire(&p.name)).collect(),
        visitors: cfg.visitors.iter().map(|v| wire(&v.name)).collect(),
    };
    let admin_config = cfg.clone();
    let mut client = match Client::start(cfg) {
        Ok(c) => c,
        Err(e) => {
            say(e.to_string());
            return 1;
        }
    };
    inspector.set_client(client.handle());
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
        let state = client.state();
        let log_fn: frpc_admin::LogFn = Arc::new(move |l: frpc_admin::Line| {
            let run_id = if l.session {
                state.borrow().run_id.clone().unwrap_or_default()
            } else {
                String::new()
            };
            let level = if l.warn { Level::Warn } else { Level::Info };
            let file = log_file.clone();
            Log { min, run_id, file }.line(level, l.caller, &l.text);
        });
        let admin = Arc::new(frpc_admin::Admin {
            web: loaded.web_server.clone(),
            config: admin_config,
            file: path.clone(),
            state: client.state(),
            stop: stop.clone(),
            client: client.handle(),
            allow_unsafe,
            log: log_fn,
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
                Ok(Event::ProxiesUpdated { .. }) => {
                    // The admin API logged the change; a later login announces the new set.
                    names.proxies = client.proxies().iter().map(|p| wire(&p.name)).collect();
                }
                Ok(Event::VisitorsUpdated { .. }) => {
                    names.visitors = client.visitors().iter().map(|v| wire(&v.name)).collect();
                }
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

#[cfg(test)]
mod tests;
