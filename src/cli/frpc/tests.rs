//! frpc mode's command line.
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

/// A harness may run this binary under its own name as frpc (`expose -c FILE`): frpc's config
/// flags and `verify` mean nothing to `expose`, so they select frpc mode; expose's own
/// commands and flags keep theirs.
#[test]
fn frpc_only_command_lines_select_frpc_mode_under_any_name() {
    for args in [
        &["expose", "-c", "f.toml"][..],
        &["expose", "-cf.toml"],
        &["expose", "--config", "f.toml"],
        &[
            "expose",
            "--config=f.toml",
            "--allow-unsafe=TokenSourceExec",
        ],
        &["expose", "--config_dir", "d"],
        &["expose", "--config-dir=d"],
        &["expose", "verify", "-c", "f.toml"],
        &["expose", "reload", "-c", "f.toml"],
        &["expose", "https", "-n", "web"],
        &["expose", "stcp", "visitor", "--sk", "k"],
        &[
            "expose",
            "tcp",
            "-s",
            "127.0.0.1",
            "-P",
            "7000",
            "-t",
            "123",
            "-l",
            "22",
            "-r",
            "6000",
            "-n",
            "ssh",
        ],
        &["expose", "udp", "-l53", "-r", "6053"],
        &[
            "expose",
            "http",
            "-l",
            "80",
            "--custom-domain",
            "a.example.com",
        ],
    ] {
        assert_eq!(invocation(&os(args)), Some(os(&args[1..])), "{args:?}");
    }
    for args in [
        &["expose", "8080"][..],
        &["expose", "tcp", "22"],
        &["expose", "tcp", "--server", "h", "--token", "t", "-v", "22"],
        &["expose", "http", "--remote-port", "0", "-q", "8080"],
        &["expose", "stcp", "--sk", "k", "22"],
        &["expose", "--json", "list"],
        &["expose", "--configuration"],
        &["expose", "status"],
        &["expose"],
    ] {
        assert_eq!(invocation(&os(args)), None, "{args:?}");
    }
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
    assert!(matches!(c.command, Some(FrpcCommand::Reload(_))));
    let c = FrpcArgs::try_parse_from(["frpc", "nathole", "-c", "x"]).unwrap();
    assert!(matches!(c.command, Some(FrpcCommand::Other(_))));
    let c = FrpcArgs::try_parse_from(["frpc", "--allow-unsafe", "TokenSourceExec"]).unwrap();
    assert_eq!(c.allow_unsafe, ["TokenSourceExec"]);
    assert!(FrpcArgs::try_parse_from(["frpc", "-v"]).unwrap().version);
}

fn secret_cmd(args: &[&str]) -> SecretArgs {
    match FrpcArgs::try_parse_from(args).unwrap().command {
        Some(FrpcCommand::Stcp(a) | FrpcCommand::Sudp(a) | FrpcCommand::Xtcp(a)) => a,
        other => panic!("{other:?}"),
    }
}

#[test]
fn stcp_proxy_and_visitor_commands() {
    let a = secret_cmd(&[
        "frpc",
        "stcp",
        "-s",
        "10.0.0.1",
        "-u",
        "me",
        "-n",
        "ssh",
        "-l",
        "22",
        "--sk",
        "k",
        "--allow_users",
        "a,b",
    ]);
    assert!(a.visitor.is_none());
    let c = frpc_quick::config("stcp", &a.args).unwrap().client;
    assert_eq!(c.server_host, "10.0.0.1");
    let expose::frp::ProxyKind::Stcp(o) = &c.proxies[0].kind else {
        panic!("{:?}", c.proxies[0].kind)
    };
    assert_eq!(o.secret_key.expose(), "k");
    assert_eq!(o.allow_users, ["a", "b"]);
    // The client-level flags are frpc's persistent flags: before or after `visitor`.
    for args in [
        &[
            "frpc", "stcp", "-s", "10.0.0.2", "-u", "me", "visitor", "-n", "v",
        ][..],
        &[
            "frpc", "stcp", "visitor", "-s", "10.0.0.2", "-u", "me", "-n", "v",
        ][..],
    ] {
        let mut args = args.to_vec();
        args.extend(["--server_name", "ssh", "--sk", "k", "--bind_port", "-1"]);
        let a = secret_cmd(&args);
        let Some(VisitorCommand::Visitor(v)) = &a.visitor else {
            panic!()
        };
        let c = frpc_quick::visitor_config("stcp", &a.args, v)
            .unwrap()
            .client;
        assert_eq!(
            (c.server_host.as_str(), c.user.as_str()),
            ("10.0.0.2", "me")
        );
        assert!(c.proxies.is_empty());
        let vis = &c.visitors[0];
        assert_eq!((vis.name.as_str(), vis.server_name.as_str()), ("v", "ssh"));
        assert_eq!((vis.bind_port, vis.bind_addr.as_str()), (-1, "127.0.0.1"));
    }
    // frpc's own messages, without the config file's `visitor NAME: `.
    let a = secret_cmd(&["frpc", "sudp", "visitor", "-n", "v", "--server_name", "x"]);
    let Some(VisitorCommand::Visitor(v)) = &a.visitor else {
        panic!()
    };
    let e = frpc_quick::visitor_config("sudp", &a.args, v).unwrap_err();
    assert_eq!(e.to_string(), "bind port is required");
    let a = secret_cmd(&["frpc", "stcp", "-n", "p", "-l", "22", "-r", "1"]);
    let e = frpc_quick::config("stcp", &a.args).unwrap_err();
    assert_eq!(e.to_string(), "unknown flag: --remote_port");
    assert!(
        FrpcArgs::try_parse_from(["frpc", "stcp", "visitor", "-l", "22"]).is_err(),
        "a proxy flag is unknown to the visitor"
    );
    // xtcp: a proxy and a visitor, as frpc builds them.
    let a = secret_cmd(&["frpc", "xtcp", "-n", "p", "-l", "22", "--sk", "k"]);
    let c = frpc_quick::config("xtcp", &a.args).unwrap().client;
    assert!(
        matches!(&c.proxies[0].kind, expose::frp::ProxyKind::Xtcp(o) if o.secret_key.expose() == "k")
    );
    let a = secret_cmd(&[
        "frpc",
        "xtcp",
        "visitor",
        "-n",
        "v",
        "--server_name",
        "p",
        "--sk",
        "k",
        "--bind_port",
        "9",
    ]);
    let Some(VisitorCommand::Visitor(v)) = &a.visitor else {
        panic!()
    };
    let c = frpc_quick::visitor_config("xtcp", &a.args, v)
        .unwrap()
        .client;
    let vis = &c.visitors[0];
    assert_eq!(vis.kind, expose::frp::VisitorKind::Xtcp);
    assert_eq!((vis.xtcp.protocol.as_str(), vis.bind_port), ("quic", 9));
}
