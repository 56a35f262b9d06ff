//! Saving inside a transaction of your own, so that your rows (an outbox, a read model, a
//! table of another library) and the events commit or roll back together.
//!
//! [`Application::save_in`] writes the aggregates' pending events in your open transaction:
//! a `&mut sqlx::Transaction<Postgres>` or `<MySql>` (features `postgres`, `mysql`; await it)
//! or a `&rusqlite::Transaction` (feature `sqlite`; synchronous, so that it also works inside
//! [`SqliteDatabase::transaction`](crate::record::sqlite::SqliteDatabase::transaction)). The
//! events stay pending: it returns a [`Saved`] to call [`Saved::committed`] on once *your*
//! commit has succeeded. Then the aggregates' pending events are cleared (and the cache
//! updated). After a rollback or a failed commit, drop the `Saved`: the events are still
//! pending, so saving the aggregates again (in another transaction, or with
//! [`Application::save`]) writes them. (A `Saved` dropped after a successful commit leaves
//! events pending that are already stored: saving the aggregate again is then
//! a [concurrency error](crate::Error::Concurrency), and nothing is written twice. Get a
//! fresh copy.)
//!
//! ```
//! use es_runtime::application::Application;
//! use es_runtime::prelude::*;
//! # #[cfg(feature = "sqlite")]
//! use es_runtime::record::sqlite::SqliteDatabase;
//! use std::sync::Arc;
//!
//! #[aggregate]
//! pub struct Account { owner: String }
//! #[aggregate]
//! impl Account {
//!     #[event(Opened)]
//!     pub fn open(owner: String) -> Self { Account { owner } }
//! }
//!
//! # #[cfg(feature = "sqlite")]
//! # async fn demo() -> es_runtime::Result<()> {
//! let db = SqliteDatabase::memory()?;
//! db.setup_tables()?;
//! let app = Application::builder("bank").database(Arc::new(db.clone())).build().await?;
//! db.with_connection(|c| c.execute_batch("CREATE TABLE outbox (message TEXT)")
//!     .map_err(|e| Error::Operational(e.to_string())))?;
//!
//! let mut account = Account::open("ada".into())?;
//! let saved = db.transaction(|tx| {
//!     tx.execute("INSERT INTO outbox VALUES ('welcome, ada')", [])
//!         .map_err(|e| Error::Operational(e.to_string()))?;
//!     app.save_in(tx, [&mut account])
//! })?;
//! saved.committed(); // the transaction committed: the events are no longer pending
//! assert!(account.pending_events().is_empty());
//! assert_eq!(app.get::<Account>(account.id()).await?.owner, "ada");
//! # Ok(()) }
//! # fn main() {
//! # #[cfg(feature = "sqlite")]
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! # }
//! ```
//!
//! With sqlx (the pool is yours: hand the same one to
//! [`PostgresDatabase::from_pool`](crate::record::postgres::PostgresDatabase::from_pool)):
//!
//! ```no_run
//! # #[cfg(feature = "postgres")]
//! # async fn demo<A: es_runtime::prelude::Aggregate>(
//! #     pool: es_runtime::sqlx::PgPool,
//! #     app: es_runtime::application::Application,
//! #     mut account: A,
//! # ) -> es_runtime::Result<()> {
//! use es_runtime::sqlx;
//! let db_err = |e: sqlx::Error| es_runtime::Error::Operational(e.to_string());
//! let mut tx = pool.begin().await.map_err(db_err)?;
//! sqlx::query("INSERT INTO outbox VALUES ($1)").bind(account.id())
//!     .execute(&mut *tx).await.map_err(db_err)?;
//! let saved = app.save_in(&mut tx, [&mut account]).await?;
//! tx.commit().await.map_err(db_err)?;
//! saved.committed();
//! # Ok(()) }
//! ```
//!
//! The transaction must be on the database the application stores in (the same file, or
//! the same server and database). Automatic snapshots (see
//! [`snapshot_period`](super::ApplicationBuilder::snapshot_period)) are not taken by
//! `save_in`: call [`Application::take_snapshot`] after the commit if you want one. On
//! PostgreSQL the events get their notification ids after the commit (see
//! [`record::postgres`](crate::record::postgres)). After an error from `save_in`, roll the
//! transaction back (part of the batch may be written in it; PostgreSQL has aborted it).

use super::{Application, Saveable};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use crate::{
    error::{Error, Result},
    record::{RecordBatch, RecordManager},
    telemetry,
};

/// A transaction of yours that [`Application::save_in`] can write in: a
/// `&rusqlite::Transaction` (its `Output` is a `Result`), or a `&mut sqlx::Transaction` of
/// PostgreSQL or MySQL (its `Output` is a future).
pub trait OwnTransaction<'s, 'a> {
    /// What `save_in` returns.
    type Output;
    /// Writes the aggregates' pending events in this transaction.
    fn save_in(self, app: &'s Application, aggregates: Vec<&'a mut dyn Saveable>) -> Self::Output;
}

