//! Fuzz target: `gateway::fuzzing::evolution_webhook` on arbitrary bytes (seeds in `gateway/fuzz/seeds/evolution_webhook/`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::evolution_webhook(data));
