//! The fuzz harnesses: what each target does with its input and which invariants it checks.
//!
//! Shared by the `cargo fuzz` targets in `fuzz/fuzz_targets/` (each includes this module with
//! `#[path]`) and by `tests/fuzz_regressions.rs`, which replays the committed corpus in
//! `fuzz/regressions/` through the very same code on stable Rust. Every `run` function panics
//! when an invariant fails, which libFuzzer reports as a crash and `cargo test` as a failure.
//!
//! Only dependencies of the `expose` package itself may be used here, so the test can build it.

pub mod cfb_decrypt;
pub mod control_engine;
pub mod control_session;
pub mod frame_decoder;
// The frpc config loader is behind the `expose` package's `frpc-config` feature; the fuzz
// crate turns on a feature of the same name by default.
#[cfg(feature = "frpc-config")]
pub mod frpc_config;
pub mod http_log;
pub mod message_json;
pub mod pipeline_opener;
pub mod prime_config;
pub mod prime_response;
pub mod snappy_decompress;

/// Reads structured choices off the front of a fuzz input; runs dry with zeros, never panics.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    /// True when nothing is left.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next byte, 0 once the input is used up.
    pub fn byte(&mut self) -> u8 {
        match self.0 {
            [b, rest @ ..] => {
                self.0 = rest;
                *b
            }
            [] => 0,
        }
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// The next eight bytes, big-endian.
    pub fn u64(&mut self) -> u64 {
        (u64::from(self.u16()) << 48)
            | (u64::from(self.u16()) << 32)
            | (u64::from(self.u16()) << 16)
            | u64::from(self.u16())
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(usize::MAX)
    }
}

/// Splits `data` into pieces whose lengths cycle through `sizes` (each at least 1).
pub fn pieces<'d>(data: &'d [u8], sizes: &[usize]) -> Vec<&'d [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].max(1).min(rest.len());
        i += 1;
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

/// Characters that must never reach a terminal from untrusted text: controls (ESC, CR, LF...)
/// and the Unicode bidirectional formatting characters. Written independently of the crate's
/// own predicate, so the harnesses check it rather than trust it.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}
