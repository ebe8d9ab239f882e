//! The HTTP request-log observer.
//! Input format and invariants: `fuzz/harness/http_log.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::http_log::run(data);
});
