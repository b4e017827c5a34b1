//! `cargo fuzz run sync_session`: see `td_fuzz::checks::sync_session` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| td_fuzz::checks::sync_session(data));
