//! Emulated round-trip time for `expose bench --rtt`: a fresh network namespace whose loopback
//! delays only chosen TCP ports.
//!
//! Only loopback addresses are used, inside a namespace this module creates and deletes, so no
//! traffic can leave the machine. The root qdisc of the namespace's `lo` is a `prio` qdisc with
//! every priority mapped to band 1; a fourth band carries a `netem` delay, and `u32` filters
//! send packets to or from the chosen ports there. Each packet crosses `lo`'s egress once, so a
//! delay of half the RTT on each direction gives the full RTT. Needs root and the `ip` and `tc`
//! tools; [`unsupported_reason`] says why not when they are missing.

use std::process::Command;
use std::time::Duration;

/// A network namespace with delayed ports; deleted on drop.
#[derive(Debug)]
pub struct DelayedNamespace {
    name: String,
}

/// Why RTT emulation cannot run here, or `None` if it can.
pub fn unsupported_reason() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return Some("network namespaces need Linux".into());
    }
    match effective_uid() {
        Some(0) => {}
        Some(_) => return Some("needs root (network namespaces and tc)".into()),
        None => return Some("cannot tell whether we run as root".into()),
    }
    for tool in ["ip", "tc"] {
        let found = Command::new(tool)
            .arg("-V")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            return Some(format!("the `{tool}` tool is not installed (iproute2)"));
        }
    }
    None
}

/// The effective uid, from `/proc/self/status` (no libc call needed).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl DelayedNamespace {
    /// Creates namespace `name` with loopback up, and delays TCP packets to or from any of
    /// `ports` on its loopback so that a round trip over them takes `rtt` longer.
    pub fn create(name: &str, rtt: Duration, ports: &[u16]) -> Result<Self, String> {
        run(&["ip", "netns", "add", name])?;
        // From here on, drop deletes the namespace whatever fails next.
        let ns = DelayedNamespace {
            name: name.to_owned(),
        };
        let half_us = (rtt.as_micros() / 2).max(1).to_string();
        let in_ns = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", name];
            all.extend_from_slice(args);
            run(&all)
        };
        in_ns(&["ip", "link", "set", "lo", "up"])?;
        in_ns(&[
            "tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "prio", "bands", "4",
            "priomap", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0",
            "0",
        ])?;
        // A large limit: at loopback speeds many packets are in flight during the delay.
        let delay = format!("{half_us}us");
        in_ns(&[
            "tc", "qdisc", "add", "dev", "lo", "parent", "1:4", "handle", "40:", "netem", "delay",
            &delay, "limit", "1000000",
        ])?;
        for port in ports {
            let port = port.to_string();
            for field in ["dport", "sport"] {
                in_ns(&[
                    "tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio",
                    "1", "u32", "match", "ip", field, &port, "0xffff", "flowid", "1:4",
                ])?;
            }
        }
        Ok(ns)
    }

    /// The namespace name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for DelayedNamespace {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}
