//! `cargo fuzz run roster_ops`: see `td_fuzz::checks::roster_ops` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| td_fuzz::checks::roster_ops(data));
