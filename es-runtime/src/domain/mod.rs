//! The domain model layer: aggregates, events, the hash chain, topics, publish/subscribe.
//! Synchronous and free of I/O.

pub mod aggregate;
pub mod event;
pub mod integrity;
pub mod library;
pub mod pubsub;
pub mod topic;
