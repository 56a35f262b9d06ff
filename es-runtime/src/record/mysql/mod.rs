//! The MySQL / MariaDB record manager (sqlx, feature `mysql`).
//!
//! # Schema
//!
//! [`MySqlDatabase::setup_tables`] creates these InnoDB tables ([`MySqlDatabase::ddl`] returns
//! the same statements); `{p}` is the configurable table prefix (`es_` by default):
//!
//! ```sql
//! CREATE TABLE {p}stored_events (
//!     application_name    VARCHAR(255) NOT NULL,
//!     originator_id       BINARY(16)   NOT NULL,
//!     originator_version  BIGINT       NOT NULL,
//!     pipeline_id         BIGINT       NOT NULL,
//!     notification_id     BIGINT       NOT NULL,
//!     topic               TEXT         NOT NULL,
//!     state               LONGBLOB     NOT NULL,
//!     causal_dependencies TEXT         NULL,
//!     PRIMARY KEY (application_name, originator_id, originator_version),
//!     UNIQUE KEY (application_name, pipeline_id, notification_id));
//! CREATE TABLE {p}notification_counters (application_name, pipeline_id, last_id,
//!     PRIMARY KEY (application_name, pipeline_id));
//! CREATE TABLE {p}notification_tracking (application_name, upstream_application_name,
//!     pipeline_id, notification_id, PRIMARY KEY (all four));
//! CREATE TABLE {p}snapshots (application_name, originator_id, originator_version, topic, state,
//!     PRIMARY KEY (application_name, originator_id, originator_version));
//! CREATE TABLE {p}timestamp_sequenced_items (application_name, sequence_id, position, topic,
//!     state, PRIMARY KEY (application_name, sequence_id, position));  -- + index on position
//! ```
//!
//! # Notification ids
//!
//! A save is one transaction that first increments the counter row of its (application,
//! pipeline) by the number of events (`INSERT ... ON DUPLICATE KEY UPDATE`, which returns the new
//! value through `LAST_INSERT_ID(expr)` in the same round trip), then inserts all events in one
//! multi-row `INSERT` with the ids below that value, then the tracking record. The counter row
//! stays locked until commit, so the next writer of the pipeline gets its ids only after this
//! one committed: ids are gap-free (a rollback also rolls back the counter) and become visible in
//! order. Writers of one pipeline are serialised; writers of different pipelines or
//! applications are not.

mod schema;

