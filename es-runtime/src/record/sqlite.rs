//! The SQLite record manager (rusqlite, feature `sqlite`, on by default).
//!
//! # Why rusqlite and not sqlx
//!
//! Measured on the development machine (2 shared cores, release build, 2,000 transactions of
//! `BEGIN; INSERT one 200-byte row; COMMIT`, WAL and `synchronous=NORMAL`, two runs):
//!
//! | | in memory | file |
//! | --- | --- | --- |
//! | sqlx-sqlite 0.8 | 31-38 µs per transaction | 57-97 µs |
//! | rusqlite 0.32 | 2.7-4.5 µs | 33-54 µs |
//!
//! sqlx runs each statement on a worker thread and hands results back through channels: about
//! 30 µs per transaction more, which in memory is ten times the work itself. The goal for SQLite
//! is twenty times the Python reference library (1-3 thousand saves per second), so the SQLite
//! backend is built on rusqlite.
//!
//! # How the async trait drives the synchronous connection
//!
//! A [`SqliteDatabase`] owns one connection behind a mutex; each trait method takes the mutex and
//! runs its statements inline on the calling task's thread, never holding the lock across an
//! `.await`. Measured the same way (per transaction, two runs; 1 task in sequence, or 8 tasks
//! at once):
//!
//! | | memory, 1 task | memory, 8 tasks | file, 1 task | file, 8 tasks |
//! | --- | --- | --- | --- | --- |
//! | inline under a mutex | 2.6-7.8 µs | 3.1-4.5 µs | 31-35 µs | 46-52 µs |
//! | `spawn_blocking` + mutex | 26-44 µs | 9-11 µs | 67-77 µs | 43 µs |
//! | dedicated thread + channel | 15-49 µs | 11-17 µs | 44-51 µs | 60-65 µs |
//!
//! Inline is the fastest in every case but one (8 tasks on a file, where the three are within
//! the noise of a shared machine). Its cost: a call blocks a runtime worker while SQLite works,
//! or while it waits for another connection's write lock (at most the busy timeout). With one
//! connection per database object, waiting happens only when other processes or other
//! [`SqliteDatabase`] objects write to the same file: use a multi-threaded runtime then.
//!
//! # Schema
//!
//! [`SqliteDatabase::setup_tables`] runs [`SqliteDatabase::ddl`]; [`ddl`] gives the same SQL for
//! any table prefix, for users who create schemas with their own tooling. `{p}` is the prefix.
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS {p}stored_events (
//!     application_name    TEXT    NOT NULL,
//!     originator_id       BLOB    NOT NULL,   -- 16 bytes
//!     originator_version  INTEGER NOT NULL,
//!     pipeline_id         INTEGER NOT NULL,
//!     notification_id     INTEGER NOT NULL,
//!     topic               TEXT    NOT NULL,
//!     state               BLOB    NOT NULL,
//!     causal_dependencies TEXT,
//!     PRIMARY KEY (application_name, originator_id, originator_version));
//! CREATE UNIQUE INDEX IF NOT EXISTS {p}stored_events_notification_idx
//!     ON {p}stored_events (application_name, pipeline_id, notification_id);
//! CREATE TABLE IF NOT EXISTS {p}notification_tracking (
//!     application_name          TEXT    NOT NULL,
//!     upstream_application_name TEXT    NOT NULL,
//!     pipeline_id               INTEGER NOT NULL,
//!     notification_id           INTEGER NOT NULL,
//!     PRIMARY KEY (application_name, upstream_application_name, pipeline_id, notification_id));
//! CREATE TABLE IF NOT EXISTS {p}snapshots (application_name, originator_id, originator_version,
//!     topic, state, PRIMARY KEY (application_name, originator_id, originator_version));
//! CREATE TABLE IF NOT EXISTS {p}timestamp_sequenced_items (application_name, sequence_id,
//!     position INTEGER,  -- microseconds since the epoch
//!     topic, state, PRIMARY KEY (application_name, sequence_id, position));
//! CREATE INDEX IF NOT EXISTS {p}timestamp_sequenced_items_position_idx
//!     ON {p}timestamp_sequenced_items (application_name, position);
//! ```
//!
//! # Notification ids
//!
//! A save is one `BEGIN IMMEDIATE` transaction: it takes SQLite's write lock first, reads the
//! highest notification id of its (application, pipeline) through the unique index, inserts all
//! its rows in one multi-row `INSERT` numbered from there, writes the tracking record, and
//! commits. SQLite admits one writer at a time (across connections and processes), so the ids
//! are gap-free and become visible in order, without retries; writers that find the lock taken
//! wait (busy timeout, 5 s by default) instead of failing. Deleting the newest event of a log
//! frees its id for the next save.
//!
//! On a private in-memory database ([`SqliteDatabase::memory`]) only its own connection can
//! write, so a record manager remembers the highest id it wrote, with the connection's count of
//! changed rows at that commit: while the count is unchanged, nothing else has written and the
//! next save skips the `MAX` read. A save that then fits one `INSERT` and has no tracking record
//! is that one statement, atomic by itself, without `BEGIN`/`COMMIT` around it. Anything that
//! changes rows (another manager, a rolled-back write, a delete) or hands the connection to your
//! code ([`SqliteDatabase::with_connection`], [`SqliteDatabase::transaction`], where a table
//! might even be dropped) makes the next save read the maximum again. Together these made saves in
//! memory 20-25% faster (measured with the bench example, `save_new` and `append_one`).

use super::parts::ItemParts;
use super::{
    Bytes, ItemQuery, Notification, RecordBatch, RecordKind, RecordManager, SequencedItem, Table,
};
use crate::error::{Error, IntegrityError, Result};
use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use uuid::Uuid;

/// The rusqlite crate es uses, so that connections and transactions handed to es are of the
/// same version.
pub use rusqlite;

/// Rows per `INSERT` statement (SQLite allows 32,766 bound values; a row binds 8).
const ROWS_PER_INSERT: usize = 500;

/// The table prefix used unless [`SqliteDatabase::with_table_prefix`] says otherwise: the
/// same on every backend and on every route (a direct constructor or a URL through
/// [`connect`](crate::application::connect)), so both reach the same tables.
pub const DEFAULT_PREFIX: &str = super::DEFAULT_TABLE_PREFIX;

/// How long a writer waits for another connection's write lock before failing with
/// [`Error::Operational`].
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema for table prefix `prefix` (see the module documentation): every table. Every
/// statement is idempotent. A prefix must be ASCII letters, digits and underscores, not
/// starting with a digit.
pub fn ddl(prefix: &str) -> Result<String> {
    ddl_of(prefix, &Table::ALL)
}

/// The schema of the chosen tables only (in the order of [`Table::ALL`]), as [`ddl`].
pub fn ddl_of(prefix: &str, tables: &[Table]) -> Result<String> {
    check_prefix(prefix)?;
    let p = prefix;
    let mut sql = String::new();
    for table in Table::ALL.into_iter().filter(|t| tables.contains(t)) {
        sql.push_str(&match table {
            Table::Events => format!(
                "CREATE TABLE IF NOT EXISTS {p}stored_events (
    application_name    TEXT    NOT NULL,
    originator_id       BLOB    NOT NULL,
    originator_version  INTEGER NOT NULL,
    pipeline_id         INTEGER NOT NULL,
    notification_id     INTEGER NOT NULL,
    topic               TEXT    NOT NULL,
    state               BLOB    NOT NULL,
    causal_dependencies TEXT,
    PRIMARY KEY (application_name, originator_id, originator_version));
CREATE UNIQUE INDEX IF NOT EXISTS {p}stored_events_notification_idx
    ON {p}stored_events (application_name, pipeline_id, notification_id);
"
            ),
            Table::Tracking => format!(
                "CREATE TABLE IF NOT EXISTS {p}notification_tracking (
    application_name          TEXT    NOT NULL,
    upstream_application_name TEXT    NOT NULL,
    pipeline_id               INTEGER NOT NULL,
    notification_id           INTEGER NOT NULL,
    PRIMARY KEY (application_name, upstream_application_name, pipeline_id, notification_id));
"
            ),
            Table::Snapshots => format!(
                "CREATE TABLE IF NOT EXISTS {p}snapshots (
    application_name    TEXT    NOT NULL,
    originator_id       BLOB    NOT NULL,
    originator_version  INTEGER NOT NULL,
    topic               TEXT    NOT NULL,
    state               BLOB    NOT NULL,
    PRIMARY KEY (application_name, originator_id, originator_version));
"
            ),
            Table::TimestampSequenced => format!(
                "CREATE TABLE IF NOT EXISTS {p}timestamp_sequenced_items (
    application_name    TEXT    NOT NULL,
    sequence_id         BLOB    NOT NULL,
    position            INTEGER NOT NULL,
    topic               TEXT    NOT NULL,
    state               BLOB    NOT NULL,
    PRIMARY KEY (application_name, sequence_id, position));
CREATE INDEX IF NOT EXISTS {p}timestamp_sequenced_items_position_idx
    ON {p}timestamp_sequenced_items (application_name, position);
"
            ),
        });
    }
    Ok(sql)
}

