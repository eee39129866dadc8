#![no_main]
//! `timestamp`: see `logship_fuzz::timestamp`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| logship_fuzz::timestamp(data));
