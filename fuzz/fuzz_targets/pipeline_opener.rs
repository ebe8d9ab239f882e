//! A work connection's payload pipeline (Opener, Sealer).
//! Input format and invariants: `fuzz/harness/pipeline_opener.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::pipeline_opener::run(data);
});
