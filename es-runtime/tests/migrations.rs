#![cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
//! The migration files equal the DDL es runs (`ES_BLESS_MIGRATIONS=1` rewrites them), and a
//! database made by applying them serves an application that creates nothing itself.

use es_runtime::application::Application;
use es_runtime::prelude::*;
use es_runtime::record::migrations::{self, Dialect, SCHEMA_VERSION};
use std::path::PathBuf;
use std::sync::Arc;

#[aggregate]
pub struct Note {
    text: String,
}

#[aggregate]
impl Note {
    #[event(Written)]
    pub fn write(text: String) -> Self {
        Note { text }
    }
}

fn file(dialect: Dialect) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect.directory())
        .join("0001_es_tables.sql")
}

/// Asserts the file of `dialect` holds `generated` (or writes it, when blessing).
fn check(dialect: Dialect, generated: &str) -> String {
    let path = file(dialect);
    if std::env::var("ES_BLESS_MIGRATIONS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (ES_BLESS_MIGRATIONS=1 writes it)", path.display()));
    assert!(
        on_disk == generated,
        "{} differs from the DDL es runs: if the schema changed on purpose, add a migration \
         (or, before a release, rewrite this one with ES_BLESS_MIGRATIONS=1)",
        path.display()
    );
    on_disk
}

/// Saves and reads a note through an application that creates no tables.
async fn works_without_creating(db: Arc<dyn es_runtime::application::Database>) {
    let app = Application::builder(format!("mig{}", &Uuid::new_v4().simple().to_string()[..8]))
        .database(db)
        .build()
        .await
        .unwrap();
    let mut note = Note::write("applied".into()).unwrap();
    app.save(&mut note).await.unwrap();
    assert_eq!(app.get::<Note>(note.id()).await.unwrap().text, "applied");
    assert_eq!(app.records().max_notification_id().await.unwrap(), 1);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_migration_is_the_ddl_and_makes_a_working_database() {
    use es_runtime::record::sqlite::SqliteDatabase;
    let sql = check(Dialect::Sqlite, &migrations::sqlite("es_").unwrap());
    let db = SqliteDatabase::memory()
        .unwrap()
        .with_table_prefix("es_")
        .unwrap();
    let err = |e: es_runtime::record::sqlite::rusqlite::Error| Error::Operational(e.to_string());
    for _ in 0..2 {
        db.with_connection(|c| c.execute_batch(&sql).map_err(err))
            .unwrap();
    }
    let version: i64 = db
        .with_connection(|c| {
            c.query_row("SELECT max(version) FROM es_schema_version", [], |r| {
                r.get(0)
            })
            .map_err(err)
        })
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    works_without_creating(Arc::new(db)).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn build_creates_tables_only_when_asked_and_records_the_version() {
    use es_runtime::record::sqlite::SqliteDatabase;
    let db = Arc::new(
        SqliteDatabase::memory()
            .unwrap()
            .with_table_prefix("es_")
            .unwrap(),
    );
    let e = Application::builder("bank")
        .database(db.clone())
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Configuration(m) if m.contains("es_stored_events") && m.contains("create_tables(true)")),
        "{e}"
    );
    let e = Application::builder("bank")
        .database(db.clone())
        .snapshotting()
        .build()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no such table"), "{e}");
    Application::builder("bank")
        .database(db.clone())
        .snapshotting()
        .create_tables(true)
        .build()
        .await
        .unwrap();
    let err = |e: es_runtime::record::sqlite::rusqlite::Error| Error::Operational(e.to_string());
    let version: i64 = db
        .with_connection(|c| {
            c.query_row("SELECT max(version) FROM es_schema_version", [], |r| {
                r.get(0)
            })
            .map_err(err)
        })
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    works_without_creating(db).await;
}

/// `url` with its database name replaced by `name`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a URL with a database name");
    format!("{base}/{name}")
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_migration_is_the_ddl_and_makes_a_working_database() {
    use es_runtime::record::postgres::PostgresDatabase;
    use es_runtime::sqlx::{self, postgres::PgPoolOptions};
    let lazy = PgPoolOptions::new()
        .connect_lazy("postgres://es@127.0.0.1/unused")
        .unwrap();
    let db = PostgresDatabase::from_pool(lazy)
        .with_table_prefix("es_")
        .unwrap();
    let sql = check(Dialect::Postgres, &migrations::postgres(&db));
    let Ok(url) = std::env::var("ES_POSTGRES_URL") else {
        assert!(
            std::env::var("ES_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "ES_POSTGRES_URL is not set but ES_REQUIRE_SERVERS=1"
        );
        eprintln!("postgres: migration file checked; applying it skipped: ES_POSTGRES_URL not set");
        return;
    };
    let name = format!("es_mig_{}", &Uuid::new_v4().simple().to_string()[..10]);
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let fresh = with_database(&url, &name);
    {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&fresh)
            .await
            .unwrap();
        for _ in 0..2 {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&pool)
                .await
                .unwrap();
        }
        let version: i64 = sqlx::query_scalar("SELECT max(version) FROM es_schema_version")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let db = PostgresDatabase::from_pool(pool.clone())
            .with_table_prefix("es_")
            .unwrap();
        works_without_creating(Arc::new(db)).await;
        pool.close().await;
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .unwrap();
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn mysql_migration_is_the_ddl_and_makes_a_working_database() {
    use es_runtime::record::mysql::MySqlDatabase;
    use es_runtime::sqlx::{self, mysql::MySqlPoolOptions};
    let lazy = MySqlPoolOptions::new()
        .connect_lazy("mysql://es@127.0.0.1/unused")
        .unwrap();
    let db = MySqlDatabase::from_pool(lazy)
        .with_table_prefix("es_")
        .unwrap();
    let sql = check(Dialect::MySql, &migrations::mysql(&db));
    let Ok(url) = std::env::var("ES_MYSQL_URL") else {
        assert!(
            std::env::var("ES_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "ES_MYSQL_URL is not set but ES_REQUIRE_SERVERS=1"
        );
        eprintln!("mysql: migration file checked; applying it skipped: ES_MYSQL_URL not set");
        return;
    };
    let name = format!("es_mig_{}", &Uuid::new_v4().simple().to_string()[..10]);
    let admin = MySqlPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    let fresh = with_database(&url, &name);
    {
        let pool = MySqlPoolOptions::new()
            .max_connections(2)
            .connect(&fresh)
            .await
            .unwrap();
        for _ in 0..2 {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&pool)
                .await
                .unwrap();
        }
        let version: i64 = sqlx::query_scalar("SELECT max(version) FROM es_schema_version")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let db = MySqlDatabase::from_pool(pool.clone())
            .with_table_prefix("es_")
            .unwrap();
        works_without_creating(Arc::new(db)).await;
        pool.close().await;
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
}