use super::sql::{bounds, check_identifier, connect_pool, limit, map_other, ItemParts};
use super::{
    Bytes, ItemQuery, Notification, RecordBatch, RecordKind, RecordManager, SequencedItem,
};
use crate::error::{Error, Result};
use async_trait::async_trait;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool};
use sqlx::{MySql, Row, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use uuid::Uuid;

/// How long a reader waits before reading a gap in the notification log again.
const GAP_PAUSE_MS: u64 = 20;

/// True if the notifications read from `start` skip an id.
fn has_gap(start: i64, rows: &[Notification]) -> bool {
    rows.iter()
        .enumerate()
        .any(|(k, n)| n.id != start + k as i64)
}

/// The rows of the last-resort read (`last`, from `start`) up to the first gap that the
/// locking read (`locked`) does not confirm: a hole is kept only where the locking read, which
/// waits for writers still finishing, also had none of those ids and saw past them (a deleted
/// record); any other gap (an id not yet visible to this read) ends the rows there.
fn confirmed_rows(
    start: i64,
    locked: &[Notification],
    mut last: Vec<Notification>,
) -> Vec<Notification> {
    let seen_up_to = locked.last().map_or(start - 1, |n| n.id);
    let mut expected = start;
    let mut keep = last.len();
    for (k, n) in last.iter().enumerate() {
        if n.id != expected {
            let confirmed = n.id <= seen_up_to
                && n.id > expected
                && !locked.iter().any(|l| l.id >= expected && l.id < n.id);
            if !confirmed {
                keep = k;
                break;
            }
        }
        expected = n.id + 1;
    }
    last.truncate(keep);
    last
}

const BACKEND: &str = "mysql";

/// The table prefix used unless [`MySqlDatabase::with_table_prefix`] says otherwise: es tables
/// do not collide with other libraries' `stored_events`.
pub const DEFAULT_PREFIX: &str = super::DEFAULT_TABLE_PREFIX;

/// Rows per multi-row `INSERT` (eight placeholders each, far below the protocol's limit).
const CHUNK: usize = 1000;

/// Maps an sqlx error from MySQL/MariaDB to an es error.
pub(crate) fn map_err(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &e {
        let msg = db.message().to_string();
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        // The vendor error number is the most precise signal; sqlx exposes it through the
        // MySQL error type.
        let number = db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(|m| m.number())
            .unwrap_or(0);
        return match number {
            1062 | 1022 | 1586 => Error::RecordConflict(format!("mysql: {msg}")),
            1146 | 1049 | 1054 => Error::Configuration(format!(
                "mysql: {msg}: create the tables with MySqlDatabase::setup_tables or the SQL of MySqlDatabase::ddl"
            )),
            1366 | 1406 | 1264 | 1292 => Error::Encoding(format!("mysql: {msg}")),
            _ => Error::Operational(format!("mysql: {msg} (error {number}, SQLSTATE {code})")),
        };
    }
    map_other(BACKEND, e)
}

/// The bytes of a `BLOB`/`TEXT` column, borrowed from the row (no copy). Text is read as bytes
/// (then checked as UTF-8) because MySQL reports text with a binary collation as BLOB, so this
/// works for every collation a user may choose.
fn raw(row: &sqlx::mysql::MySqlRow, idx: usize) -> Result<&[u8]> {
    row.try_get::<&[u8], _>(idx).map_err(map_err)
}

fn utf8(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        Error::DataIntegrity(crate::IntegrityError::Corrupt(format!(
            "mysql: text column is not UTF-8: {e}"
        )))
    })
}

/// A MySQL or MariaDB database holding es tables: a connection pool and a table prefix (so
/// several applications, or several test cases, can share one database).
///
/// ```no_run
/// # async fn demo() -> es_runtime::Result<()> {
/// use es_runtime::record::mysql::MySqlDatabase;
/// use es_runtime::record::{RecordKind, RecordManager};
/// let db = MySqlDatabase::connect("mysql://root@127.0.0.1:3306/test").await?
///     .with_table_prefix("shop_")?;
/// db.setup_tables().await?;
/// let events = db.record_manager(RecordKind::Events, "shop", 0);
/// assert_eq!(events.max_notification_id().await?, 0);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct MySqlDatabase {
    pool: MySqlPool,
    prefix: Arc<str>,
}

