//! # es: event sourcing for Rust
//!
//! Annotate plain structs and impl blocks with `#[aggregate]` and `#[event]`; es generates the
//! event plumbing. The runtime stores, replays, propagates and processes the events.
//!
//! Layers, one module each:
//! - [`domain`]: aggregates, events, the SHA-256 hash chain, topics (synchronous, no I/O);
//! - [`record`]: record managers (in memory, SQLite, PostgreSQL, MySQL);
//!
//! Every failure is an [`enum@Error`].

#![warn(missing_docs)]

pub mod application;
pub mod domain;
pub mod error;
pub mod mapper;
pub mod record;
pub mod store;

pub use error::{Error, IntegrityError, Result};

/// The sqlx crate es uses for PostgreSQL and MySQL, so that pools and transactions handed to
/// es are of the same version.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub use sqlx;

/// The names most programs need: `use es_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::domain::aggregate::{Aggregate, AttributeChanged, Discarded};
    pub use crate::domain::event::{
        AnyEvent, Event, EventKind, EventMeta, EventPayload, Mutate, Timestamp,
    };
    pub use crate::error::{Error, IntegrityError, Result};
    pub use uuid::Uuid;
}

/// Items used by macro-generated code. Not a stable API: do not use directly.
#[doc(hidden)]
pub mod __private {
    pub use crate::domain::aggregate::{
        apply_event, create, trigger, Aggregate, AggregateMeta, AttributeChanged, Discarded,
    };
    pub use crate::domain::event::{
        decode_parsed, Event, EventKind, EventPayload, Mutate, StateRef,
    };
    pub use crate::domain::topic::EventType;
    pub use crate::error::{Error, Result};
    pub use inventory;
    pub use serde;
    pub use serde_json;
    pub use uuid::Uuid;
}
