//! frpc config files: templates, TOML/JSON/YAML, the legacy INI format, validation, mapping.
//! Input format and invariants: `fuzz/harness/frpc_config.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::frpc_config::run(data);
});
