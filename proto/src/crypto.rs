//! The AES-128-CFB byte stream of frp (golib `crypto`).
//!
//! - Key: PBKDF2-HMAC-SHA1(token, salt `"frp"`, 64 iterations, 16 bytes). Both frp binaries set
//!   golib's salt to `"frp"`; the library default `"crypto"` would not interoperate.
//! - Each writer picks a random 16-byte IV and sends it in clear before its first ciphertext
//!   byte; each reader takes the first 16 bytes of its direction as the IV. The two directions
//!   are independent and nobody waits for the other's IV.
//! - Full-block CFB (Go's `cipher.NewCFBEncrypter`), one continuous state per direction for the
//!   life of the connection: message boundaries and write sizes do not matter.
//!
//! [`Encryptor`] and [`Decryptor`] work in place on any chunking, so the runtime can run them over
//! its read and write buffers without copies or allocation.

use aes::Aes128;
use bytes::BytesMut;
use cfb_mode::cipher::KeyIvInit;
use cfb_mode::{BufDecryptor, BufEncryptor};
use std::fmt;

/// Length of the key and of the IV.
pub const BLOCK_LEN: usize = 16;

/// PBKDF2 iterations (golib `crypto.DefaultIterations`... as set by frp: 64).
const PBKDF2_ROUNDS: u32 = 64;

/// The salt frp sets in both binaries.
const SALT: &[u8] = b"frp";

/// A derived AES-128 key. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; BLOCK_LEN]);

impl Key {
    /// Derives the key from a token (the empty token is valid: frps's default).
    pub fn derive(token: &str) -> Self {
        let mut key = [0u8; BLOCK_LEN];
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(token.as_bytes(), SALT, PBKDF2_ROUNDS, &mut key);
        Key(key)
    }

    /// The raw key bytes (for tests against reference vectors).
    pub fn as_bytes(&self) -> &[u8; BLOCK_LEN] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// The writing half of a CFB stream.
pub struct Encryptor {
    cipher: BufEncryptor<Aes128>,
    /// The IV still to be sent; `None` once the caller took it.
    pending_iv: Option<[u8; BLOCK_LEN]>,
}

impl Encryptor {
    /// A stream with the given IV. Use a fresh random IV for every connection and direction.
    pub fn new(key: &Key, iv: [u8; BLOCK_LEN]) -> Self {
        Encryptor {
            cipher: BufEncryptor::<Aes128>::new(&key.0.into(), &iv.into()),
            pending_iv: Some(iv),
        }
    }

    /// The IV, the first time it is called; `None` afterwards. Whatever is written first on the
    /// wire must be this, so call it before every write and prepend what it returns.
    pub fn take_iv(&mut self) -> Option<[u8; BLOCK_LEN]> {
        self.pending_iv.take()
    }

    /// True until the IV was handed out by [`Encryptor::take_iv`] or
    /// [`Encryptor::seal_appended`].
    pub fn iv_pending(&self) -> bool {
        self.pending_iv.is_some()
    }

    /// Encrypts `data` in place, continuing the stream.
    pub fn encrypt(&mut self, data: &mut [u8]) {
        self.cipher.encrypt(data);
    }

    /// Lets `write` append plaintext to `out`, then encrypts what it appended in place, with
    /// the IV in front of it if the IV was not sent yet. If `write` appends nothing (say, it
    /// failed), `out` is left as it was and the IV stays pending, so a failed first message
    /// cannot lose the IV.
    pub fn seal_appended<R>(
        &mut self,
        out: &mut BytesMut,
        write: impl FnOnce(&mut BytesMut) -> R,
    ) -> R {
        let start = out.len();
        if let Some(iv) = &self.pending_iv {
            out.extend_from_slice(iv);
        }
        let body = out.len();
        let result = write(out);
        if out.len() > body {
            self.pending_iv = None;
            self.cipher.encrypt(&mut out[body..]);
        } else {
            out.truncate(start);
        }
        result
    }
}

impl fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryptor")
            .field("iv_sent", &self.pending_iv.is_none())
            .finish()
    }
}

/// The reading half of a CFB stream: collects the peer's IV, then decrypts.
pub struct Decryptor {
    key: Key,
    iv: [u8; BLOCK_LEN],
    iv_len: usize,
    cipher: Option<BufDecryptor<Aes128>>,
}

impl Decryptor {
    /// A stream that expects the peer's IV as its first 16 bytes.
    pub fn new(key: &Key) -> Self {
        Decryptor {
            key: key.clone(),
            iv: [0; BLOCK_LEN],
            iv_len: 0,
            cipher: None,
        }
    }

