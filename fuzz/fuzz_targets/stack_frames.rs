//! An Ethernet stack and an IP stack fed arbitrary frames with virtual
//! time advancing (see `ustack_fuzz::frames` for the input format).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ustack_fuzz::frames::run(data));
