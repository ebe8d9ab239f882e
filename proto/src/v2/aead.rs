//! The v2 control connection's cipher: keys from the hello transcript, and the AEAD byte
//! stream of golib's `crypto/aead_stream.go`.
//!
//! - Transcript hash: SHA-256 over `"frp wire v2 crypto transcript"`, then for the client
//!   hello and the server hello in turn `0x00 | label | 0x00 | u64 BE length | payload`, the
//!   payloads exactly as they crossed the wire.
//! - Keys: HKDF-SHA256 with the raw token as input key material, the transcript hash as salt,
//!   info `"frp wire v2 control aead <algorithm> client-to-server"` (or `server-to-client`),
//!   32 bytes. The token is not stretched: a weak token is as weak here as in v1.
//! - Stream, per direction: the writer's random nonce (12 bytes for AES-256-GCM, 24 for
//!   XChaCha20-Poly1305) in clear before its first record, then records of
//!   `u32 BE ciphertext length | ciphertext and tag`, at most 64 KiB of plaintext each.
//!   Record `i` is sealed with nonce `stream nonce + i` (big-endian, over the whole nonce) and
//!   AAD `stream nonce | the record's 4 length bytes`, which binds every record to its place.
//! - End of stream is not authenticated: EOF at a record boundary is a normal EOF.
//!
//! Go seals each `Write` as one record, and frp writes a frame's header and payload with two
//! writes, so [`StreamSealer::seal_frame`] makes the same two records; the reader does not care.

use super::frame::FRAME_HEADER_LEN;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use bytes::{Buf, BytesMut};
use chacha20poly1305::XChaCha20Poly1305;
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroize;

/// Length of a derived key.
pub const KEY_LEN: usize = 32;
/// Length of a hello's client or server random.
pub const RANDOM_LEN: usize = 32;
/// Length of the authentication tag on every record.
pub const TAG_LEN: usize = 16;
/// Length of a record's length field.
pub const RECORD_HEADER_LEN: usize = 4;
/// Most plaintext in one record.
pub const MAX_RECORD_PLAINTEXT: usize = 64 * 1024;
/// Longest ciphertext (with tag) of one record.
pub const MAX_RECORD_CIPHERTEXT: usize = MAX_RECORD_PLAINTEXT + TAG_LEN;
/// The longest nonce of any algorithm (XChaCha20-Poly1305).
pub const MAX_NONCE_LEN: usize = 24;

/// AES-GCM's per-stream record limit in golib (2^32), far beyond any control connection.
const MAX_GCM_RECORDS: u64 = 1 << 32;

const TRANSCRIPT_LABEL: &[u8] = b"frp wire v2 crypto transcript";
const HKDF_INFO_PREFIX: &str = "frp wire v2 control aead";

/// The AEAD algorithms frp negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `aes-256-gcm`, 12-byte nonces.
    Aes256Gcm,
    /// `xchacha20-poly1305`, 24-byte nonces.
    XChaCha20Poly1305,
}

impl Algorithm {
    /// Both, in frp's order of support.
    pub const ALL: [Algorithm; 2] = [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305];

    /// The name in the hellos and in the key derivation.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Aes256Gcm => "aes-256-gcm",
            Algorithm::XChaCha20Poly1305 => "xchacha20-poly1305",
        }
    }

    /// The algorithm of a name, or `None` for one frp does not support.
    pub fn from_name(name: &str) -> Option<Self> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Length of the stream nonce.
    pub fn nonce_len(self) -> usize {
        match self {
            Algorithm::Aes256Gcm => 12,
            Algorithm::XChaCha20Poly1305 => 24,
        }
    }

    /// The order frpc advertises: AES-256-GCM first where the CPU accelerates it (AES and
    /// carry-less multiply), XChaCha20-Poly1305 first elsewhere, where it is the faster one.
    pub fn preferred() -> [Algorithm; 2] {
        if fast_aes_gcm() {
            [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305]
        } else {
            [Algorithm::XChaCha20Poly1305, Algorithm::Aes256Gcm]
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn fast_aes_gcm() -> bool {
    std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq")
        && std::arch::is_x86_feature_detected!("sse4.1")
        && std::arch::is_x86_feature_detected!("ssse3")
}

#[cfg(target_arch = "aarch64")]
fn fast_aes_gcm() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
        && std::arch::is_aarch64_feature_detected!("pmull")
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
fn fast_aes_gcm() -> bool {
    false
}

/// The SHA-256 transcript hash of the two hello payloads, as they crossed the wire.
pub fn transcript_hash(client_hello: &[u8], server_hello: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(TRANSCRIPT_LABEL);
    for (label, payload) in [
        (&b"client hello"[..], client_hello),
        (&b"server hello"[..], server_hello),
    ] {
        h.update([0]);
        h.update(label);
        h.update([0]);
        h.update((payload.len() as u64).to_be_bytes());
        h.update(payload);
    }
    h.finalize().into()
}

/// One direction's 32-byte key. `Debug` does not print it; it is wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct AeadKey([u8; KEY_LEN]);

impl Drop for AeadKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl AeadKey {
    /// A key from raw bytes (tests, and keys derived elsewhere).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        AeadKey(bytes)
    }

    /// The raw key bytes (for tests against reference vectors).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey(<redacted>)")
    }
}

