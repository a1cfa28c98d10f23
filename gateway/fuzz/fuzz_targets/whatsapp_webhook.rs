//! Fuzz target: `gateway::fuzzing::whatsapp_webhook` on arbitrary bytes (seeds in `gateway/fuzz/seeds/whatsapp_webhook/`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::whatsapp_webhook(data));
