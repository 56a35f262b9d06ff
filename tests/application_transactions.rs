//! Saving inside the user's own database transaction: the user's rows (an outbox here) commit
//! or roll back together with the events.

mod support;
// The name `case!` expects (see `support::harness`).
use support as server_support;

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

/// The same steps on each server backend: `$db` over the sqlx pool `$pool_options`, an outbox
/// table whose id column is `$id_column`, ids bound through `$bind`, placeholders like `$p`.
macro_rules! outbox_test {
    ($name:ident, $feature:literal, $env:literal, $backend:literal, $db:ty, $pool_options:ty,
     $id_column:literal, $p:literal, $bind:expr) => {
        #[cfg(feature = $feature)]
        async fn $name() {
            use es_runtime::application::{Application, Saveable};
            use es_runtime::record::RecordKind;
            use es_runtime::sqlx;
            use std::sync::Arc;

            let url = support::server_url($env, $backend).expect("the harness found the server");
            let pool = <$pool_options>::new()
                .max_connections(2)
                .connect(&url)
                .await
                .unwrap();
            let db = <$db>::from_pool(pool.clone())
                .with_table_prefix(es_runtime::application::config::TABLE_PREFIX)
                .unwrap();
            db.setup_tables().await.unwrap();
            let outbox = support::unique("outbox");
            sqlx::query(sqlx::AssertSqlSafe(String::from(&format!(
                "CREATE TABLE {outbox} (id {} PRIMARY KEY, message TEXT)",
                $id_column
            ))))
            .execute(&pool)
            .await
            .unwrap();
            let insert = format!("INSERT INTO {outbox} VALUES ({}, 'welcome')", $p);
            let name = support::unique("tx");
            let app = Application::builder(&name)
                .database(Arc::new(db.clone()))
                .build()
                .await
                .unwrap();
            let records = db.record_manager(RecordKind::Events, &name, 0);

            // Commit: the account and the outbox row appear together; roll back: neither.
            for (owner, commit) in [("ada", true), ("bob", false)] {
                let mut a = Account::open(owner.into()).unwrap();
                let mut tx = pool.begin().await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(String::from(&insert)))
                    .bind(($bind)(a.id()))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                let batch = app.prepare_batch([&mut a as &mut dyn Saveable]).unwrap();
                records.write_in_transaction(&mut tx, &batch).await.unwrap();
                if commit {
                    tx.commit().await.unwrap();
                    batch.confirm().await.unwrap();
                    assert!(a.pending_events().is_empty());
                    assert_eq!(app.get::<Account>(a.id()).await.unwrap().owner, owner);
                } else {
                    tx.rollback().await.unwrap();
                    drop(batch);
                    assert!(matches!(
                        app.get::<Account>(a.id()).await,
                        Err(Error::NotFound(_))
                    ));
                    // Still pending after the rollback: a plain save stores it.
                    assert_eq!(a.pending_events().len(), 1);
                    app.save(&mut a).await.unwrap();
                    assert_eq!(app.get::<Account>(a.id()).await.unwrap().owner, owner);
                }
            }
            let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(String::from(&format!(
                "SELECT count(*) FROM {outbox}"
            ))))
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(rows, 1);
            // ada's event in the committed transaction, bob's saved again after the rollback.
            assert_eq!(app.records().max_notification_id().await.unwrap(), 2);
            sqlx::query(sqlx::AssertSqlSafe(String::from(&format!(
                "DROP TABLE {outbox}"
            ))))
            .execute(&pool)
            .await
            .unwrap();
        }
    };
}

outbox_test!(
    postgres_save_commits_and_rolls_back_with_the_users_rows,
    "postgres",
    "ES_POSTGRES_URL",
    "postgres",
    es_runtime::record::postgres::PostgresDatabase,
    es_runtime::sqlx::postgres::PgPoolOptions,
    "uuid",
    "$1",
    |id: Uuid| id
);

outbox_test!(
    mysql_save_commits_and_rolls_back_with_the_users_rows,
    "mysql",
    "ES_MYSQL_URL",
    "mysql",
    es_runtime::record::mysql::MySqlDatabase,
    es_runtime::sqlx::mysql::MySqlPoolOptions,
    "BINARY(16)",
    "?",
    |id: Uuid| id.as_bytes().to_vec()
);

async fn prepare_batch_keeps_the_events_pending_until_confirmed() {
    let app = es_runtime::application::Application::builder("p")
        .memory()
        .build()
        .await
        .unwrap();
    let mut a = Account::open("ada".into()).unwrap();
    a.set_owner("eve".into()).unwrap();
    let batch = app
        .prepare_batch([&mut a as &mut dyn es_runtime::application::Saveable])
        .unwrap();
    assert_eq!(batch.items.len(), 2);
    drop(batch);
    assert_eq!(a.pending_events().len(), 2, "not confirmed: still pending");
    let batch = app
        .prepare_batch([&mut a as &mut dyn es_runtime::application::Saveable])
        .unwrap();
    app.records().write(&batch).await.unwrap();
    batch.confirm().await.unwrap();
    assert!(a.pending_events().is_empty());
    assert_eq!(app.get::<Account>(a.id()).await.unwrap().owner, "eve");
}

/// Runs every case; those whose server does not answer are reported as ignored (see
/// `server_support::harness`).
fn main() -> std::process::ExitCode {
    support::harness::run_cases(&[
        #[cfg(feature = "postgres")]
        case!(POSTGRES postgres_save_commits_and_rolls_back_with_the_users_rows),
        #[cfg(feature = "mysql")]
        case!(MYSQL mysql_save_commits_and_rolls_back_with_the_users_rows),
        case!(local prepare_batch_keeps_the_events_pending_until_confirmed),
    ])
}
