//! # es: event sourcing for Rust
//!
//! Annotate plain structs and impl blocks with `#[aggregate]` and `#[event]`; es generates the
//! event plumbing. The runtime stores, replays, propagates and processes the events.
//!
//! Layers, one module each:
//! - [`domain`]: aggregates, events, the SHA-256 hash chain, topics (synchronous, no I/O);
//! - [`record`]: record managers (in memory, SQLite, PostgreSQL, MySQL);
//! - [`notify`]: notification logs, readers, the JSON view, HTTP server and remote log;
//! - [`process`]: process applications, policies, systems and their runners;
//! - [`model`]: the big array and integer sequence generators;
//!
//! Every failure is an [`enum@Error`].

#![warn(missing_docs)]

pub mod application;
pub mod domain;
pub mod error;
pub mod mapper;
pub mod model;
pub mod notify;
pub mod process;
pub mod record;
pub mod store;

pub use error::{Error, IntegrityError, Result};
pub use es_macros::{aggregate, event, policy, projection};

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
    impl<
            T: serde::Serialize + serde::de::DeserializeOwned + Clone + core::fmt::Debug + PartialEq,
        > EventField for T
    {
    }
    /// Compile-time check that `T` can be an event field.
    pub const fn assert_event_field<T: EventField>() {}

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
