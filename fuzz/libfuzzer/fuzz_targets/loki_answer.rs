#![no_main]
//! `loki_answer`: see `logship_fuzz::loki_answer`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| logship_fuzz::loki_answer(data));
