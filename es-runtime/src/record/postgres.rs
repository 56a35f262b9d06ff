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
//! CREATE UNIQUE INDEX ... ON {p}stored_events (application_name, pipeline_id, notification_id);
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

use super::sql::{bounds, check_identifier, limit, map_other, stable_hash};
use super::{ItemQuery, Notification, RecordBatch, RecordKind, RecordManager, SequencedItem};
use crate::error::{Error, Result};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Row, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use uuid::Uuid;

const BACKEND: &str = "postgres";

/// The table prefix used unless [`PostgresDatabase::with_table_prefix`] says otherwise: es
/// tables do not collide with other libraries' `stored_events`.
pub const DEFAULT_PREFIX: &str = "es_";

/// How long connecting (and acquiring a pooled connection) may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Maps an sqlx error from PostgreSQL to an es error.
fn map_err(e: sqlx::Error) -> Error {
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
    names: Arc<Names>,
    background: Arc<Background>,
}

/// What identifies one notification sequence to the sequencer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SequenceKey {
    application_name: Arc<str>,
    pipeline_id: i64,
    lock_key: i64,
}

/// The background sequencer of one database: after each write, a task (spawned on first use, on
/// the caller's tokio runtime) assigns the new rows their ids, coalescing prompts that arrive
/// while it works. Readers still sequence before they read; this only makes ids appear sooner
/// and takes that work off the read path.
#[derive(Debug)]
struct Background {
    enabled: bool,
    sender: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<SequenceKey>>>,
}

impl Background {
    fn new(enabled: bool) -> Arc<Self> {
        Arc::new(Background {
            enabled,
            sender: std::sync::Mutex::new(None),
        })
    }
}

/// At most this many rows get ids in one sequencer run, so that the lock and the transaction
/// stay short even after a large backlog of writes; later runs (or reads) number the rest.
const SEQUENCER_BATCH: usize = 10_000;

