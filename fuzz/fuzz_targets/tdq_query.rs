//! `cargo fuzz run tdq_query`: see `td_fuzz::checks::tdq_query` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| td_fuzz::checks::tdq_query(data));
