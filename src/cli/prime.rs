//! `expose <PORT>`, `expose list`, `expose status`, `expose stop`: Prime's hosted tunnels.

use super::args::{ListArgs, OutputArgs, PrimeTunnelArgs, StopArgs};
use super::output::{clean, Banner, Reporter};
use super::run::{self, Ended, Expired};
use anyhow::Context as _;
use expose::frp::Event;
use expose::prime::{BulkDeleteRequest, ListCut, ListQuery, PrimeClient, PrimeConfig, TunnelInfo};
use expose::{Tunnel, TunnelError};
use serde_json::json;
use std::time::SystemTime;
use tokio::sync::broadcast;

fn api() -> anyhow::Result<PrimeClient> {
    let config = PrimeConfig::load()?;
    Ok(PrimeClient::new(config)?)
}

/// `expose <PORT>`: create a tunnel, serve until Ctrl-C or expiry, then clean up.
pub async fn expose_port(port: u16, args: PrimeTunnelArgs, out: &OutputArgs) -> anyhow::Result<()> {
    let mut reporter = Reporter::new(out);
    // Fail on a missing key before touching anything else.
    let api = api()?;
    run::probe_local(&args.host, port, &mut reporter).await;
    reporter.note("creating tunnel …");
    let mut builder = Tunnel::builder()
        .local_port(port)
        .local_host(args.host.clone())
        .api(api)
        .tune_frp(|c| {
            for p in &mut c.proxies {
                p.request_log = true;
            }
        });
    let inspector = match super::inspect::start(&args.inspect, true).await {
        Ok(running) => running,
        Err(warning) => {
            reporter.note(&format!("warning: {warning}"));
            Default::default()
        }
    };
    if let Some(store) = inspector.store() {
        builder = builder.capture(store);
    }
    if let Some(name) = &args.name {
        builder = builder.name(name.clone());
    }
    if let Some(team) = &args.team_id {
        builder = builder.team_id(team.clone());
    }
    for label in &args.labels {
        builder = builder.label(label.clone());
    }
    if let Some(user) = &args.auth_user {
        builder = builder.http_user(user.clone());
    }
    // The start runs in its own task so an interrupt cannot cancel it half-way and leave a
    // registration behind: we wait for it to finish, then close what it created.
    let mut start = tokio::spawn(builder.start());
    let started = tokio::select! {
        r = &mut start => r,
        _ = run::interrupted() => {
            reporter.note("closing…");
            run::exit_on_second_interrupt();
            if let Ok(Ok(tunnel)) = start.await {
                let _ = tunnel.close().await;
            }
            reporter.closed("stopped before the tunnel was ready", true);
            return Ok(());
        }
    };
    let mut tunnel = started
        .context("the tunnel start task failed")?
        .context("could not start the tunnel")?;
    let local = if args.host.contains(':') {
        format!("[{}]:{port}", args.host)
    } else {
        format!("{}:{port}", args.host)
    };
    inspector.set_client(tunnel.handle());
    // Subscribed before the URL is shown, so the first visitor's request is reported.
    let events = tunnel.events();
    run::show_ready(
        &mut reporter,
        &Banner {
            public: tunnel.url().to_owned(),
            local,
            tunnel_id: Some(tunnel.id().to_owned()),
            expires_at: tunnel
                .expires_at()
                .map(|at| (tunnel.expires_at_text().to_owned(), at)),
            auth: one_time_credentials(&tunnel, args.auth_user.as_deref()),
            inspector: inspector.url(),
        },
    );
    let expires = tunnel.expires_at();
    let ended = follow_tunnel(&mut tunnel, events, &mut reporter, expires).await;
    match ended {
        Ended::Interrupted => {
            reporter.note("closing…");
            run::exit_on_second_interrupt();
            let result = tunnel.close().await;
            match result {
                Ok(()) => {
                    reporter.closed("tunnel closed and deleted", true);
                    Ok(())
                }
                Err(e) => {
                    reporter.closed(&format!("closed, but deleting failed: {e}"), false);
                    Err(e).context("could not delete the tunnel")
                }
            }
        }
        Ended::Expired => {
            reporter.note("the tunnel has expired; closing");
            let _ = tunnel.close().await;
            reporter.closed("expired", false);
            Err(Expired.into())
        }
        Ended::Failed(e) => {
            reporter.closed(&e.to_string(), false);
            let _ = tunnel.close().await;
            Err(TunnelError::Frp(e)).context("the tunnel stopped")
        }
    }
}

/// The basic-auth user and the password the API generated, when it returned one. The API may
/// leave the user out of its answer; it is the one we asked for then.
fn one_time_credentials(tunnel: &Tunnel, requested_user: Option<&str>) -> Option<(String, String)> {
    let created = tunnel.details();
    let password = created.http_password.as_ref()?;
    let user = created.http_user.as_deref().or(requested_user)?;
    Some((user.to_owned(), password.expose().to_owned()))
}

