//! Record managers over tables you describe: your own table and column names (manual §8.1 and
//! §15.2), on SQLite, PostgreSQL and MySQL, without writing a record manager.
//!
//! A [`TableSpec`] names the table and its columns: a sequence id, a position, a topic and a
//! state, and optionally an application name, a pipeline id and a notification id. Hand it to
//! [`ApplicationBuilder::table`](crate::application::ApplicationBuilder::table) (the
//! application's database makes the record manager), or make one directly with
//! `SqliteTable::new`, `PostgresTable::new` or `MySqlTable::new`.
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # async fn demo() -> es_runtime::Result<()> {
//! use es_runtime::application::Application;
//! use es_runtime::record::mapped::TableSpec;
//! use es_runtime::record::sqlite::SqliteDatabase;
//! use std::sync::Arc;
//!
//! let db = SqliteDatabase::memory()?;
//! db.with_connection(|c| {
//!     c.execute_batch(
//!         "CREATE TABLE integer_sequenced_items (sequence_id BLOB NOT NULL,
//!              position INTEGER NOT NULL, topic TEXT NOT NULL, state BLOB NOT NULL,
//!              PRIMARY KEY (sequence_id, position))",
//!     )
//!     .map_err(|e| es_runtime::Error::Operational(e.to_string()))
//! })?;
//! let app = Application::builder("app")
//!     .database(Arc::new(db))
//!     .table(TableSpec::integer_sequenced("integer_sequenced_items"))
//!     .build()
//!     .await?;
//! # let _ = app; Ok(()) }
//! # #[cfg(feature = "sqlite")]
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! # What the table must have
//!
//! - A unique key on (application name column, if any, sequence id, position): a second item
//!   at a taken position is then [`Error::RecordConflict`] (a save's
//!   [`Error::Concurrency`]), and nothing of the batch is written. Without such a key duplicates
//!   cannot be detected.
//! - Column types: the position (and notification id, pipeline id) an integer (`BIGINT`); the
//!   topic text; the sequence id a native UUID (`uuid` on PostgreSQL, 16 bytes `BLOB` or
//!   `BINARY(16)` elsewhere) or, with [`TableSpec::uuid_as_text`], text; the state bytes
//!   (`BLOB`, `BYTEA`, `LONGBLOB`) or, with [`TableSpec::state_as_text`], text (then a state
//!   must be UTF-8: no cipher and no compression, else [`Error::Encoding`]).
//!
//! # What it can carry, and what it cannot
//!
//! - Items, ranges with bounds, limits and order, single items, all sequence ids, deletion.
//! - Notifications, when the table has a notification id column: a write takes a lock
//!   (SQLite's write lock, a PostgreSQL advisory transaction lock, a MySQL named lock) held
//!   until it commits and numbers its items from the highest id plus one, so ids are gap-free
//!   and become visible in order. Without that column, reading notifications is an
//!   [`Error::Configuration`] saying so.
//! - Tracking records and causal dependencies (process applications) need es's own tables: a
//!   batch that carries them, and the tracking reads, are an [`Error::Configuration`].
//! - Snapshots: a second table, described by [`TableSpec::snapshots`] and given to
//!   [`ApplicationBuilder::snapshot_table`](crate::application::ApplicationBuilder::snapshot_table).
//!
//! Names are plain SQL identifiers (ASCII letters, digits, underscores, not starting with a
//! digit; a table name may be qualified by one schema, `schema.table`) and are quoted in every
//! statement. PostgreSQL matches them as it matches unquoted names (folded to lower case).
// Without any SQL backend only the table descriptions are used.
#![cfg_attr(
    not(any(feature = "postgres", feature = "mysql", feature = "sqlite")),
    allow(dead_code, unused_macros, unused_imports)
)]

#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod sqlx;

#[cfg(feature = "sqlite")]
pub use self::sqlite::SqliteTable;
#[cfg(feature = "mysql")]
pub use self::sqlx::MySqlTable;
#[cfg(feature = "postgres")]
pub use self::sqlx::PostgresTable;

