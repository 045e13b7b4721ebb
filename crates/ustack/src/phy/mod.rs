//! Devices and captures: where frames enter and leave a stack.

pub mod pcap;
