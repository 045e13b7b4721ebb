//! A structured TCP peer and application against a stack (see
//! `ustack_fuzz::conversation`). The input is read with `arbitrary`.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use ustack_fuzz::conversation::{Conversation, run};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(conv) = Conversation::arbitrary(&mut Unstructured::new(data)) {
        run(&conv);
    }
});