use super::{Bytes, ItemQuery, RecordBatch, RecordKind, SequencedItem};
use crate::error::{Error, IntegrityError, Result};
use uuid::Uuid;

/// A table of yours and the names of its columns, for a record manager over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSpec {
    table: String,
    kind: RecordKind,
    sequence_id: String,
    position: String,
    topic: String,
    state: String,
    application_name: Option<String>,
    pipeline_id: Option<String>,
    notification_id: Option<String>,
    uuid_as_text: bool,
    state_as_text: bool,
}

impl TableSpec {
    /// An event table named `table` with columns `sequence_id`, `position`, `topic` and
    /// `state` (the manual's `integer_sequenced_items`); rename them with the other methods.
    pub fn integer_sequenced(table: impl Into<String>) -> Self {
        TableSpec {
            table: table.into(),
            kind: RecordKind::Events,
            sequence_id: "sequence_id".into(),
            position: "position".into(),
            topic: "topic".into(),
            state: "state".into(),
            application_name: None,
            pipeline_id: None,
            notification_id: None,
            uuid_as_text: false,
            state_as_text: false,
        }
    }

    /// An event table in the reference library's `stored_events` style: `application_name`,
    /// `originator_id`, `originator_version`, `pipeline_id`, `notification_id`, `topic`,
    /// `state`.
    pub fn stored_events(table: impl Into<String>) -> Self {
        Self::integer_sequenced(table)
            .sequence_id("originator_id")
            .position("originator_version")
            .application_name("application_name")
            .pipeline_id("pipeline_id")
            .notification_id("notification_id")
    }

    /// A snapshot table with columns `sequence_id`, `position`, `topic` and `state`.
    pub fn snapshots(table: impl Into<String>) -> Self {
        Self::integer_sequenced(table).kind(RecordKind::Snapshots)
    }

    /// A timestamp-sequenced table (positions are microseconds since the epoch) with columns
    /// `sequence_id`, `position`, `topic` and `state`.
    pub fn timestamp_sequenced(table: impl Into<String>) -> Self {
        Self::integer_sequenced(table).kind(RecordKind::TimestampSequenced)
    }

    /// What the table holds (events, snapshots or timestamp-sequenced items).
    pub fn kind(mut self, kind: RecordKind) -> Self {
        self.kind = kind;
        self
    }
    /// The sequence id column (an aggregate's id).
    pub fn sequence_id(mut self, column: impl Into<String>) -> Self {
        self.sequence_id = column.into();
        self
    }
    /// The position column (an aggregate's version).
    pub fn position(mut self, column: impl Into<String>) -> Self {
        self.position = column.into();
        self
    }
    /// The topic column.
    pub fn topic(mut self, column: impl Into<String>) -> Self {
        self.topic = column.into();
        self
    }
    /// The state column.
    pub fn state(mut self, column: impl Into<String>) -> Self {
        self.state = column.into();
        self
    }
    /// A column holding the application name: rows are written with it and read only if
    /// they match, so several applications can share the table.
    pub fn application_name(mut self, column: impl Into<String>) -> Self {
        self.application_name = Some(column.into());
        self
    }
    /// A column holding the pipeline id (written, and matched by notification reads).
    pub fn pipeline_id(mut self, column: impl Into<String>) -> Self {
        self.pipeline_id = Some(column.into());
        self
    }
    /// A column holding notification ids, which es assigns (1, 2, 3, ... per application
    /// and pipeline): the table then serves the notification log.
    pub fn notification_id(mut self, column: impl Into<String>) -> Self {
        self.notification_id = Some(column.into());
        self
    }
    /// The sequence id column is text (`CHAR(36)`, `TEXT`, ...) holding hyphenated UUIDs.
    pub fn uuid_as_text(mut self) -> Self {
        self.uuid_as_text = true;
        self
    }
    /// The state column is text: states are written as UTF-8 (only plain JSON fits).
    pub fn state_as_text(mut self) -> Self {
        self.state_as_text = true;
        self
    }
    /// The table name, as given.
    pub fn table_name(&self) -> &str {
        &self.table
    }
    /// What the table holds.
    pub fn record_kind(&self) -> RecordKind {
        self.kind
    }
}

