//! `cargo fuzz run hub_rows`: see `td_fuzz::checks::hub_rows` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| td_fuzz::checks::hub_rows(data));
