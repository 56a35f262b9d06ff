//! Saving inside the user's own database transaction: the user's rows (an outbox here) commit
//! or roll back together with the events.

mod support;

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

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_save_commits_and_rolls_back_with_the_users_rows() {
    use es_runtime::application::{Application, Saveable};
    use es_runtime::record::postgres::PostgresDatabase;
    use es_runtime::record::RecordKind;
    use es_runtime::sqlx;
    use std::sync::Arc;

    let Some(url) = support::server_url("ES_POSTGRES_URL", "postgres") else {
        return;
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let db = PostgresDatabase::from_pool(pool.clone())
        .with_table_prefix(es_runtime::application::config::TABLE_PREFIX)
        .unwrap();
    db.setup_tables().await.unwrap();
    let outbox = support::unique("outbox");
    sqlx::query(&format!(
        "CREATE TABLE {outbox} (id uuid PRIMARY KEY, message text)"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let name = support::unique("tx");
    let app = Application::builder(&name)
        .database(Arc::new(db.clone()))
        .build()
        .await
        .unwrap();
    let records = db.record_manager(RecordKind::Events, &name, 0);

    // Commit: the account and the outbox row appear together.
    let mut a = Account::open("ada".into()).unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(&format!("INSERT INTO {outbox} VALUES ($1, 'welcome')"))
        .bind(a.id())
        .execute(&mut *tx)
        .await
        .unwrap();
    let batch = app
        .prepare_batch(&mut [&mut a as &mut dyn Saveable])
        .unwrap();
    records.write_in_transaction(&mut tx, &batch).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(app.get::<Account>(a.id()).await.unwrap().owner, "ada");

    // Roll back: neither the events nor the outbox row.
    let mut b = Account::open("bob".into()).unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(&format!("INSERT INTO {outbox} VALUES ($1, 'welcome')"))
        .bind(b.id())
        .execute(&mut *tx)
        .await
        .unwrap();
    let batch = app
        .prepare_batch(&mut [&mut b as &mut dyn Saveable])
        .unwrap();
    records.write_in_transaction(&mut tx, &batch).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(matches!(
        app.get::<Account>(b.id()).await,
        Err(Error::NotFound(_))
    ));
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {outbox}"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(app.records().max_notification_id().await.unwrap(), 1);
    sqlx::query(&format!("DROP TABLE {outbox}"))
        .execute(&pool)
        .await
        .unwrap();
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql_save_commits_and_rolls_back_with_the_users_rows() {
    use es_runtime::application::{Application, Saveable};
    use es_runtime::record::mysql::MySqlDatabase;
    use es_runtime::record::RecordKind;
    use es_runtime::sqlx;
    use std::sync::Arc;

    let Some(url) = support::server_url("ES_MYSQL_URL", "mysql") else {
        return;
    };
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let db = MySqlDatabase::from_pool(pool.clone())
        .with_table_prefix(es_runtime::application::config::TABLE_PREFIX)
        .unwrap();
    db.setup_tables().await.unwrap();
    let outbox = support::unique("outbox");
    sqlx::query(&format!(
        "CREATE TABLE {outbox} (id BINARY(16) PRIMARY KEY, message TEXT)"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let name = support::unique("tx");
    let app = Application::builder(&name)
        .database(Arc::new(db.clone()))
        .build()
        .await
        .unwrap();
    let records = db.record_manager(RecordKind::Events, &name, 0);

    let mut a = Account::open("ada".into()).unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(&format!("INSERT INTO {outbox} VALUES (?, 'welcome')"))
        .bind(a.id().as_bytes().to_vec())
        .execute(&mut *tx)
        .await
        .unwrap();
    let batch = app
        .prepare_batch(&mut [&mut a as &mut dyn Saveable])
        .unwrap();
    records.write_in_transaction(&mut tx, &batch).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(app.get::<Account>(a.id()).await.unwrap().owner, "ada");

    let mut b = Account::open("bob".into()).unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(&format!("INSERT INTO {outbox} VALUES (?, 'welcome')"))
        .bind(b.id().as_bytes().to_vec())
        .execute(&mut *tx)
        .await
        .unwrap();
    let batch = app
        .prepare_batch(&mut [&mut b as &mut dyn Saveable])
        .unwrap();
    records.write_in_transaction(&mut tx, &batch).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(matches!(
        app.get::<Account>(b.id()).await,
        Err(Error::NotFound(_))
    ));
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {outbox}"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(app.records().max_notification_id().await.unwrap(), 1);
    sqlx::query(&format!("DROP TABLE {outbox}"))
        .execute(&pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn prepare_batch_takes_the_pending_events() {
    let app = es_runtime::application::Application::builder("p")
        .memory()
        .build()
        .await
        .unwrap();
    let mut a = Account::open("ada".into()).unwrap();
    a.set_owner("eve".into()).unwrap();
    let batch = app
        .prepare_batch(&mut [&mut a as &mut dyn es_runtime::application::Saveable])
        .unwrap();
    assert_eq!(batch.items.len(), 2);
    assert!(a.pending_events().is_empty());
}
