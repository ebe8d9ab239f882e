//! `expose http|tcp|udp|stcp|sudp|visit`: a self-hosted frps, no API.

use super::args::{HttpArgs, OutputArgs, SecretArgs, ServerArgs, TcpArgs, VisitArgs};
use super::output::{Banner, Reporter};
use super::run::{self, Ended};
use anyhow::Context as _;
use expose::frp::{
    parse_fingerprint, Client, ClientConfig, Event, HttpOptions, ProxyConfig, ProxyKind, ProxyUrl,
    SecretOptions, TlsConfig, TransportProtocol, VisitorConfig, VisitorKind, WireProtocol,
};
use expose::secret::Secret;
use std::time::Duration;

/// How long `expose http|tcp` waits for the first login and registration.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn client_config(s: &ServerArgs) -> anyhow::Result<ClientConfig> {
    let (host, port) = s.server.clone();
    let mut cfg = ClientConfig::new(host, port, Secret::new(s.token.clone()));
    cfg.user = s.user.clone();
    cfg.metas = s
        .metas
        .iter()
        .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
        .collect();
    cfg.tcp_mux = !s.no_mux;
    cfg.wire_protocol = WireProtocol::parse(&s.wire).unwrap_or_default();
    let mut tls = TlsConfig::default()
        .enable(!s.no_tls)
        .custom_first_byte(s.tls_first_byte);
    if let Some(ca) = &s.tls_ca {
        tls = tls.ca_file(ca.clone());
    }
    if let Some(hex) = &s.tls_pin {
        let pin =
            parse_fingerprint(hex).context("--tls-pin must be 64 hex digits (colons allowed)")?;
        tls = tls.pinned_sha256(pin);
    }
    cfg.tls = tls;
    cfg.transport.protocol = TransportProtocol::from_name(&s.protocol)
        .with_context(|| format!("--protocol {:?} is not supported", s.protocol))?;
    if let Some(url) = &s.proxy_url {
        cfg.transport.proxy_url =
            Some(ProxyUrl::parse(url).map_err(|e| anyhow::anyhow!("--proxy-url: {e}"))?);
    }
    Ok(cfg)
}

fn with_flags(mut p: ProxyConfig, s: &ServerArgs) -> ProxyConfig {
    p.local_host = s.host.clone();
    p.use_encryption = s.encrypt;
    p.use_compression = s.compress;
    p
}

/// `expose http PORT --server … (--subdomain S | --domain D)`.
pub async fn http(args: HttpArgs, out: &OutputArgs) -> anyhow::Result<()> {
    let mut cfg = client_config(&args.server)?;
    let name = args
        .server
        .name
        .clone()
        .unwrap_or_else(|| format!("http-{}", args.port));
    let mut http = HttpOptions::default();
    if let Some(subdomain) = &args.subdomain {
        http = http.subdomain(subdomain.clone());
    }
    for domain in &args.domains {
        http = http.custom_domain(domain.clone());
    }
    if let Some(host) = &args.host_header {
        http = http.host_header_rewrite(host.clone());
    }
    if let Some((user, password)) = &args.basic_auth {
        http = http.basic_auth(user.clone(), Secret::new(password.clone()));
    }
    let proxy = ProxyConfig::new(name, args.port, ProxyKind::Http(http));
    let mut proxy = with_flags(proxy, &args.server);
    proxy.request_log = true;
    cfg.proxies.push(proxy);
    let inspector = match super::inspect::start(&args.inspect, true).await {
        Ok(running) => running,
        Err(warning) => {
            Reporter::new(out).note(&format!("warning: {warning}"));
            Default::default()
        }
    };
    cfg.capture = inspector.store();
    serve_with(cfg, out, inspector).await
}

/// `expose tcp PORT --server … [--remote-port N]`.
pub async fn tcp(args: TcpArgs, out: &OutputArgs) -> anyhow::Result<()> {
    let mut cfg = client_config(&args.server)?;
    let name = args
        .server
        .name
        .clone()
        .unwrap_or_else(|| format!("tcp-{}", args.port));
    let proxy = ProxyConfig::tcp(name, args.port, args.remote_port);
    cfg.proxies.push(with_flags(proxy, &args.server));
    serve(cfg, out).await
}

/// `expose udp PORT --server … [--remote-port N]`.
pub async fn udp(args: TcpArgs, out: &OutputArgs) -> anyhow::Result<()> {
    let mut cfg = client_config(&args.server)?;
    let name = args
        .server
        .name
        .clone()
        .unwrap_or_else(|| format!("udp-{}", args.port));
    let proxy = ProxyConfig::udp(name, args.port, args.remote_port);
    cfg.proxies.push(with_flags(proxy, &args.server));
    serve(cfg, out).await
}

/// `expose stcp|sudp PORT --server … --sk KEY [--allow-user U]…`.
pub async fn secret(args: SecretArgs, udp: bool, out: &OutputArgs) -> anyhow::Result<()> {
    let mut cfg = client_config(&args.server)?;
    let kind_name = if udp { "sudp" } else { "stcp" };
    let name = args
        .server
        .name
        .clone()
        .unwrap_or_else(|| format!("{kind_name}-{}", args.port));
    let mut options = SecretOptions::new(Secret::new(args.secret_key.clone()));
    options.allow_users = args.allow_users.clone();
    let kind = if udp {
        ProxyKind::Sudp(options)
    } else {
        ProxyKind::Stcp(options)
    };
    let proxy = ProxyConfig::new(name, args.port, kind);
    cfg.proxies.push(with_flags(proxy, &args.server));
    serve(cfg, out).await
}