/// The SQL flavour a mapping writes.
// A build with one backend constructs only its own dialect.
#[cfg_attr(
    not(all(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

impl Dialect {
    fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
        }
    }
    fn quote(self, ident: &str) -> String {
        ident
            .split('.')
            .map(|part| match self {
                // SQLite reads a double-quoted name that is no column as a string literal,
                // so a wrong column name would go unnoticed; backticks are names only.
                Dialect::MySql | Dialect::Sqlite => format!("`{part}`"),
                Dialect::Postgres => format!("\"{}\"", part.to_ascii_lowercase()),
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// A value bound to a statement, in the order of its placeholders.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Uuid(Uuid),
    Bytes(Bytes),
    Text(String),
    Int(i64),
}

/// A statement and its arguments.
#[derive(Debug)]
pub(crate) struct Stmt {
    pub(crate) sql: String,
    pub(crate) args: Vec<Value>,
}

impl Stmt {
    fn new(sql: String) -> Self {
        Stmt {
            sql,
            args: Vec::new(),
        }
    }
    /// Appends `WHERE`/`AND`, `column op placeholder`, and binds `v`.
    fn cond(&mut self, dialect: Dialect, column: &str, op: &str, v: Value) {
        let word = if self.args.is_empty() && !self.sql.contains(" WHERE ") {
            " WHERE "
        } else {
            " AND "
        };
        self.sql.push_str(word);
        self.sql.push_str(column);
        self.sql.push_str(op);
        self.placeholder(dialect, v);
    }
    fn placeholder(&mut self, dialect: Dialect, v: Value) {
        self.args.push(v);
        match dialect {
            Dialect::Postgres => {
                self.sql.push('$');
                self.sql
                    .push_str(itoa::Buffer::new().format(self.args.len()));
            }
            _ => self.sql.push('?'),
        }
    }
    fn limit(&mut self, dialect: Dialect, limit: Option<usize>) {
        if let Some(l) = limit {
            self.sql.push_str(" LIMIT ");
            self.placeholder(dialect, Value::Int(i64::try_from(l).unwrap_or(i64::MAX)));
        }
    }
}

/// A checked [`TableSpec`] for one dialect, application and pipeline: builds the statements.
#[derive(Debug)]
pub(crate) struct Mapping {
    pub(crate) dialect: Dialect,
    pub(crate) spec: TableSpec,
    pub(crate) application_name: String,
    pub(crate) pipeline_id: i64,
    table: String,
    seq: String,
    pos: String,
    app: Option<String>,
    pipe: Option<String>,
    notif: Option<String>,
    /// `seq, pos, topic, state`, quoted.
    columns: String,
}

fn check_name(what: &str, s: &str, dotted: bool) -> Result<()> {
    let parts: Vec<&str> = s.split('.').collect();
    let ok = (parts.len() == 1 || (dotted && parts.len() == 2))
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 64
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !p.as_bytes()[0].is_ascii_digit()
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Configuration(format!(
            "{what} {s:?} is not allowed: use ASCII letters, digits and underscores (at most 64, not starting with a digit){}",
            if dotted { ", optionally schema.table" } else { "" }
        )))
    }
}

impl Mapping {
    pub(crate) fn new(
        dialect: Dialect,
        spec: &TableSpec,
        application_name: &str,
        pipeline_id: i64,
    ) -> Result<Self> {
        check_name("table name", &spec.table, true)?;
        let named = [
            ("sequence id column", Some(&spec.sequence_id)),
            ("position column", Some(&spec.position)),
            ("topic column", Some(&spec.topic)),
            ("state column", Some(&spec.state)),
            ("application name column", spec.application_name.as_ref()),
            ("pipeline id column", spec.pipeline_id.as_ref()),
            ("notification id column", spec.notification_id.as_ref()),
        ];
        let mut seen: Vec<String> = Vec::new();
        for (what, col) in named {
            if let Some(c) = col {
                check_name(what, c, false)?;
                let folded = c.to_ascii_lowercase();
                if seen.contains(&folded) {
                    return Err(Error::Configuration(format!(
                        "table {}: column {c:?} is named for two roles",
                        spec.table
                    )));
                }
                seen.push(folded);
            }
        }
        let q = |c: &str| dialect.quote(c);
        Ok(Mapping {
            dialect,
            application_name: application_name.to_string(),
            pipeline_id,
            table: q(&spec.table),
            seq: q(&spec.sequence_id),
            pos: q(&spec.position),
            app: spec.application_name.as_deref().map(q),
            pipe: spec.pipeline_id.as_deref().map(q),
            notif: spec.notification_id.as_deref().map(q),
            columns: [&spec.sequence_id, &spec.position, &spec.topic, &spec.state]
                .map(|c| q(c))
                .join(", "),
            spec: spec.clone(),
        })
    }

    /// A name for messages: backend and table.
    pub(crate) fn label(&self) -> String {
        format!("{} table {}", self.dialect.name(), self.spec.table)
    }

    /// The sequence id as the column stores it.
    fn uuid(&self, id: Uuid) -> Value {
        match (self.spec.uuid_as_text, self.dialect) {
            (true, _) => Value::Text(id.hyphenated().to_string()),
            (false, Dialect::Postgres) => Value::Uuid(id),
            (false, _) => Value::Bytes(Bytes::copy_from_slice(id.as_bytes())),
        }
    }

    /// A stored sequence id: 16 bytes, or a UUID in text (hyphenated or not).
    pub(crate) fn parse_uuid(&self, b: &[u8]) -> Result<Uuid> {
        Uuid::from_slice(b)
            .ok()
            .or_else(|| std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()))
            .ok_or_else(|| {
                Error::DataIntegrity(IntegrityError::Corrupt(format!(
                    "{}: sequence id {:?} is not a UUID",
                    self.label(),
                    String::from_utf8_lossy(b)
                )))
            })
    }

    /// A stored topic.
    pub(crate) fn topic(&self, b: &[u8]) -> Result<std::borrow::Cow<'static, str>> {
        let s = std::str::from_utf8(b).map_err(|_| {
            Error::DataIntegrity(IntegrityError::Corrupt(format!(
                "{}: a topic is not UTF-8 text",
                self.label()
            )))
        })?;
        Ok(match crate::domain::topic::registered(s) {
            Some(t) => std::borrow::Cow::Borrowed(t),
            None => std::borrow::Cow::Owned(s.to_string()),
        })
    }

    /// Appends `application name = ?` when the table has that column.
    fn own_rows(&self, st: &mut Stmt) {
        if let Some(app) = &self.app {
            st.cond(
                self.dialect,
                app,
                " = ",
                Value::Text(self.application_name.clone()),
            );
        }
    }

    /// Appends the application and pipeline conditions of the notification log.
    fn own_log(&self, st: &mut Stmt) {
        self.own_rows(st);
        if let Some(pipe) = &self.pipe {
            st.cond(self.dialect, pipe, " = ", Value::Int(self.pipeline_id));
        }
    }

    /// Refuses what the table cannot carry; `Ok(false)` for an empty batch.
    pub(crate) fn check_batch(&self, batch: &RecordBatch) -> Result<bool> {
        if batch.tracking.is_some() || batch.causal_dependencies.is_some() {
            return Err(self.no_tracking());
        }
        Ok(!batch.items.is_empty())
    }

    /// The insert of one item (with its notification id when the table has that column).
    pub(crate) fn insert(&self, item: &SequencedItem, notification_id: i64) -> Result<Stmt> {
        let mut cols = self.columns.clone();
        let mut st = Stmt::new(String::new());
        st.sql.push_str(" VALUES (");
        let d = self.dialect;
        let state = if self.spec.state_as_text {
            // A text column holds the self-contained JSON form of a compact state (which
            // reads back and verifies as it is).
            let expanded = crate::domain::state::expand_item(item);
            match std::str::from_utf8(&expanded) {
                Ok(s) => Value::Text(s.to_string()),
                Err(_) => {
                    return Err(Error::Encoding(format!(
                        "{}: the state column is text, but this state is not UTF-8 (compressed or encrypted): use a binary column",
                        self.label()
                    )))
                }
            }
        } else {
            Value::Bytes(item.state.clone())
        };
        let values = [
            self.uuid(item.sequence_id),
            Value::Int(item.position),
            Value::Text(item.topic.to_string()),
            state,
        ];
        for (k, v) in values.into_iter().enumerate() {
            if k > 0 {
                st.sql.push_str(", ");
            }
            st.placeholder(d, v);
        }
        let extra = [
            (&self.app, Value::Text(self.application_name.clone())),
            (&self.pipe, Value::Int(self.pipeline_id)),
            (&self.notif, Value::Int(notification_id)),
        ];
        for (col, v) in extra {
            if let Some(c) = col {
                cols.push_str(", ");
                cols.push_str(c);
                st.sql.push_str(", ");
                st.placeholder(d, v);
            }
        }
        st.sql.push(')');
        st.sql = format!("INSERT INTO {} ({cols}){}", self.table, st.sql);
        Ok(st)
    }

    /// `SELECT COALESCE(MAX(notification id), 0)` of this log.
    pub(crate) fn max_notification(&self) -> Result<Stmt> {
        let n = self.notif.as_ref().ok_or_else(|| self.no_notifications())?;
        let mut st = Stmt::new(format!("SELECT COALESCE(MAX({n}), 0) FROM {}", self.table));
        self.own_log(&mut st);
        Ok(st)
    }

    /// A query selecting nothing, which fails if the table or a column is missing.
    pub(crate) fn probe(&self) -> Stmt {
        let mut cols = self.columns.clone();
        for c in [&self.app, &self.pipe, &self.notif].into_iter().flatten() {
            cols.push_str(", ");
            cols.push_str(c);
        }
        Stmt::new(format!("SELECT {cols} FROM {} WHERE 1 = 0", self.table))
    }

    /// Items of one sequence (rows: seq, pos, topic, state), in the query's order; the caller
    /// reverses them when the results' order differs from the query's.
    pub(crate) fn items(&self, id: Uuid, q: &ItemQuery) -> Stmt {
        let d = self.dialect;
        let mut st = Stmt::new(format!("SELECT {} FROM {}", self.columns, self.table));
        self.own_rows(&mut st);
        st.cond(d, &self.seq, " = ", self.uuid(id));
        let bounds = [
            (q.gt, " > "),
            (q.gte, " >= "),
            (q.lt, " < "),
            (q.lte, " <= "),
        ];
        for (b, op) in bounds {
            if let Some(b) = b {
                st.cond(d, &self.pos, op, Value::Int(b));
            }
        }
        st.sql.push_str(" ORDER BY ");
        st.sql.push_str(&self.pos);
        st.sql
            .push_str(if q.query_descending { " DESC" } else { " ASC" });
        st.limit(d, q.limit);
        st
    }

    /// Items of every sequence with positions in `start..=end`, by position then sequence id.
    pub(crate) fn in_order(&self, start: i64, end: i64, limit: Option<usize>) -> Stmt {
        let d = self.dialect;
        let mut st = Stmt::new(format!("SELECT {} FROM {}", self.columns, self.table));
        self.own_rows(&mut st);
        st.cond(d, &self.pos, " >= ", Value::Int(start));
        st.cond(d, &self.pos, " <= ", Value::Int(end));
        st.sql
            .push_str(&format!(" ORDER BY {}, {}", self.pos, self.seq));
        st.limit(d, limit);
        st
    }

    /// One item (rows: seq, pos, topic, state).
    pub(crate) fn item(&self, id: Uuid, position: i64) -> Stmt {
        let q = ItemQuery {
            gte: Some(position),
            lte: Some(position),
            ..Default::default()
        };
        self.items(id, &q)
    }

    /// The distinct sequence ids (rows: seq).
    pub(crate) fn ids(&self) -> Stmt {
        let mut st = Stmt::new(format!("SELECT DISTINCT {} FROM {}", self.seq, self.table));
        self.own_rows(&mut st);
        st
    }

    /// Deletes one item.
    pub(crate) fn delete(&self, id: Uuid, position: i64) -> Stmt {
        let mut st = Stmt::new(format!("DELETE FROM {}", self.table));
        self.own_rows(&mut st);
        st.cond(self.dialect, &self.seq, " = ", self.uuid(id));
        st.cond(self.dialect, &self.pos, " = ", Value::Int(position));
        st
    }

    /// Notifications with ids in `start..=end` (rows: seq, pos, topic, state, id).
    pub(crate) fn notifications(&self, start: i64, end: i64, limit: Option<usize>) -> Result<Stmt> {
        let n = self.notif.as_ref().ok_or_else(|| self.no_notifications())?;
        let d = self.dialect;
        let mut st = Stmt::new(format!("SELECT {}, {n} FROM {}", self.columns, self.table));
        self.own_log(&mut st);
        st.cond(d, n, " >= ", Value::Int(start));
        st.cond(d, n, " <= ", Value::Int(end));
        st.sql.push_str(&format!(" ORDER BY {n}"));
        st.limit(d, limit);
        Ok(st)
    }

    /// A stable hash (FNV-1a) of the table, application and pipeline: equal in every process.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    fn lock_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let pipe = self.pipeline_id.to_le_bytes();
        let parts: [&[u8]; 3] = [
            self.spec.table.as_bytes(),
            self.application_name.as_bytes(),
            &pipe,
        ];
        for p in parts {
            for b in p.iter().chain(std::iter::once(&0xffu8)) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }

    /// The name of this log's MySQL named lock.
    #[cfg(feature = "mysql")]
    pub(crate) fn lock_name(&self) -> String {
        format!("es_mapped_{:016x}", self.lock_hash())
    }

    /// The key of this log's PostgreSQL advisory lock.
    #[cfg(feature = "postgres")]
    pub(crate) fn lock_key(&self) -> i64 {
        i64::from_ne_bytes(self.lock_hash().to_ne_bytes())
    }

    pub(crate) fn no_notifications(&self) -> Error {
        Error::Configuration(format!(
            "{} has no notification id column, so it has no notification log: name one with TableSpec::notification_id",
            self.label()
        ))
    }

    pub(crate) fn no_tracking(&self) -> Error {
        Error::Configuration(format!(
            "{} cannot hold tracking records or causal dependencies (process applications): use es's own tables for those",
            self.label()
        ))
    }

    /// A backend error about this table: a missing table or column names the spec.
    pub(crate) fn explain(&self, e: Error) -> Error {
        match e {
            // SQLite reports a missing column as a plain failure.
            Error::Operational(m) if m.contains("no such column") => Error::Configuration(format!(
                "{}: {m} (check the column names of its TableSpec)",
                self.label()
            )),
            Error::Configuration(m) => Error::Configuration(format!(
                "{}: {m} (check the table and the column names of its TableSpec)",
                self.label()
            )),
            Error::RecordConflict(m) => Error::RecordConflict(format!("{}: {m}", self.label())),
            other => other,
        }
    }
}