/// Follows a tunnel's engine (the same loop as self-hosted, over the Tunnel's client).
async fn follow_tunnel(
    tunnel: &mut Tunnel,
    events: broadcast::Receiver<Event>,
    reporter: &mut Reporter,
    expires: Option<SystemTime>,
) -> Ended {
    let state = Some(tunnel.state());
    run::follow_parts(events, state, || tunnel.stats(), reporter, expires).await
}

fn info_json(t: &TunnelInfo) -> serde_json::Value {
    json!({
        "id": clean(&t.tunnel_id),
        "name": t.name.as_deref().map(clean),
        "url": t.url.as_deref().map(clean),
        "status": t.status.as_ref().map(|s| clean(s.as_str())),
        "local_port": t.local_port,
        "labels": t.labels.iter().map(|l| clean(l)).collect::<Vec<_>>(),
        "created_at": t.created_at.as_deref().map(clean),
        "expires_at": t.expires_at.as_deref().map(clean),
        "team_id": t.team_id.as_deref().map(clean),
    })
}

fn print_table(rows: &[TunnelInfo]) {
    if rows.is_empty() {
        println!("no tunnels");
        return;
    }
    let now = SystemTime::now();
    println!(
        "{:<24} {:<13} {:<6} {:<11} URL",
        "ID", "STATUS", "PORT", "EXPIRES IN"
    );
    for t in rows {
        let left = t
            .time_left(now)
            .map(super::output::duration)
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<24} {:<13} {:<6} {:<11} {}",
            clean(&t.tunnel_id),
            t.status
                .as_ref()
                .map(|s| clean(s.as_str()))
                .unwrap_or_default(),
            t.local_port.map(|p| p.to_string()).unwrap_or_default(),
            left,
            t.url.as_deref().map(clean).unwrap_or_default(),
        );
    }
}

/// `expose list`.
pub async fn list(args: ListArgs, out: &OutputArgs) -> anyhow::Result<()> {
    let api = api()?;
    let mut query = ListQuery::new();
    if let Some(team) = args.team_id {
        query = query.team_id(team);
    }
    for l in args.labels {
        query = query.label(l);
    }
    if let Some(s) = args.status {
        query = query.status(expose::prime::TunnelStatus::parse(&s));
    }
    let list = api.list_all_tunnels(&query).await?;
    if out.json {
        let rows: Vec<_> = list.tunnels.iter().map(info_json).collect();
        println!(
            "{}",
            json!({ "tunnels": rows, "truncated": cut_json(list.cut) })
        );
    } else {
        print_table(&list.tunnels);
        warn_cut(list.cut, "");
    }
    Ok(())
}

/// Why a listing stopped early, for `--json`: `null` when it is complete.
fn cut_json(cut: Option<ListCut>) -> serde_json::Value {
    match cut {
        Some(c) => json!({"reason": c.as_str(), "message": c.to_string()}),
        None => serde_json::Value::Null,
    }
}

/// Tells a person on stderr that a listing stopped early.
fn warn_cut(cut: Option<ListCut>, then: &str) {
    if let Some(c) = cut {
        eprintln!("warning: {c}{then}");
    }
}

/// `expose status ID`.
pub async fn status(id: String, out: &OutputArgs) -> anyhow::Result<()> {
    let api = api()?;
    match api.get_tunnel(&id).await? {
        Some(t) => {
            if out.json {
                println!("{}", info_json(&t));
            } else {
                print_table(std::slice::from_ref(&t));
            }
            Ok(())
        }
        None => anyhow::bail!("tunnel {} not found (deleted or expired)", clean(&id)),
    }
}

/// `expose stop ID… | --all`.
pub async fn stop(args: StopArgs, out: &OutputArgs) -> anyhow::Result<()> {
    let api = api()?;
    let (ids, cut): (Vec<String>, _) = if args.all {
        let list = api.list_all_tunnels(&ListQuery::new()).await?;
        let ids = list
            .tunnels
            .into_iter()
            .filter(|t| !t.is_gone())
            .map(|t| t.tunnel_id)
            .collect();
        (ids, list.cut)
    } else {
        (args.ids, None)
    };
    if !out.json {
        warn_cut(cut, "; run `expose stop --all` again for the rest");
    }
    if ids.is_empty() {
        if out.json {
            println!(
                "{}",
                json!({"deleted": [], "failed": [], "truncated": cut_json(cut)})
            );
        } else {
            println!("no tunnels to stop");
        }
        return Ok(());
    }
    let result = api
        .bulk_delete_tunnels(&BulkDeleteRequest::ids(ids))
        .await?;
    if out.json {
        let failed: Vec<_> = result
            .failed
            .iter()
            .map(|f| json!({"id": clean(&f.tunnel_id), "error": clean(&f.error)}))
            .collect();
        let ok: Vec<_> = result.succeeded.iter().map(|s| clean(s)).collect();
        println!(
            "{}",
            json!({"deleted": ok, "failed": failed, "truncated": cut_json(cut)})
        );
    } else {
        for id in &result.succeeded {
            println!("deleted {}", clean(id));
        }
        for f in &result.failed {
            println!("failed  {}: {}", clean(&f.tunnel_id), clean(&f.error));
        }
    }
    if result.failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} tunnel(s) could not be deleted", result.failed.len())
    }
}
