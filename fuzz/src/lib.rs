//! The bodies of ustack's fuzz targets (`fuzz_targets/`), kept in a library
//! so that the seed generator (`examples/gen_seeds.rs`) builds its inputs
//! from the same types.
//!
//! - [`wire`]: every parser of `ustack_core::wire` on arbitrary bytes;
//! - [`frames`]: stacks fed arbitrary frames;
//! - [`conversation`]: a structured TCP peer talking to a stack.
//!
//! Every emitted frame is checked by [`check`].

pub mod check;
pub mod conversation;
pub mod encode;
pub mod frames;
pub mod wire;
