//! The process's open-file limit (`RLIMIT_NOFILE`) and what to say when it is reached.
//!
//! Every visitor costs the client one file descriptor (its connection to the local service),
//! and without tcpMux one more for its work connection. Many systems start processes with a
//! soft limit of 256 or 1024, far below what a busy tunnel holds. The library never changes a
//! process-wide limit itself: that is the application's decision (the `expose` binary raises
//! the soft limit to the hard limit at start, as Go programs do). When a connection fails
//! because the limit is reached, the engine logs one warning that names the limit, once per
//! process, instead of a bare "Too many open files" per visitor.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// The soft and hard open-file limits; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// What the process may open now.
    pub(crate) soft: Option<u64>,
    /// What the soft limit may be raised to without privileges.
    pub(crate) hard: Option<u64>,
}

/// The process's current limits, or `None` where they cannot be read.
pub(crate) fn current() -> Option<Limits> {
    #[cfg(unix)]
    {
        let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        Some(Limits {
            soft: lim.current,
            hard: lim.maximum,
        })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// True when `err` says the process (EMFILE) or the whole system (ENFILE) is out of file
/// descriptors.
pub(crate) fn is_exhausted(err: &io::Error) -> bool {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        let code = err.raw_os_error();
        code == Some(Errno::MFILE.raw_os_error()) || code == Some(Errno::NFILE.raw_os_error())
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        false
    }
}

/// The warning for an exhausted descriptor table, naming the limits when they are known.
pub(crate) fn warning(limits: Option<Limits>) -> String {
    let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    match limits {
        Some(Limits { soft, hard }) => format!(
            "too many open files: this process may have at most {} open at once (soft \
             RLIMIT_NOFILE; the hard limit is {}); connections beyond it fail until the \
             limit is raised (`ulimit -n`) or connections close",
            show(soft),
            show(hard)
        ),
        None => "too many open files: the process's open-file limit is reached; connections \
                 beyond it fail until the limit is raised or connections close"
            .to_owned(),
    }
}

/// Whether [`warn_once`] has warned in this process.
static WARNED: AtomicBool = AtomicBool::new(false);

/// Logs [`warning`] once per process when `err` is descriptor exhaustion; returns whether it
/// was.
pub(crate) fn warn_once(err: &io::Error) -> bool {
    if !is_exhausted(err) {
        return false;
    }
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!("{}", warning(current()));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_names_the_limits() {
        let text = warning(Some(Limits {
            soft: Some(256),
            hard: Some(1_048_576),
        }));
        assert!(text.contains("at most 256 open"), "{text}");
        assert!(text.contains("hard limit is 1048576"), "{text}");
        let text = warning(Some(Limits {
            soft: Some(1024),
            hard: None,
        }));
        assert!(text.contains("hard limit is unlimited"), "{text}");
        assert!(warning(None).starts_with("too many open files"));
    }

    #[cfg(unix)]
    #[test]
    fn descriptor_exhaustion_is_recognised() {
        use rustix::io::Errno;
        assert!(is_exhausted(&io::Error::from_raw_os_error(
            Errno::MFILE.raw_os_error()
        )));
        assert!(is_exhausted(&io::Error::from_raw_os_error(
            Errno::NFILE.raw_os_error()
        )));
        assert!(!is_exhausted(&io::Error::from_raw_os_error(
            Errno::CONNREFUSED.raw_os_error()
        )));
        assert!(!is_exhausted(&io::Error::other("x")));
        assert!(!warn_once(&io::Error::other("x")));
    }

    #[cfg(unix)]
    #[test]
    fn current_limits_are_readable() {
        let lim = current().expect("limits");
        if let (Some(soft), Some(hard)) = (lim.soft, lim.hard) {
            assert!(soft <= hard);
        }
    }
}
