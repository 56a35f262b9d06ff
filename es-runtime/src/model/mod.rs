//! The domain library: structures built from stored items (big arrays, integer sequences).

pub mod bigarray;
pub mod sequence;