/// `expose visit NAME --server … --sk KEY --bind-port P [--udp]`.
pub async fn visit(args: VisitArgs, out: &OutputArgs) -> anyhow::Result<()> {
    let mut cfg = client_config(&args.server)?;
    let kind = if args.udp {
        VisitorKind::Sudp
    } else {
        VisitorKind::Stcp
    };
    let name = args
        .server
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-visitor", args.server_name));
    let mut visitor = VisitorConfig::new(
        name,
        kind,
        args.server_name.clone(),
        Secret::new(args.secret_key.clone()),
        i32::from(args.bind_port),
    )
    .bind_addr(args.bind_addr.clone())
    .use_encryption(args.server.encrypt)
    .use_compression(args.server.compress);
    if let Some(user) = &args.server_user {
        visitor = visitor.server_user(user.clone());
    }
    cfg.visitors.push(visitor);
    let mut reporter = Reporter::new(out);
    reporter.note(&format!(
        "connecting to {}:{} …",
        cfg.server_host, cfg.server_port
    ));
    let client = Client::start(cfg)?;
    let mut events = client.events();
    let bound = async {
        loop {
            match events.recv().await {
                Ok(Event::VisitorStarted { bind_addr, .. }) => return Ok(bind_addr),
                Ok(Event::VisitorFailed { error, .. }) => return Err(error),
                Ok(Event::Stopped { cause }) => return Err(cause.unwrap_or_default()),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return Err("client stopped".into()),
            }
        }
    };
    let bound = tokio::select! {
        r = tokio::time::timeout(START_TIMEOUT, bound) => r,
        _ = run::interrupted() => {
            client.shutdown().await.ok();
            reporter.closed("stopped", true);
            return Ok(());
        }
    };
    let addr = match bound {
        Ok(Ok(addr)) => addr,
        Ok(Err(e)) => {
            client.shutdown().await.ok();
            anyhow::bail!("the visitor did not start: {e}");
        }
        Err(_) => {
            client.shutdown().await.ok();
            anyhow::bail!(
                "the visitor did not start within {}s",
                START_TIMEOUT.as_secs()
            );
        }
    };
    let local = addr.map(|a| a.to_string()).unwrap_or_default();
    let events = client.events();
    run::show_ready(
        &mut reporter,
        &Banner {
            public: local.clone(),
            local: args.server_name.clone(),
            tunnel_id: None,
            expires_at: None,
            auth: None,
            inspector: None,
        },
    );
    finish(client, events, reporter).await
}

async fn serve(cfg: ClientConfig, out: &OutputArgs) -> anyhow::Result<()> {
    serve_with(cfg, out, Default::default()).await
}

async fn serve_with(
    cfg: ClientConfig,
    out: &OutputArgs,
    inspector: super::inspect::Running,
) -> anyhow::Result<()> {
    let mut reporter = Reporter::new(out);
    let proxy = cfg.proxies[0].clone();
    let server_host = cfg.server_host.clone();
    if !proxy.kind.is_udp() {
        run::probe_local(&proxy.local_host, proxy.local_port, &mut reporter).await;
    }
    reporter.note(&format!(
        "connecting to {}:{} …",
        cfg.server_host, cfg.server_port
    ));
    let client = Client::start(cfg)?;
    inspector.set_client(client.handle());
    let Some(ready) = run::wait_ready(&client, START_TIMEOUT).await? else {
        reporter.note("closing…");
        run::exit_on_second_interrupt();
        client.shutdown().await.ok();
        reporter.closed("stopped", true);
        return Ok(());
    };
    let first = &ready[0];
    let public = match (&first.url, first.remote_port) {
        (Some(url), _) => url.clone(),
        (None, Some(port)) if proxy.kind.is_udp() => format!("udp://{server_host}:{port}"),
        (None, Some(port)) => format!("{server_host}:{port}"),
        (None, None) if first.remote_addr.is_empty() => format!(
            "{} {} (visitors only: expose visit {} --sk …)",
            proxy.kind.type_name(),
            first.name,
            first.name
        ),
        (None, None) => first.remote_addr.clone(),
    };
    let events = client.events();
    run::show_ready(
        &mut reporter,
        &Banner {
            public,
            local: proxy.local_addr(),
            tunnel_id: None,
            expires_at: None,
            auth: None,
            inspector: inspector.url(),
        },
    );
    finish(client, events, reporter).await
}

/// Follows a running client until it stops or is interrupted.
async fn finish(
    mut client: Client,
    events: tokio::sync::broadcast::Receiver<Event>,
    mut reporter: Reporter,
) -> anyhow::Result<()> {
    match run::follow(&mut client, events, &mut reporter, None).await {
        Ended::Interrupted | Ended::Expired => {
            reporter.note("closing…");
            run::exit_on_second_interrupt();
            client.shutdown().await.ok();
            reporter.closed("stopped", true);
            Ok(())
        }
        Ended::Failed(e) => {
            reporter.closed(&e.to_string(), false);
            Err(e).context("the tunnel stopped")
        }
    }
}
