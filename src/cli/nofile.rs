//! Raising the open-file limit at start, as Go programs do.
//!
//! Every visitor holds a file descriptor in this process (its connection to the local service),
//! so a soft `RLIMIT_NOFILE` of 256 — the default on macOS and in some service managers — caps
//! a tunnel at a couple of hundred concurrent visitors although the hard limit allows far more.
//! The soft limit is raised to the hard limit; on macOS no higher than `kern.maxfilesperproc`,
//! which `setrlimit` refuses to exceed there. The library leaves this to the application; this
//! binary is one.

/// The soft limit before and after, when it was raised; `None` in a limit means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// Soft limit found at start.
    pub from: Option<u64>,
    /// Soft limit now.
    pub to: Option<u64>,
}

/// Raises the soft open-file limit as far as allowed. `Ok(None)`: it was already there.
#[cfg(unix)]
pub fn raise() -> std::io::Result<Option<Raised>> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    #[allow(unused_mut)] // changed on macOS only
    let mut target = lim.maximum;
    #[cfg(target_os = "macos")]
    if let Some(cap) = max_files_per_proc() {
        target = Some(target.map_or(cap, |t| t.min(cap)));
    }
    let higher = match (lim.current, target) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(now), Some(to)) => to > now,
    };
    if !higher {
        return Ok(None);
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: target,
            maximum: lim.maximum,
        },
    )?;
    Ok(Some(Raised {
        from: lim.current,
        to: target,
    }))
}

/// Elsewhere there is no such limit to raise.
#[cfg(not(unix))]
pub fn raise() -> std::io::Result<Option<Raised>> {
    Ok(None)
}

/// `kern.maxfilesperproc`: the most files one process may open on macOS.
#[cfg(target_os = "macos")]
fn max_files_per_proc() -> Option<u64> {
    let mut value: libc::c_int = 0;
    let mut size: libc::size_t = std::mem::size_of::<libc::c_int>();
    // SAFETY: the name is a NUL-terminated string, `value` is a writable `c_int` and `size` holds
    // its size, as sysctlbyname(3) requires for reading; a null new value sets nothing.
    let rc = unsafe {
        libc::sysctlbyname(
            c"kern.maxfilesperproc".as_ptr(),
            (&mut value as *mut libc::c_int).cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    u64::try_from(value).ok().filter(|v| rc == 0 && *v > 0)
}
