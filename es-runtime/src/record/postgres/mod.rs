//! The PostgreSQL record manager (sqlx, feature `postgres`).
//!
//! # Schema
//!
//! [`PostgresDatabase::setup_tables`] creates the tables below (and [`PostgresDatabase::ddl`]
//! returns the same SQL, for users who create schemas with their own tooling). `{p}` is the
//! table prefix (`es_` unless configured), optionally qualified by a schema (see
//! [`PostgresDatabase::with_schema`]).
//!
//! ```sql
//! CREATE TABLE {p}stored_events (
//!     application_name    TEXT    NOT NULL,
//!     originator_id       UUID    NOT NULL,
//!     originator_version  BIGINT  NOT NULL,
//!     pipeline_id         BIGINT  NOT NULL,
//!     notification_id     BIGINT,            -- NULL until the sequencer assigns it
//!     insert_order        BIGINT  GENERATED ALWAYS AS IDENTITY,
//!     topic               TEXT    NOT NULL,
//!     state               BYTEA   NOT NULL,
//!     causal_dependencies TEXT,
//!     PRIMARY KEY (application_name, originator_id, originator_version));
//! CREATE UNIQUE INDEX ... ON {p}stored_events (application_name, pipeline_id, notification_id)
//!     WHERE notification_id IS NOT NULL;
//! CREATE INDEX ... ON {p}stored_events (application_name, pipeline_id, insert_order)
//!     WHERE notification_id IS NULL;
//! CREATE TABLE {p}notification_tracking (application_name, upstream_application_name,
//!     pipeline_id, notification_id, PRIMARY KEY (all four));
//! CREATE TABLE {p}snapshots (application_name, originator_id, originator_version, topic, state,
//!     PRIMARY KEY (application_name, originator_id, originator_version));
//! CREATE TABLE {p}timestamp_sequenced_items (application_name, sequence_id, position, topic,
//!     state, PRIMARY KEY (application_name, sequence_id, position));  -- + index on position
//! -- and two PL/pgSQL functions: {p}sequence_notifications and {p}notifications
//! ```
//!
//! # Notification ids
//!
//! Writers never wait for each other: a save is one `INSERT` (all rows of the batch through
//! `UNNEST` arrays, plus the tracking record) that leaves `notification_id` NULL. Ids are assigned
//! after commit by a *sequencer*: the `{p}sequence_notifications` function, which takes an
//! advisory lock per (application, pipeline), then numbers after the current maximum every row
//! still without an id that its snapshot can see, in insertion order, and commits. A read is one
//! plain indexed `SELECT` that also says whether committed rows still wait for ids; only then,
//! and only if the page is short, does the reader run the sequencer and read again (one more
//! round trip, inside `{p}notifications`). By default a background task prompted by writes runs
//! the sequencer too (see [`PostgresDatabase::with_background_sequencing`]), so readers rarely
//! have to.
//!
//! Why this is gap-free and never out of order: a snapshot sees only committed rows, so only
//! committed rows get ids, and a rolled-back write never takes one. Sequencer runs are serialised
//! by the lock, and each run takes its snapshot after the lock is held, so it sees the ids of the
//! run before it and continues after them. Each run commits its whole block at once, and a later
//! run commits after an earlier one, so a reader sees ids 1..n as a contiguous prefix that only
//! grows: it can never see n+1 before n. A row committed after a run's snapshot gets a higher
//! id in a later run. Ids follow the order in which rows became visible, not the order of
//! transaction ids, so an open transaction (here or anywhere in the cluster) never holds back
//! the numbering of rows that committed after it started.
//!
//! The sequencer must run at READ COMMITTED isolation (each statement in the function takes a
//! fresh snapshot after the lock is held); the functions refuse to run otherwise.
//!
//! The price: every event row is written twice (inserted, then updated with its id). Writers do
//! not pay it in round trips or waiting; the background task (which waits 50 ms after a prompt,
//! so that one run numbers many rows) or the first reader does. Measured side by side with the
//! alternatives by `examples/pg_notification_ids.rs`.

