//! Every wire parser and every getter on arbitrary bytes, with
//! parse -> emit -> parse round trips (see `ustack_fuzz::wire`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ustack_fuzz::wire::exercise(data));
