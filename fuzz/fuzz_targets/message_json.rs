//! Every message type's JSON body.
//! Input format and invariants: `fuzz/harness/message_json.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::message_json::run(data);
});