mod conn;
mod rows;
mod schema;
mod sequencer;
mod statements;

use self::conn::{on_conn, Connections};
use self::rows::ItemDecoder;
use self::sequencer::{run_sequencer, sequence_all, Background, SequenceKey};
use self::statements::Statements;
use super::sql::{bounds, check_identifier, connect_pool, limit, map_other, stable_hash};
use super::{ItemQuery, Notification, RecordBatch, RecordKind, RecordManager, SequencedItem};
use crate::error::{Error, Result};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use sqlx::{Postgres, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use uuid::Uuid;

const BACKEND: &str = "postgres";

/// The table prefix used unless [`PostgresDatabase::with_table_prefix`] says otherwise: es
/// tables do not collide with other libraries' `stored_events`.
pub const DEFAULT_PREFIX: &str = super::DEFAULT_TABLE_PREFIX;

/// Maps an sqlx error from PostgreSQL to an es error.
pub(crate) fn map_err(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &e {
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        let msg = db.message().to_string();
        return match code.as_str() {
            "23505" => Error::RecordConflict(format!(
                "{msg} ({})",
                db.constraint().unwrap_or("unique constraint")
            )),
            "42P01" | "42883" | "3F000" | "42703" => Error::Configuration(format!(
                "postgres: {msg}: create the tables with PostgresDatabase::setup_tables or the SQL of PostgresDatabase::ddl"
            )),
            "0A000" => Error::Configuration(format!("postgres: {msg}")),
            c if c.starts_with("22") => Error::Encoding(format!("postgres: {msg}")),
            _ => Error::Operational(format!("postgres: {msg} (SQLSTATE {code})")),
        };
    }
    map_other(BACKEND, e)
}

/// Table names (qualified by schema and prefix) and the SQL a manager uses.
#[derive(Debug)]
struct Names {
    schema: Option<String>,
    prefix: String,
}

impl Names {
    fn table(&self, name: &str) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}{name}", self.prefix),
            None => format!("{}{name}", self.prefix),
        }
    }
    fn index(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// A PostgreSQL database holding es tables: a connection pool, an optional schema and a table
/// prefix (so several applications, or several test cases, can share one database).
///
/// ```no_run
/// # async fn demo() -> es_runtime::Result<()> {
/// use es_runtime::record::postgres::PostgresDatabase;
/// use es_runtime::record::{RecordKind, RecordManager};
/// let db = PostgresDatabase::connect("postgres://postgres@127.0.0.1:5432/test").await?
///     .with_table_prefix("shop_")?;
/// db.setup_tables().await?;
/// let events = db.record_manager(RecordKind::Events, "shop", 0);
/// assert_eq!(events.max_notification_id().await?, 0);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PostgresDatabase {
    pool: PgPool,
    conns: Arc<Connections>,
    names: Arc<Names>,
    background: Arc<Background>,
}

