//! The frame decoder on peer bytes in any chunking.
//! Input format and invariants: `fuzz/harness/frame_decoder.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::frame_decoder::run(data);
});
