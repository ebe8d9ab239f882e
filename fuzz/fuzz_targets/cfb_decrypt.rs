//! The AES-128-CFB stream.
//! Input format and invariants: `fuzz/harness/cfb_decrypt.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::cfb_decrypt::run(data);
});
