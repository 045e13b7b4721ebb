//! The simulated wire (being written).
