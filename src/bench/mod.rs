//! Measuring a tunnel end to end: the pieces behind `expose bench`, reusable from tests and
//! benches.
//!
//! - [`LocalService`]: the service being exposed, an in-process echo / sink / source server on
//!   loopback speaking a tiny protocol ([`service`]), so that the bench can drive it through any
//!   byte pipe (a tunnel or nothing at all) and measure on the visitor side alone.
//! - [`load`]: the load generators: throughput one way ([`load::transfer`]), request/response
//!   round trips ([`load::round_trips`]), new-connection rate ([`load::connect_rate`]) and held
//!   idle connections ([`load::hold_idle`]).
//! - [`proc_stat`]: what a process costs, read from `/proc` (Linux only; `None` elsewhere).
//! - [`summary`]: percentiles and medians.
//! - [`delay`]: a delay-line TCP relay that adds round-trip time to a path, for `--rtt`.
//! - [`http_service`] and [`http_load`]: an HTTP/1.1 service (sized downloads, an upload sink)
//!   and a keep-alive load driver for it, for `expose bench --prime`, whose tunnels carry HTTP
//!   only.
//!
//! Nothing here times itself against a goal: results are data for a report, never assertions.

pub mod delay;
pub mod http_load;
pub mod http_service;
pub mod load;
pub mod proc_stat;
pub mod service;
pub mod summary;

pub use service::LocalService;
