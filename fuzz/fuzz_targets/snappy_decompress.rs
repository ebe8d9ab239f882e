//! The snappy framing decoder, appending and stepwise.
//! Input format and invariants: `fuzz/harness/snappy_decompress.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::snappy_decompress::run(data);
});
