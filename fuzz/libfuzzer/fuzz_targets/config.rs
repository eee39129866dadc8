#![no_main]
//! `config`: see `logship_fuzz::config`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| logship_fuzz::config(data));
