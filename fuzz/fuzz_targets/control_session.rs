//! The control session state machine with a fake clock.
//! Input format and invariants: `fuzz/harness/control_session.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::control_session::run(data);
});
