//! `expose bench --quick --json` end to end with the real binary: it must finish, print one JSON
//! object on stdout, and report sane non-zero figures. Speed is never asserted here; the bench
//! itself is where speed is measured.

use assert_cmd::Command;
use serde_json::Value;
use std::time::Duration;

fn num(v: &Value, path: &str) -> f64 {
    let mut cur = v;
    for key in path.split('.') {
        cur = match key.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => &cur[key],
        };
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number in {v}"))
}

/// Runs `expose bench ARGS` (FRP_TOKEN unset, so no environment token reaches it), checks that
/// it succeeded and printed exactly one JSON object on stdout, and returns that object.
fn bench_json(args: &[&str]) -> Value {
    let out = Command::cargo_bin("expose")
        .unwrap()
        .arg("bench")
        .args(args)
        .env_remove("FRP_TOKEN")
        .timeout(Duration::from_secs(240))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one JSON object on stdout: {stdout}"
    );
    serde_json::from_str(lines[0]).unwrap()
}

#[test]
fn quick_json_run_reports_every_phase() {
    let r = bench_json(&["--quick", "--json", "--idle-conns", "50"]);

    assert_eq!(r["in_process_server"], true);
    assert_eq!(r["quick"], true);
    let rows = r["throughput"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "upload/download x1 and xK");
    for (i, row) in rows.iter().enumerate() {
        for side in ["direct", "tunnel"] {
            assert!(
                num(row, &format!("{side}.bytes")) > 0.0,
                "row {i} {side}: {row}"
            );
            assert!(
                num(row, &format!("{side}.secs")) > 0.0,
                "row {i} {side}: {row}"
            );
            assert!(
                num(row, &format!("{side}.bytes_per_sec")) > 0.0,
                "row {i}: {row}"
            );
        }
        assert!(num(row, "ratio") > 0.0, "row {i}: {row}");
    }
    assert_eq!(num(&r, "throughput.2.streams"), 8.0);

    for side in ["direct", "tunnel"] {
        assert!(num(&r, &format!("latency.{side}.count")) >= 2000.0);
        let p50 = num(&r, &format!("latency.{side}.p50_us"));
        let p99 = num(&r, &format!("latency.{side}.p99_us"));
        let max = num(&r, &format!("latency.{side}.max_us"));
        assert!(
            p50 > 0.0 && p50 <= p99 && p99 <= max,
            "{side}: {}",
            r["latency"]
        );
    }
    assert!(num(&r, "connect_rate.direct_per_sec") > 0.0);
    assert!(num(&r, "connect_rate.tunnel_per_sec") > 0.0);
    assert!(num(&r, "connect_rate.tunnel.connections") > 0.0);
    assert!(num(&r, "first_byte.direct_us") > 0.0);
    assert!(num(&r, "first_byte.tunnel_ms.median") > 0.0);
    assert!(num(&r, "first_byte.ready_ms.median") > 0.0);

    if cfg!(target_os = "linux") {
        assert!(num(&r, "client.cpu_secs_per_gib") >= 0.0);
        assert!(num(&r, "client.idle_rss_bytes") > 0.0);
        let peak = num(&r, "client.peak_rss_bytes");
        assert!(
            peak >= num(&r, "client.idle_rss_bytes") * 0.5,
            "{}",
            r["client"]
        );
        assert_eq!(num(&r, "client.idle_conns.connections"), 50.0);
        assert!(num(&r, "client.idle_conns.rss_after_bytes") > 0.0);
    }
}

#[test]
fn table_mode_prints_only_the_table_on_stdout() {
    let out = Command::cargo_bin("expose")
        .unwrap()
        .args([
            "bench",
            "--quick",
            "--idle-conns",
            "0",
            "--streams",
            "2",
            "--rtt",
            "1",
            "--server",
            "127.0.0.1:1",
            "--token",
            "x",
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    // Nothing listens on port 1: the bench must fail cleanly, with the reason on stderr and
    // nothing on stdout.
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error"), "{stderr}");
    assert!(
        stderr.contains("--rtt applies to the in-process server only"),
        "{stderr}"
    );
}

#[test]
fn rtt_adds_latency_to_both_paths() {
    let r = bench_json(&[
        "--quick",
        "--json",
        "--idle-conns",
        "0",
        "--streams",
        "2",
        "--rtt",
        "2",
    ]);
    assert_eq!(r["rtt"]["applied"], true, "{}", r["rtt"]);
    // Each round trip crosses the 2 ms delay line once on either path.
    assert!(
        num(&r, "latency.direct.p50_us") >= 2000.0,
        "{}",
        r["latency"]
    );
    assert!(
        num(&r, "latency.tunnel.p50_us") >= 2000.0,
        "{}",
        r["latency"]
    );
}

/// `--client-cmd` with `expose` itself as the other client, through its frpc drop-in and the
/// generated config: both clients go through every phase and the figures are compared.
#[test]
fn client_cmd_measures_another_client_side_by_side() {
    let r = bench_json(&[
        "--quick",
        "--json",
        "--idle-conns",
        "20",
        "--streams",
        "2",
        "--client-cmd",
        "{expose} frpc -c {config}",
    ]);
    assert_eq!(r["client_cmd"], "{expose} frpc -c {config}");
    for side in ["expose", "other"] {
        let rows = r[side]["throughput"].as_array().unwrap();
        assert_eq!(rows.len(), 4, "{side}");
        for (i, row) in rows.iter().enumerate() {
            assert!(num(row, "tunnel.bytes") > 0.0, "{side} row {i}: {row}");
        }
        assert!(num(&r[side], "connect_rate.tunnel_per_sec") > 0.0, "{side}");
        if cfg!(target_os = "linux") {
            assert!(num(&r[side], "client.idle_rss_bytes") > 0.0, "{side}");
            assert_eq!(num(&r[side], "client.idle_conns.connections"), 20.0);
        }
    }
    let figures = r["figures"].as_array().unwrap();
    let upload = figures
        .iter()
        .find(|f| f["name"] == "upload x1")
        .unwrap_or_else(|| panic!("{}", r["figures"]));
    assert!(num(upload, "expose") > 0.0 && num(upload, "other") > 0.0);
    assert!(num(upload, "ratio") > 0.0, "{upload}");
}

#[test]
fn client_cmd_that_exits_is_reported() {
    let out = Command::cargo_bin("expose")
        .unwrap()
        .args([
            "bench",
            "--quick",
            "--idle-conns",
            "0",
            "--client-cmd",
            "false {config}",
        ])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--client-cmd process exited"), "{stderr}");
}

#[test]
fn phases_runs_only_the_named_phases() {
    let r = bench_json(&[
        "--quick",
        "--json",
        "--idle-conns",
        "0",
        "--phases",
        "upload1,latency",
    ]);
    let rows = r["throughput"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["name"], "upload x1");
    assert!(num(&rows[0], "tunnel.bytes") > 0.0);
    assert!(num(&r, "latency.tunnel.count") >= 2000.0);
    assert!(r["connect_rate"].is_null(), "{}", r["connect_rate"]);
    assert!(r["first_byte"].is_null(), "{}", r["first_byte"]);
}