/// HKDF-SHA256 of the token for one direction (`"client-to-server"` or `"server-to-client"`).
pub fn derive_key(
    token: &[u8],
    algorithm: Algorithm,
    transcript_hash: &[u8],
    direction: &str,
) -> AeadKey {
    let info = format!("{HKDF_INFO_PREFIX} {} {direction}", algorithm.name());
    let mut key = [0u8; KEY_LEN];
    // Expanding fails only for outputs over 255 hash lengths; 32 bytes is one.
    let _ =
        hkdf::Hkdf::<Sha256>::new(Some(transcript_hash), token).expand(info.as_bytes(), &mut key);
    AeadKey(key)
}

/// Both directions' keys of one control connection.
#[derive(Debug, Clone)]
pub struct ControlKeys {
    /// Seals what the client sends.
    pub client_to_server: AeadKey,
    /// Seals what the server sends.
    pub server_to_client: AeadKey,
}

impl ControlKeys {
    /// Derives both keys from the token, the algorithm and the transcript hash.
    pub fn derive(token: &[u8], algorithm: Algorithm, transcript_hash: &[u8]) -> Self {
        ControlKeys {
            client_to_server: derive_key(token, algorithm, transcript_hash, "client-to-server"),
            server_to_client: derive_key(token, algorithm, transcript_hash, "server-to-client"),
        }
    }
}

/// What a completed hello exchange settled: the algorithm and the transcript hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoContext {
    /// The algorithm the server selected.
    pub algorithm: Algorithm,
    /// SHA-256 of both hello payloads.
    pub transcript_hash: [u8; 32],
}

impl CryptoContext {
    /// The context of two hello payloads and the selected algorithm.
    pub fn new(algorithm: Algorithm, client_hello: &[u8], server_hello: &[u8]) -> Self {
        CryptoContext {
            algorithm,
            transcript_hash: transcript_hash(client_hello, server_hello),
        }
    }

    /// Both directions' keys for `token`.
    pub fn keys(&self, token: &[u8]) -> ControlKeys {
        ControlKeys::derive(token, self.algorithm, &self.transcript_hash)
    }

    /// The client's cipher pair: it seals client-to-server with `write_nonce` (which must be
    /// fresh and random, of [`Algorithm::nonce_len`] bytes) and opens server-to-client.
    pub fn client_streams(
        &self,
        token: &[u8],
        write_nonce: &[u8],
    ) -> Result<(StreamSealer, StreamOpener), AeadError> {
        let keys = self.keys(token);
        Ok((
            StreamSealer::new(self.algorithm, &keys.client_to_server, write_nonce)?,
            StreamOpener::new(self.algorithm, &keys.server_to_client),
        ))
    }

    /// The server's cipher pair, the mirror image of [`CryptoContext::client_streams`].
    pub fn server_streams(
        &self,
        token: &[u8],
        write_nonce: &[u8],
    ) -> Result<(StreamSealer, StreamOpener), AeadError> {
        let keys = self.keys(token);
        Ok((
            StreamSealer::new(self.algorithm, &keys.server_to_client, write_nonce)?,
            StreamOpener::new(self.algorithm, &keys.client_to_server),
        ))
    }
}

/// Why a record could not be sealed or opened.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AeadError {
    /// The stream nonce given to a sealer has the wrong length.
    #[error("{algorithm} stream nonce must be {want} bytes, got {got}")]
    NonceLength {
        /// The algorithm.
        algorithm: Algorithm,
        /// Its nonce length.
        want: usize,
        /// The length given.
        got: usize,
    },
    /// A record's length field is below the tag length.
    #[error("aead stream ciphertext length {0} is smaller than overhead {TAG_LEN}")]
    RecordTooShort(u32),
    /// A record's length field exceeds the limit.
    #[error("aead stream ciphertext length {0} exceeds limit {MAX_RECORD_CIPHERTEXT}")]
    RecordTooLong(u32),
    /// A record failed authentication: wrong key, tampering, or records out of order.
    #[error("aead stream record {0} failed authentication")]
    Authentication(u64),
    /// The stream used up its nonces or its record budget.
    #[error("aead stream record limit reached")]
    Exhausted,
}

