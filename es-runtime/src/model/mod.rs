//! Data structures built on record managers: the big array and integer sequence generators.

pub mod bigarray;
pub mod sequence;
