#![no_main]
//! `json_fields`: see `logship_fuzz::json_fields`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| logship_fuzz::json_fields(data));
