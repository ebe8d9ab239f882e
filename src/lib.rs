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
//! - `frpc` (feature `frpc-config`): Go frpc's config files (TOML, YAML, JSON) turned into a
//!   [`frp::ClientConfig`], for `expose frpc`.
//! - [`secret`]: [`secret::Secret`], a string whose `Debug`/`Display` never show it.
//! - [`text`]: the one rule for which characters of untrusted text may reach a terminal.
//! - `testserver` (feature `testserver`): a small frps-compatible server for tests, benchmarks
//!   and `expose bench`. A test double, not a product server.
//! - `bench` (feature `bench`): the load generators and measurements behind `expose bench`.
//!
//! # Features
//! The default features build everything, the `expose` binary included. A library user who
//! wants only the engine, the Prime client and [`Tunnel`] writes
//! `expose = { version = "…", default-features = false }` and gets none of the binary's
//! dependencies (argument parsing, log formatting) nor the test server's certificate generator.
//!
//! - `cli`: the `expose` binary.
//! - `testserver`: the `testserver` module, the in-process frps double.
//! - `bench`: `expose::bench`; implies `testserver`.
//! - `frpc-config`: `expose::frpc`, frpc's config files (the `toml` and YAML parsers).
//! - `plugins`: frpc's client plugins ([`frp::PluginConfig`]: socks5, http_proxy, static_file,
//!   the http2*/https2* reverse proxies, tls2raw, unix_domain_socket), with hyper.
//!
//! The wire protocol itself (messages, framing, cipher, compression) is the sans-IO crate
//! [`frp_proto`], re-exported as [`proto`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use frp_proto as proto;

#[cfg(feature = "bench")]
pub mod bench;
pub mod capture;
pub mod frp;
#[cfg(feature = "frpc-config")]
pub mod frpc;
pub mod httplog;
#[cfg(feature = "inspect")]
pub mod inspect;
mod nofile;
pub mod prime;
pub mod secret;
#[cfg(feature = "testserver")]
pub mod testserver;
pub mod text;
mod tunnel;

pub use tunnel::{
    frp_config as prime_frp_config, Tunnel, TunnelBuilder, TunnelError, DEFAULT_START_TIMEOUT,
};
