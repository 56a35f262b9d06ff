//! `Application::save_in`: events written in the user's own transaction stay pending until the
//! user says the commit succeeded; after a rollback they are still pending and a later save
//! writes them. On SQLite (rusqlite), PostgreSQL and MySQL (sqlx).

mod support;
// The name `case!` expects (see `support::harness`).
use support as server_support;

use es_runtime::application::Application;
use es_runtime::prelude::*;

#[aggregate]
pub struct Account {
    #[attribute]
    owner: String,
}

#[aggregate]
impl Account {
    #[event(Opened)]
    pub fn open(owner: String) -> Self {
        Account { owner }
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite_save_in_keeps_events_pending_until_committed() {
    use es_runtime::record::sqlite::SqliteDatabase;
    use std::sync::Arc;
    let db = SqliteDatabase::memory().unwrap();
    db.setup_tables().unwrap();
    let app = Application::builder("own")
        .database(Arc::new(db.clone()))
        .build()
        .await
        .unwrap();
    let sql_err =
        |e: es_runtime::record::sqlite::rusqlite::Error| Error::Operational(e.to_string());
    db.with_connection(|c| {
        c.execute_batch("CREATE TABLE outbox (id BLOB PRIMARY KEY)")
            .map_err(sql_err)
    })
    .unwrap();

    // Commit: the outbox row and the events together; pending cleared by `committed`.
    let mut ada = Account::open("ada".into()).unwrap();
    let saved = db
        .transaction(|tx| {
            tx.execute(
                "INSERT INTO outbox VALUES (?1)",
                [ada.id().as_bytes().as_slice()],
            )
            .map_err(sql_err)?;
            app.save_in(tx, [&mut ada])
        })
        .unwrap();
    assert_eq!(saved.events(), 1);
    saved.committed();
    assert!(ada.pending_events().is_empty());
    assert_eq!(app.get::<Account>(ada.id()).await.unwrap().owner, "ada");

    // Rollback: nothing stored, the events still pending, and a later save stores them.
    let mut bob = Account::open("bob".into()).unwrap();
    let rolled_back = db.transaction(|tx| {
        tx.execute(
            "INSERT INTO outbox VALUES (?1)",
            [bob.id().as_bytes().as_slice()],
        )
        .map_err(sql_err)?;
        let saved = app.save_in(tx, [&mut bob])?;
        drop(saved);
        Err::<(), _>(Error::Operational("the user's own step failed".into()))
    });
    assert!(rolled_back.is_err());
    assert_eq!(bob.pending_events().len(), 1);
    assert!(matches!(
        app.get::<Account>(bob.id()).await,
        Err(Error::NotFound(_))
    ));
    app.save(&mut bob).await.unwrap();
    assert_eq!(app.get::<Account>(bob.id()).await.unwrap().owner, "bob");
    let outbox: i64 = db
        .with_connection(|c| {
            c.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
                .map_err(sql_err)
        })
        .unwrap();
    assert_eq!(outbox, 1);

    // A stale copy is a concurrency error, and the transaction is the user's to roll back.
    let mut stale = app.get::<Account>(ada.id()).await.unwrap();
    let mut fresh = stale.clone();
    fresh.set_owner("ann".into()).unwrap();
    app.save(&mut fresh).await.unwrap();
    stale.set_owner("eve".into()).unwrap();
    let e = db
        .transaction(|tx| app.save_in(tx, [&mut stale]).map(|_| ()))
        .unwrap_err();
    assert!(matches!(e, Error::Concurrency(_)), "{e}");
    assert_eq!(stale.pending_events().len(), 1);

    // An application on another store cannot write in an SQLite transaction.
    let memory = Application::builder("mem").memory().build().await.unwrap();
    let mut cy = Account::open("cy".into()).unwrap();
    let e = db
        .transaction(|tx| memory.save_in(tx, [&mut cy]).map(|_| ()))
        .unwrap_err();
    assert!(
        matches!(&e, Error::Configuration(m) if m.contains("does not store its events in SQLite")),
        "{e}"
    );
}

/// The same steps on a server backend over an sqlx pool of the user's.
macro_rules! server_test {
    ($name:ident, $feature:literal, $env:literal, $backend:literal, $db:ty, $pool_options:ty,
     $id_column:literal, $p:literal, $bind:expr) => {
        #[cfg(feature = $feature)]
        async fn $name() {
            use es_runtime::sqlx;
            use std::sync::Arc;

            let url = support::server_url($env, $backend).expect("the harness found the server");
            let pool = <$pool_options>::new().max_connections(3).connect(&url).await.unwrap();
            let db = <$db>::from_pool(pool.clone())
                .with_table_prefix(es_runtime::application::config::TABLE_PREFIX)
                .unwrap();
            db.setup_tables().await.unwrap();
            let outbox = support::unique("own_outbox");
            let create = format!("CREATE TABLE {outbox} (id {} PRIMARY KEY)", $id_column);
            sqlx::query(sqlx::AssertSqlSafe(create)).execute(&pool).await.unwrap();
            let insert = format!("INSERT INTO {outbox} VALUES ({})", $p);
            let app = Application::builder(support::unique("own"))
                .database(Arc::new(db))
                .build()
                .await
                .unwrap();

            let mut ada = Account::open("ada".into()).unwrap();
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(insert.clone())).bind(($bind)(ada.id())).execute(&mut *tx).await.unwrap();
            let saved = app.save_in(&mut tx, [&mut ada]).await.unwrap();
            tx.commit().await.unwrap();
            saved.committed();
            assert!(ada.pending_events().is_empty());
            assert_eq!(app.get::<Account>(ada.id()).await.unwrap().owner, "ada");

            let mut bob = Account::open("bob".into()).unwrap();
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(insert.clone())).bind(($bind)(bob.id())).execute(&mut *tx).await.unwrap();
            let saved = app.save_in(&mut tx, [&mut bob]).await.unwrap();
            drop(saved);
            tx.rollback().await.unwrap();
            assert_eq!(bob.pending_events().len(), 1);
            assert!(matches!(app.get::<Account>(bob.id()).await, Err(Error::NotFound(_))));
            app.save(&mut bob).await.unwrap();
            assert_eq!(app.get::<Account>(bob.id()).await.unwrap().owner, "bob");

            let mut stale = app.get::<Account>(ada.id()).await.unwrap();
            let mut fresh = stale.clone();
            fresh.set_owner("ann".into()).unwrap();
            app.save(&mut fresh).await.unwrap();
            stale.set_owner("eve".into()).unwrap();
            let mut tx = pool.begin().await.unwrap();
            let e = app.save_in(&mut tx, [&mut stale]).await.map(|_| ()).unwrap_err();
            tx.rollback().await.unwrap();
            assert!(matches!(e, Error::Concurrency(_)), "{e}");
            assert_eq!(stale.pending_events().len(), 1);

            let memory = Application::builder("mem").memory().build().await.unwrap();
            let mut tx = pool.begin().await.unwrap();
            let e = memory.save_in(&mut tx, [&mut stale]).await.map(|_| ()).unwrap_err();
            assert!(matches!(&e, Error::Configuration(m) if m.contains("does not store")), "{e}");

            let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {outbox}")))
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(rows, 1);
            assert_eq!(app.records().max_notification_id().await.unwrap(), 3);
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {outbox}"))).execute(&pool).await.unwrap();
        }
    };
}

server_test!(
    postgres_save_in_keeps_events_pending_until_committed,
    "postgres",
    "ES_POSTGRES_URL",
    "postgres",
    es_runtime::record::postgres::PostgresDatabase,
    es_runtime::sqlx::postgres::PgPoolOptions,
    "uuid",
    "$1",
    |id: Uuid| id
);

server_test!(
    mysql_save_in_keeps_events_pending_until_committed,
    "mysql",
    "ES_MYSQL_URL",
    "mysql",
    es_runtime::record::mysql::MySqlDatabase,
    es_runtime::sqlx::mysql::MySqlPoolOptions,
    "BINARY(16)",
    "?",
    |id: Uuid| id.as_bytes().to_vec()
);

/// Runs every case; those whose server does not answer are reported as ignored (see
/// `server_support::harness`).
fn main() -> std::process::ExitCode {
    support::harness::run_cases(&[
        #[cfg(feature = "sqlite")]
        case!(local sqlite_save_in_keeps_events_pending_until_committed),
        #[cfg(feature = "postgres")]
        case!(POSTGRES postgres_save_in_keeps_events_pending_until_committed),
        #[cfg(feature = "mysql")]
        case!(MYSQL mysql_save_in_keeps_events_pending_until_committed),
    ])
}
