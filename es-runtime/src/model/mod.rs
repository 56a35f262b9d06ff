//! The domain library: structures built from stored items (big arrays, integer sequences) and
//! ready-made aggregates (collections).

pub mod bigarray;
pub mod collection;
pub mod sequence;
