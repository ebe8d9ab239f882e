//! `expose`: give a local port a public URL through an frp server, natively in Rust.
//!
//! # Layout
//! Data flows one way, top to bottom; lower layers report upwards through events, never calls.
//!
//! - [`prime`]: the client of Prime Intellect's tunnel API (create, get, list, delete).
//! - [`Tunnel`]: the embedding API — a Prime tunnel (API create, engine, DELETE) in one type.
//! - [`frp`]: the frp client engine. [`frp::Client`] logs in to an frps, registers proxies,
//!   answers the server's work-connection requests and splices each one to the local service.
//!   Inside: `transport` (TCP, TLS, yamux), `control` (login, proxies, heartbeats, reconnect),
//!   `work` (work connections and the splice).
//! - [`secret`]: [`secret::Secret`], a string whose `Debug`/`Display` never show it.
//! - [`testserver`]: a small frps-compatible server for tests, benchmarks and `expose bench`.
//!   A test double, not a product server.
//!
//! The wire protocol itself (messages, framing, cipher, compression) is the sans-IO crate
//! [`frp_proto`], re-exported as [`proto`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use frp_proto as proto;

pub mod bench;
pub mod frp;
pub mod httplog;
pub mod prime;
pub mod secret;
pub mod testserver;
mod tunnel;

pub use tunnel::{
    frp_config as prime_frp_config, Tunnel, TunnelBuilder, TunnelError, DEFAULT_START_TIMEOUT,
};
