//! Wire protocol v2 (frp 0.69 and later, chosen with `transport.wireProtocol = "v2"`).
//!
//! What changes against v1, and nothing else does (the messages, their JSON, the session):
//!
//! - The client writes [`MAGIC`] first on every connection or yamux stream it opens (after TLS);
//!   frps sniffs it and otherwise reads v1. The server never sends it.
//! - Frames are `type u16 | flags u16 (0) | length u32 | payload`, all big-endian, payload at
//!   most 64 KiB ([`frame`]). A message frame's payload is a `u16` message id and the v1 JSON
//!   body.
//! - The control connection opens with magic, ClientHello and Login (plaintext, without waiting);
//!   frps answers ServerHello as soon as it has read the ClientHello, then a plaintext LoginResp
//!   ([`hello`]).
//! - Everything after that on the control connection is an AEAD byte stream per direction, keyed
//!   by HKDF-SHA256 over the token and a hash of both hello payloads ([`aead`]).
//! - Work and visitor connections: magic, then a plaintext NewWorkConn (or NewVisitorConn)
//!   frame; the answer is a plaintext frame; the payload after it is raw bytes as in v1.

pub mod aead;
pub mod frame;
pub mod hello;

pub use aead::{Algorithm, ControlKeys, CryptoContext, StreamOpener, StreamSealer};
pub use frame::{FrameError, FrameType, FRAME_HEADER_LEN, MAGIC, MAX_FRAME_PAYLOAD};
pub use hello::{Bootstrap, ClientHandshake, ClientHello, HelloError, ServerHello};

/// The configured value of `transport.wireProtocol` that selects this protocol.
pub const PROTOCOL_NAME: &str = "v2";
