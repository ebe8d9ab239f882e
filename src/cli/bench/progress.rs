//! Progress lines of `expose bench` on stderr.

use std::io::Write as _;

/// Progress lines on stderr; silent with `-q`.
pub(super) struct Progress {
    pub(super) quiet: bool,
}

impl Progress {
    /// One line, `bench: ` first.
    pub(super) fn say(&self, text: &str) {
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "bench: {text}");
        }
    }
}
