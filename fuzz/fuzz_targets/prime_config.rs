//! The Prime config files (`~/.prime/config.json`, the context overlay).
//! Input format and invariants: `fuzz/harness/prime_config.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::prime_config::run(data);
});
