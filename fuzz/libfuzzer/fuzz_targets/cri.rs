#![no_main]
//! `cri`: see `logship_fuzz::cri`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| logship_fuzz::cri(data));