impl PostgresDatabase {
    /// Connects a pool of up to 10 connections. A malformed URL is a
    /// [`Error::Configuration`]; an unreachable server or a refused login is an
    /// [`Error::Operational`] naming the host and port.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, 10).await
    }

    /// Like [`PostgresDatabase::connect`], with at most `max_connections` connections.
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| Error::Configuration(format!("postgres: invalid connection URL: {e}")))?;
        let server = format!("PostgreSQL at {}:{}", opts.get_host(), opts.get_port());
        let pool = connect_pool(opts, &server, max_connections, map_err).await?;
        Ok(Self::from_pool(pool))
    }

    /// Uses a pool the caller made (and may keep using for its own queries).
    ///
    /// es runs its statements on connections of this pool, but keeps up to half of them
    /// (none of a pool of one connection) between statements instead of returning each to the pool, so that a
    /// statement is one round trip (the pool checks a connection with a round trip each time it
    /// hands one out and takes it back). A kept connection is checked again before use once it
    /// has been idle for a second.
    pub fn from_pool(pool: PgPool) -> Self {
        PostgresDatabase {
            conns: Connections::new(pool.clone()),
            pool,
            names: Arc::new(Names {
                schema: None,
                prefix: DEFAULT_PREFIX.to_string(),
            }),
            background: Background::new(true),
        }
    }

    /// Puts the tables in this schema (created by [`PostgresDatabase::setup_tables`]).
    /// The name must be a plain identifier: ASCII letters, digits and underscores.
    pub fn with_schema(self, schema: &str) -> Result<Self> {
        check_identifier("schema", schema, false)?;
        Ok(PostgresDatabase {
            names: Arc::new(Names {
                schema: Some(schema.to_ascii_lowercase()),
                prefix: self.names.prefix.clone(),
            }),
            background: Background::new(self.background.enabled),
            pool: self.pool,
            conns: self.conns,
        })
    }

    /// Prefixes every table name with `prefix` (ASCII letters, digits and underscores; the
    /// default is [`DEFAULT_PREFIX`], `""` gives the bare names).
    pub fn with_table_prefix(self, prefix: &str) -> Result<Self> {
        check_identifier("table prefix", prefix, true)?;
        Ok(PostgresDatabase {
            names: Arc::new(Names {
                schema: self.names.schema.clone(),
                prefix: prefix.to_ascii_lowercase(),
            }),
            background: Background::new(self.background.enabled),
            pool: self.pool,
            conns: self.conns,
        })
    }

    /// Turns the background sequencer on (the default) or off. When on, each write prompts a
    /// task that assigns notification ids soon after the write, using one pooled connection at a
    /// time; when off, ids are assigned only when the log is read (or
    /// [`PostgresRecordManager::sequence_notifications`] is called). Either way readers never
    /// see a gap.
    pub fn with_background_sequencing(self, on: bool) -> Self {
        PostgresDatabase {
            background: Background::new(on),
            ..self
        }
    }

    /// Prompts the background sequencer, if it is on and a tokio runtime is running.
    fn prompt_sequencer(&self, key: &SequenceKey) {
        if !self.background.enabled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(mut sender) = self.background.sender.lock() else {
            return;
        };
        if let Some(tx) = sender.as_ref() {
            if tx.send(key.clone()).is_ok() {
                return;
            }
        }
        // First use, or the runtime that ran the task has shut down: start a new task here.
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        if tx.send(key.clone()).is_ok() {
            runtime.spawn(run_sequencer(
                self.conns.clone(),
                self.names.table("sequence_notifications"),
                rx,
            ));
            *sender = Some(tx);
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The qualified name of one of the tables: `stored_events`, `notification_tracking`,
    /// `snapshots` or `timestamp_sequenced_items`.
    pub fn table_name(&self, table: &str) -> String {
        self.names.table(table)
    }
    /// A record manager for one table kind, application and pipeline.
    pub fn record_manager(
        &self,
        kind: RecordKind,
        application_name: &str,
        pipeline_id: i64,
    ) -> PostgresRecordManager {
        PostgresRecordManager::new(self.clone(), kind, application_name, pipeline_id)
    }
}

/// The statements of one manager, made once.
/// A [`RecordManager`] over a [`PostgresDatabase`]: one table kind, application and pipeline.
///
/// [`RecordManager::write`] is one statement (one round trip); so is every read, except a read
/// of notifications that finds committed rows still waiting for ids (two round trips).
#[derive(Clone, Debug)]
pub struct PostgresRecordManager {
    db: PostgresDatabase,
    kind: RecordKind,
    application_name: String,
    pipeline_id: i64,
    lock_key: i64,
    key: SequenceKey,
    sql: Arc<Statements>,
}

impl PostgresRecordManager {
    fn new(
        db: PostgresDatabase,
        kind: RecordKind,
        application_name: &str,
        pipeline_id: i64,
    ) -> Self {
        let lock_key = stable_hash(&[
            b"es notifications",
            db.names.schema.as_deref().unwrap_or("").as_bytes(),
            db.names.prefix.as_bytes(),
            application_name.as_bytes(),
            &pipeline_id.to_le_bytes(),
        ]);
        let sql = Arc::new(Statements::new(&db.names, kind));
        let key = SequenceKey {
            application_name: application_name.into(),
            pipeline_id,
            lock_key,
        };
        PostgresRecordManager {
            db,
            kind,
            application_name: application_name.to_string(),
            pipeline_id,
            lock_key,
            key,
            sql,
        }
    }

    /// The database this manager writes to.
    pub fn database(&self) -> &PostgresDatabase {
        &self.db
    }

    /// Writes a batch inside the caller's open transaction, so that the caller's own rows
    /// commit (or roll back) atomically with the events. Notification ids are assigned after
    /// the transaction commits, when the log is next read (or when
    /// [`PostgresRecordManager::sequence_notifications`] is called after the commit).
    ///
    /// On [`Error::RecordConflict`] the statement failed and PostgreSQL has aborted the
    /// transaction: roll it back.
    pub async fn write_in_transaction(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        batch: &RecordBatch,
    ) -> Result<()> {
        self.write_on(tx, batch).await
    }

    /// A [`super::tx::Tx`]'s writes before its commit: its tracking records cleared if asked,
    /// `batch`, then the tracking records `more` in one multi-row statement.
    pub(crate) async fn commit_user_tx(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        clear: bool,
        batch: Option<&RecordBatch>,
        more: &[super::Tracking],
    ) -> Result<()> {
        let table = self.db.names.table("notification_tracking");
        if clear {
            sqlx::query(super::sql::dynamic(format!(
                "DELETE FROM {table} WHERE application_name = $1 AND pipeline_id = $2"
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
        if !more.is_empty() {
            let upstreams: Vec<&str> = more
                .iter()
                .map(|t| t.upstream_application.as_str())
                .collect();
            let ids: Vec<i64> = more.iter().map(|t| t.notification_id).collect();
            sqlx::query(super::sql::dynamic(format!(
                "INSERT INTO {table} (application_name, upstream_application_name, pipeline_id, notification_id) \
                 SELECT $1, u, $2, n FROM UNNEST($3::text[], $4::bigint[]) AS t(u, n)"
            )))
            .bind(&self.application_name)
            .bind(self.pipeline_id)
            .bind(upstreams)
            .bind(ids)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        }
        Ok(())
    }

    /// Prompts the background sequencer after a [`super::tx::Tx`] committed events.
    pub(crate) fn prompt_after_commit(&self) {
        self.db.prompt_sequencer(&self.key);
    }

    /// Assigns notification ids to the rows of committed transactions that have none yet, and
    /// returns the highest id (readers do this by themselves; writers may call it to make their
    /// events visible without waiting for the next read).
    pub async fn sequence_notifications(&self) -> Result<i64> {
        sequence_all(&self.db.conns, &self.sql.max_notification, &self.key).await
    }

    async fn write_on(&self, conn: &mut PgConnection, batch: &RecordBatch) -> Result<()> {
        if batch.items.is_empty() && batch.tracking.is_none() {
            return Ok(());
        }
        self.insert(batch).execute(conn).await.map_err(map_err)?;
        Ok(())
    }

    /// Reads the items of one sequence that `q` selects, in the order of its query, handing
    /// each to `f` as its row arrives.
    async fn stream_items(
        &self,
        sequence_id: Uuid,
        q: &ItemQuery,
        f: &mut (dyn FnMut(SequencedItem) -> Result<()> + Send),
    ) -> Result<()> {
        let Some((lo, hi)) = bounds(q) else {
            return Ok(());
        };
        let sql = if q.query_descending {
            &self.sql.get_items_desc
        } else {
            &self.sql.get_items_asc
        };
        let mut d = ItemDecoder::new();
        let mut handed = false;
        on_conn!(self.db.conns, c => {
            let query = sqlx::query(crate::record::sql::dynamic(sql))
                .bind(&self.application_name)
                .bind(sequence_id)
                .bind(lo)
                .bind(hi)
                .bind(limit(q.limit));
            rows::for_each_row(c, query, |r| {
                handed = true;
                f(SequencedItem {
                    sequence_id,
                    position: rows::int8(r, 0)?,
                    topic: d.topic(r, 1)?,
                    state: d.state(r, 2)?,
                })
            })
            .await
        }, retry_if = !handed)?
    }

    /// The one statement that writes a batch.
    fn insert<'q>(&'q self, batch: &'q RecordBatch) -> PgQuery<'q> {
        let ids: Vec<Uuid> = batch.items.iter().map(|i| i.sequence_id).collect();
        let positions: Vec<i64> = batch.items.iter().map(|i| i.position).collect();
        let topics: Vec<&str> = batch.items.iter().map(|i| &*i.topic).collect();
        let states: Vec<&[u8]> = batch.items.iter().map(|i| &i.state[..]).collect();
        if batch.tracking.is_none() && batch.causal_dependencies.is_none() {
            // The common case: a plain insert.
            let q = sqlx::query(crate::record::sql::dynamic(&self.sql.insert_items))
                .bind(&self.application_name);
            let q = match self.kind {
                RecordKind::Events => q.bind(self.pipeline_id),
                _ => q,
            };
            return q.bind(ids).bind(positions).bind(topics).bind(states);
        }
        sqlx::query(crate::record::sql::dynamic(&self.sql.insert))
            .bind(&self.application_name)
            .bind(self.pipeline_id)
            .bind(ids)
            .bind(positions)
            .bind(topics)
            .bind(states)
            .bind(
                batch
                    .tracking
                    .as_ref()
                    .map(|t| t.upstream_application.as_str()),
            )
            .bind(batch.tracking.as_ref().map(|t| t.notification_id))
            .bind(batch.causal_dependencies.as_deref())
    }
}

/// Room to reserve for the rows of a read: its limit or the width of its range, within reason.
fn capacity(limit: Option<usize>, width: Option<i64>) -> usize {
    let width = width
        .and_then(|w| usize::try_from(w).ok())
        .map(|w| w.saturating_add(1));
    limit.into_iter().chain(width).min().unwrap_or(0).min(8192)
}

/// A statement with its arguments.
type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

#[async_trait]
impl RecordManager for PostgresRecordManager {
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
        super::tx::Tx::postgres_of(self.clone()).await
    }

    async fn write(&self, batch: &RecordBatch) -> Result<()> {
        if batch.items.is_empty() && batch.tracking.is_none() {
            return Ok(());
        }
        on_conn!(self.db.conns, c => self.insert(batch).execute(c).await)?;
        if self.kind == RecordKind::Events && !batch.items.is_empty() {
            self.db.prompt_sequencer(&self.key);
        }
        Ok(())
    }

    async fn get_item(&self, sequence_id: Uuid, position: i64) -> Result<SequencedItem> {
        let row = on_conn!(self.db.conns, c => sqlx::query(crate::record::sql::dynamic(&self.sql.get_item))
            .bind(&self.application_name)
            .bind(sequence_id)
            .bind(position)
            .fetch_optional(c)
            .await)?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "item at position {position} of sequence {sequence_id}"
            ))
        })?;
        let mut d = ItemDecoder::new();
        Ok(SequencedItem {
            sequence_id,
            position,
            topic: d.topic(&row, 0)?,
            state: d.state(&row, 1)?,
        })
    }

    async fn get_items(&self, sequence_id: Uuid, q: &ItemQuery) -> Result<Vec<SequencedItem>> {
        let width = bounds(q).map(|(lo, hi)| hi.saturating_sub(lo));
        let mut out = Vec::with_capacity(capacity(q.limit, width));
        self.stream_items(sequence_id, q, &mut |i| {
            out.push(i);
            Ok(())
        })
        .await?;
        if q.query_descending != q.results_descending {
            out.reverse();
        }
        Ok(out)
    }

    async fn for_each_item(
        &self,
        sequence_id: Uuid,
        q: &ItemQuery,
        f: &mut (dyn for<'i> FnMut(&'i SequencedItem) -> Result<()> + Send),
    ) -> Result<usize> {
        if q.query_descending != q.results_descending {
            let items = self.get_items(sequence_id, q).await?;
            items.iter().try_for_each(&mut *f)?;
            return Ok(items.len());
        }
        let mut n = 0;
        self.stream_items(sequence_id, q, &mut |i| {
            n += 1;
            f(&i)
        })
        .await?;
        Ok(n)
    }

    async fn get_items_in_order(
        &self,
        start: i64,
        end: i64,
        limit_rows: Option<usize>,
    ) -> Result<Vec<SequencedItem>> {
        let mut d = ItemDecoder::new();
        let mut out = Vec::with_capacity(capacity(limit_rows, None));
        on_conn!(self.db.conns, c => {
            out.clear();
            let query = sqlx::query(crate::record::sql::dynamic(&self.sql.in_order))
                .bind(&self.application_name)
                .bind(start)
                .bind(end)
                .bind(limit(limit_rows));
            rows::for_each_row(c, query, |r| {
                out.push(d.item(r, 0)?);
                Ok(())
            })
            .await
        })??;
        Ok(out)
    }

    async fn list_sequence_ids(&self) -> Result<Vec<Uuid>> {
        on_conn!(self.db.conns, c => sqlx::query_scalar::<_, Uuid>(crate::record::sql::dynamic(&self.sql.list))
            .bind(&self.application_name)
            .fetch_all(c)
            .await)
    }

    async fn delete_item(&self, sequence_id: Uuid, position: i64) -> Result<()> {
        on_conn!(self.db.conns, c => sqlx::query(crate::record::sql::dynamic(&self.sql.delete))
            .bind(&self.application_name)
            .bind(sequence_id)
            .bind(position)
            .execute(c)
            .await)?;
        Ok(())
    }

    async fn get_notifications(
        &self,
        start: i64,
        end: i64,
        limit_rows: Option<usize>,
    ) -> Result<Vec<Notification>> {
        let mut page = Vec::with_capacity(capacity(limit_rows, Some(end.saturating_sub(start))));
        self.for_each_notification(start, end, limit_rows, &mut |n| {
            page.push(n);
            Ok(())
        })
        .await?;
        Ok(page)
    }

    /// Each row is handed to `f` as it arrives.
    ///
    /// The common case is one plain indexed read. The statement also says whether committed
    /// rows still wait for ids: if so, and the read stopped short of what was asked, the
    /// sequencer runs and the rest is read after the last id handed out, inside the
    /// `{p}notifications` function (one more round trip). Ids are assigned in commit order by
    /// one sequencer at a time, so a statement sees them without gaps, and neither read hands
    /// out id n+1 before id n.
    async fn for_each_notification(
        &self,
        start: i64,
        end: i64,
        limit_rows: Option<usize>,
        f: &mut (dyn FnMut(Notification) -> Result<()> + Send),
    ) -> Result<usize> {
        if start > end || limit_rows == Some(0) {
            return Ok(0);
        }
        let mut d = ItemDecoder::new();
        let mut pending = false;
        let mut count = 0usize;
        let mut last = start - 1;
        let mut first = true;
        on_conn!(self.db.conns, c => {
            let query = sqlx::query(crate::record::sql::dynamic(&self.sql.notifications_fast))
                .bind(&self.application_name)
                .bind(self.pipeline_id)
                .bind(start)
                .bind(end)
                .bind(limit(limit_rows));
            rows::for_each_row(c, query, |r| {
                if first {
                    // The same in every row.
                    pending = rows::boolean(r, 0)?;
                    first = false;
                    // The one row of an empty page has no notification (the LEFT JOIN found none).
                    if rows::opt_int8(r, 1)?.is_none() {
                        return Ok(());
                    }
                }
                let n = d.notification(r, 1)?;
                last = n.id;
                count += 1;
                f(n)
            })
            .await
        }, retry_if = first)??;
        let wanted = limit_rows
            .map(|l| l as u128)
            .unwrap_or(u128::MAX)
            .min((end as i128 - start.max(1) as i128 + 1).max(0) as u128);
        if !pending || count as u128 >= wanted || last >= end {
            return Ok(count);
        }
        let rest = limit_rows.map(|l| l - count);
        let before = count;
        on_conn!(self.db.conns, c => {
            let query = sqlx::query(crate::record::sql::dynamic(&self.sql.notifications))
                .bind(&self.application_name)
                .bind(self.pipeline_id)
                .bind(self.lock_key)
                .bind(last + 1)
                .bind(end)
                .bind(limit(rest));
            rows::for_each_row(c, query, |r| {
                count += 1;
                f(d.notification(r, 0)?)
            })
            .await
        }, retry_if = count == before)??;
        Ok(count)
    }

    async fn max_notification_id(&self) -> Result<i64> {
        // Fast path: one plain statement; the sequencer runs only if rows wait for ids.
        let (max, pending): (i64, bool) = on_conn!(self.db.conns, c => {
            sqlx::query_as(crate::record::sql::dynamic(&self.sql.max_fast))
                .bind(&self.application_name)
                .bind(self.pipeline_id)
                .fetch_one(c)
                .await
        })?;
        if pending {
            self.sequence_notifications().await
        } else {
            Ok(max)
        }
    }

    /// An event still waiting for its notification id (committed, not yet sequenced) is
    /// sequenced first, in its own pipeline.
    async fn notification_of(
        &self,
        sequence_id: Uuid,
        position: i64,
    ) -> Result<Option<(i64, i64)>> {
        let sql = format!(
            "SELECT pipeline_id, notification_id FROM {} WHERE application_name = $1 \
             AND originator_id = $2 AND originator_version = $3",
            self.db.table_name("stored_events")
        );
        for _ in 0..2 {
            let r = on_conn!(self.db.conns, c => {
                sqlx::query_as::<_, (i64, Option<i64>)>(crate::record::sql::dynamic(&sql))
                    .bind(&self.application_name)
                    .bind(sequence_id)
                    .bind(position)
                    .fetch_optional(c)
                    .await
            })?;
            match r {
                None => return Ok(None),
                Some((p, Some(id))) => return Ok(Some((p, id))),
                Some((p, None)) => {
                    self.db
                        .record_manager(RecordKind::Events, &self.application_name, p)
                        .sequence_notifications()
                        .await?;
                }
            }
        }
        Err(Error::Operational(format!(
            "event {position} of {sequence_id} has no notification id after sequencing"
        )))
    }

    async fn max_tracking_id(&self, upstream_application: &str) -> Result<i64> {
        on_conn!(self.db.conns, c => sqlx::query_scalar::<_, i64>(crate::record::sql::dynamic(&self.sql.max_tracking))
            .bind(&self.application_name)
            .bind(upstream_application)
            .bind(self.pipeline_id)
            .fetch_one(c)
            .await)
    }

    async fn has_tracking_record(
        &self,
        upstream_application: &str,
        notification_id: i64,
    ) -> Result<bool> {
        on_conn!(self.db.conns, c => sqlx::query_scalar::<_, bool>(crate::record::sql::dynamic(&self.sql.has_tracking))
            .bind(&self.application_name)
            .bind(upstream_application)
            .bind(self.pipeline_id)
            .bind(notification_id)
            .fetch_one(c)
            .await)
    }
}
