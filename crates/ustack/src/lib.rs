//! ustack shell: devices, the driver loop and std-like socket APIs over
//! [`ustack_core`].

pub mod phy;

pub use ustack_core as core;
