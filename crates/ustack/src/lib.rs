//! ustack shell: devices, the driver loop and std-like socket APIs.
pub use ustack_core as core;
