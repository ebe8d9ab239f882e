//! `frp-proto`: the frp client/server wire protocol (v1 and v2) without any I/O.
//!
//! This crate is to `expose` what `quinn-proto` is to `quinn`: every byte rule of the protocol
//! lives here as plain functions and state objects that take bytes in and give bytes out. No
//! sockets, no timers, no async runtime. The runtime crate (`expose`) drives these objects over
//! TCP, TLS and yamux.
//!
//! # Layout
//! - [`msg`]: the 18 message types with the exact JSON keys frp uses, and [`Message`], the enum
//!   over them, mapped to and from the one-byte type tag.
//! - [`frame`]: the v1 frame (`type | i64 BE length | JSON`), an encoder and an incremental
//!   decoder over [`bytes::BytesMut`].
//! - [`auth`]: the token `privilege_key` (md5 of token and timestamp).
//! - [`crypto`]: the AES-128-CFB byte stream used on the control connection and on work
//!   connections with `use_encryption`.
//! - [`compress`]: the snappy framing format used by `use_compression`.
//! - [`pipeline`]: a work connection's payload path, compression and encryption stacked in
//!   the order frp uses, as a bounded buffer per direction ([`pipeline::Sealer`],
//!   [`pipeline::Opener`]).
//! - [`udp`]: udp/sudp payloads: the UDPPacket codec (base64 content, Go `net.UDPAddr`), the
//!   visitor sign key, and frp's UDP sizes and timeouts.
//! - [`proxy_protocol`]: the PROXY protocol v1/v2 header written to a local service before
//!   the payload, built from `StartWorkConn`'s addresses as frpc builds it.
//! - [`nathole`]: xtcp's NAT hole punching: the STUN binding codec, frp's NAT classification,
//!   frps's punch planning (modes, roles, port guesses, scores), the encrypted punch datagrams.
//! - [`session`]: the client's control session as a state machine: login, proxy registration
//!   and retries, heartbeats, reconnect backoff. Time is an input; nothing here sleeps.
//! - [`v2`]: wire protocol v2 (frp 0.69+): the magic, the 8-byte frame header and message ids,
//!   ClientHello/ServerHello negotiation, the transcript hash and HKDF keys, and the AEAD byte
//!   stream (AES-256-GCM, XChaCha20-Poly1305) of the control connection.
//!
//! Behaviour follows frp v0.50–v0.70; the tests in `proto/tests/` replay byte captures of real
//! Go frpc ↔ frps sessions, which win over any written description.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
mod buf_pool;
pub mod compress;
pub mod crypto;
pub mod frame;
mod gojson;
pub mod msg;
pub mod nathole;
pub mod pipeline;
pub mod proxy_protocol;
pub mod session;
pub mod udp;
pub mod v2;

pub use frame::{decode_frame, encode_frame, FrameError, MAX_BODY_LEN};
pub use msg::{Message, MessageType};
