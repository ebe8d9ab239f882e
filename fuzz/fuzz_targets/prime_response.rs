//! Prime API replies as the client reads them.
//! Input format and invariants: `fuzz/harness/prime_response.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::prime_response::run(data);
});