/// Events written in a transaction of yours, not yet known to be committed. Call
/// [`Saved::committed`] after your commit succeeds; drop it after a rollback.
#[must_use = "call .committed() once the transaction has committed, or the events stay pending"]
pub struct Saved<'s, 'a> {
    app: &'s Application,
    aggregates: Vec<&'a mut dyn Saveable>,
    events: usize,
}

impl std::fmt::Debug for Saved<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saved")
            .field("application", &self.app.name())
            .field("aggregates", &self.aggregates.len())
            .field("events", &self.events)
            .finish()
    }
}

impl Saved<'_, '_> {
    /// How many events were written.
    pub fn events(&self) -> usize {
        self.events
    }

    /// Your transaction committed: clears the aggregates' pending events and refreshes the
    /// application's cache.
    pub fn committed(mut self) {
        for a in self.aggregates.iter_mut() {
            a.clear_pending();
            a.cache_into(self.app);
        }
    }
}

impl Application {
    /// Writes the pending events of `aggregates` inside your open transaction (see the
    /// [module documentation](crate::application::own_tx) for the whole protocol): returns a [`Saved`]
    /// whose [`committed`](Saved::committed) you call after your commit. A stale aggregate is
    /// [`Error::Concurrency`]; an application whose store is not of the transaction's kind
    /// is [`Error::Configuration`].
    pub fn save_in<'s, 'a, T: OwnTransaction<'s, 'a>, const N: usize>(
        &'s self,
        tx: T,
        aggregates: [&'a mut dyn Saveable; N],
    ) -> T::Output {
        tx.save_in(self, aggregates.into())
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
impl Application {
    /// The batch `save_in` writes (the events stay pending), or `None` if there is none.
    fn own_batch(&self, aggregates: &[&mut dyn Saveable]) -> Result<Option<RecordBatch>> {
        self.events.batch(
            aggregates
                .iter()
                .flat_map(|a| a.pending())
                .map(|e| e.as_ref())
                .filter(|e| self.persists(*e)),
            None,
            None,
        )
    }

    /// The event record manager as backend type `M`.
    fn own_records<M: 'static>(&self, backend: &str) -> Result<&M> {
        self.records()
            .as_any()
            .and_then(|a| a.downcast_ref::<M>())
            .ok_or_else(|| {
                Error::Configuration(format!(
                    "application {} does not store its events in {backend}: save_in needs a transaction of the database it stores in",
                    self.name
                ))
            })
    }
}

/// Counts and traces a write in an own transaction, mapping a conflict to a concurrency error.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn finish(records: &dyn RecordManager, batch: &RecordBatch, written: Result<()>) -> Result<()> {
    let written = written.map_err(|e| match e {
        Error::RecordConflict(m) => Error::Concurrency(m),
        other => other,
    });
    telemetry::count_save(records.application_name(), batch, written)
}

#[cfg(feature = "sqlite")]
impl<'s, 'a, 't, 'c> OwnTransaction<'s, 'a> for &'t rusqlite::Transaction<'c> {
    type Output = Result<Saved<'s, 'a>>;
    fn save_in(self, app: &'s Application, aggregates: Vec<&'a mut dyn Saveable>) -> Self::Output {
        let records = app.own_records::<crate::record::sqlite::SqliteRecordManager>("SQLite")?;
        let batch = app.own_batch(&aggregates)?.unwrap_or_default();
        let span = telemetry::save_span(records.application_name(), &batch);
        let written = span.in_scope(|| records.write_in_transaction(self, &batch));
        finish(records, &batch, written)?;
        let events = batch.items.len();
        Ok(Saved {
            app,
            aggregates,
            events,
        })
    }
}

/// `OwnTransaction` for an sqlx transaction of one backend, whose record manager has
/// `write_in_transaction(&mut Transaction<DB>, &RecordBatch)`.
macro_rules! sqlx_own_transaction {
    ($feature:literal, $db:ty, $manager:ty, $backend:literal) => {
        #[cfg(feature = $feature)]
        impl<'s, 'a, 't, 'c> OwnTransaction<'s, 'a> for &'t mut sqlx::Transaction<'c, $db>
        where
            's: 't,
            'a: 't,
        {
            type Output = std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<Saved<'s, 'a>>> + Send + 't>,
            >;
            fn save_in(
                self,
                app: &'s Application,
                aggregates: Vec<&'a mut dyn Saveable>,
            ) -> Self::Output {
                Box::pin(async move {
                    let records = app.own_records::<$manager>($backend)?;
                    let batch = app.own_batch(&aggregates)?.unwrap_or_default();
                    let span = telemetry::save_span(records.application_name(), &batch);
                    let written =
                        telemetry::timed(span, records.write_in_transaction(self, &batch)).await;
                    finish(records, &batch, written)?;
                    let events = batch.items.len();
                    Ok(Saved {
                        app,
                        aggregates,
                        events,
                    })
                })
            }
        }
    };
}

sqlx_own_transaction!(
    "postgres",
    sqlx::Postgres,
    crate::record::postgres::PostgresRecordManager,
    "PostgreSQL"
);
sqlx_own_transaction!(
    "mysql",
    sqlx::MySql,
    crate::record::mysql::MySqlRecordManager,
    "MySQL"
);
