//! The domain library: structures built from stored items (big arrays, integer sequences) and
//! ready-made aggregates and logs (collections, time-bucketed logs).

pub mod bigarray;
pub mod collection;
pub mod sequence;
pub mod timebucketed;
