//! The async runtime the binary's commands run on.
//!
//! A client spends its time moving bytes between a few sockets: the yamux driver task and the
//! splice tasks hand every chunk to each other. On a multi-thread runtime those hand-offs are
//! wake-ups across threads (park, unpark, a futex each), which the client profile put at about
//! 8 % of its CPU time; one thread makes them plain queue pushes and keeps one malloc arena
//! instead of one per worker. `EXPOSE_WORKER_THREADS=N` (N ≥ 1) asks for a multi-thread runtime
//! with N workers instead, for a client that forwards more than one core can.

use std::io;
use tokio::runtime::{Builder, Runtime};

/// The environment variable that selects a multi-thread runtime and its number of workers.
pub const WORKER_THREADS_ENV: &str = "EXPOSE_WORKER_THREADS";

/// The runtime for a client command: one thread, unless [`WORKER_THREADS_ENV`] asks for more.
pub fn client() -> io::Result<Runtime> {
    let workers = std::env::var(WORKER_THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0);
    match workers {
        Some(n) => Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => Builder::new_current_thread().enable_all().build(),
    }
}

/// The runtime of `expose bench`: multi-thread, since the bench runs the test server, the load
/// generators and the local service in its own process.
pub fn multi_thread() -> io::Result<Runtime> {
    Runtime::new()
}
