#![no_main]
//! `partial`: see `logship_fuzz::partial`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| logship_fuzz::partial(data));
