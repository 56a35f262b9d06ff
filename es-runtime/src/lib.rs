#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! One layer each, from the domain to the processes:
//! - [`domain`]: aggregates, events, the SHA-256 hash chain, topics (synchronous, no I/O);
//! - [`mapper`]: events to stored items and back: JSON, compression, AES-GCM encryption;
//! - [`record`]: record managers (in memory, SQLite, PostgreSQL, MySQL);
//! - [`store`]: the event store (a mapper over a record manager);
//! - [`application`]: applications, repositories, snapshots, configuration from the environment;
//! - [`notify`]: notification logs, readers, the JSON view, HTTP server and remote log;
//! - [`process`]: process applications, policies, systems and their runners;
//! - [`model`]: big arrays, integer sequences, collections, time-bucketed logs;
//! - [`telemetry`]: the `tracing` spans and `metrics` counters es emits;
//! - [`testing`]: given / when / then for aggregates and policies;
//! - [`error`]: the [`enum@Error`] every failure is;
//! - [`guide`]: the guide, with runnable examples for every chapter.

#![warn(missing_docs)]

pub mod application;
pub mod domain;
pub mod error;
pub mod guide;
pub mod mapper;
pub mod model;
pub mod notify;
pub mod process;
pub mod record;
pub mod store;
pub mod telemetry;
pub mod testing;

pub use error::{Error, IntegrityError, Result};
pub use es_macros::{aggregate, event, policy, projection};

/// The `#[async_trait]` macro es's async traits are written with: implement
/// [`record::RecordManager`] or [`notify::NotificationLog`] with `#[es_runtime::async_trait]`,
/// without a dependency of your own on the async-trait crate.
pub use async_trait::async_trait;

/// The axum crate of [`notify::http`] (whose [`router`](notify::http::router) returns an
/// [`axum::Router`]), so that routes can be merged and served with the same version.
#[cfg(feature = "http")]
pub use axum;

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
    pub use crate::process::ProcessContext;
    pub use crate::record::tx::Tx;
    pub use es_macros::{aggregate, event, policy, projection};
    pub use uuid::Uuid;
}

/// Items used by macro-generated code. Not a stable API: do not use directly.
#[doc(hidden)]
pub mod __private {
    pub use crate::domain::aggregate::{
        apply_event, create, trigger, Aggregate, AggregateMeta, AttributeChanged, Discarded,
    };
    pub use crate::domain::event::AnyEvent;
    pub use crate::domain::event::{
        decode_parsed, Event, EventKind, EventPayload, Mutate, StateRef,
    };
    pub use crate::domain::topic::EventType;
    pub use crate::error::{Error, Result};
    pub use crate::process::projection::{mismatched, Projection, ProjectionFuture};
    pub use crate::process::{
        make_default, Policy, PolicyRegistration, PolicyType, ProcessContext,
    };
    pub use crate::record::tx::Tx;

    /// A handler's result, its error named after the handler.
    pub fn handler_result(handler: &str, r: Result<()>) -> Result<()> {
        r.map_err(|e| Error::handler(handler, e))
    }

    pub use core::default::Default;
    pub use inventory;
    pub use serde;
    pub use serde_json;
    pub use uuid::Uuid;

    /// What an event field's type needs: checked where the field is declared, for a clear error.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be an event field: events are stored as JSON and compared as values",
        label = "needs serde `Serialize` + `Deserialize`, `Clone`, `Debug` and `PartialEq`",
        note = "derive them on `{Self}`: `#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]`"
    )]
    pub trait EventField:
        serde::Serialize + serde::de::DeserializeOwned + Clone + core::fmt::Debug + PartialEq
    {
    }
    // Not recommended: an unsuitable type is then reported as not an `EventField` (with the
    // message above), instead of as lacking `Serialize` with serde's list of types that have it.
    #[diagnostic::do_not_recommend]
    impl<
            T: serde::Serialize + serde::de::DeserializeOwned + Clone + core::fmt::Debug + PartialEq,
        > EventField for T
    {
    }
    /// Compile-time check that `T` can be an event field.
    pub const fn assert_event_field<T: EventField>() {}

    /// Serialises an event field (the `serialize_with` of generated events).
    pub fn ser_event_field<T: EventField, S: serde::Serializer>(
        value: &T,
        serializer: S,
    ) -> core::result::Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }

    /// Deserialises an event field (the `deserialize_with` of generated events).
    pub fn de_event_field<'de, T: EventField, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> core::result::Result<T, D::Error> {
        T::deserialize(deserializer)
    }

    /// Builds an aggregate from its fields (struct literals in an `#[aggregate]` impl block go
    /// through it, so that the user never writes the bookkeeping field).
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not an aggregate",
        label = "`{Self}` needs `#[aggregate]` on its struct",
        note = "add `#[aggregate]` to `struct {Self}` as well as to its `impl` block: the struct's attribute implements `Aggregate`"
    )]
    pub trait Construct: Sized {
        /// The aggregate's fields, without the bookkeeping.
        type Fields;
        /// The aggregate with these fields and fresh bookkeeping.
        fn construct(fields: Self::Fields) -> Self;
    }
    /// The fields type of an aggregate (a struct literal's path).
    pub type Fields<T> = <T as Construct>::Fields;

    /// What an aggregate field's type needs: checked where the field is declared.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a field of an aggregate: aggregates are snapshotted as JSON",
        label = "needs serde `Serialize` + `Deserialize`",
        note = "derive them on `{Self}` (`#[derive(serde::Serialize, serde::Deserialize)]`), or mark the field `#[serde(skip)]` if it is not part of the state"
    )]
    pub trait StateField: serde::Serialize + serde::de::DeserializeOwned {}
    // Not recommended, for the same reason as `EventField`'s.
    #[diagnostic::do_not_recommend]
    impl<T: serde::Serialize + serde::de::DeserializeOwned> StateField for T {}
    /// Compile-time check that `T` can be an aggregate field.
    pub const fn assert_state_field<T: StateField>() {}

    /// Joins `a`, a dot and `b` into a byte array of length `N` (used by [`topic_concat`]).
    pub const fn join_topic<const N: usize>(a: &str, b: &str) -> [u8; N] {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        let mut out = [0u8; N];
        let mut i = 0;
        while i < a.len() && i < N {
            out[i] = a[i];
            i += 1;
        }
        if i < N {
            out[i] = b'.';
            i += 1;
        }
        let mut j = 0;
        while j < b.len() && i < N {
            out[i] = b[j];
            i += 1;
            j += 1;
        }
        out
    }

    /// `"<a>.<b>"` as a `&'static str`, computed at compile time from two constant strings.
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __es_topic_concat {
        ($a:expr, $b:expr) => {{
            const __ES_A: &::core::primitive::str = $a;
            const __ES_B: &::core::primitive::str = $b;
            const __ES_N: ::core::primitive::usize = __ES_A.len() + 1 + __ES_B.len();
            const __ES_BYTES: [::core::primitive::u8; __ES_N] =
                $crate::__private::join_topic::<__ES_N>(__ES_A, __ES_B);
            match ::core::str::from_utf8(&__ES_BYTES) {
                ::core::result::Result::Ok(s) => s,
                ::core::result::Result::Err(_) => ::core::panic!("topic is not valid UTF-8"),
            }
        }};
    }
    pub use crate::__es_topic_concat as topic_concat;
}
