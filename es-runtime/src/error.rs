//! The one error type of es.
//!
//! Variants follow the exceptions of the reference library: a caller can match on the kind of
//! failure (`Concurrency`, `DataIntegrity`, `NotFound`, ...) and every variant says in words what
//! went wrong.

use uuid::Uuid;

/// Shorthand for results whose error is [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in es.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another writer already stored an event at this position: reload and retry.
    #[error("concurrency error: {0}")]
    Concurrency(String),
    /// A record already occupies this place (sequence and position, notification id, or tracking).
    #[error("record conflict: {0}")]
    RecordConflict(String),
    /// Stored or received data failed a check: hash, chain, cipher, or shape.
    #[error("data integrity: {0}")]
    DataIntegrity(#[from] IntegrityError),
    /// A command or attribute was used on an aggregate that has been discarded.
    #[error("entity {0} is discarded")]
    EntityIsDiscarded(Uuid),
    /// Nothing was found under this id (or it was discarded).
    #[error("not found: {0}")]
    NotFound(String),
    /// A topic names no registered event type.
    #[error("topic resolution: {0}")]
    TopicResolution(String),
    /// Two event types claim the same topic.
    #[error("topic conflict: topic {topic:?} is claimed by {first} and {second}")]
    TopicConflict {
        /// The contested topic.
        topic: String,
        /// The first type that claimed it.
        first: String,
        /// Another type that claimed it.
        second: String,
    },
    /// An event of one aggregate type was applied to another, or before the aggregate existed.
    #[error("mismatched event: {0}")]
    MismatchedEvent(String),
    /// The database or network failed (connection lost, timeout, server error).
    #[error("operational error: {0}")]
    Operational(String),
    /// The configuration is invalid (bad URL, bad cipher key, missing table, ...).
    #[error("configuration error: {0}")]
    Configuration(String),
    /// A value could not be serialised or deserialised.
    #[error("encoding error: {0}")]
    Encoding(String),
    /// An attribute name that the aggregate does not have.
    #[error("unknown attribute {name:?} on {aggregate}")]
    UnknownAttribute {
        /// The aggregate type.
        aggregate: &'static str,
        /// The attribute name that was asked for.
        name: String,
    },
    /// A stored event of an older schema version could not be upcast.
    #[error("upcast error: {0}")]
    Upcast(String),
    /// A causal dependency of a notification has not been processed yet.
    #[error("causal dependency failed: {0}")]
    CausalDependencyFailed(String),
    /// A notification log section id or section content is malformed.
    #[error("bad section: {0}")]
    BadSection(String),
    /// A process application could not process a notification of an upstream application
    /// (its policy failed, or its results could not be recorded). Nothing was recorded for
    /// that notification: processing it again later is safe.
    #[error(
        "{application} could not process notification {notification_id} of {upstream}: {source}"
    )]
    Processing {
        /// The process application (its name in the database).
        application: String,
        /// The upstream application whose notification it was.
        upstream: String,
        /// The notification id.
        notification_id: i64,
        /// What went wrong.
        source: Box<Error>,
    },
    /// A policy's or projection's handler failed (its error is the source).
    #[error("handler {handler} failed: {source}")]
    Handler {
        /// The handler: `Type::method`.
        handler: String,
        /// What the handler returned.
        source: Box<Error>,
    },
}

/// The ways stored or received data can fail an integrity check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// An event's state does not match its own hash.
    #[error(
        "event hash mismatch for {originator_id} v{version}: stored {stored}, computed {computed}"
    )]
    EventHash {
        /// The aggregate the event belongs to.
        originator_id: Uuid,
        /// The event's originator version.
        version: u64,
        /// The hash the event carries.
        stored: String,
        /// The hash computed from its state.
        computed: String,
    },
    /// An event's previous hash does not match the head of the sequence before it.
    #[error("head hash mismatch for {originator_id} v{version}: expected previous {expected}, event says {actual}")]
    HeadHash {
        /// The aggregate the event belongs to.
        originator_id: Uuid,
        /// The event's originator version.
        version: u64,
        /// The head hash of the aggregate before this event.
        expected: String,
        /// The previous hash recorded in the event.
        actual: String,
    },
    /// An event's originator id is not the aggregate's id.
    #[error("originator id mismatch: event for {event}, aggregate is {aggregate}")]
    OriginatorId {
        /// The id in the event.
        event: Uuid,
        /// The id of the aggregate it was applied to.
        aggregate: Uuid,
    },
    /// An event's originator version does not follow the aggregate's version.
    #[error("originator version mismatch for {originator_id}: event has v{event}, aggregate expects v{expected}")]
    OriginatorVersion {
        /// The aggregate id.
        originator_id: Uuid,
        /// The version in the event.
        event: u64,
        /// The version the aggregate expected next.
        expected: u64,
    },
    /// Decryption failed: damaged ciphertext, wrong key or truncated data.
    #[error("cipher: {0}")]
    Cipher(String),
    /// A stored record does not have the shape es writes.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl Error {
    /// True for [`Error::Concurrency`] and [`Error::RecordConflict`]: the write lost a race.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Concurrency(_) | Error::RecordConflict(_))
    }
}

impl Error {
    /// `source`, as the failure of the handler `handler` (`Type::method`).
    pub fn handler(handler: &str, source: Error) -> Error {
        Error::Handler {
            handler: handler.to_string(),
            source: Box::new(source),
        }
    }
}

/// rusqlite errors in user code (a projection's SQL): constraint violations are
/// [`Error::RecordConflict`], the rest as the SQLite backend maps them.
#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        crate::record::sqlite::map_err(e)
    }
}

/// sqlx errors in user code (a projection's SQL): unique violations are
/// [`Error::RecordConflict`], other database errors and connection failures
/// [`Error::Operational`].
#[cfg(any(feature = "postgres", feature = "mysql"))]
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
                Error::RecordConflict(format!("sql: {}", db.message()))
            }
            _ => Error::Operational(format!("sql: {e}")),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Encoding(e.to_string())
    }
}
