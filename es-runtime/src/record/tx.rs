//! Write transactions handed to user code: a projection's rows, or a policy's outbox rows,
//! commit together with the events and tracking records es writes (manual §11.1, §12.5,
//! §12.6).
//!
//! A [`Tx`] is begun by a record manager ([`RecordManager::begin_tx`](super::RecordManager)),
//! handed to user code, then committed by es with a batch of events and tracking records in
//! the same transaction; dropping it without a commit writes nothing.
//!
//! What user code gets depends on the backend's driver:
//!
//! - PostgreSQL and MySQL (async sqlx drivers): the open `sqlx::Transaction`, used at once
//!   ([`Tx::postgres`], [`Tx::mysql`]). Statements run while the handler runs.
//! - SQLite (the synchronous rusqlite driver, one connection per database): a closure that
//!   gets the `rusqlite::Transaction` ([`Tx::sqlite`]). The closures run in order at commit,
//!   inside one `BEGIN IMMEDIATE` transaction with the tracking records, so the connection is
//!   never held while a handler awaits (another task could not use it meanwhile; on a
//!   single-threaded runtime it would wait forever).
//! - In memory: a closure that gets [`MemoryRows`], tables of JSON values kept by the
//!   [`InMemoryDatabase`](super::memory::InMemoryDatabase), run the same way as SQLite's.
//!
//! A closure's error, like a handler's, rolls everything back.

use super::{RecordBatch, Tracking};
use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;

/// Tracking records per SQLite statement (four parameters each, far below SQLite's limit).
#[cfg(feature = "sqlite")]
const TRACKING_ROWS: usize = 250;

/// The tables of user rows of an in-memory database: table name -> key -> value.
pub type MemoryTables = BTreeMap<String, BTreeMap<String, Value>>;

/// Which backend a [`Tx`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// The in-memory database.
    Memory,
    /// SQLite (rusqlite).
    Sqlite,
    /// PostgreSQL (sqlx).
    Postgres,
    /// MySQL or MariaDB (sqlx).
    MySql,
}

/// Where a closure was added: the index of the notification in its batch and the handler.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scope {
    pub(crate) index: usize,
    pub(crate) handler: Option<&'static str>,
}

impl Scope {
    /// `e`, named after the handler that added the failing closure.
    pub(crate) fn fail(self, e: Error) -> (Option<usize>, Error) {
        match self.handler {
            Some(h) => (Some(self.index), Error::handler(h, e)),
            None => (Some(self.index), e),
        }
    }
}

