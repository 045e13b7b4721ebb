//! Ladder diagrams (being written).