fn check_prefix(prefix: &str) -> Result<()> {
    let ok = prefix.len() <= 40
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !prefix.bytes().next().is_some_and(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::Configuration(format!(
            "sqlite: table prefix {prefix:?} is not allowed: use at most 40 ASCII letters, digits and underscores, not starting with a digit"
        )))
    }
}

/// Maps a rusqlite error to an es error.
pub(crate) fn map_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    match &e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            let text = msg.clone().unwrap_or_else(|| f.to_string());
            match f.code {
                C::ConstraintViolation => Error::RecordConflict(format!("sqlite: {text}")),
                _ if text.starts_with("no such table") => Error::Configuration(format!(
                    "sqlite: {text}: create the tables with SqliteDatabase::setup_tables or the SQL of sqlite::ddl"
                )),
                _ => Error::Operational(format!("sqlite: {text}")),
            }
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(_) => {
            Error::DataIntegrity(IntegrityError::Corrupt(format!("sqlite: {e}")))
        }
        rusqlite::Error::InvalidPath(_) => Error::Configuration(format!("sqlite: {e}")),
        _ => Error::Operational(format!("sqlite: {e}")),
    }
}

/// A column that does not hold what es wrote there.
fn column_corrupt(column: usize, what: &str) -> Error {
    Error::DataIntegrity(IntegrityError::Corrupt(format!(
        "sqlite: column {column} of a row is not {what}"
    )))
}

