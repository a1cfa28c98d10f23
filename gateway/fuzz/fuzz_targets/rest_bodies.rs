//! Fuzz target: `gateway::fuzzing::rest_bodies` on arbitrary bytes (seeds in `gateway/fuzz/seeds/rest_bodies/`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::rest_bodies(data));
