//! Fuzz target: `gateway::fuzzing::messenger_webhook` on arbitrary bytes (seeds in `gateway/fuzz/seeds/messenger_webhook/`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::messenger_webhook(data));
