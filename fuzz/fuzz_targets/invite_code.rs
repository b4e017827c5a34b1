//! `cargo fuzz run invite_code`: see `td_fuzz::checks::invite_code` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| td_fuzz::checks::invite_code(data));