/// Databases whose tables can be mapped (for [`Database::table_record_manager`]).
///
/// [`Database::table_record_manager`]: crate::application::Database::table_record_manager
pub(crate) trait MapTable {
    fn map(
        &self,
        spec: &TableSpec,
        application_name: &str,
        pipeline_id: i64,
    ) -> Result<std::sync::Arc<dyn super::RecordManager>>;
}

/// A record manager over `spec`'s table in `db`.
pub(crate) fn map_table<D: MapTable>(
    db: &D,
    spec: &TableSpec,
    application_name: &str,
    pipeline_id: i64,
) -> Result<std::sync::Arc<dyn super::RecordManager>> {
    db.map(spec, application_name, pipeline_id)
}

/// Implements [`RecordManager`](super::RecordManager) for a type with a `m: Mapping` field and
/// these inherent async methods, each running one prepared [`Stmt`] and explaining its errors
/// with [`Mapping::explain`]: `rows(&Stmt, with_id) -> Vec<(SequencedItem, i64)>` (columns
/// seq, pos, topic, state and, when `with_id`, the notification id), `sequence_ids(&Stmt)`,
/// `scalar(&Stmt) -> i64`, `execute(&Stmt)`, and `write_items(inserts, max)`: the inserts in
/// one transaction which, when `max` is given, first takes the log's lock, reads the highest
/// id with `max` and sets each insert's last argument to the next id.
macro_rules! table_record_manager {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl $crate::record::RecordManager for $ty {
            fn kind(&self) -> $crate::record::RecordKind {
                self.m.spec.record_kind()
            }
            fn application_name(&self) -> &str {
                &self.m.application_name
            }
            fn pipeline_id(&self) -> i64 {
                self.m.pipeline_id
            }
            async fn check(&self) -> $crate::Result<()> {
                self.rows(&self.m.probe(), false).await.map(|_| ())
            }
            async fn write(&self, batch: &$crate::record::RecordBatch) -> $crate::Result<()> {
                if !self.m.check_batch(batch)? {
                    return Ok(());
                }
                let inserts = batch
                    .items
                    .iter()
                    .map(|i| self.m.insert(i, 0))
                    .collect::<$crate::Result<Vec<_>>>()?;
                self.write_items(inserts, self.m.max_notification().ok())
                    .await
            }
            async fn get_item(
                &self,
                sequence_id: uuid::Uuid,
                position: i64,
            ) -> $crate::Result<$crate::record::SequencedItem> {
                let mut rows = self
                    .rows(&self.m.item(sequence_id, position), false)
                    .await?;
                match rows.pop() {
                    Some((item, _)) => Ok(item),
                    None => Err($crate::Error::NotFound(format!(
                        "{}: no item at position {position} of {sequence_id}",
                        self.m.label()
                    ))),
                }
            }
            async fn get_items(
                &self,
                sequence_id: uuid::Uuid,
                query: &$crate::record::ItemQuery,
            ) -> $crate::Result<Vec<$crate::record::SequencedItem>> {
                let rows = self.rows(&self.m.items(sequence_id, query), false).await?;
                Ok($crate::record::mapped::order(
                    rows.into_iter().map(|(i, _)| i).collect(),
                    query,
                ))
            }
            async fn list_sequence_ids(&self) -> $crate::Result<Vec<uuid::Uuid>> {
                self.sequence_ids(&self.m.ids()).await
            }
            async fn get_items_in_order(
                &self,
                start: i64,
                end: i64,
                limit: Option<usize>,
            ) -> $crate::Result<Vec<$crate::record::SequencedItem>> {
                let rows = self
                    .rows(&self.m.in_order(start, end, limit), false)
                    .await?;
                Ok(rows.into_iter().map(|(i, _)| i).collect())
            }
            async fn delete_item(
                &self,
                sequence_id: uuid::Uuid,
                position: i64,
            ) -> $crate::Result<()> {
                self.execute(&self.m.delete(sequence_id, position)).await
            }
            async fn get_notifications(
                &self,
                start: i64,
                end: i64,
                limit: Option<usize>,
            ) -> $crate::Result<Vec<$crate::record::Notification>> {
                let st = self.m.notifications(start, end, limit)?;
                Ok(self
                    .rows(&st, true)
                    .await?
                    .into_iter()
                    .map(|(item, id)| $crate::record::Notification {
                        id,
                        item,
                        causal_dependencies: None,
                    })
                    .collect())
            }
            async fn max_notification_id(&self) -> $crate::Result<i64> {
                self.scalar(&self.m.max_notification()?).await
            }
            async fn max_tracking_id(&self, _upstream: &str) -> $crate::Result<i64> {
                Err(self.m.no_tracking())
            }
            async fn has_tracking_record(
                &self,
                _upstream: &str,
                _notification_id: i64,
            ) -> $crate::Result<bool> {
                Err(self.m.no_tracking())
            }
        }
    };
}
pub(crate) use table_record_manager;