    /// True once the whole IV has arrived.
    pub fn has_iv(&self) -> bool {
        self.cipher.is_some()
    }

    /// Consumes `data` as the next bytes of the stream, decrypting in place. Returns the part of
    /// `data` that is plaintext: the leading IV bytes (if the IV is still incomplete) are taken
    /// and left out. Works for any chunking, including chunks that split the IV.
    pub fn decrypt<'a>(&mut self, data: &'a mut [u8]) -> &'a mut [u8] {
        let data = if self.cipher.is_none() {
            let take = (BLOCK_LEN - self.iv_len).min(data.len());
            self.iv[self.iv_len..self.iv_len + take].copy_from_slice(&data[..take]);
            self.iv_len += take;
            if self.iv_len < BLOCK_LEN {
                return &mut data[take..];
            }
            self.cipher = Some(BufDecryptor::<Aes128>::new(
                &self.key.0.into(),
                &self.iv.into(),
            ));
            &mut data[take..]
        } else {
            data
        };
        if let Some(cipher) = self.cipher.as_mut() {
            cipher.decrypt(data);
        }
        data
    }

    /// Like [`Decryptor::decrypt`], but moves the plaintext to the front of `data` and returns
    /// its length, so a caller's buffer holds plaintext only. Bytes move only while the IV is
    /// being read, at the very start of the stream.
    pub fn open(&mut self, data: &mut [u8]) -> usize {
        let len = data.len();
        let plain = self.decrypt(data).len();
        let iv_taken = len - plain;
        if iv_taken > 0 {
            data.copy_within(iv_taken.., 0);
        }
        plain
    }
}

impl fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryptor")
            .field("has_iv", &self.has_iv())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        crate::auth::to_hex(b)
    }

    #[test]
    fn key_reference_vectors() {
        assert_eq!(
            hex(Key::derive("abc").as_bytes()),
            "62e5ed67fdd04e5f1f71d779ceb9667f"
        );
        assert_eq!(
            hex(Key::derive("").as_bytes()),
            "cdc9dc4c472c37331281df4c232a8407"
        );
        assert_eq!(
            hex(Key::derive("vector-token").as_bytes()),
            "d2d18ca34f0c016e3a414681288b0650"
        );
    }

    #[test]
    fn round_trip_with_odd_chunking() {
        let key = Key::derive("t");
        let mut enc = Encryptor::new(&key, [7; 16]);
        let plain: Vec<u8> = (0..1000u32).map(|i| (i * 31) as u8).collect();
        let mut wire = enc.take_iv().unwrap().to_vec();
        assert!(enc.take_iv().is_none());
        for chunk in plain.chunks(33) {
            let mut c = chunk.to_vec();
            enc.encrypt(&mut c);
            wire.extend_from_slice(&c);
        }
        let mut dec = Decryptor::new(&key);
        let mut out = Vec::new();
        for chunk in wire.chunks_mut(5) {
            out.extend_from_slice(dec.decrypt(chunk));
        }
        assert_eq!(out, plain);
    }

    #[test]
    fn seal_appended_and_open_match_encrypt_and_decrypt() {
        let key = Key::derive("t");
        let mut enc = Encryptor::new(&key, [9; 16]);
        let mut wire = BytesMut::from(&b"clear"[..]);
        // Nothing appended: the IV stays pending and `out` is untouched.
        enc.seal_appended(&mut wire, |_| ());
        assert_eq!(&wire[..], b"clear");
        assert!(enc.iv_pending());
        enc.seal_appended(&mut wire, |o| o.extend_from_slice(b"hello "));
        enc.seal_appended(&mut wire, |o| o.extend_from_slice(b"world"));
        assert!(!enc.iv_pending());
        let mut reference = Encryptor::new(&key, [9; 16]);
        let mut plain = b"hello world".to_vec();
        reference.encrypt(&mut plain);
        assert_eq!(&wire[..5], b"clear");
        assert_eq!(&wire[5..21], &[9; 16]);
        assert_eq!(&wire[21..], &plain[..]);

        for cut in [1, 7, 16, 17, 27] {
            let mut dec = Decryptor::new(&key);
            let mut stream = wire[5..].to_vec();
            let (a, b) = stream.split_at_mut(cut);
            let n = dec.open(a);
            let mut got = a[..n].to_vec();
            let m = dec.open(b);
            got.extend_from_slice(&b[..m]);
            assert_eq!(got, b"hello world", "cut {cut}");
        }
    }
}
