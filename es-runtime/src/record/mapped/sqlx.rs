//! Record managers over tables you describe, on PostgreSQL and MySQL (sqlx).
//!
//! The two differ in how values are bound and decoded and in the lock a write takes to number
//! notifications; everything else is [`sqlx_table`].

use super::{
    item_from, number, table_record_manager, Dialect, MapTable, Mapping, Stmt, TableSpec, Value,
};
use crate::error::Result;
use crate::record::{RecordManager, SequencedItem};
use sqlx::Row;
use std::sync::Arc;
use uuid::Uuid;

/// How long a MySQL writer waits for another writer's named lock on the same log.
#[cfg(feature = "mysql")]
const LOCK_WAIT_SECONDS: i64 = 10;

/// The struct, its constructor, its queries and its [`MapTable`] for one sqlx backend, given
/// its `bind(query, &Value)`, `uuid_cell(&Mapping, &Row, column)` and
/// `text_cell(&Row, column, is_text)` helpers; `write_items` is written per backend.
macro_rules! sqlx_table {
    ($(#[$doc:meta])* $name:ident, $feature:literal, $db:ty, $database:ty, $pool:ty,
     $dialect:expr, $map_err:path) => {
        $(#[$doc])*
        #[cfg(feature = $feature)]
        #[derive(Debug)]
        pub struct $name {
            pool: $pool,
            m: Mapping,
        }

        #[cfg(feature = $feature)]
        impl $name {
            /// A record manager over `spec`'s table in `db`, for one application and
            /// pipeline. The names are checked here ([`Error::Configuration`](crate::Error::Configuration)); the table
            /// itself is checked by [`RecordManager::check`].
            pub fn new(
                db: &$database,
                spec: &TableSpec,
                application_name: &str,
                pipeline_id: i64,
            ) -> Result<Self> {
                Ok($name {
                    pool: db.pool().clone(),
                    m: Mapping::new($dialect, spec, application_name, pipeline_id)?,
                })
            }

            /// The statement with its values bound. Its names were checked by `Mapping::new`
            /// (plain identifiers, quoted); every value is a bound argument.
            fn query<'q>(
                st: &'q Stmt,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
                st.args
                    .iter()
                    .fold(sqlx::query(crate::record::sql::dynamic(&st.sql)), |q, v| {
                        Self::bind(q, v)
                    })
            }

            async fn fetch(&self, st: &Stmt) -> Result<Vec<<$db as sqlx::Database>::Row>> {
                Self::query(st)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.m.explain($map_err(e)))
            }

            async fn rows(&self, st: &Stmt, with_id: bool) -> Result<Vec<(SequencedItem, i64)>> {
                let decode = |r: &<$db as sqlx::Database>::Row| -> Result<(SequencedItem, i64)> {
                    let e = |e| self.m.explain($map_err(e));
                    let seq = Self::uuid_cell(&self.m, r, 0)?;
                    let pos: i64 = r.try_get(1).map_err(e)?;
                    let item = item_from(
                        &self.m,
                        seq.as_ref(),
                        pos,
                        Self::text_cell(r, 2, true).map_err(e)?,
                        Self::text_cell(r, 3, self.m.spec.state_as_text).map_err(e)?,
                    )?;
                    let id = if with_id { r.try_get(4).map_err(e)? } else { 0 };
                    Ok((item, id))
                };
                self.fetch(st).await?.iter().map(decode).collect()
            }

            async fn sequence_ids(&self, st: &Stmt) -> Result<Vec<Uuid>> {
                self.fetch(st)
                    .await?
                    .iter()
                    .map(|r| self.m.parse_uuid(Self::uuid_cell(&self.m, r, 0)?.as_ref()))
                    .collect()
            }

            async fn scalar(&self, st: &Stmt) -> Result<i64> {
                match self.fetch(st).await?.first() {
                    Some(r) => r.try_get(0).map_err(|e| self.m.explain($map_err(e))),
                    None => Ok(0),
                }
            }

            async fn execute(&self, st: &Stmt) -> Result<()> {
                Self::query(st)
                    .execute(&self.pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| self.m.explain($map_err(e)))
            }

            /// Runs the inserts on `conn` (in its transaction), numbering notifications from
            /// the maximum `max` reads.
            async fn insert_all(
                &self,
                conn: &mut <$db as sqlx::Database>::Connection,
                inserts: Vec<Stmt>,
                max: Option<&Stmt>,
            ) -> Result<()> {
                let e = |e| self.m.explain($map_err(e));
                let mut inserts = inserts;
                if let Some(st) = max {
                    let after: i64 = Self::query(st)
                        .fetch_one(&mut *conn)
                        .await
                        .and_then(|r| r.try_get(0))
                        .map_err(e)?;
                    number(&mut inserts, after);
                }
                for st in inserts {
                    Self::query(&st).execute(&mut *conn).await.map_err(e)?;
                }
                Ok(())
            }
        }

        #[cfg(feature = $feature)]
        table_record_manager!($name);

        #[cfg(feature = $feature)]
        impl MapTable for $database {
            fn map(
                &self,
                spec: &TableSpec,
                application_name: &str,
                pipeline_id: i64,
            ) -> Result<Arc<dyn RecordManager>> {
                Ok(Arc::new($name::new(self, spec, application_name, pipeline_id)?))
            }
        }
    };
}

sqlx_table!(
    /// A record manager over a table described by a [`TableSpec`], in a PostgreSQL database
    /// (see the [module documentation](super)). A write holds a transaction-scoped advisory
    /// lock of its log while it numbers notifications.
    PostgresTable,
    "postgres",
    sqlx::Postgres,
    crate::record::postgres::PostgresDatabase,
    sqlx::PgPool,
    Dialect::Postgres,
    crate::record::postgres::map_err
);