/// Runs the sequencer (`sql` calls the `{p}sequence_notifications` function) until a run numbers
/// fewer rows than [`SEQUENCER_BATCH`], that is until every row committed before the last run
/// has its id; returns the highest id.
async fn sequence_all(pool: &PgPool, sql: &str, key: &SequenceKey) -> Result<i64> {
    let mut previous: Option<i64> = None;
    loop {
        let max: i64 = sqlx::Executor::fetch_one(
            pool,
            sqlx::query(sql)
                .bind(&*key.application_name)
                .bind(key.pipeline_id)
                .bind(key.lock_key),
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(map_err)?;
        if previous.is_some_and(|p| max - p < SEQUENCER_BATCH as i64) {
            return Ok(max);
        }
        previous = Some(max);
    }
}

/// How long the background sequencer waits after a prompt before it runs.
const SEQUENCER_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

async fn run_sequencer(
    pool: PgPool,
    function: String,
    mut prompts: tokio::sync::mpsc::UnboundedReceiver<SequenceKey>,
) {
    let sql = format!("SELECT {function}($1, $2, $3)");
    while let Some(first) = prompts.recv().await {
        // Let a few more writes land first: one run then numbers them all, and the sequencer's
        // own commits (each a WAL flush) stay few next to the writers' commits.
        tokio::time::sleep(SEQUENCER_DELAY).await;
        let mut keys = vec![first];
        while let Ok(k) = prompts.try_recv() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        for k in keys {
            // Best effort: readers assign ids themselves before reading, so a failure here only
            // leaves the work to them.
            let _ = sequence_all(&pool, &sql, &k).await;
        }
    }
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
        let (host, port) = (opts.get_host().to_string(), opts.get_port());
        let unreachable = |e: sqlx::Error| match map_err(e) {
            Error::Operational(m) => Error::Operational(format!(
                "cannot connect to PostgreSQL at {host}:{port}: {m}"
            )),
            other => other,
        };
        // One direct attempt first: a pool retries refused connections until its acquire
        // timeout, while an unreachable server should be reported at once.
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&opts))
            .await
            .map_err(|_| {
                Error::Operational(format!(
                    "cannot connect to PostgreSQL at {host}:{port}: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?
            .map_err(unreachable)?;
        // Closing the probe is a courtesy to the server; its failure changes nothing.
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(unreachable)?;
        Ok(Self::from_pool(pool))
    }

    /// Uses a pool the caller made (and may keep using for its own queries).
    pub fn from_pool(pool: PgPool) -> Self {
        PostgresDatabase {
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
                self.pool.clone(),
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

    /// The SQL that creates the schema (if one is configured), the tables, their indexes and the
    /// two functions of the notification sequencer. Every statement is idempotent.
    pub fn ddl(&self) -> String {
        let n = &self.names;
        let events = n.table("stored_events");
        let tracking = n.table("notification_tracking");
        let snapshots = n.table("snapshots");
        let timed = n.table("timestamp_sequenced_items");
        let sequencer = n.table("sequence_notifications");
        let reader = n.table("notifications");
        let schema = n
            .schema
            .as_ref()
            .map(|s| format!("CREATE SCHEMA IF NOT EXISTS {s};\n"))
            .unwrap_or_default();
        let (notif_idx, pending_idx, timed_idx) = (
            n.index("stored_events_notification_idx"),
            n.index("stored_events_unsequenced_idx"),
            n.index("timestamp_sequenced_items_position_idx"),
        );
        format!(
            r#"{schema}CREATE TABLE IF NOT EXISTS {events} (
    application_name    TEXT    NOT NULL,
    originator_id       UUID    NOT NULL,
    originator_version  BIGINT  NOT NULL,
    pipeline_id         BIGINT  NOT NULL,
    notification_id     BIGINT,
    insert_order        BIGINT  GENERATED ALWAYS AS IDENTITY,
    topic               TEXT    NOT NULL,
    state               BYTEA   NOT NULL,
    causal_dependencies TEXT,
    PRIMARY KEY (application_name, originator_id, originator_version)
);
CREATE UNIQUE INDEX IF NOT EXISTS {notif_idx}
    ON {events} (application_name, pipeline_id, notification_id);
CREATE INDEX IF NOT EXISTS {pending_idx}
    ON {events} (application_name, pipeline_id, insert_order)
    WHERE notification_id IS NULL;
CREATE TABLE IF NOT EXISTS {tracking} (
    application_name          TEXT   NOT NULL,
    upstream_application_name TEXT   NOT NULL,
    pipeline_id               BIGINT NOT NULL,
    notification_id           BIGINT NOT NULL,
    PRIMARY KEY (application_name, upstream_application_name, pipeline_id, notification_id)
);
CREATE TABLE IF NOT EXISTS {snapshots} (
    application_name   TEXT   NOT NULL,
    originator_id      UUID   NOT NULL,
    originator_version BIGINT NOT NULL,
    topic              TEXT   NOT NULL,
    state              BYTEA  NOT NULL,
    PRIMARY KEY (application_name, originator_id, originator_version)
);
CREATE TABLE IF NOT EXISTS {timed} (
    application_name TEXT   NOT NULL,
    sequence_id      UUID   NOT NULL,
    position         BIGINT NOT NULL,
    topic            TEXT   NOT NULL,
    state            BYTEA  NOT NULL,
    PRIMARY KEY (application_name, sequence_id, position)
);
CREATE INDEX IF NOT EXISTS {timed_idx} ON {timed} (application_name, position);
CREATE OR REPLACE FUNCTION {sequencer}(app TEXT, pipe BIGINT, lock_key BIGINT)
RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $es$
DECLARE
    top BIGINT;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'es: notification ids are assigned at READ COMMITTED isolation only, not %',
            current_setting('transaction_isolation') USING ERRCODE = '0A000';
    END IF;
    IF EXISTS (SELECT 1 FROM {events} e
               WHERE e.application_name = app AND e.pipeline_id = pipe AND e.notification_id IS NULL) THEN
        PERFORM pg_advisory_xact_lock(lock_key);
        -- Statements below take their snapshots after the lock is held.
        SELECT COALESCE(MAX(e.notification_id), 0) INTO top FROM {events} e
            WHERE e.application_name = app AND e.pipeline_id = pipe;
        -- Joined by ctid: a TID scan per row whatever the planner's statistics say (a fresh
        -- table without statistics could otherwise get a nested loop over sequential scans).
        -- Only this run updates these rows: the lock excludes other sequencers.
        UPDATE {events} AS e SET notification_id = top + p.n
        FROM (SELECT q.c, row_number() OVER (ORDER BY q.insert_order) AS n
              FROM (SELECT r.ctid AS c, r.insert_order
                    FROM {events} r
                    WHERE r.application_name = app AND r.pipeline_id = pipe
                      AND r.notification_id IS NULL
                    ORDER BY r.insert_order
                    LIMIT {SEQUENCER_BATCH}) AS q) AS p
        WHERE e.ctid = p.c AND e.notification_id IS NULL;
    END IF;
    SELECT COALESCE(MAX(e.notification_id), 0) INTO top FROM {events} e
        WHERE e.application_name = app AND e.pipeline_id = pipe;
    RETURN top;
END
$es$;
CREATE OR REPLACE FUNCTION {reader}(app TEXT, pipe BIGINT, lock_key BIGINT,
                                    first_id BIGINT, last_id BIGINT, max_rows BIGINT)
RETURNS TABLE (notification_id BIGINT, originator_id UUID, originator_version BIGINT,
               topic TEXT, state BYTEA, causal_dependencies TEXT)
LANGUAGE plpgsql VOLATILE AS $es$
BEGIN
    PERFORM {sequencer}(app, pipe, lock_key);
    RETURN QUERY
        SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state,
               e.causal_dependencies
        FROM {events} e
        WHERE e.application_name = app AND e.pipeline_id = pipe
          AND e.notification_id BETWEEN first_id AND last_id
        ORDER BY e.notification_id
        LIMIT max_rows;
END
$es$;
"#
        )
    }

    /// Creates the schema, tables, indexes and functions if they do not exist (serialised by an
    /// advisory lock, so concurrent callers do not race on the catalog).
    pub async fn setup_tables(&self) -> Result<()> {
        let key = stable_hash(&[
            b"es setup",
            self.names.schema.as_deref().unwrap_or("").as_bytes(),
            self.names.prefix.as_bytes(),
        ]);
        // Executor methods return boxed `Send` futures: callers may spawn this one.
        use sqlx::Executor as _;
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let locked = (&mut *tx)
            .execute(sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key))
            .await;
        locked.map_err(map_err)?;
        let ddl = self.ddl();
        let created = (&mut *tx).execute(sqlx::raw_sql(&ddl)).await;
        if let Err(e) = created {
            drop(tx);
            // A foreign table of the same name makes the DDL fail: name it if that is why.
            self.check_layout().await?;
            return Err(map_err(e));
        }
        tx.commit().await.map_err(map_err)?;
        self.check_layout().await
    }

    /// Fails with [`Error::Configuration`] when a table of the same name exists with another
    /// layout (for instance another library's `stored_events`).
    async fn check_layout(&self) -> Result<()> {
        let checks = [
            ("stored_events", "application_name, originator_id, originator_version, pipeline_id, notification_id, insert_order, topic, state, causal_dependencies"),
            ("notification_tracking", "application_name, upstream_application_name, pipeline_id, notification_id"),
            ("snapshots", "application_name, originator_id, originator_version, topic, state"),
            ("timestamp_sequenced_items", "application_name, sequence_id, position, topic, state"),
        ];
        for (table, cols) in checks {
            let t = self.names.table(table);
            let sql = format!("SELECT {cols} FROM {t} LIMIT 0");
            let probe = sqlx::Executor::execute(&self.pool, sqlx::query(&sql)).await;
            if let Err(e) = probe {
                let undefined_column = e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| c == "42703");
                if !undefined_column {
                    return Err(map_err(e));
                }
                return Err(Error::Configuration(format!(
                    "postgres: table {t} exists with a layout es does not use ({}): \
                     choose another table prefix or schema",
                    map_err(e)
                )));
            }
        }
        Ok(())
    }

    /// Drops the tables and functions (and the schema, if one is configured). For tests.
    pub async fn drop_tables(&self) -> Result<()> {
        let n = &self.names;
        let sql = match &n.schema {
            Some(s) => format!("DROP SCHEMA IF EXISTS {s} CASCADE"),
            None => format!(
                "DROP TABLE IF EXISTS {}, {}, {}, {} CASCADE; \
                 DROP FUNCTION IF EXISTS {}(TEXT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT); \
                 DROP FUNCTION IF EXISTS {}(TEXT, BIGINT, BIGINT);",
                n.table("stored_events"),
                n.table("notification_tracking"),
                n.table("snapshots"),
                n.table("timestamp_sequenced_items"),
                n.table("notifications"),
                n.table("sequence_notifications"),
            ),
        };
        sqlx::raw_sql(&sql)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
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
#[derive(Debug)]
struct Statements {
    insert: String,
    get_item: String,
    get_items_asc: String,
    get_items_desc: String,
    list: String,
    delete: String,
    notifications: String,
    notifications_fast: String,
    max_fast: String,
    max_notification: String,
    max_tracking: String,
    has_tracking: String,
}

impl Statements {
    fn new(n: &Names, kind: RecordKind) -> Self {
        let tracking = n.table("notification_tracking");
        let (table, seq, pos) = match kind {
            RecordKind::Events => (
                n.table("stored_events"),
                "originator_id",
                "originator_version",
            ),
            RecordKind::Snapshots => (n.table("snapshots"), "originator_id", "originator_version"),
            RecordKind::TimestampSequenced => (
                n.table("timestamp_sequenced_items"),
                "sequence_id",
                "position",
            ),
        };
        let track = format!(
            "tr AS (INSERT INTO {tracking} (application_name, upstream_application_name, pipeline_id, notification_id) \
             SELECT $1, $7, $2, $8 WHERE $7::TEXT IS NOT NULL)"
        );
        // $1 app, $2 pipeline, $3 ids, $4 positions, $5 topics, $6 states, $7 upstream,
        // $8 tracked id, $9 causal dependencies (events only).
        let insert = match kind {
            RecordKind::Events => format!(
                "WITH ev AS (INSERT INTO {table} (application_name, pipeline_id, originator_id, originator_version, \
                 topic, state, causal_dependencies) \
                 SELECT $1, $2, i.id, i.pos, i.topic, i.state, CASE WHEN i.n = 1 THEN $9::TEXT END \
                 FROM UNNEST($3::UUID[], $4::BIGINT[], $5::TEXT[], $6::BYTEA[]) WITH ORDINALITY AS i(id, pos, topic, state, n) \
                 ORDER BY i.n), {track} SELECT 1"
            ),
            _ => format!(
                "WITH ev AS (INSERT INTO {table} (application_name, {seq}, {pos}, topic, state) \
                 SELECT $1, i.id, i.pos, i.topic, i.state \
                 FROM UNNEST($3::UUID[], $4::BIGINT[], $5::TEXT[], $6::BYTEA[]) AS i(id, pos, topic, state)), \
                 {track} SELECT $9::TEXT IS NULL"
            ),
        };
        let range = format!(
            "SELECT {pos}, topic, state FROM {table} WHERE application_name = $1 AND {seq} = $2 \
             AND {pos} BETWEEN $3 AND $4 ORDER BY {pos}"
        );
        Statements {
            insert,
            get_item: format!(
                "SELECT topic, state FROM {table} WHERE application_name = $1 AND {seq} = $2 AND {pos} = $3"
            ),
            get_items_asc: format!("{range} ASC LIMIT $5"),
            get_items_desc: format!("{range} DESC LIMIT $5"),
            list: format!("SELECT DISTINCT {seq} FROM {table} WHERE application_name = $1"),
            delete: format!("DELETE FROM {table} WHERE application_name = $1 AND {seq} = $2 AND {pos} = $3"),
            notifications: format!(
                "SELECT notification_id, originator_id, originator_version, topic, state, causal_dependencies \
                 FROM {}($1, $2, $3, $4, $5, $6)",
                n.table("notifications")
            ),
            // The common case in one plain statement: the page as numbered now, and whether any
            // committed row still waits for an id (then the sequencer runs, see below).
            notifications_fast: format!(
                "SELECT p.pending, e.notification_id, e.originator_id, e.originator_version, e.topic, \
                 e.state, e.causal_dependencies \
                 FROM (SELECT EXISTS (SELECT 1 FROM {events} q WHERE q.application_name = $1 \
                       AND q.pipeline_id = $2 AND q.notification_id IS NULL) AS pending) p \
                 LEFT JOIN LATERAL (SELECT r.notification_id, r.originator_id, r.originator_version, \
                       r.topic, r.state, r.causal_dependencies FROM {events} r \
                       WHERE r.application_name = $1 AND r.pipeline_id = $2 \
                       AND r.notification_id BETWEEN $3 AND $4 \
                       ORDER BY r.notification_id LIMIT $5) e ON TRUE",
                events = n.table("stored_events")
            ),
            max_fast: format!(
                "SELECT (SELECT COALESCE(MAX(e.notification_id), 0) FROM {events} e \
                 WHERE e.application_name = $1 AND e.pipeline_id = $2), \
                 EXISTS (SELECT 1 FROM {events} q WHERE q.application_name = $1 \
                 AND q.pipeline_id = $2 AND q.notification_id IS NULL)",
                events = n.table("stored_events")
            ),
            max_notification: format!("SELECT {}($1, $2, $3)", n.table("sequence_notifications")),
            max_tracking: format!(
                "SELECT COALESCE(MAX(notification_id), 0) FROM {tracking} \
                 WHERE application_name = $1 AND upstream_application_name = $2 AND pipeline_id = $3"
            ),
            has_tracking: format!(
                "SELECT EXISTS (SELECT 1 FROM {tracking} WHERE application_name = $1 \
                 AND upstream_application_name = $2 AND pipeline_id = $3 AND notification_id = $4)"
            ),
        }
    }
}

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

    /// Assigns notification ids to the rows of committed transactions that have none yet, and
    /// returns the highest id (readers do this by themselves; writers may call it to make their
    /// events visible without waiting for the next read).
    pub async fn sequence_notifications(&self) -> Result<i64> {
        sequence_all(&self.db.pool, &self.sql.max_notification, &self.key).await
    }

    async fn write_on(&self, conn: &mut PgConnection, batch: &RecordBatch) -> Result<()> {
        if batch.items.is_empty() && batch.tracking.is_none() {
            return Ok(());
        }
        let ids: Vec<Uuid> = batch.items.iter().map(|i| i.sequence_id).collect();
        let positions: Vec<i64> = batch.items.iter().map(|i| i.position).collect();
        let topics: Vec<&str> = batch.items.iter().map(|i| i.topic.as_str()).collect();
        let states: Vec<&[u8]> = batch.items.iter().map(|i| i.state.as_slice()).collect();
        sqlx::query(&self.sql.insert)
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
            .execute(conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl RecordManager for PostgresRecordManager {
    fn kind(&self) -> RecordKind {
        self.kind
    }
    fn application_name(&self) -> &str {
        &self.application_name
    }
    fn pipeline_id(&self) -> i64 {
        self.pipeline_id
    }

    async fn write(&self, batch: &RecordBatch) -> Result<()> {
        if batch.items.is_empty() && batch.tracking.is_none() {
            return Ok(());
        }
        let mut conn = self.db.pool.acquire().await.map_err(map_err)?;
        self.write_on(&mut conn, batch).await?;
        drop(conn);
        if self.kind == RecordKind::Events && !batch.items.is_empty() {
            self.db.prompt_sequencer(&self.key);
        }
        Ok(())
    }

    async fn get_item(&self, sequence_id: Uuid, position: i64) -> Result<SequencedItem> {
        let row = sqlx::query(&self.sql.get_item)
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
        Ok(SequencedItem {
            sequence_id,
            position,
            topic: row.try_get(0).map_err(map_err)?,
            state: row.try_get(1).map_err(map_err)?,
        })
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
        let rows = sqlx::query(sql)
            .bind(&self.application_name)
            .bind(sequence_id)
            .bind(lo)
            .bind(hi)
            .bind(limit(q.limit))
            .fetch_all(&self.db.pool)
            .await
            .map_err(map_err)?;
        let mut out = rows
            .into_iter()
            .map(|r| {
                Ok(SequencedItem {
                    sequence_id,
                    position: r.try_get(0).map_err(map_err)?,
                    topic: r.try_get(1).map_err(map_err)?,
                    state: r.try_get(2).map_err(map_err)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if q.query_descending != q.results_descending {
            out.reverse();
        }
        Ok(out)
    }

    async fn list_sequence_ids(&self) -> Result<Vec<Uuid>> {
        sqlx::query_scalar::<_, Uuid>(&self.sql.list)
            .bind(&self.application_name)
            .fetch_all(&self.db.pool)
            .await
            .map_err(map_err)
    }

    async fn delete_item(&self, sequence_id: Uuid, position: i64) -> Result<()> {
        sqlx::query(&self.sql.delete)
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
        // Fast path: a plain indexed read. It is complete unless rows wait for ids and the page
        // is short of what was asked; then the sequencer runs and the page is read again, both
        // inside the `{p}notifications` function (one more round trip).
        let rows = sqlx::query(&self.sql.notifications_fast)
            .bind(&self.application_name)
            .bind(self.pipeline_id)
            .bind(start)
            .bind(end)
            .bind(limit(limit_rows))
            .fetch_all(&self.db.pool)
            .await
            .map_err(map_err)?;
        let pending = match rows.first() {
            Some(r) => r.try_get::<bool, _>(0).map_err(map_err)?,
            None => false,
        };
        let mut page = Vec::with_capacity(rows.len());
        for r in &rows {
            let Some(id) = r.try_get::<Option<i64>, _>(1).map_err(map_err)? else {
                continue;
            };
            page.push(Notification {
                id,
                item: SequencedItem {
                    sequence_id: r.try_get(2).map_err(map_err)?,
                    position: r.try_get(3).map_err(map_err)?,
                    topic: r.try_get(4).map_err(map_err)?,
                    state: r.try_get(5).map_err(map_err)?,
                },
                causal_dependencies: r.try_get(6).map_err(map_err)?,
            });
        }
        let wanted = limit_rows
            .map(|l| l as u128)
            .unwrap_or(u128::MAX)
            .min((end as i128 - start.max(1) as i128 + 1).max(0) as u128);
        if !pending || page.len() as u128 >= wanted {
            return Ok(page);
        }
        let rows = sqlx::query(&self.sql.notifications)
            .bind(&self.application_name)
            .bind(self.pipeline_id)
            .bind(self.lock_key)
            .bind(start)
            .bind(end)
            .bind(limit(limit_rows))
            .fetch_all(&self.db.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter()
            .map(|r| {
                Ok(Notification {
                    id: r.try_get(0).map_err(map_err)?,
                    item: SequencedItem {
                        sequence_id: r.try_get(1).map_err(map_err)?,
                        position: r.try_get(2).map_err(map_err)?,
                        topic: r.try_get(3).map_err(map_err)?,
                        state: r.try_get(4).map_err(map_err)?,
                    },
                    causal_dependencies: r.try_get(5).map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn max_notification_id(&self) -> Result<i64> {
        // Fast path: one plain statement; the sequencer runs only if rows wait for ids.
        let (max, pending): (i64, bool) = sqlx::query_as(&self.sql.max_fast)
            .bind(&self.application_name)
            .bind(self.pipeline_id)
            .fetch_one(&self.db.pool)
            .await
            .map_err(map_err)?;
        if pending {
            self.sequence_notifications().await
        } else {
            Ok(max)
        }
    }

    async fn max_tracking_id(&self, upstream_application: &str) -> Result<i64> {
        sqlx::query_scalar::<_, i64>(&self.sql.max_tracking)
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
        sqlx::query_scalar::<_, bool>(&self.sql.has_tracking)
            .bind(&self.application_name)
            .bind(upstream_application)
            .bind(self.pipeline_id)
            .bind(notification_id)
            .fetch_one(&self.db.pool)
            .await
            .map_err(map_err)
    }
}