/// The topic (text) and state (blob) in columns `topic` and `state` of a row, built with
/// `parts`: a registered topic is shared, the state is copied into a shared chunk (no
/// allocation per row).
fn row_parts(
    r: &rusqlite::Row<'_>,
    parts: &mut ItemParts,
    topic: usize,
    state: usize,
) -> Result<(std::borrow::Cow<'static, str>, Bytes)> {
    let topic = match r.get_ref(topic).map_err(map_err)? {
        ValueRef::Text(b) => parts.topic(b, topic)?,
        _ => return Err(column_corrupt(topic, "a topic (text)")),
    };
    let state = match r.get_ref(state).map_err(map_err)? {
        ValueRef::Blob(b) => parts.state(b),
        _ => return Err(column_corrupt(state, "a state (blob)")),
    };
    Ok((topic, state))
}

/// A vector's capacity for the rows of a query: its limit, or the width of its range, and
/// never more than a page.
fn capacity(limit: Option<usize>, width: i64) -> usize {
    let width = usize::try_from(width.saturating_add(1)).unwrap_or(usize::MAX);
    limit.unwrap_or(usize::MAX).min(width).min(1024)
}

fn uuid_from(bytes: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|_| {
        Error::DataIntegrity(IntegrityError::Corrupt(format!(
            "sqlite: a sequence id of {} bytes (expected 16)",
            bytes.len()
        )))
    })
}

struct Inner {
    conn: Mutex<Connection>,
    interrupt: rusqlite::InterruptHandle,
    path: Option<PathBuf>,
    /// A private in-memory database: no other connection can ever write to it.
    private: bool,
    /// Counts calls that hand the connection to user code (see [`MaxIdCache`]).
    epoch: AtomicU64,
}

/// The highest notification id a record manager last wrote on a private in-memory database,
/// with the connection's total change count right after that commit and the database's epoch.
/// While both are unchanged nothing else has written (only this connection can), so the next
/// save needs no `MAX(notification_id)` query. Anything else invalidates it: another manager's
/// write or delete changes the count, and handing the connection to user code (where a table
/// could be dropped, which SQLite does not count as a change) bumps the epoch.
#[derive(Debug, Default)]
struct MaxIdCache(Mutex<Option<(i64, u64, u64)>>);

impl MaxIdCache {
    /// The cached maximum, if the change count and epoch still match.
    fn get(&self, total_changes: u64, epoch: u64) -> Option<i64> {
        let slot = self.0.lock().ok()?;
        match *slot {
            Some((max, changes, e)) if changes == total_changes && e == epoch => Some(max),
            _ => None,
        }
    }
    fn set(&self, max: i64, total_changes: u64, epoch: u64) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((max, total_changes, epoch));
        }
    }
    fn clear(&self) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = None;
        }
    }
}

/// An SQLite database holding es tables: one connection (to a file in WAL mode, or in memory)
/// shared by all the record managers made from it, and a table prefix ([`DEFAULT_PREFIX`],
/// `es_`, unless set). Clones share the connection.
///
/// ```
/// # async fn demo() -> es_runtime::Result<()> {
/// use es_runtime::record::sqlite::SqliteDatabase;
/// use es_runtime::record::{RecordKind, RecordManager};
/// let db = SqliteDatabase::memory()?.with_table_prefix("shop_")?;
/// db.setup_tables()?;
/// let events = db.record_manager(RecordKind::Events, "shop", 0);
/// assert_eq!(events.max_notification_id().await?, 0);
/// # Ok(()) }
/// ```
///
/// See the module documentation for the measurements behind this design.
#[derive(Clone)]
pub struct SqliteDatabase {
    inner: Arc<Inner>,
    prefix: Arc<str>,
}

