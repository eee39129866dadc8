#![no_main]
//! `lines`: see `logship_fuzz::lines`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| logship_fuzz::lines(data));