impl MySqlDatabase {
    /// Connects a pool of up to 10 connections. A malformed URL is a
    /// [`Error::Configuration`]; an unreachable server or a refused login is an
    /// [`Error::Operational`] naming the host and port.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, 10).await
    }

    /// Like [`MySqlDatabase::connect`], with at most `max_connections` connections.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self> {
        let opts = MySqlConnectOptions::from_str(url)
            .map_err(|e| Error::Configuration(format!("mysql: invalid connection URL: {e}")))?;
        let server = format!("MySQL at {}:{}", opts.get_host(), opts.get_port());
        let pool = connect_pool(opts, &server, max_connections, map_err).await?;
        Ok(Self::from_pool(pool))
    }

    /// Uses a pool the caller made (and may keep using for its own queries).
    pub fn from_pool(pool: MySqlPool) -> Self {
        MySqlDatabase {
            pool,
            prefix: DEFAULT_PREFIX.into(),
        }
    }

    /// Prefixes every table name with `prefix` (ASCII letters, digits and underscores; the
    /// default is [`DEFAULT_PREFIX`], `""` gives the bare names).
    pub fn with_table_prefix(self, prefix: &str) -> Result<Self> {
        check_identifier("table prefix", prefix, true)?;
        Ok(MySqlDatabase {
            pool: self.pool,
            prefix: prefix.to_ascii_lowercase().into(),
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// The prefixed name of one of the tables: `stored_events`, `notification_counters`,
    /// `notification_tracking`, `snapshots` or `timestamp_sequenced_items`.
    pub fn table_name(&self, table: &str) -> String {
        format!("{}{table}", self.prefix)
    }

    /// A record manager for one table kind, application and pipeline.
    pub fn record_manager(
        &self,
        kind: RecordKind,
        application_name: &str,
        pipeline_id: i64,
    ) -> MySqlRecordManager {
        MySqlRecordManager::new(self.clone(), kind, application_name, pipeline_id)
    }
}

/// The statements of one manager, made once.
#[derive(Debug)]
struct Statements {
    table: String,
    seq: &'static str,
    pos: &'static str,
    counter: String,
    tracking_insert: String,
    get_item: String,
    get_items_asc: String,
    get_items_desc: String,
    list: String,
    delete: String,
    notifications: String,
    notifications_locking: String,
    max_notification: String,
    max_tracking: String,
    has_tracking: String,
    in_order: String,
}

impl Statements {
    fn new(db: &MySqlDatabase, kind: RecordKind) -> Self {
        let (table, seq, pos) = match kind {
            RecordKind::Events => (
                db.table_name("stored_events"),
                "originator_id",
                "originator_version",
            ),
            RecordKind::Snapshots => (
                db.table_name("snapshots"),
                "originator_id",
                "originator_version",
            ),
            RecordKind::TimestampSequenced => (
                db.table_name("timestamp_sequenced_items"),
                "sequence_id",
                "position",
            ),
        };
        let events = db.table_name("stored_events");
        let tracking = db.table_name("notification_tracking");
        let range = format!(
            "SELECT {pos}, topic, state FROM {table} WHERE application_name = ? AND {seq} = ? \
             AND {pos} BETWEEN ? AND ? ORDER BY {pos}"
        );
        Statements {
            counter: format!(
                "INSERT INTO {} (application_name, pipeline_id, last_id) VALUES (?, ?, LAST_INSERT_ID(?)) \
                 ON DUPLICATE KEY UPDATE last_id = LAST_INSERT_ID(last_id + ?)",
                db.table_name("notification_counters")
            ),
            tracking_insert: format!(
                "INSERT INTO {tracking} (application_name, upstream_application_name, pipeline_id, notification_id) \
                 VALUES (?, ?, ?, ?)"
            ),
            get_item: format!("SELECT topic, state FROM {table} WHERE application_name = ? AND {seq} = ? AND {pos} = ?"),
            get_items_asc: format!("{range} ASC LIMIT ?"),
            get_items_desc: format!("{range} DESC LIMIT ?"),
            list: format!("SELECT DISTINCT {seq} FROM {table} WHERE application_name = ?"),
            delete: format!("DELETE FROM {table} WHERE application_name = ? AND {seq} = ? AND {pos} = ?"),
            notifications: format!(
                "SELECT notification_id, originator_id, originator_version, topic, state, causal_dependencies \
                 FROM {events} WHERE application_name = ? AND pipeline_id = ? \
                 AND notification_id BETWEEN ? AND ? ORDER BY notification_id LIMIT ?"
            ),
            // A locking read returns the latest committed rows and waits for a writer that is
            // still finishing, instead of reading a snapshot that may not show it yet.
            notifications_locking: format!(
                "SELECT notification_id, originator_id, originator_version, topic, state, causal_dependencies \
                 FROM {events} WHERE application_name = ? AND pipeline_id = ? \
                 AND notification_id BETWEEN ? AND ? ORDER BY notification_id LIMIT ? LOCK IN SHARE MODE"
            ),
            max_notification: format!(
                "SELECT COALESCE(MAX(notification_id), 0) FROM {events} WHERE application_name = ? AND pipeline_id = ?"
            ),
            max_tracking: format!(
                "SELECT COALESCE(MAX(notification_id), 0) FROM {tracking} \
                 WHERE application_name = ? AND upstream_application_name = ? AND pipeline_id = ?"
            ),
            has_tracking: format!(
                "SELECT COUNT(*) FROM {tracking} WHERE application_name = ? \
                 AND upstream_application_name = ? AND pipeline_id = ? AND notification_id = ?"
            ),
            in_order: format!(
                "SELECT {seq}, {pos}, topic, state FROM {table} WHERE application_name = ? \
                 AND {pos} BETWEEN ? AND ? ORDER BY {pos}, {seq} LIMIT ?"
            ),
            table,
            seq,
            pos,
        }
    }

    fn insert(&self, kind: RecordKind, rows: usize) -> String {
        let (cols, row) = if kind == RecordKind::Events {
            (
                "application_name, pipeline_id, notification_id, originator_id, originator_version, topic, state, causal_dependencies",
                "(?, ?, ?, ?, ?, ?, ?, ?)",
            )
        } else {
            (
                "application_name, {seq}, {pos}, topic, state",
                "(?, ?, ?, ?, ?)",
            )
        };
        let cols = cols.replace("{seq}", self.seq).replace("{pos}", self.pos);
        let values = vec![row; rows].join(", ");
        format!("INSERT INTO {} ({cols}) VALUES {values}", self.table)
    }
}

/// A [`RecordManager`] over a [`MySqlDatabase`]: one table kind, application and pipeline.
#[derive(Clone, Debug)]
pub struct MySqlRecordManager {
    db: MySqlDatabase,
    kind: RecordKind,
    application_name: String,
    pipeline_id: i64,
    sql: Arc<Statements>,
}

impl MySqlRecordManager {
    fn new(db: MySqlDatabase, kind: RecordKind, application_name: &str, pipeline_id: i64) -> Self {
        let sql = Arc::new(Statements::new(&db, kind));
        MySqlRecordManager {
            db,
            kind,
            application_name: application_name.to_string(),
            pipeline_id,
            sql,
        }
    }

    /// The database this manager writes to.
    pub fn database(&self) -> &MySqlDatabase {
        &self.db
    }

    /// Writes a batch inside the caller's open transaction, so that the caller's own rows
    /// commit (or roll back) atomically with the events. The notification counter of the
    /// pipeline stays locked until the caller commits or rolls back: keep the transaction short.
    ///
    /// After an error, roll the transaction back (some rows of the batch may have been written
    /// inside it).
    pub async fn write_in_transaction(
        &self,
        tx: &mut Transaction<'_, MySql>,
        batch: &RecordBatch,
    ) -> Result<()> {
        self.write_on(tx, batch).await
    }

    /// A [`super::tx::Tx`]'s writes before its commit: its tracking records cleared if asked,
    /// `batch`, then the tracking records `more` in multi-row statements.
    pub(crate) async fn commit_user_tx(
        &self,
        tx: &mut Transaction<'static, MySql>,
        clear: bool,
        batch: Option<&RecordBatch>,
        more: &[super::Tracking],
    ) -> Result<()> {
        let table = self.db.table_name("notification_tracking");
        if clear {
            sqlx::query(super::sql::dynamic(format!(
                "DELETE FROM {table} WHERE application_name = ? AND pipeline_id = ?"
            )))
            .bind(&self.application_name)
            .bind(self.pipeline_id)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        }
        if let Some(b) = batch {
            self.write_on(tx, b).await?;
        }
        for chunk in more.chunks(CHUNK) {
            let rows = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO {table} (application_name, upstream_application_name, pipeline_id, notification_id) VALUES {rows}"
            );
            let mut q = sqlx::query(super::sql::dynamic(&sql));
            for t in chunk {
                q = q
                    .bind(&self.application_name)
                    .bind(&t.upstream_application)
                    .bind(self.pipeline_id)
                    .bind(t.notification_id);
            }
            q.execute(&mut **tx).await.map_err(map_err)?;
        }
        Ok(())
    }

    /// One read of notifications `start..=end` (see `get_notifications`).
    async fn read_notifications(
        &self,
        start: i64,
        end: i64,
        limit_rows: Option<usize>,
        locking: bool,
    ) -> Result<Vec<Notification>> {
        let sql = if locking {
            &self.sql.notifications_locking
        } else {
            &self.sql.notifications
        };
        let rows = sqlx::query(crate::record::sql::dynamic(sql))
            .bind(&self.application_name)
            .bind(self.pipeline_id)
            .bind(start)
            .bind(end)
            .bind(limit(limit_rows).unwrap_or(i64::MAX))
            .fetch_all(&self.db.pool)
            .await
            .map_err(map_err)?;
        let mut parts = ItemParts::new(BACKEND);
        rows.iter()
            .map(|r| {
                Ok(Notification {
                    id: r.try_get(0).map_err(map_err)?,
                    item: SequencedItem {
                        sequence_id: r.try_get(1).map_err(map_err)?,
                        position: r.try_get(2).map_err(map_err)?,
                        topic: parts.topic(raw(r, 3)?, 3)?,
                        state: parts.state(raw(r, 4)?),
                    },
                    causal_dependencies: r
                        .try_get::<Option<Vec<u8>>, _>(5)
                        .map_err(map_err)?
                        .map(utf8)
                        .transpose()?,
                })
            })
            .collect()
    }

    async fn write_on(&self, conn: &mut MySqlConnection, batch: &RecordBatch) -> Result<()> {
        let n = batch.items.len();
        let mut next_id = 0i64;
        if self.kind == RecordKind::Events && n > 0 {
            let count =
                i64::try_from(n).map_err(|_| Error::Configuration("batch too large".into()))?;
            let last = sqlx::query(crate::record::sql::dynamic(&self.sql.counter))
                .bind(&self.application_name)
                .bind(self.pipeline_id)
                .bind(count)
                .bind(count)
                .execute(&mut *conn)
                .await
                .map_err(map_err)?
                .last_insert_id();
            let last = i64::try_from(last).map_err(|_| {
                Error::Operational("mysql: notification counter out of range".into())
            })?;
            next_id = last - count + 1;
        }
        for (c, chunk) in batch.items.chunks(CHUNK).enumerate() {
            let sql = self.sql.insert(self.kind, chunk.len());
            let mut q = sqlx::query(crate::record::sql::dynamic(&sql));
            for (k, i) in chunk.iter().enumerate() {
                q = q.bind(&self.application_name);
                if self.kind == RecordKind::Events {
                    let first = c == 0 && k == 0;
                    q = q
                        .bind(self.pipeline_id)
                        .bind(next_id)
                        .bind(i.sequence_id)
                        .bind(i.position)
                        .bind(&*i.topic)
                        .bind(&i.state[..])
                        .bind(if first {
                            batch.causal_dependencies.as_deref()
                        } else {
                            None
                        });
                    next_id += 1;
                } else {
                    q = q
                        .bind(i.sequence_id)
                        .bind(i.position)
                        .bind(&*i.topic)
                        .bind(&i.state[..]);
                }
            }
            q.execute(&mut *conn).await.map_err(map_err)?;
        }
        if let Some(t) = &batch.tracking {
            sqlx::query(crate::record::sql::dynamic(&self.sql.tracking_insert))
                .bind(&self.application_name)
                .bind(&t.upstream_application)
                .bind(self.pipeline_id)
                .bind(t.notification_id)
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }
}

#[async_trait]
impl RecordManager for MySqlRecordManager {
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

    async fn begin_tx(&self) -> Result<super::tx::Tx> {
        super::tx::Tx::mysql_of(self.clone()).await
    }

    async fn write(&self, batch: &RecordBatch) -> Result<()> {
        if batch.items.is_empty() && batch.tracking.is_none() {
            return Ok(());
        }
        let mut tx = self.db.pool.begin().await.map_err(map_err)?;
        match self.write_on(&mut tx, batch).await {
            Ok(()) => tx.commit().await.map_err(map_err),
            Err(e) => {
                // Dropping an open transaction rolls it back too; an explicit rollback returns
                // the connection to the pool at once. Its own failure changes nothing.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn get_item(&self, sequence_id: Uuid, position: i64) -> Result<SequencedItem> {
        let row = sqlx::query(crate::record::sql::dynamic(&self.sql.get_item))
            .bind(&self.application_name)
            .bind(sequence_id)
            .bind(position)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(map_err)?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "item at position {position} of sequence {sequence_id}"
                ))
            })?;
        let mut parts = ItemParts::new(BACKEND);
        Ok(SequencedItem {
            sequence_id,
            position,
            topic: parts.topic(raw(&row, 0)?, 0)?,
            state: Bytes::copy_from_slice(raw(&row, 1)?),
        })
    }

    async fn get_items_in_order(
        &self,
        start: i64,
        end: i64,
        limit_rows: Option<usize>,
    ) -> Result<Vec<SequencedItem>> {
        let rows = sqlx::query(crate::record::sql::dynamic(&self.sql.in_order))
            .bind(&self.application_name)
            .bind(start)
            .bind(end)
            .bind(limit(limit_rows).unwrap_or(i64::MAX))
            .fetch_all(&self.db.pool)
            .await
            .map_err(map_err)?;
        let mut parts = ItemParts::new(BACKEND);
        rows.iter()
            .map(|r| {
                Ok(SequencedItem {
                    sequence_id: r.try_get(0).map_err(map_err)?,
                    position: r.try_get(1).map_err(map_err)?,
                    topic: parts.topic(raw(r, 2)?, 2)?,
                    state: parts.state(raw(r, 3)?),
                })
            })
            .collect()
    }

    async fn get_items(&self, sequence_id: Uuid, q: &ItemQuery) -> Result<Vec<SequencedItem>> {
        let Some((lo, hi)) = bounds(q) else {
            return Ok(Vec::new());
        };
        let sql = if q.query_descending {
            &self.sql.get_items_desc
        } else {
            &self.sql.get_items_asc
        };
        let rows = sqlx::query(crate::record::sql::dynamic(sql))
            .bind(&self.application_name)
            .bind(sequence_id)
            .bind(lo)
            .bind(hi)
            .bind(limit(q.limit).unwrap_or(i64::MAX))
            .fetch_all(&self.db.pool)
            .await
            .map_err(map_err)?;
        let mut parts = ItemParts::new(BACKEND);
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(SequencedItem {
                    sequence_id,
                    position: r.try_get(0).map_err(map_err)?,
                    topic: parts.topic(raw(r, 1)?, 1)?,
                    state: parts.state(raw(r, 2)?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if q.query_descending != q.results_descending {
            out.reverse();
        }
        Ok(out)
    }

    async fn list_sequence_ids(&self) -> Result<Vec<Uuid>> {
        sqlx::query_scalar::<_, Uuid>(crate::record::sql::dynamic(&self.sql.list))
            .bind(&self.application_name)
            .fetch_all(&self.db.pool)
            .await
            .map_err(map_err)
    }

    async fn delete_item(&self, sequence_id: Uuid, position: i64) -> Result<()> {
        sqlx::query(crate::record::sql::dynamic(&self.sql.delete))
            .bind(&self.application_name)
            .bind(sequence_id)
            .bind(position)
            .execute(&self.db.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_notifications(
        &self,
        start: i64,
        end: i64,
        limit_rows: Option<usize>,
    ) -> Result<Vec<Notification>> {
        if start > end || limit_rows == Some(0) {
            return Ok(Vec::new());
        }
        // InnoDB can make a transaction visible to new snapshots a moment after it released the
        // counter row's lock, so a plain read may see id n+1 an instant before id n. A gap is
        // therefore read again with a locking read, which does not depend on snapshots: it
        // waits for the writer still finishing. As a last resort (and for a gap that is a
        // deleted record) the range is read once more after a short pause; of that read, only
        // the holes the locking read confirmed are kept (deleted records), and the rows stop
        // at any other gap, so that no reader is ever handed id n+1 before a visible id n.
        let first = self
            .read_notifications(start, end, limit_rows, false)
            .await?;
        if !has_gap(start.max(1), &first) {
            return Ok(first);
        }
        let locked = self
            .read_notifications(start, end, limit_rows, true)
            .await?;
        if !has_gap(start.max(1), &locked) {
            return Ok(locked);
        }
        tokio::time::sleep(std::time::Duration::from_millis(GAP_PAUSE_MS)).await;
        let last = self
            .read_notifications(start, end, limit_rows, false)
            .await?;
        Ok(confirmed_rows(start.max(1), &locked, last))
    }
    async fn max_notification_id(&self) -> Result<i64> {
        sqlx::query_scalar::<_, i64>(crate::record::sql::dynamic(&self.sql.max_notification))
            .bind(&self.application_name)
            .bind(self.pipeline_id)
            .fetch_one(&self.db.pool)
            .await
            .map_err(map_err)
    }

    async fn notification_of(
        &self,
        sequence_id: Uuid,
        position: i64,
    ) -> Result<Option<(i64, i64)>> {
        let sql = format!(
            "SELECT pipeline_id, notification_id FROM {} WHERE application_name = ? \
             AND originator_id = ? AND originator_version = ?",
            self.db.table_name("stored_events")
        );
        sqlx::query_as::<_, (i64, i64)>(crate::record::sql::dynamic(&sql))
            .bind(&self.application_name)
            .bind(sequence_id)
            .bind(position)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(map_err)
    }

    async fn max_tracking_id(&self, upstream_application: &str) -> Result<i64> {
        sqlx::query_scalar::<_, i64>(crate::record::sql::dynamic(&self.sql.max_tracking))
            .bind(&self.application_name)
            .bind(upstream_application)
            .bind(self.pipeline_id)
            .fetch_one(&self.db.pool)
            .await
            .map_err(map_err)
    }

    async fn has_tracking_record(
        &self,
        upstream_application: &str,
        notification_id: i64,
    ) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(crate::record::sql::dynamic(&self.sql.has_tracking))
            .bind(&self.application_name)
            .bind(upstream_application)
            .bind(self.pipeline_id)
            .bind(notification_id)
            .fetch_one(&self.db.pool)
            .await
            .map_err(map_err)?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(ids: &[i64]) -> Vec<Notification> {
        ids.iter()
            .map(|&id| Notification {
                id,
                item: SequencedItem {
                    sequence_id: Uuid::from_u128(id as u128),
                    position: 0,
                    topic: "t".into(),
                    state: b"{}".to_vec().into(),
                },
                causal_dependencies: None,
            })
            .collect()
    }

    fn ids(rows: &[Notification]) -> Vec<i64> {
        rows.iter().map(|n| n.id).collect()
    }

    fn confirmed(start: i64, locked: &[i64], last: &[i64]) -> Vec<i64> {
        ids(&confirmed_rows(start, &rows(locked), rows(last)))
    }

    #[test]
    fn the_last_resort_read_never_returns_an_unconfirmed_gap() {
        // A gap the locking read did not have: cut there.
        assert_eq!(confirmed(1, &[1, 2], &[1, 2, 4, 5]), [1, 2]);
        assert_eq!(confirmed(1, &[], &[1, 2, 4, 5]), [1, 2]);
        assert_eq!(confirmed(3, &[3], &[4, 5]), Vec::<i64>::new());
        // A hole the locking read saw too, and saw past: a deleted record, kept.
        assert_eq!(confirmed(1, &[1, 3], &[1, 3]), [1, 3]);
        assert_eq!(confirmed(1, &[1, 2, 4], &[1, 2, 4, 5, 6]), [1, 2, 4, 5, 6]);
        // ... but a new gap after it is not.
        assert_eq!(confirmed(1, &[1, 3], &[1, 3, 5, 6]), [1, 3]);
        // The locking read had the id the last read is missing: cut.
        assert_eq!(confirmed(1, &[1, 2, 3], &[1, 3]), [1]);
        // Filled in meanwhile: all of it.
        assert_eq!(confirmed(1, &[1, 3], &[1, 2, 3, 4]), [1, 2, 3, 4]);
        assert!(confirmed(1, &[], &[]).is_empty());
        // Whatever comes back has no gap the locking read did not confirm.
        assert!(has_gap(1, &rows(&[1, 2, 4])));
    }
}
