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
    /// A number JSON cannot hold (NaN or an infinity, which serde_json would write as `null`):
    /// the event (or snapshot) holding it is refused before it exists, since it could never
    /// be read back.
    #[error("{topic}: field {field} is {value}, which JSON cannot hold (it would be stored as null and never read back)")]
    NonFiniteNumber {
        /// The event's topic (for a snapshot: the aggregate's).
        topic: String,
        /// The path of the field inside the payload, such as `readings[2].celsius`.
        field: String,
        /// The value (NaN or an infinity).
        value: f64,
    },
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
    /// A command refused by the domain: the user's own error type, carried through es (make
    /// one with [`Error::domain`], get it back typed with [`Error::domain_ref`] or
    /// [`Error::into_domain`]). With the `axum` feature it is answered with status 422.
    #[error(transparent)]
    Domain(Box<dyn std::error::Error + Send + Sync + 'static>),
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

    /// True if the same operation may succeed when tried again, unchanged or on fresh state:
    /// [`Error::Concurrency`] (reload and run the command again, as
    /// [`Application::update`](crate::application::Application::update) does),
    /// [`Error::Operational`] (the database or network failed: a later try may reach it) and
    /// [`Error::CausalDependencyFailed`] (the dependency may be processed by then), and an
    /// [`Error::Processing`] whose cause is one of these. Domain refusals, bad data,
    /// configuration errors and conflicts on tracking records are not.
    ///
    /// An operational error on a write does not say whether the write was committed (the
    /// connection may have been lost after the commit): read before writing again.
    ///
    /// ```
    /// use es_runtime::Error;
    /// assert!(Error::Concurrency("account 1 v3".into()).is_retryable());
    /// assert!(!Error::NotFound("account 1".into()).is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Concurrency(_) | Error::Operational(_) | Error::CausalDependencyFailed(_) => {
                true
            }
            Error::Processing { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    /// Wraps a domain error of the user's own type (a command's refusal, such as "insufficient
    /// funds") as [`Error::Domain`].
    ///
    /// ```
    /// #[derive(Debug, PartialEq)]
    /// struct InsufficientFunds { short_by: u64 }
    /// impl std::fmt::Display for InsufficientFunds {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         write!(f, "insufficient funds: short by {}", self.short_by)
    ///     }
    /// }
    /// impl std::error::Error for InsufficientFunds {}
    ///
    /// let e = es_runtime::Error::domain(InsufficientFunds { short_by: 5 });
    /// assert_eq!(e.to_string(), "insufficient funds: short by 5");
    /// assert_eq!(e.domain_ref::<InsufficientFunds>(), Some(&InsufficientFunds { short_by: 5 }));
    /// assert_eq!(e.into_domain::<InsufficientFunds>().ok(), Some(InsufficientFunds { short_by: 5 }));
    /// ```
    pub fn domain(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Domain(Box::new(error))
    }

    /// The domain error inside, if this is an [`Error::Domain`] of type `E`.
    pub fn domain_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Domain(e) => e.downcast_ref::<E>(),
            _ => None,
        }
    }

    /// The domain error inside, by value, if this is an [`Error::Domain`] of type `E`; else
    /// the error itself, unchanged.
    pub fn into_domain<E: std::error::Error + 'static>(self) -> std::result::Result<E, Error> {
        match self {
            Error::Domain(e) => match e.downcast::<E>() {
                Ok(e) => Ok(*e),
                Err(other) => Err(Error::Domain(other)),
            },
            other => Err(other),
        }
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

impl Error {
    /// The HTTP status that answers this error: 404 for [`Error::NotFound`] and
    /// [`Error::EntityIsDiscarded`], 409 for [`Error::Concurrency`] and
    /// [`Error::RecordConflict`], 422 for [`Error::Domain`] and [`Error::NonFiniteNumber`],
    /// 500 for everything else (the server's fault, not the request's).
    pub fn http_status(&self) -> u16 {
        match self {
            Error::NotFound(_) | Error::EntityIsDiscarded(_) => 404,
            Error::Concurrency(_) | Error::RecordConflict(_) => 409,
            Error::Domain(_) | Error::NonFiniteNumber { .. } => 422,
            _ => 500,
        }
    }

    /// A short stable name of the variant (`"not_found"`, `"concurrency"`, ...), as sent in
    /// HTTP error bodies.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Concurrency(_) => "concurrency",
            Error::RecordConflict(_) => "record_conflict",
            Error::DataIntegrity(_) => "data_integrity",
            Error::EntityIsDiscarded(_) => "entity_is_discarded",
            Error::NotFound(_) => "not_found",
            Error::TopicResolution(_) => "topic_resolution",
            Error::TopicConflict { .. } => "topic_conflict",
            Error::MismatchedEvent(_) => "mismatched_event",
            Error::Operational(_) => "operational",
            Error::Configuration(_) => "configuration",
            Error::Encoding(_) => "encoding",
            Error::UnknownAttribute { .. } => "unknown_attribute",
            Error::Upcast(_) => "upcast",
            Error::CausalDependencyFailed(_) => "causal_dependency_failed",
            Error::BadSection(_) => "bad_section",
            Error::Processing { .. } => "processing",
            Error::Handler { .. } => "handler",
            Error::Domain(_) => "domain",
            Error::NonFiniteNumber { .. } => "non_finite_number",
        }
    }
}

/// With the `axum` feature, a handler can return `es_runtime::Result<T>` and use `?` on es
/// calls: an error becomes a response with [`Error::http_status`] and a JSON body
/// `{"error": kind, "message": text}`. For 500 the message is only "internal server error"
/// (database messages stay on the server: the error is logged through `tracing` instead).
///
/// ```
/// use axum::response::IntoResponse;
/// let response = es_runtime::Error::NotFound("account 7".into()).into_response();
/// assert_eq!(response.status(), 404);
/// ```
#[cfg(feature = "axum")]
impl axum::response::IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        use axum::http::{header, StatusCode};
        let status =
            StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = if status.is_server_error() {
            tracing::error!(error = %self, kind = self.kind(), "es: request failed");
            "internal server error".to_string()
        } else {
            self.to_string()
        };
        let body = serde_json::json!({ "error": self.kind(), "message": message }).to_string();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}
