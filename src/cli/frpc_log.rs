//! frpc's log lines: `YYYY-MM-DD HH:MM:SS.mmm [I] [file:line] [run id] text`, times in UTC,
//! on stdout where frpc's console log goes, or in the `log.to` file.

use super::console;
use super::frpc_logfile::{civil, LogFile};
use std::sync::Arc;
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
    /// `log.to` a file: the lines go there instead of the console.
    pub file: Option<Arc<LogFile>>,
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
        let line = format!("{} [{tag}] [{caller}] {prefix}{text}\n", timestamp());
        match &self.file {
            Some(f) => f.write(line),
            None => console::out(line),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC, frp's log time layout.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (year, month, day, h, m, s) = civil(secs as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{:03}",
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
