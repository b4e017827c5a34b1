//! `cargo fuzz run wire_frames`: see `td_fuzz::checks::wire_frames` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| td_fuzz::checks::wire_frames(data));
