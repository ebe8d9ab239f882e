//! frpc's `log.to = "FILE"`: log lines go to a file that is rotated every day at midnight (UTC,
//! the time our log lines use), the old one renamed `NAME.YYYYMMDD-HHMMSS.EXT` (frpc's naming),
//! and rotated files older than `log.maxDays` days removed (none when it is 0 or less).
//!
//! Callers never wait for the disk: a line is queued for one writer thread per file, and when
//! that many lines are waiting (a stalled disk) new ones are dropped and counted; the count is
//! written to the file once it takes lines again.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Lines held for a slow disk before new ones are dropped.
const MAX_QUEUED: usize = 1024;

const DAY_MS: i64 = 86_400_000;

enum Msg {
    Line(String),
    /// Answered once everything before it is written.
    Flush(mpsc::Sender<()>),
}

/// One log file and its writer thread.
pub struct LogFile {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

/// The files in use by path: clients of a config directory that name the same file share it.
fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<LogFile>>> {
    static FILES: OnceLock<Mutex<HashMap<PathBuf, Arc<LogFile>>>> = OnceLock::new();
    FILES.get_or_init(Default::default)
}

impl LogFile {
    /// The log file at `path` (its writer started on first use), keeping `max_days` days of
    /// rotated files. Errors opening the file surface as lines not written, as in frpc.
    pub fn open(path: &Path, max_days: i64) -> Option<Arc<LogFile>> {
        let mut files = registry().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = files.get(path) {
            return Some(f.clone());
        }
        let (tx, rx) = mpsc::sync_channel(MAX_QUEUED);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = Rotating {
            path: path.to_path_buf(),
            max_days,
            file: None,
        };
        let counter = dropped.clone();
        std::thread::Builder::new()
            .name("log-file".into())
            .spawn(move || write_forever(writer, rx, counter))
            .ok()?;
        let f = Arc::new(LogFile { tx, dropped });
        files.insert(path.to_path_buf(), f.clone());
        Some(f)
    }