impl std::fmt::Debug for SqliteDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDatabase")
            .field("path", &self.inner.path)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl SqliteDatabase {
    /// Opens (creating it if missing) the database file at `path`, in WAL mode with
    /// `synchronous=NORMAL`; `":memory:"` gives [`SqliteDatabase::memory`]. A file that cannot
    /// be opened is an [`Error::Operational`] naming the path.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if path.as_os_str() == ":memory:" {
            return Self::memory();
        }
        let conn = Connection::open(path).map_err(|e| {
            Error::Operational(format!(
                "sqlite: cannot open {}: {}",
                path.display(),
                map_err(e)
            ))
        })?;
        // journal_mode answers with a row, so it is read rather than executed.
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(map_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Operational(format!(
                "sqlite: {} cannot use WAL mode (journal mode is {mode})",
                path.display()
            )));
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL")
            .map_err(map_err)?;
        Self::from_connection(conn, Some(path.to_path_buf()))
    }

    /// Opens an existing database file for reading only: every write fails with
    /// [`Error::Operational`]. For processes that only follow the notification log.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| {
            Error::Operational(format!(
                "sqlite: cannot open {}: {}",
                path.display(),
                map_err(e)
            ))
        })?;
        Self::from_connection(conn, Some(path.to_path_buf()))
    }

    /// A new private database in memory, shared by every record manager made from this object
    /// (and its clones) and gone when the last of them is dropped.
    pub fn memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(map_err)?;
        let mut db = Self::from_connection(conn, None)?;
        if let Some(inner) = Arc::get_mut(&mut db.inner) {
            inner.private = true;
        }
        Ok(db)
    }

    /// Uses a connection the caller opened (with its own flags and pragmas). A busy timeout of
    /// [`DEFAULT_BUSY_TIMEOUT`] is set on it.
    pub fn from_connection(conn: Connection, path: Option<PathBuf>) -> Result<Self> {
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT).map_err(map_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        let interrupt = conn.get_interrupt_handle();
        Ok(SqliteDatabase {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                interrupt,
                path,
                private: false,
                epoch: AtomicU64::new(0),
            }),
            prefix: Arc::from(DEFAULT_PREFIX),
        })
    }

    /// Prefixes every table name with `prefix` (ASCII letters, digits and underscores; the
    /// default is [`DEFAULT_PREFIX`], `es_`; `""` gives the plain names), so that several
    /// applications or libraries can keep separate tables in one database.
    pub fn with_table_prefix(self, prefix: &str) -> Result<Self> {
        check_prefix(prefix)?;
        Ok(SqliteDatabase {
            inner: self.inner,
            prefix: Arc::from(prefix),
        })
    }

    /// The table prefix.
    pub fn table_prefix(&self) -> &str {
        &self.prefix
    }

    /// The file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The name of one of the tables (`stored_events`, `notification_tracking`, `snapshots`,
    /// `timestamp_sequenced_items`) with the prefix.
    pub fn table_name(&self, table: &str) -> String {
        format!("{}{table}", self.prefix)
    }

    /// The SQL that creates the tables and indexes (see [`ddl`]).
    pub fn ddl(&self) -> String {
        // Cannot fail: the prefix was checked when it was set.
        ddl(&self.prefix).unwrap_or_default()
    }

    /// Creates every table and index if it is missing.
    pub fn setup_tables(&self) -> Result<()> {
        self.setup(&Table::ALL)
    }

    /// Creates the chosen tables and their indexes if they are missing (see [`Table`]).
    pub fn setup(&self, tables: &[Table]) -> Result<()> {
        let sql = ddl_of(&self.prefix, tables)?;
        self.with_connection(|c| c.execute_batch(&sql).map_err(map_err))
    }

    /// Drops the tables of this prefix (all applications' records in them).
    pub fn drop_tables(&self) -> Result<()> {
        let p = &self.prefix;
        let sql = format!(
            "DROP TABLE IF EXISTS {p}stored_events; DROP TABLE IF EXISTS {p}notification_tracking;
             DROP TABLE IF EXISTS {p}snapshots; DROP TABLE IF EXISTS {p}timestamp_sequenced_items;"
        );
        self.with_connection(|c| c.execute_batch(&sql).map_err(map_err))
    }

    /// A record manager for one table kind, application and pipeline.
    pub fn record_manager(
        &self,
        kind: RecordKind,
        application_name: &str,
        pipeline_id: i64,
    ) -> SqliteRecordManager {
        SqliteRecordManager {
            db: self.clone(),
            kind,
            application_name: application_name.to_string(),
            pipeline_id,
            sql: Arc::new(Statements::new(&self.prefix, kind)),
            max_id: Arc::new(MaxIdCache::default()),
        }
    }

    /// Runs `f` with the connection (blocking the calling thread while another call holds it).
    /// Do not call other methods of this database from `f`: they would wait for `f` forever.
    pub fn with_connection<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        // `f` may change anything, even the schema: forget the cached notification ids.
        self.inner.epoch.fetch_add(1, Ordering::Relaxed);
        self.locked(f)
    }

    /// [`SqliteDatabase::with_connection`] for the record managers' own statements.
    pub(crate) fn locked<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut guard = self.lock()?;
        f(&mut guard)
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE` transaction on the database's connection and
    /// commits if it returns `Ok` (rolls back otherwise). Use
    /// [`SqliteRecordManager::write_in_transaction`] inside it to commit events atomically with
    /// rows of your own. Inside `f`, use only `tx`: the connection is held for the whole call, so
    /// another method of this database (say [`SqliteRecordManager::write_blocking`]) called from
    /// `f` would wait for it forever.
    pub fn transaction<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.with_connection(|c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let out = f(&tx)?;
            tx.commit().map_err(map_err)?;
            Ok(out)
        })
    }

    /// Aborts the statement running on this database's connection, if any, from any thread:
    /// the call running it fails with [`Error::Operational`] and its transaction is rolled back.
    pub fn interrupt(&self) {
        self.inner.interrupt.interrupt();
    }

    /// The connection. If a caller panicked while holding it (say, inside
    /// [`SqliteDatabase::transaction`]), the transaction it left open is rolled back and the
    /// connection is used again: SQLite itself is in a consistent state.
    fn lock(&self) -> Result<MutexGuard<'_, Connection>> {
        match self.inner.conn.lock() {
            Ok(guard) => Ok(guard),
            Err(poisoned) => {
                self.inner.conn.clear_poison();
                let guard = poisoned.into_inner();
                if !guard.is_autocommit() {
                    run(&guard, "ROLLBACK")?;
                }
                Ok(guard)
            }
        }
    }
}

/// The statements of one manager, made once.
#[derive(Debug)]
struct Statements {
    /// Table, sequence column, position column.
    table: String,
    seq: &'static str,
    pos: &'static str,
    get_item: String,
    get_items_asc: String,
    get_items_desc: String,
    list: String,
    in_order: String,
    delete: String,
    max_notification: String,
    notifications: String,
    insert_tracking: String,
    max_tracking: String,
    has_tracking: String,
    /// The multi-row inserts for 1..=CACHED_INSERTS rows, made on first use.
    inserts: [OnceLock<String>; CACHED_INSERTS],
    kind: RecordKind,
}

/// Batches up to this many rows reuse their insert statement's text.
const CACHED_INSERTS: usize = 16;

impl Statements {
    fn new(p: &str, kind: RecordKind) -> Self {
        let (table, seq, pos) = match kind {
            RecordKind::Events => (
                format!("{p}stored_events"),
                "originator_id",
                "originator_version",
            ),
            RecordKind::Snapshots => (
                format!("{p}snapshots"),
                "originator_id",
                "originator_version",
            ),
            RecordKind::TimestampSequenced => (
                format!("{p}timestamp_sequenced_items"),
                "sequence_id",
                "position",
            ),
        };
        let events = format!("{p}stored_events");
        let tracking = format!("{p}notification_tracking");
        let range = format!(
            "SELECT {pos}, topic, state FROM {table} WHERE application_name = ?1 AND {seq} = ?2 \
             AND {pos} BETWEEN ?3 AND ?4 ORDER BY {pos}"
        );
        Statements {
            get_item: format!("SELECT topic, state FROM {table} WHERE application_name = ?1 AND {seq} = ?2 AND {pos} = ?3"),
            get_items_asc: format!("{range} ASC LIMIT ?5"),
            get_items_desc: format!("{range} DESC LIMIT ?5"),
            list: format!("SELECT DISTINCT {seq} FROM {table} WHERE application_name = ?1"),
            in_order: format!(
                "SELECT {seq}, {pos}, topic, state FROM {table} WHERE application_name = ?1 \
                 AND {pos} BETWEEN ?2 AND ?3 ORDER BY {pos}, {seq} LIMIT ?4"
            ),
            delete: format!("DELETE FROM {table} WHERE application_name = ?1 AND {seq} = ?2 AND {pos} = ?3"),
            max_notification: format!(
                "SELECT COALESCE(MAX(notification_id), 0) FROM {events} WHERE application_name = ?1 AND pipeline_id = ?2"
            ),
            notifications: format!(
                "SELECT notification_id, originator_id, originator_version, topic, state, causal_dependencies \
                 FROM {events} WHERE application_name = ?1 AND pipeline_id = ?2 AND notification_id BETWEEN ?3 AND ?4 \
                 ORDER BY notification_id LIMIT ?5"
            ),
            insert_tracking: format!(
                "INSERT INTO {tracking} (application_name, upstream_application_name, pipeline_id, notification_id) \
                 VALUES (?1, ?2, ?3, ?4)"
            ),
            max_tracking: format!(
                "SELECT COALESCE(MAX(notification_id), 0) FROM {tracking} \
                 WHERE application_name = ?1 AND upstream_application_name = ?2 AND pipeline_id = ?3"
            ),
            has_tracking: format!(
                "SELECT EXISTS (SELECT 1 FROM {tracking} WHERE application_name = ?1 \
                 AND upstream_application_name = ?2 AND pipeline_id = ?3 AND notification_id = ?4)"
            ),
            table,
            seq,
            pos,
            inserts: Default::default(),
            kind,
        }
    }

    /// The multi-row insert for `rows` items (cached for small batches).
    fn insert_sql(&self, rows: usize) -> std::borrow::Cow<'_, str> {
        match self.inserts.get(rows.wrapping_sub(1)) {
            Some(cell) => {
                std::borrow::Cow::Borrowed(cell.get_or_init(|| self.insert(self.kind, rows)))
            }
            None => std::borrow::Cow::Owned(self.insert(self.kind, rows)),
        }
    }

    /// The multi-row insert for `rows` items.
    fn insert(&self, kind: RecordKind, rows: usize) -> String {
        let mut sql = String::with_capacity(120 + rows * 40);
        match kind {
            RecordKind::Events => {
                sql.push_str(&format!(
                    "INSERT INTO {} (application_name, pipeline_id, originator_id, originator_version, \
                     notification_id, topic, state, causal_dependencies) VALUES ",
                    self.table
                ));
                for r in 0..rows {
                    if r > 0 {
                        sql.push(',');
                    }
                    // ?1 application, ?2 pipeline; then six values per row.
                    let b = 3 + r * 6;
                    sql.push_str(&format!(
                        "(?1,?2,?{},?{},?{},?{},?{},?{})",
                        b,
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5
                    ));
                }
            }
            _ => {
                sql.push_str(&format!(
                    "INSERT INTO {} (application_name, {}, {}, topic, state) VALUES ",
                    self.table, self.seq, self.pos
                ));
                for r in 0..rows {
                    if r > 0 {
                        sql.push(',');
                    }
                    let b = 2 + r * 4;
                    sql.push_str(&format!("(?1,?{},?{},?{},?{})", b, b + 1, b + 2, b + 3));
                }
            }
        }
        sql
    }
}

/// A [`RecordManager`] over a [`SqliteDatabase`]: one table kind, application and pipeline.
#[derive(Clone, Debug)]
pub struct SqliteRecordManager {
    db: SqliteDatabase,
    kind: RecordKind,
    application_name: String,
    pipeline_id: i64,
    sql: Arc<Statements>,
    max_id: Arc<MaxIdCache>,
}

impl SqliteRecordManager {
    /// The database this manager writes to.
    pub fn database(&self) -> &SqliteDatabase {
        &self.db
    }

    /// Writes a batch inside the caller's open transaction (on this database's connection, see
    /// [`SqliteDatabase::transaction`], or on another connection to the same file), so that
    /// the caller's own rows commit or roll back atomically with the events. The transaction
    /// should be `IMMEDIATE` (it must hold the write lock while notification ids are
    /// assigned; a deferred transaction that read first may fail with [`Error::Operational`]).
    /// On an error, roll the transaction back: part of the batch may have been written.
    pub fn write_in_transaction(&self, tx: &Transaction<'_>, batch: &RecordBatch) -> Result<()> {
        self.write_on(tx, batch)
    }

    /// Blocking version of [`RecordManager::write`].
    pub fn write_blocking(&self, batch: &RecordBatch) -> Result<()> {
        if batch.items.is_empty() && batch.tracking.is_none() {
            return Ok(());
        }
        let cache = self.db.inner.private && self.kind == RecordKind::Events;
        self.db.locked(|c| {
            let epoch = self.db.inner.epoch.load(Ordering::Relaxed);
            let known = if cache {
                self.max_id.get(c.total_changes(), epoch)
            } else {
                None
            };
            // BEGIN / COMMIT / ROLLBACK as cached statements: parsing them anew each time costs
            // about as much as the insert itself in memory.
            if !c.is_autocommit() {
                run(c, "ROLLBACK")?;
            }
            // With the maximum known, a batch that fits one insert statement is one statement,
            // atomic by itself: it needs no explicit transaction.
            let one_statement =
                known.is_some() && batch.tracking.is_none() && batch.items.len() <= ROWS_PER_INSERT;
            let written = if one_statement {
                self.write_with(c, batch, known)
            } else {
                run(c, "BEGIN IMMEDIATE")?;
                self.write_with(c, batch, known)
                    .and_then(|max| run(c, "COMMIT").map(|()| max))
            };
            match written {
                Ok(max) => {
                    match max {
                        Some(max) if cache => self.max_id.set(max, c.total_changes(), epoch),
                        _ => self.max_id.clear(),
                    }
                    Ok(())
                }
                Err(e) => {
                    self.max_id.clear();
                    // SQLite may have rolled back by itself already (interrupt, I/O error).
                    if !c.is_autocommit() {
                        let _ = run(c, "ROLLBACK");
                    }
                    Err(e)
                }
            }
        })
    }

    fn write_on(&self, c: &Connection, batch: &RecordBatch) -> Result<()> {
        self.write_with(c, batch, None).map(|_| ())
    }

    /// Writes a batch; `known` is the current maximum notification id when it is known
    /// without asking. Returns the maximum notification id after the write, when known.
    fn write_with(
        &self,
        c: &Connection,
        batch: &RecordBatch,
        known: Option<i64>,
    ) -> Result<Option<i64>> {
        let s = &self.sql;
        let mut next = 0;
        if !batch.items.is_empty() {
            if self.kind == RecordKind::Events {
                next = match known {
                    Some(n) => n,
                    None => c
                        .prepare_cached(&s.max_notification)
                        .and_then(|mut st| {
                            st.query_row(params![self.application_name, self.pipeline_id], |r| {
                                r.get(0)
                            })
                        })
                        .map_err(map_err)?,
                };
                for (n, chunk) in batch.items.chunks(ROWS_PER_INSERT).enumerate() {
                    let mut st = c
                        .prepare_cached(&s.insert_sql(chunk.len()))
                        .map_err(map_err)?;
                    st.raw_bind_parameter(1, &self.application_name)
                        .map_err(map_err)?;
                    st.raw_bind_parameter(2, self.pipeline_id)
                        .map_err(map_err)?;
                    for (r, item) in chunk.iter().enumerate() {
                        next += 1;
                        let b = 3 + r * 6;
                        let deps = if n == 0 && r == 0 {
                            batch.causal_dependencies.as_deref()
                        } else {
                            None
                        };
                        st.raw_bind_parameter(b, &item.sequence_id.as_bytes()[..])
                            .map_err(map_err)?;
                        st.raw_bind_parameter(b + 1, item.position)
                            .map_err(map_err)?;
                        st.raw_bind_parameter(b + 2, next).map_err(map_err)?;
                        st.raw_bind_parameter(b + 3, &*item.topic)
                            .map_err(map_err)?;
                        st.raw_bind_parameter(b + 4, &item.state[..])
                            .map_err(map_err)?;
                        st.raw_bind_parameter(b + 5, deps).map_err(map_err)?;
                    }
                    st.raw_execute().map_err(map_err)?;
                }
            } else {
                for chunk in batch.items.chunks(ROWS_PER_INSERT) {
                    let mut st = c
                        .prepare_cached(&s.insert_sql(chunk.len()))
                        .map_err(map_err)?;
                    st.raw_bind_parameter(1, &self.application_name)
                        .map_err(map_err)?;
                    for (r, item) in chunk.iter().enumerate() {
                        let b = 2 + r * 4;
                        st.raw_bind_parameter(b, &item.sequence_id.as_bytes()[..])
                            .map_err(map_err)?;
                        st.raw_bind_parameter(b + 1, item.position)
                            .map_err(map_err)?;
                        st.raw_bind_parameter(b + 2, &*item.topic)
                            .map_err(map_err)?;
                        st.raw_bind_parameter(b + 3, &item.state[..])
                            .map_err(map_err)?;
                    }
                    st.raw_execute().map_err(map_err)?;
                }
            }
        }
        if let Some(t) = &batch.tracking {
            c.prepare_cached(&s.insert_tracking)
                .and_then(|mut st| {
                    st.execute(params![
                        self.application_name,
                        t.upstream_application,
                        self.pipeline_id,
                        t.notification_id
                    ])
                })
                .map_err(|e| match map_err(e) {
                    Error::RecordConflict(m) => Error::RecordConflict(format!(
                        "notification {} of {} already tracked ({m})",
                        t.notification_id, t.upstream_application
                    )),
                    other => other,
                })?;
        }
        Ok(
            if self.kind == RecordKind::Events && !batch.items.is_empty() {
                Some(next)
            } else {
                known
            },
        )
    }

    fn get_item_blocking(&self, sequence_id: Uuid, position: i64) -> Result<SequencedItem> {
        let found = self.db.locked(|c| {
            c.prepare_cached(&self.sql.get_item)
                .and_then(|mut st| {
                    st.query_row(
                        params![self.application_name, &sequence_id.as_bytes()[..], position],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?)),
                    )
                    .optional()
                })
                .map_err(map_err)
        })?;
        match found {
            Some((topic, state)) => Ok(SequencedItem {
                sequence_id,
                position,
                topic: topic.into(),
                state: state.into(),
            }),
            None => Err(Error::NotFound(format!(
                "item at position {position} of sequence {sequence_id} in {}",
                self.sql.table
            ))),
        }
    }

    /// Blocking version of [`RecordManager::get_items_in_order`].
    pub fn get_items_in_order_blocking(
        &self,
        start: i64,
        end: i64,
        limit: Option<usize>,
    ) -> Result<Vec<SequencedItem>> {
        let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        self.db.locked(|c| {
            let mut st = c.prepare_cached(&self.sql.in_order).map_err(map_err)?;
            let rows = st
                .query_map(params![self.application_name, start, end, limit], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                    ))
                })
                .map_err(map_err)?;
            rows.map(|row| {
                let (id, position, topic, state) = row.map_err(map_err)?;
                Ok(SequencedItem {
                    sequence_id: uuid_from(&id)?,
                    position,
                    topic: topic.into(),
                    state: state.into(),
                })
            })
            .collect()
        })
    }

    fn get_items_blocking(&self, sequence_id: Uuid, q: &ItemQuery) -> Result<Vec<SequencedItem>> {
        let Some((lo, hi)) = bounds(q) else {
            return Ok(Vec::new());
        };
        let limit = q.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sql = if q.query_descending {
            &self.sql.get_items_desc
        } else {
            &self.sql.get_items_asc
        };
        let mut out = self.db.locked(|c| {
            let mut st = c.prepare_cached(sql).map_err(map_err)?;
            let mut rows = st
                .query(params![
                    self.application_name,
                    &sequence_id.as_bytes()[..],
                    lo,
                    hi,
                    limit
                ])
                .map_err(map_err)?;
            let mut parts = ItemParts::new("sqlite");
            let mut out = Vec::with_capacity(capacity(q.limit, hi.saturating_sub(lo)));
            while let Some(r) = rows.next().map_err(map_err)? {
                let (topic, state) = row_parts(r, &mut parts, 1, 2)?;
                out.push(SequencedItem {
                    sequence_id,
                    position: r.get(0).map_err(map_err)?,
                    topic,
                    state,
                });
            }
            Ok(out)
        })?;
        if q.query_descending != q.results_descending {
            out.reverse();
        }
        Ok(out)
    }

    fn list_blocking(&self) -> Result<Vec<Uuid>> {
        self.db.locked(|c| {
            let mut st = c.prepare_cached(&self.sql.list).map_err(map_err)?;
            let rows = st
                .query_map(params![self.application_name], |r| r.get::<_, Vec<u8>>(0))
                .map_err(map_err)?;
            let mut out = Vec::new();
            for r in rows {
                out.push(uuid_from(&r.map_err(map_err)?)?);
            }
            Ok(out)
        })
    }

    fn notifications_blocking(
        &self,
        start: i64,
        end: i64,
        limit: Option<usize>,
    ) -> Result<Vec<Notification>> {
        if self.kind != RecordKind::Events || start > end || limit == Some(0) {
            return Ok(Vec::new());
        }
        let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        self.db.locked(|c| {
            let mut st = c.prepare_cached(&self.sql.notifications).map_err(map_err)?;
            let mut rows = st
                .query(params![
                    self.application_name,
                    self.pipeline_id,
                    start,
                    end,
                    limit
                ])
                .map_err(map_err)?;
            let mut out = Vec::with_capacity(capacity(
                usize::try_from(limit).ok(),
                end.saturating_sub(start),
            ));
            let mut parts = ItemParts::new("sqlite");
            while let Some(r) = rows.next().map_err(map_err)? {
                let id = match r.get_ref(1).map_err(map_err)? {
                    ValueRef::Blob(b) => uuid_from(b)?,
                    _ => return Err(column_corrupt(1, "a sequence id")),
                };
                let (topic, state) = row_parts(r, &mut parts, 3, 4)?;
                out.push(Notification {
                    id: r.get(0).map_err(map_err)?,
                    item: SequencedItem {
                        sequence_id: id,
                        position: r.get(2).map_err(map_err)?,
                        topic,
                        state,
                    },
                    causal_dependencies: r.get(5).map_err(map_err)?,
                });
            }
            Ok(out)
        })
    }

    fn scalar(&self, sql: &str, p: impl rusqlite::Params) -> Result<i64> {
        self.db.locked(|c| {
            c.prepare_cached(sql)
                .and_then(|mut st| st.query_row(p, |r| r.get(0)))
                .map_err(map_err)
        })
    }
}

/// Runs one parameterless statement through the statement cache.
fn run(c: &Connection, sql: &str) -> Result<()> {
    c.prepare_cached(sql)
        .and_then(|mut st| st.execute([]))
        .map(|_| ())
        .map_err(map_err)
}

/// The closed position range `[lo, hi]` a query selects, or `None` when it is empty.
fn bounds(q: &ItemQuery) -> Option<(i64, i64)> {
    let mut lo = i64::MIN;
    let mut hi = i64::MAX;
    if let Some(gt) = q.gt {
        lo = lo.max(gt.checked_add(1)?);
    }
    if let Some(gte) = q.gte {
        lo = lo.max(gte);
    }
    if let Some(lt) = q.lt {
        hi = hi.min(lt.checked_sub(1)?);
    }
    if let Some(lte) = q.lte {
        hi = hi.min(lte);
    }
    (lo <= hi).then_some((lo, hi))
}

#[async_trait]
impl RecordManager for SqliteRecordManager {
    fn kind(&self) -> RecordKind {
        self.kind
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn application_name(&self) -> &str {
        &self.application_name
    }

    fn pipeline_id(&self) -> i64 {
        self.pipeline_id
    }

    async fn write(&self, batch: &RecordBatch) -> Result<()> {
        self.write_blocking(batch)
    }

    async fn begin_tx(&self) -> Result<super::tx::Tx> {
        Ok(super::tx::Tx::sqlite_of(self.clone()))
    }

    async fn get_item(&self, sequence_id: Uuid, position: i64) -> Result<SequencedItem> {
        self.get_item_blocking(sequence_id, position)
    }

    async fn get_items(&self, sequence_id: Uuid, query: &ItemQuery) -> Result<Vec<SequencedItem>> {
        self.get_items_blocking(sequence_id, query)
    }

    async fn get_items_in_order(
        &self,
        start: i64,
        end: i64,
        limit: Option<usize>,
    ) -> Result<Vec<SequencedItem>> {
        self.get_items_in_order_blocking(start, end, limit)
    }

    async fn list_sequence_ids(&self) -> Result<Vec<Uuid>> {
        self.list_blocking()
    }

    async fn delete_item(&self, sequence_id: Uuid, position: i64) -> Result<()> {
        self.db.locked(|c| {
            c.prepare_cached(&self.sql.delete)
                .and_then(|mut st| {
                    st.execute(params![
                        self.application_name,
                        &sequence_id.as_bytes()[..],
                        position
                    ])
                })
                .map_err(map_err)
                .map(|_| ())
        })
    }

    async fn get_notifications(
        &self,
        start: i64,
        end: i64,
        limit: Option<usize>,
    ) -> Result<Vec<Notification>> {
        self.notifications_blocking(start, end, limit)
    }

    async fn max_notification_id(&self) -> Result<i64> {
        if self.kind != RecordKind::Events {
            return Ok(0);
        }
        self.scalar(
            &self.sql.max_notification,
            params![self.application_name, self.pipeline_id],
        )
    }

    async fn max_tracking_id(&self, upstream_application: &str) -> Result<i64> {
        self.scalar(
            &self.sql.max_tracking,
            params![
                self.application_name,
                upstream_application,
                self.pipeline_id
            ],
        )
    }

    async fn notification_of(
        &self,
        sequence_id: Uuid,
        position: i64,
    ) -> Result<Option<(i64, i64)>> {
        let sql = format!(
            "SELECT pipeline_id, notification_id FROM {} WHERE application_name = ?1 \
             AND originator_id = ?2 AND originator_version = ?3",
            self.db.table_name("stored_events")
        );
        self.db.locked(|c| {
            c.prepare_cached(&sql)
                .and_then(|mut st| {
                    st.query_row(
                        params![self.application_name, &sequence_id.as_bytes()[..], position],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                })
                .map_err(map_err)
        })
    }

    async fn has_tracking_record(
        &self,
        upstream_application: &str,
        notification_id: i64,
    ) -> Result<bool> {
        let n = self.scalar(
            &self.sql.has_tracking,
            params![
                self.application_name,
                upstream_application,
                self.pipeline_id,
                notification_id
            ],
        )?;
        Ok(n != 0)
    }
}