pub(crate) type MemoryWork = (
    Scope,
    Box<dyn FnOnce(&mut MemoryRows<'_>) -> Result<()> + Send>,
);
#[cfg(feature = "sqlite")]
type SqliteWork = (
    Scope,
    Box<dyn FnOnce(&rusqlite::Transaction<'_>) -> Result<()> + Send>,
);

/// A commit's failure: the notification whose work failed (by index), if it was user work.
pub(crate) type CommitError = (Option<usize>, Error);

enum Inner {
    Memory {
        records: super::memory::InMemoryRecordManager,
        work: Vec<MemoryWork>,
    },
    #[cfg(feature = "sqlite")]
    Sqlite {
        records: super::sqlite::SqliteRecordManager,
        work: Vec<SqliteWork>,
    },
    #[cfg(feature = "postgres")]
    Postgres {
        records: super::postgres::PostgresRecordManager,
        tx: sqlx::Transaction<'static, sqlx::Postgres>,
    },
    #[cfg(feature = "mysql")]
    MySql {
        records: super::mysql::MySqlRecordManager,
        tx: sqlx::Transaction<'static, sqlx::MySql>,
    },
}

/// An open write transaction of one record manager's backend (see the module documentation).
///
/// ```
/// # async fn demo() -> es_runtime::Result<()> {
/// use es_runtime::record::memory::InMemoryDatabase;
/// use es_runtime::record::tx::Backend;
/// use es_runtime::record::{RecordKind, RecordManager, Tracking};
/// let db = InMemoryDatabase::new();
/// let records = db.record_manager(RecordKind::Events, "balances", 0);
/// let mut tx = records.begin_tx().await?;
/// assert_eq!(tx.backend(), Backend::Memory);
/// tx.memory(|rows| {
///     rows.put("balances", "alice", serde_json::json!(100));
///     Ok(())
/// })?;
/// let tracking = Tracking { upstream_application: "accounts".into(), notification_id: 1 };
/// tx.commit_tracked(None, &[tracking]).await?;
/// assert_eq!(db.table("balances")["alice"], 100);
/// assert_eq!(records.max_tracking_id("accounts").await?, 1);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
pub struct Tx {
    inner: Inner,
    clear_tracking: bool,
    scope: Scope,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("backend", &self.backend())
            .field("clear_tracking", &self.clear_tracking)
            .finish()
    }
}

fn wrong(backend: Backend, wanted: &str) -> Error {
    Error::Configuration(format!(
        "this transaction is of the {backend:?} backend, not {wanted}: match on Tx::backend() first"
    ))
}

impl Tx {
    fn new(inner: Inner) -> Self {
        Tx {
            inner,
            clear_tracking: false,
            scope: Scope::default(),
        }
    }

    pub(crate) fn memory_of(records: super::memory::InMemoryRecordManager) -> Self {
        Self::new(Inner::Memory {
            records,
            work: Vec::new(),
        })
    }

    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite_of(records: super::sqlite::SqliteRecordManager) -> Self {
        Self::new(Inner::Sqlite {
            records,
            work: Vec::new(),
        })
    }

    #[cfg(feature = "postgres")]
    pub(crate) async fn postgres_of(
        records: super::postgres::PostgresRecordManager,
    ) -> Result<Self> {
        let tx = records
            .database()
            .pool()
            .begin()
            .await
            .map_err(super::postgres::map_err)?;
        Ok(Self::new(Inner::Postgres { records, tx }))
    }

    #[cfg(feature = "mysql")]
    pub(crate) async fn mysql_of(records: super::mysql::MySqlRecordManager) -> Result<Self> {
        let tx = records
            .database()
            .pool()
            .begin()
            .await
            .map_err(super::mysql::map_err)?;
        Ok(Self::new(Inner::MySql { records, tx }))
    }

    /// The backend: match on it to use the right accessor.
    pub fn backend(&self) -> Backend {
        match &self.inner {
            Inner::Memory { .. } => Backend::Memory,
            #[cfg(feature = "sqlite")]
            Inner::Sqlite { .. } => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Inner::Postgres { .. } => Backend::Postgres,
            #[cfg(feature = "mysql")]
            Inner::MySql { .. } => Backend::MySql,
        }
    }

    /// In memory: runs `work` on the database's row tables at commit, in order with the other
    /// closures, atomically with the tracking records. [`Error::Configuration`] on another
    /// backend.
    pub fn memory(
        &mut self,
        work: impl FnOnce(&mut MemoryRows<'_>) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let backend = self.backend();
        match &mut self.inner {
            Inner::Memory { work: w, .. } => {
                w.push((self.scope, Box::new(work)));
                Ok(())
            }
            #[allow(unreachable_patterns)]
            _ => Err(wrong(backend, "memory")),
        }
    }

    /// SQLite: runs `work` with the open `rusqlite` transaction at commit, in order with the
    /// other closures, before the tracking records are written. [`Error::Configuration`] on
    /// another backend.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let backend = self.backend();
        match &mut self.inner {
            Inner::Sqlite { work: w, .. } => {
                w.push((self.scope, Box::new(work)));
                Ok(())
            }
            #[allow(unreachable_patterns)]
            _ => Err(wrong(backend, "sqlite")),
        }
    }

    /// PostgreSQL: the open transaction (run statements on `&mut **tx.postgres()?`).
    /// [`Error::Configuration`] on another backend.
    #[cfg(feature = "postgres")]
    pub fn postgres(&mut self) -> Result<&mut sqlx::Transaction<'static, sqlx::Postgres>> {
        let backend = self.backend();
        match &mut self.inner {
            Inner::Postgres { tx, .. } => Ok(tx),
            #[allow(unreachable_patterns)]
            _ => Err(wrong(backend, "postgres")),
        }
    }

    /// MySQL: the open transaction (run statements on `&mut **tx.mysql()?`).
    /// [`Error::Configuration`] on another backend.
    #[cfg(feature = "mysql")]
    pub fn mysql(&mut self) -> Result<&mut sqlx::Transaction<'static, sqlx::MySql>> {
        let backend = self.backend();
        match &mut self.inner {
            Inner::MySql { tx, .. } => Ok(tx),
            #[allow(unreachable_patterns)]
            _ => Err(wrong(backend, "mysql")),
        }
    }

    /// Deletes, at commit and before anything else is written, every tracking record of the
    /// record manager's application in its pipeline (a projection being rebuilt).
    pub fn clear_tracking(&mut self) {
        self.clear_tracking = true;
    }

    /// Names the handler that runs next, so that errors of the closures it adds (which run
    /// at commit) name it too. Called by `#[projection]`'s dispatch.
    pub fn enter_handler(&mut self, handler: &'static str) {
        self.scope.handler = Some(handler);
    }

    /// The index, in its batch, of the notification whose handler runs next.
    pub(crate) fn enter_notification(&mut self, index: usize) {
        self.scope = Scope {
            index,
            handler: None,
        };
    }

    /// Commits: the user's work, then `batch` (events and a tracking record) if given, then
    /// the tracking records `more`, all in this one transaction. A conflict on any of them
    /// ([`Error::RecordConflict`]), or any other error, leaves nothing written.
    pub async fn commit_tracked(
        self,
        batch: Option<&RecordBatch>,
        more: &[Tracking],
    ) -> Result<()> {
        self.commit_scoped(batch, more).await.map_err(|(_, e)| e)
    }

    /// [`Tx::commit_tracked`], saying which notification's work failed.
    pub(crate) async fn commit_scoped(
        self,
        batch: Option<&RecordBatch>,
        more: &[Tracking],
    ) -> Result<(), CommitError> {
        let clear = self.clear_tracking;
        #[allow(unused_variables)]
        let whole = |e: Error| -> CommitError { (None, e) };
        match self.inner {
            Inner::Memory { records, work } => records.commit_rows(work, clear, batch, more),
            #[cfg(feature = "sqlite")]
            Inner::Sqlite { records, work } => {
                let table = records.database().table_name("notification_tracking");
                let mut failed = None;
                let done = records.database().transaction(|t| {
                    if clear {
                        t.execute(
                            &format!("DELETE FROM {table} WHERE application_name = ?1 AND pipeline_id = ?2"),
                            rusqlite::params![
                                super::RecordManager::application_name(&records),
                                super::RecordManager::pipeline_id(&records)
                            ],
                        )?;
                    }
                    for (scope, w) in work {
                        if let Err(e) = w(t) {
                            let (at, e) = scope.fail(e);
                            failed = at;
                            return Err(e);
                        }
                    }
                    if let Some(b) = batch {
                        records.write_in_transaction(t, b)?;
                    }
                    // The tracking records in multi-row statements (one per record costs
                    // about as much as the user's own insert).
                    let app = super::RecordManager::application_name(&records);
                    let pipeline = super::RecordManager::pipeline_id(&records);
                    for chunk in more.chunks(TRACKING_ROWS) {
                        let values = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
                        let sql = format!(
                            "INSERT INTO {table} (application_name, upstream_application_name, pipeline_id, notification_id) VALUES {values}"
                        );
                        let mut st = t.prepare_cached(&sql)?;
                        for (k, tr) in chunk.iter().enumerate() {
                            st.raw_bind_parameter(4 * k + 1, app)?;
                            st.raw_bind_parameter(4 * k + 2, &tr.upstream_application)?;
                            st.raw_bind_parameter(4 * k + 3, pipeline)?;
                            st.raw_bind_parameter(4 * k + 4, tr.notification_id)?;
                        }
                        st.raw_execute()?;
                    }
                    Ok(())
                });
                done.map_err(|e| (failed, e))
            }
            #[cfg(feature = "postgres")]
            Inner::Postgres { records, mut tx } => {
                records
                    .commit_user_tx(&mut tx, clear, batch, more)
                    .await
                    .map_err(whole)?;
                tx.commit()
                    .await
                    .map_err(|e| whole(super::postgres::map_err(e)))?;
                if batch.is_some_and(|b| !b.items.is_empty()) {
                    records.prompt_after_commit();
                }
                Ok(())
            }
            #[cfg(feature = "mysql")]
            Inner::MySql { records, mut tx } => {
                records
                    .commit_user_tx(&mut tx, clear, batch, more)
                    .await
                    .map_err(whole)?;
                tx.commit()
                    .await
                    .map_err(|e| whole(super::mysql::map_err(e)))
            }
        }
    }

    /// Commits with just `batch` (see [`Tx::commit_tracked`]).
    pub async fn commit(self, batch: &RecordBatch) -> Result<()> {
        self.commit_tracked(Some(batch), &[]).await
    }
}