sqlx_table!(
    /// A record manager over a table described by a [`TableSpec`], in a MySQL or MariaDB
    /// database (see the [module documentation](super)). A write holds a named lock
    /// (`GET_LOCK`) of its log until it has committed, while it numbers notifications.
    MySqlTable,
    "mysql",
    sqlx::MySql,
    crate::record::mysql::MySqlDatabase,
    sqlx::MySqlPool,
    Dialect::MySql,
    crate::record::mysql::map_err
);

#[cfg(feature = "postgres")]
impl PostgresTable {
    fn bind<'q>(
        q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
        v: &'q Value,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        match v {
            Value::Uuid(u) => q.bind(*u),
            Value::Bytes(b) => q.bind(&b[..]),
            Value::Text(s) => q.bind(s.as_str()),
            Value::Int(i) => q.bind(*i),
        }
    }

    /// A sequence id cell: a native `uuid` as its 16 bytes, or text.
    fn uuid_cell(m: &Mapping, r: &sqlx::postgres::PgRow, i: usize) -> Result<Vec<u8>> {
        let e = |e| m.explain(crate::record::postgres::map_err(e));
        if m.spec.uuid_as_text {
            r.try_get::<&str, _>(i)
                .map(|s| s.as_bytes().to_vec())
                .map_err(e)
        } else {
            r.try_get::<Uuid, _>(i)
                .map(|u| u.as_bytes().to_vec())
                .map_err(e)
        }
    }

    /// A text or bytes cell, as bytes.
    fn text_cell(r: &sqlx::postgres::PgRow, i: usize, text: bool) -> sqlx::Result<&[u8]> {
        if text {
            r.try_get::<&str, _>(i).map(str::as_bytes)
        } else {
            r.try_get::<&[u8], _>(i)
        }
    }

    async fn write_items(&self, inserts: Vec<Stmt>, max: Option<Stmt>) -> Result<()> {
        let e = |e| self.m.explain(crate::record::postgres::map_err(e));
        let mut tx = self.pool.begin().await.map_err(e)?;
        if max.is_some() {
            // Held to commit: the next writer of this log reads the maximum after this one's
            // rows are visible, so ids are gap-free and appear in order.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(self.m.lock_key())
                .execute(&mut *tx)
                .await
                .map_err(e)?;
        }
        self.insert_all(&mut tx, inserts, max.as_ref()).await?;
        tx.commit().await.map_err(e)
    }
}

/// A pooled MySQL connection holding a named lock: dropped before the lock is released (an
/// error, a cancelled future), the connection is closed rather than pooled, which releases it.
#[cfg(feature = "mysql")]
struct NamedLock(Option<sqlx::pool::PoolConnection<sqlx::MySql>>);

#[cfg(feature = "mysql")]
impl Drop for NamedLock {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            c.close_on_drop();
        }
    }
}

#[cfg(feature = "mysql")]
impl MySqlTable {
    fn bind<'q>(
        q: sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments>,
        v: &'q Value,
    ) -> sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments> {
        match v {
            Value::Uuid(u) => q.bind(&u.as_bytes()[..]),
            Value::Bytes(b) => q.bind(&b[..]),
            Value::Text(s) => q.bind(s.as_str()),
            Value::Int(i) => q.bind(*i),
        }
    }

    /// A sequence id cell (`BINARY(16)` or text) as bytes.
    fn uuid_cell(m: &Mapping, r: &sqlx::mysql::MySqlRow, i: usize) -> Result<Vec<u8>> {
        r.try_get::<&[u8], _>(i)
            .map(<[u8]>::to_vec)
            .map_err(|e| m.explain(crate::record::mysql::map_err(e)))
    }

    /// MySQL hands text and binary columns alike as bytes (whatever the collation).
    fn text_cell(r: &sqlx::mysql::MySqlRow, i: usize, _text: bool) -> sqlx::Result<&[u8]> {
        r.try_get::<&[u8], _>(i)
    }

    async fn write_items(&self, inserts: Vec<Stmt>, max: Option<Stmt>) -> Result<()> {
        use sqlx::Connection as _;
        let e = |e| self.m.explain(crate::record::mysql::map_err(e));
        let Some(max) = max else {
            let mut tx = self.pool.begin().await.map_err(e)?;
            self.insert_all(&mut tx, inserts, None).await?;
            return tx.commit().await.map_err(e);
        };
        let mut lock = NamedLock(Some(self.pool.acquire().await.map_err(e)?));
        let Some(conn) = lock.0.as_mut() else {
            return Err(crate::error::Error::Operational(
                "mysql: connection lost".into(),
            ));
        };
        let name = self.m.lock_name();
        // Taken before the transaction starts, so that its snapshot sees the rows of the
        // writer that held the lock before.
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
            .bind(&name)
            .bind(LOCK_WAIT_SECONDS)
            .fetch_one(&mut **conn)
            .await
            .map_err(e)?;
        if got != Some(1) {
            return Err(crate::error::Error::Operational(format!(
                "{}: another writer held the log's lock for {LOCK_WAIT_SECONDS} s",
                self.m.label()
            )));
        }
        let written = async {
            let mut tx = conn.begin().await.map_err(e)?;
            self.insert_all(&mut tx, inserts, Some(&max)).await?;
            tx.commit().await.map_err(e)
        }
        .await;
        let released = sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(&name)
            .execute(&mut **conn)
            .await;
        if released.is_ok() {
            // Released: the connection can go back to the pool.
            drop(lock.0.take());
        }
        written
    }
}
