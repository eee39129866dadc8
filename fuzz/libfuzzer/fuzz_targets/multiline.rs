#![no_main]
//! `multiline`: see `logship_fuzz::multiline`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| logship_fuzz::multiline(data));
