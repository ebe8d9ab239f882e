//! frpc's log lines: `YYYY-MM-DD HH:MM:SS.mmm [I] [file:line] [run id] text`, times in UTC,
//! on stdout where frpc's console log goes.

use super::console;
use std::time::{SystemTime, UNIX_EPOCH};

/// The level of frpc's log lines that are shown (`log.level`).
#[derive(Clone, Copy, PartialEq, PartialOrd)]
pub enum Level {
    /// `[I]`.
    Info,
    /// `[W]`.
    Warn,
    /// `[E]`.
    Error,
}

/// frpc's console log: lines at or above `min`, with the run id once logged in.
pub struct Log {
    /// The lowest level shown.
    pub min: Level,
    /// Shown in brackets before the text when not empty.
    pub run_id: String,
}

impl Log {
    /// Writes one line: `DATE TIME [L] [caller] [run id] text`.
    pub fn line(&self, level: Level, caller: &str, text: &str) {
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

    #[test]
    fn timestamp_shape() {
        let t = timestamp();
        assert_eq!(t.len(), 23, "{t}");
        assert_eq!(&t[4..5], "-");
        assert_eq!(&t[10..11], " ");
        assert_eq!(&t[19..20], ".");
    }
}
