//! Fuzz target: `gateway::fuzzing::ws_client_frame` on arbitrary bytes (seeds in `gateway/fuzz/seeds/ws_client_frame/`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::ws_client_frame(data));