    /// Queues one line (with its line break); never blocks.
    pub fn write(&self, line: String) {
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Waits at most `timeout` until every line queued so far is written.
    fn flush(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (done, wait) = mpsc::channel();
        let mut msg = Msg::Flush(done);
        // The queue may be full: retry until the deadline rather than block without bound.
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
        let _ = wait.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// Writes what is queued in every log file, at most `timeout` each (before the process exits).
pub fn flush_all(timeout: Duration) {
    let files: Vec<Arc<LogFile>> = registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    for f in files {
        f.flush(timeout);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The writer thread: lines in order, a rotation at every midnight.
fn write_forever(mut w: Rotating, rx: Receiver<Msg>, dropped: Arc<AtomicU64>) {
    loop {
        let now = now_ms();
        let midnight = (now.div_euclid(DAY_MS) + 1) * DAY_MS;
        let wait = Duration::from_millis(u64::try_from(midnight - now).unwrap_or(0).max(1));
        match rx.recv_timeout(wait) {
            Ok(Msg::Line(line)) => {
                let lost = dropped.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    w.write(&format!(
                        "{lost} log line(s) dropped: the log file was not keeping up\n"
                    ));
                }
                w.write(&line);
            }
            Ok(Msg::Flush(done)) => {
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                if now_ms() >= midnight {
                    w.rotate(now_ms());
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// A daily-rotated file, as frp's rotate-file writer keeps it.
struct Rotating {
    path: PathBuf,
    max_days: i64,
    /// Opened at the first line.
    file: Option<File>,
}

impl Rotating {
    fn write(&mut self, line: &str) {
        if self.file.is_none() {
            self.file = self.open_existing_or_new(now_ms());
        }
        if let Some(f) = self.file.as_mut() {
            // A failed write (disk full) loses the line; there is nobody to tell.
            let _ = f.write_all(line.as_bytes());
        }
    }

    /// Appends to the file if it exists, else creates it.
    fn open_existing_or_new(&self, now: i64) -> Option<File> {
        if self.path.exists() {
            if let Ok(f) = OpenOptions::new().append(true).open(&self.path) {
                return Some(f);
            }
        }
        self.open_new(now)
    }

    /// Renames the current file to its backup name (stamped `now`) and creates a new one with
    /// the old one's permissions (0600 for a first file).
    fn open_new(&self, now: i64) -> Option<File> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).ok()?;
        }
        let mut options = OpenOptions::new();
        options.create(true).write(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            // A new file gets the old one's permissions, as in frp (through the umask).
            let mode = std::fs::metadata(&self.path)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0o600);
            options.mode(mode);
        }
        if self.path.exists() {
            std::fs::rename(&self.path, backup_name(&self.path, now)).ok()?;
        }
        options.open(&self.path).ok()
    }

    fn rotate(&mut self, now: i64) {
        self.file = None;
        self.file = self.open_new(now);
        self.clear(now);
    }

    /// Removes rotated files stamped more than `max_days` days before `now`.
    fn clear(&self, now: i64) {
        if self.max_days <= 0 {
            return;
        }
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let (stem, ext) = stem_ext(&self.path);
        let cutoff = now - self.max_days.saturating_mul(DAY_MS) + 5;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(true) {
                continue;
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let stamp = name
                .strip_prefix(&format!("{stem}."))
                .and_then(|rest| rest.strip_suffix(ext.as_str()));
            if let Some(t) = stamp.and_then(parse_stamp) {
                if t < cutoff {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// The file name without and with its extension's dot (`frpc.log` → `frpc`, `.log`).
fn stem_ext(path: &Path) -> (String, String) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_owned();
    match name.rfind('.') {
        Some(i) => (name[..i].to_owned(), name[i..].to_owned()),
        None => (name, String::new()),
    }
}

/// `DIR/STEM.YYYYMMDD-HHMMSS.EXT`, frp's name for a rotated file.
fn backup_name(path: &Path, now_ms: i64) -> PathBuf {
    let (stem, ext) = stem_ext(path);
    let (y, mo, d, h, mi, s) = civil(now_ms.div_euclid(1000));
    let name = format!("{stem}.{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}{ext}");
    path.with_file_name(name)
}

/// The time (ms since the epoch) of a `YYYYMMDD-HHMMSS` stamp.
fn parse_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 15 || b[8] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000)
}

/// The UTC calendar date and time `(year, month, day, hour, minute, second)` of `secs` since
/// 1970-01-01.
pub fn civil(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 of a UTC calendar date (the inverse of [`civil`]'s date).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for secs in [0i64, 951_782_400, 1_709_164_801, 4_102_444_799] {
            let (y, mo, d, h, mi, s) = civil(secs);
            assert_eq!(
                days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s,
                secs
            );
        }
        assert_eq!(civil(1_709_164_801), (2024, 2, 29, 0, 0, 1));
    }

    #[test]
    fn backup_names_and_stamps_round_trip() {
        // 2024-02-29 00:00:01 UTC.
        let t = 1_709_164_801_000;
        let name = backup_name(Path::new("/var/log/frpc.log"), t);
        assert_eq!(name, Path::new("/var/log/frpc.20240229-000001.log"));
        assert_eq!(parse_stamp("20240229-000001"), Some(t));
        assert_eq!(
            backup_name(Path::new("frpc"), t),
            Path::new("frpc.20240229-000001")
        );
        assert_eq!(parse_stamp("2024022-0000011"), None);
        assert_eq!(parse_stamp("20241329-000001"), None);
    }

    #[test]
    fn rotation_renames_and_keeps_max_days() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frpc.log");
        let mut w = Rotating {
            path: path.clone(),
            max_days: 2,
            file: None,
        };
        w.write("one\n");
        let day = |n: i64| 1_709_164_800_000 + n * DAY_MS;
        // Older rotated files, and one that is not ours.
        for stamp in ["20240225-000000", "20240227-000000", "20240228-000000"] {
            std::fs::write(dir.path().join(format!("frpc.{stamp}.log")), "old").unwrap();
        }
        std::fs::write(dir.path().join("other.20240101-000000.log"), "x").unwrap();
        w.rotate(day(0));
        w.write("two\n");
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "frpc.20240228-000000.log",
                "frpc.20240229-000000.log",
                "frpc.log",
                "other.20240101-000000.log"
            ]
        );
        let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
        assert_eq!(read("frpc.20240229-000000.log"), "one\n");
        assert_eq!(read("frpc.log"), "two\n");
        // An existing file is appended to.
        let mut again = Rotating {
            path,
            max_days: 0,
            file: None,
        };
        again.write("three\n");
        assert_eq!(read("frpc.log"), "two\nthree\n");
    }
}