/// Undo entries of one in-memory commit.
pub(crate) enum Undo {
    Row(String, String, Option<Value>),
    Table(String, Option<BTreeMap<String, Value>>),
}

/// The user's row tables of an in-memory database, inside a transaction: changes are undone
/// if the commit fails.
pub struct MemoryRows<'a> {
    tables: &'a mut MemoryTables,
    undo: &'a mut Vec<Undo>,
}

impl std::fmt::Debug for MemoryRows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRows")
            .field("tables", &self.tables.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<'a> MemoryRows<'a> {
    pub(crate) fn new(tables: &'a mut MemoryTables, undo: &'a mut Vec<Undo>) -> Self {
        MemoryRows { tables, undo }
    }

    /// The value of `key` in `table`.
    pub fn get(&self, table: &str, key: &str) -> Option<&Value> {
        self.tables.get(table)?.get(key)
    }

    /// Sets `key` in `table` to `value`; returns the value it had.
    pub fn put(&mut self, table: &str, key: impl Into<String>, value: Value) -> Option<Value> {
        let key = key.into();
        let old = self
            .tables
            .entry(table.to_string())
            .or_default()
            .insert(key.clone(), value);
        self.undo
            .push(Undo::Row(table.to_string(), key, old.clone()));
        old
    }

    /// Removes `key` from `table`; returns the value it had.
    pub fn remove(&mut self, table: &str, key: &str) -> Option<Value> {
        let old = self.tables.get_mut(table)?.remove(key);
        if old.is_some() {
            self.undo
                .push(Undo::Row(table.to_string(), key.to_string(), old.clone()));
        }
        old
    }

    /// Every row of `table`, by key.
    pub fn rows(&self, table: &str) -> impl Iterator<Item = (&String, &Value)> {
        self.tables.get(table).into_iter().flatten()
    }

    /// Removes every row of `table`.
    pub fn clear(&mut self, table: &str) {
        let old = self.tables.remove(table);
        self.undo.push(Undo::Table(table.to_string(), old));
    }
}

/// Undoes `undo` on `tables`, newest first.
pub(crate) fn roll_back(tables: &mut MemoryTables, undo: Vec<Undo>) {
    for u in undo.into_iter().rev() {
        match u {
            Undo::Row(t, k, old) => {
                let table = tables.entry(t).or_default();
                match old {
                    Some(v) => table.insert(k, v),
                    None => table.remove(&k),
                };
            }
            Undo::Table(t, old) => match old {
                Some(rows) => {
                    tables.insert(t, rows);
                }
                None => {
                    tables.remove(&t);
                }
            },
        }
    }
}