/// The cipher of either algorithm.
enum Cipher {
    Gcm(Box<Aes256Gcm>),
    XChaCha(Box<XChaCha20Poly1305>),
}

impl Cipher {
    fn new(algorithm: Algorithm, key: &AeadKey) -> Self {
        match algorithm {
            Algorithm::Aes256Gcm => Cipher::Gcm(Box::new(Aes256Gcm::new(&key.0.into()))),
            Algorithm::XChaCha20Poly1305 => {
                Cipher::XChaCha(Box::new(XChaCha20Poly1305::new(&key.0.into())))
            }
        }
    }

    fn seal(&self, nonce: &[u8], aad: &[u8], data: &mut [u8]) -> [u8; TAG_LEN] {
        let tag = match self {
            Cipher::Gcm(c) => c.encrypt_in_place_detached(nonce.into(), aad, data),
            Cipher::XChaCha(c) => c.encrypt_in_place_detached(nonce.into(), aad, data),
        };
        // Both only fail for inputs beyond 2^36 bytes; a record is at most 64 KiB.
        tag.map(Into::into).unwrap_or([0; TAG_LEN])
    }

    fn open(&self, nonce: &[u8], aad: &[u8], data: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
        match self {
            Cipher::Gcm(c) => c
                .decrypt_in_place_detached(nonce.into(), aad, data, tag.into())
                .is_ok(),
            Cipher::XChaCha(c) => c
                .decrypt_in_place_detached(nonce.into(), aad, data, tag.into())
                .is_ok(),
        }
    }
}

/// The nonce state shared by both halves: the fixed stream nonce (part of every record's AAD)
/// and the running record nonce.
struct NonceState {
    algorithm: Algorithm,
    stream: [u8; MAX_NONCE_LEN],
    current: [u8; MAX_NONCE_LEN],
    records: u64,
}

impl NonceState {
    fn new(algorithm: Algorithm, stream_nonce: &[u8]) -> Self {
        let mut stream = [0u8; MAX_NONCE_LEN];
        stream[..stream_nonce.len()].copy_from_slice(stream_nonce);
        NonceState {
            algorithm,
            stream,
            current: stream,
            records: 0,
        }
    }

    fn len(&self) -> usize {
        self.algorithm.nonce_len()
    }

    /// `stream nonce | length field`.
    fn aad(&self, header: [u8; RECORD_HEADER_LEN]) -> ([u8; MAX_NONCE_LEN + 4], usize) {
        let n = self.len();
        let mut aad = [0u8; MAX_NONCE_LEN + 4];
        aad[..n].copy_from_slice(&self.stream[..n]);
        aad[n..n + RECORD_HEADER_LEN].copy_from_slice(&header);
        (aad, n + RECORD_HEADER_LEN)
    }

    fn check_budget(&self) -> Result<(), AeadError> {
        if self.algorithm == Algorithm::Aes256Gcm && self.records >= MAX_GCM_RECORDS {
            return Err(AeadError::Exhausted);
        }
        Ok(())
    }

    /// Moves to the next record's nonce; a nonce that wraps around is never reused.
    fn advance(&mut self) -> Result<(), AeadError> {
        self.records += 1;
        let n = self.len();
        for byte in self.current[..n].iter_mut().rev() {
            *byte = byte.wrapping_add(1);
            if *byte != 0 {
                return Ok(());
            }
        }
        Err(AeadError::Exhausted)
    }
}

/// The writing half of an AEAD stream.
pub struct StreamSealer {
    cipher: Cipher,
    nonce: NonceState,
    nonce_sent: bool,
    /// Set once the stream can seal no more (an error is sticky, as in Go).
    failed: Option<AeadError>,
}

impl StreamSealer {
    /// A stream that sends `stream_nonce` (fresh random bytes, [`Algorithm::nonce_len`] long)
    /// before its first record.
    pub fn new(
        algorithm: Algorithm,
        key: &AeadKey,
        stream_nonce: &[u8],
    ) -> Result<Self, AeadError> {
        if stream_nonce.len() != algorithm.nonce_len() {
            return Err(AeadError::NonceLength {
                algorithm,
                want: algorithm.nonce_len(),
                got: stream_nonce.len(),
            });
        }
        Ok(StreamSealer {
            cipher: Cipher::new(algorithm, key),
            nonce: NonceState::new(algorithm, stream_nonce),
            nonce_sent: false,
            failed: None,
        })
    }