/// Builds a [`SequencedItem`] from a row's four columns.
pub(crate) fn item_from(
    m: &Mapping,
    seq: &[u8],
    position: i64,
    topic: &[u8],
    state: &[u8],
) -> Result<SequencedItem> {
    Ok(SequencedItem {
        sequence_id: m.parse_uuid(seq)?,
        position,
        topic: m.topic(topic)?,
        state: Bytes::copy_from_slice(state),
    })
}

/// Sets each insert's notification id (its last argument) to `after + 1`, `after + 2`, ...
pub(crate) fn number(inserts: &mut [Stmt], after: i64) {
    for (k, st) in inserts.iter_mut().enumerate() {
        if let Some(last) = st.args.last_mut() {
            *last = Value::Int(after.saturating_add(1 + k as i64));
        }
    }
}

/// Reverses `items` when the results are to come in the other order than the query's.
pub(crate) fn order(mut items: Vec<SequencedItem>, q: &ItemQuery) -> Vec<SequencedItem> {
    if q.query_descending != q.results_descending {
        items.reverse();
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_roles_distinct() {
        let m = |s: TableSpec| Mapping::new(Dialect::Sqlite, &s, "a", 0).map(|_| ());
        assert!(m(TableSpec::integer_sequenced("integer_sequenced_items")).is_ok());
        assert!(m(TableSpec::stored_events("public.stored_events")).is_ok());
        for bad in ["a;drop", "", "1x", "a.b.c", "a b"] {
            assert!(
                matches!(
                    m(TableSpec::integer_sequenced(bad)),
                    Err(Error::Configuration(_))
                ),
                "{bad}"
            );
        }
        let e = m(TableSpec::integer_sequenced("t").state("topic")).unwrap_err();
        assert!(e.to_string().contains("two roles"), "{e}");
        assert!(m(TableSpec::integer_sequenced("t").position("x.y")).is_err());
    }

    #[test]
    fn statements_bind_in_placeholder_order() {
        let spec = TableSpec::stored_events("Events");
        let m = Mapping::new(Dialect::Postgres, &spec, "app", 3).unwrap();
        let st = m.notifications(1, 10, Some(5)).unwrap();
        assert_eq!(
            st.sql,
            "SELECT \"originator_id\", \"originator_version\", \"topic\", \"state\", \"notification_id\" \
             FROM \"events\" WHERE \"application_name\" = $1 AND \"pipeline_id\" = $2 \
             AND \"notification_id\" >= $3 AND \"notification_id\" <= $4 ORDER BY \"notification_id\" LIMIT $5"
        );
        assert_eq!(st.args.len(), 5);
        let m = Mapping::new(Dialect::MySql, &TableSpec::integer_sequenced("t"), "a", 0).unwrap();
        let q = ItemQuery {
            gt: Some(1),
            lte: Some(4),
            limit: Some(2),
            query_descending: true,
            ..Default::default()
        };
        assert_eq!(
            m.items(Uuid::nil(), &q).sql,
            "SELECT `sequence_id`, `position`, `topic`, `state` FROM `t` WHERE `sequence_id` = ? \
             AND `position` > ? AND `position` <= ? ORDER BY `position` DESC LIMIT ?"
        );
        assert!(matches!(
            m.max_notification(),
            Err(Error::Configuration(msg)) if msg.contains("no notification id column")
        ));
    }

    #[test]
    fn text_states_must_be_utf8() {
        let spec = TableSpec::integer_sequenced("t")
            .state_as_text()
            .uuid_as_text();
        let m = Mapping::new(Dialect::Sqlite, &spec, "a", 0).unwrap();
        let mut item = SequencedItem {
            sequence_id: Uuid::new_v4(),
            position: 0,
            topic: "x".into(),
            state: Bytes::from_static(b"{}"),
        };
        let st = m.insert(&item, 0).unwrap();
        assert!(matches!(&st.args[0], Value::Text(s) if s.len() == 36));
        item.state = Bytes::from_static(&[0xff, 0]);
        assert!(matches!(m.insert(&item, 0), Err(Error::Encoding(_))));
        let id = Uuid::new_v4();
        assert_eq!(
            m.parse_uuid(id.simple().to_string().as_bytes()).unwrap(),
            id
        );
        assert_eq!(m.parse_uuid(id.as_bytes()).unwrap(), id);
        assert!(m.parse_uuid(b"nope").is_err());
    }
}
