//! Fuzz target: `gateway::fuzzing::zapi_webhook` on arbitrary bytes (seeds in `gateway/fuzz/seeds/zapi_webhook/`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::zapi_webhook(data));
