#![no_main]
//! `docker_json`: see `logship_fuzz::docker_json`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| logship_fuzz::docker_json(data));
