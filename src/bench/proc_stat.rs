//! What another process costs, from `/proc/<pid>/stat` and `/proc/<pid>/status`.
//!
//! Reading `/proc` needs no privileges for our own children and no extra dependency. Every
//! function returns `None` where `/proc` does not exist (macOS, Windows) or the process is gone,
//! so a report can print "n/a" instead of failing.

use serde::Serialize;

/// Kernel clock ticks per second for `utime`/`stime` in `/proc/<pid>/stat`. Linux reports these
/// in `USER_HZ`, which is 100 on every architecture Rust supports (it is an ABI constant, not the
/// kernel's `HZ`), so no `sysconf` call is needed.
const USER_HZ: f64 = 100.0;

/// CPU time consumed by a process so far (user + system).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuTime {
    /// User-mode seconds.
    pub user_secs: f64,
    /// Kernel-mode seconds.
    pub system_secs: f64,
}

impl CpuTime {
    /// User plus system seconds.
    pub fn total(&self) -> f64 {
        self.user_secs + self.system_secs
    }

    /// Seconds used between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTime) -> f64 {
        (self.total() - earlier.total()).max(0.0)
    }
}

/// Resident memory of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Current resident set (`VmRSS`), bytes.
    pub rss_bytes: u64,
    /// Peak resident set since start (`VmHWM`), bytes.
    pub peak_rss_bytes: u64,
    /// Anonymous part of the resident set (`RssAnon`: heap, stacks), bytes; private to the
    /// process. `None` on kernels before 4.5.
    pub rss_anon_bytes: Option<u64>,
    /// File-backed part (`RssFile`: the mapped binary and libraries), bytes; these pages are
    /// shared with the page cache and every other process mapping the same files.
    pub rss_file_bytes: Option<u64>,
}

/// CPU time of `pid`, or `None` where `/proc` is unavailable.
pub fn cpu_time(pid: u32) -> Option<CpuTime> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Memory of `pid`, or `None` where `/proc` is unavailable.
pub fn memory(pid: u32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status(&text)
}

/// `utime` and `stime` are fields 14 and 15 of `/proc/<pid>/stat`; the command name (field 2)
/// is in parentheses and may itself contain spaces and parentheses, so fields are counted from
/// the last `)`.
fn parse_stat(text: &str) -> Option<CpuTime> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // `after` starts at field 3 (state); utime is field 14, i.e. the 12th entry here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(CpuTime {
        user_secs: utime as f64 / USER_HZ,
        system_secs: stime as f64 / USER_HZ,
    })
}

fn parse_status(text: &str) -> Option<Memory> {
    let kib = |key: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        let value = line[key.len()..].split_whitespace().next()?;
        value.parse::<u64>().ok().map(|k| k * 1024)
    };
    Some(Memory {
        rss_bytes: kib("VmRSS:")?,
        peak_rss_bytes: kib("VmHWM:")?,
        rss_anon_bytes: kib("RssAnon:"),
        rss_file_bytes: kib("RssFile:"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_name() {
        let line = "4242 (exp (o) se) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 25 0 0 20 0 3 0 \
                    100 1000000 300 18446744073709551615";
        let cpu = parse_stat(line).unwrap();
        assert!((cpu.user_secs - 1.5).abs() < 1e-9);
        assert!((cpu.system_secs - 0.25).abs() < 1e-9);
    }

    #[test]
    fn status_fields() {
        let text = "Name:\texpose\nVmHWM:\t   12000 kB\nVmRSS:\t    8000 kB\nRssAnon:\t 900 kB\n";
        let m = parse_status(text).unwrap();
        assert_eq!(m.rss_bytes, 8000 * 1024);
        assert_eq!(m.peak_rss_bytes, 12000 * 1024);
        assert_eq!(m.rss_anon_bytes, Some(900 * 1024));
        assert_eq!(m.rss_file_bytes, None);
        assert!(parse_status("Name:\tx\n").is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(cpu_time(me).is_some());
        assert!(memory(me).unwrap().rss_bytes > 0);
    }
}
