#![no_main]
//! `logfmt`: see `logship_fuzz::logfmt`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| logship_fuzz::logfmt(data));