    /// Appends `plaintext` to `out` as records (one per 64 KiB), the stream nonce first if this
    /// is the stream's first output. Empty input writes nothing, as in Go.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut BytesMut) -> Result<(), AeadError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        for chunk in plaintext.chunks(MAX_RECORD_PLAINTEXT) {
            if let Err(e) = self.seal_record(chunk, out) {
                self.failed = Some(e.clone());
                return Err(e);
            }
        }
        Ok(())
    }

    /// Appends one encoded frame (`FRAME_HEADER_LEN` header bytes and its payload) as frp's
    /// writer does: the header as one record, the payload as the next.
    pub fn seal_frame(&mut self, frame: &[u8], out: &mut BytesMut) -> Result<(), AeadError> {
        let split = FRAME_HEADER_LEN.min(frame.len());
        self.seal(&frame[..split], out)?;
        self.seal(&frame[split..], out)
    }

    fn seal_record(&mut self, plaintext: &[u8], out: &mut BytesMut) -> Result<(), AeadError> {
        self.nonce.check_budget()?;
        if !self.nonce_sent {
            out.extend_from_slice(&self.nonce.stream[..self.nonce.len()]);
            self.nonce_sent = true;
        }
        let header = ((plaintext.len() + TAG_LEN) as u32).to_be_bytes();
        out.extend_from_slice(&header);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let (aad, aad_len) = self.nonce.aad(header);
        let tag = self.cipher.seal(
            &self.nonce.current[..self.nonce.len()],
            &aad[..aad_len],
            &mut out[start..],
        );
        out.extend_from_slice(&tag);
        self.nonce.advance()
    }

    /// Whether the stream nonce still has to go out (nothing was sealed yet).
    pub fn nonce_pending(&self) -> bool {
        !self.nonce_sent
    }
}

/// The reading half of an AEAD stream.
pub struct StreamOpener {
    cipher: Cipher,
    algorithm: Algorithm,
    /// Set once the whole stream nonce has arrived.
    nonce: Option<NonceState>,
    failed: Option<AeadError>,
}

impl StreamOpener {
    /// A stream that expects the peer's nonce as its first bytes.
    pub fn new(algorithm: Algorithm, key: &AeadKey) -> Self {
        StreamOpener {
            cipher: Cipher::new(algorithm, key),
            algorithm,
            nonce: None,
            failed: None,
        }
    }

    /// Takes every complete record (and the stream nonce) off the front of `src` and appends
    /// the plaintext to `out`. An incomplete nonce or record stays in `src` for the next call.
    ///
    /// A length field out of bounds fails as soon as it is there, a record that does not
    /// authenticate when it is complete; either error is sticky.
    pub fn open(&mut self, src: &mut BytesMut, out: &mut BytesMut) -> Result<(), AeadError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.open_records(src, out);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn open_records(&mut self, src: &mut BytesMut, out: &mut BytesMut) -> Result<(), AeadError> {
        let nonce = match &mut self.nonce {
            Some(nonce) => nonce,
            None => {
                let n = self.algorithm.nonce_len();
                if src.len() < n {
                    return Ok(());
                }
                let nonce = NonceState::new(self.algorithm, &src[..n]);
                src.advance(n);
                self.nonce.insert(nonce)
            }
        };
        while src.len() >= RECORD_HEADER_LEN {
            let header: [u8; RECORD_HEADER_LEN] = [src[0], src[1], src[2], src[3]];
            let len = u32::from_be_bytes(header);
            if (len as usize) < TAG_LEN {
                return Err(AeadError::RecordTooShort(len));
            }
            if len as usize > MAX_RECORD_CIPHERTEXT {
                return Err(AeadError::RecordTooLong(len));
            }
            let end = RECORD_HEADER_LEN + len as usize;
            if src.len() < end {
                break;
            }
            nonce.check_budget()?;
            let plain_end = end - TAG_LEN;
            let (body, tag) =
                src[RECORD_HEADER_LEN..end].split_at_mut(plain_end - RECORD_HEADER_LEN);
            let mut tag_bytes = [0u8; TAG_LEN];
            tag_bytes.copy_from_slice(tag);
            let (aad, aad_len) = nonce.aad(header);
            if !self.cipher.open(
                &nonce.current[..nonce.len()],
                &aad[..aad_len],
                body,
                &tag_bytes,
            ) {
                return Err(AeadError::Authentication(nonce.records));
            }
            out.extend_from_slice(body);
            src.advance(end);
            nonce.advance()?;
        }
        Ok(())
    }

    /// Whether the stream nonce has arrived.
    pub fn has_nonce(&self) -> bool {
        self.nonce.is_some()
    }
}

#[cfg(test)]
mod tests;
