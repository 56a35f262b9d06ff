//! A record manager over a table you describe, on SQLite (rusqlite).

use super::{
    item_from, number, table_record_manager, Dialect, MapTable, Mapping, Stmt, TableSpec, Value,
};
use crate::error::Result;
use crate::record::sqlite::{map_err, SqliteDatabase};
use crate::record::{RecordManager, SequencedItem};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior};
use std::sync::Arc;
use uuid::Uuid;

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Uuid(u) => ToSqlOutput::Borrowed(ValueRef::Blob(u.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
        })
    }
}

/// A record manager over a table described by a [`TableSpec`], in an SQLite database (see
/// the [module documentation](super)).
///
/// ```
/// # async fn demo() -> es_runtime::Result<()> {
/// use es_runtime::record::mapped::{SqliteTable, TableSpec};
/// use es_runtime::record::sqlite::SqliteDatabase;
/// use es_runtime::record::RecordManager;
/// let db = SqliteDatabase::memory()?;
/// db.with_connection(|c| {
///     c.execute_batch("CREATE TABLE items (sequence_id BLOB, position INTEGER, topic TEXT,
///                      state BLOB, PRIMARY KEY (sequence_id, position))")
///         .map_err(|e| es_runtime::Error::Operational(e.to_string()))
/// })?;
/// let records = SqliteTable::new(&db, &TableSpec::integer_sequenced("items"), "app", 0)?;
/// records.check().await?;
/// assert!(records.list_sequence_ids().await?.is_empty());
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Debug)]
pub struct SqliteTable {
    db: SqliteDatabase,
    m: Mapping,
}

fn cell<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r [u8]> {
    match row.get_ref(i)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => Ok(b),
        other => Err(rusqlite::Error::InvalidColumnType(
            i,
            format!("{other:?}"),
            other.data_type(),
        )),
    }
}

impl SqliteTable {
    /// A record manager over `spec`'s table in `db`, for one application and pipeline. The
    /// names are checked here ([`Error::Configuration`](crate::Error::Configuration)); the table itself is checked by
    /// [`RecordManager::check`].
    pub fn new(
        db: &SqliteDatabase,
        spec: &TableSpec,
        application_name: &str,
        pipeline_id: i64,
    ) -> Result<Self> {
        Ok(SqliteTable {
            db: db.clone(),
            m: Mapping::new(Dialect::Sqlite, spec, application_name, pipeline_id)?,
        })
    }

    /// Runs a query and builds an item from each row's first four columns, and the fifth (a
    /// notification id) when `with_id`.
    async fn rows(&self, st: &Stmt, with_id: bool) -> Result<Vec<(SequencedItem, i64)>> {
        self.query(st, |r| {
            let get = || -> rusqlite::Result<_> {
                Ok((cell(r, 0)?, r.get::<_, i64>(1)?, cell(r, 2)?, cell(r, 3)?))
            };
            let (seq, pos, topic, state) = get().map_err(map_err)?;
            let id = if with_id {
                r.get::<_, i64>(4).map_err(map_err)?
            } else {
                0
            };
            Ok((item_from(&self.m, seq, pos, topic, state)?, id))
        })
    }

    async fn sequence_ids(&self, st: &Stmt) -> Result<Vec<Uuid>> {
        self.query(st, |r| self.m.parse_uuid(cell(r, 0).map_err(map_err)?))
    }

    /// Runs a query, mapping each row with `f`.
    fn query<T>(
        &self,
        st: &Stmt,
        mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.db
            .locked(|c: &mut Connection| {
                let mut s = c.prepare_cached(&st.sql).map_err(map_err)?;
                let mut rows = s
                    .query(rusqlite::params_from_iter(st.args.iter()))
                    .map_err(map_err)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(map_err)? {
                    out.push(f(r)?);
                }
                Ok(out)
            })
            .map_err(|e| self.m.explain(e))
    }

    async fn scalar(&self, st: &Stmt) -> Result<i64> {
        Ok(self
            .query(st, |r| r.get::<_, i64>(0).map_err(map_err))?
            .pop()
            .unwrap_or(0))
    }

    async fn execute(&self, st: &Stmt) -> Result<()> {
        self.db
            .locked(|c| {
                c.execute(&st.sql, rusqlite::params_from_iter(st.args.iter()))
                    .map(|_| ())
                    .map_err(map_err)
            })
            .map_err(|e| self.m.explain(e))
    }

    async fn write_items(&self, inserts: Vec<Stmt>, max: Option<Stmt>) -> Result<()> {
        self.db
            .locked(|c| {
                // The write lock first: ids are numbered from a maximum no one else can move.
                let tx = c
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(map_err)?;
                let mut inserts = inserts;
                if let Some(st) = &max {
                    let after = tx
                        .query_row(&st.sql, rusqlite::params_from_iter(st.args.iter()), |r| {
                            r.get::<_, i64>(0)
                        })
                        .map_err(map_err)?;
                    number(&mut inserts, after);
                }
                for st in inserts {
                    tx.prepare_cached(&st.sql)
                        .and_then(|mut s| s.execute(rusqlite::params_from_iter(st.args.iter())))
                        .map_err(map_err)?;
                }
                tx.commit().map_err(map_err)
            })
            .map_err(|e| self.m.explain(e))
    }
}

table_record_manager!(SqliteTable);

impl MapTable for SqliteDatabase {
    fn map(
        &self,
        spec: &TableSpec,
        application_name: &str,
        pipeline_id: i64,
    ) -> Result<Arc<dyn RecordManager>> {
        Ok(Arc::new(SqliteTable::new(
            self,
            spec,
            application_name,
            pipeline_id,
        )?))
    }
}
