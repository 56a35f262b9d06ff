#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code, unused_imports)
)]
//! The migration files equal the DDL es runs (`ES_BLESS_MIGRATIONS=1` rewrites them), and a
//! database made by applying them serves an application that creates nothing itself.

mod server_support;

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
    let url = server_support::probe::probe(server_support::probe::POSTGRES)
        .expect("the harness probed it");
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
    let url =
        server_support::probe::probe(server_support::probe::MYSQL).expect("the harness probed it");
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

/// What a scenario turns on, on a fresh database: each adds only its own tables.
#[derive(Clone, Copy, Debug)]
enum Feature {
    /// An application and nothing else.
    Plain,
    /// Snapshots (`snapshot_period`).
    Snapshots,
    /// A process application following it.
    Process,
    /// A process application parking its failures (dead letters).
    DeadLetters,
    /// A concurrent runner with leases (locks: no table of their own).
    RunnerWithLeases,
    /// A projection following it.
    Projection,
}

const FEATURES: [(Feature, &[&str]); 6] = [
    (Feature::Plain, &["stored_events"]),
    (Feature::Snapshots, &["snapshots", "stored_events"]),
    (
        Feature::Process,
        &["notification_tracking", "stored_events"],
    ),
    (
        Feature::DeadLetters,
        &["notification_tracking", "snapshots", "stored_events"],
    ),
    (
        Feature::RunnerWithLeases,
        &["notification_tracking", "stored_events"],
    ),
    (
        Feature::Projection,
        &["notification_tracking", "stored_events"],
    ),
];

/// A projection with no handlers: it only keeps its position.
struct Positions;

impl es_runtime::process::projection::Projection for Positions {
    fn name(&self) -> &str {
        "positions"
    }
    fn handles(&self, _topic: &str) -> bool {
        false
    }
    fn apply<'a>(
        &'a self,
        _tx: &'a mut es_runtime::record::tx::Tx,
        _event: &'a dyn es_runtime::domain::event::AnyEvent,
    ) -> es_runtime::process::projection::ProjectionFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// Turns `feature` on over `db`, letting every part create what it needs, and uses it once.
async fn enable(db: Arc<dyn es_runtime::application::Database>, feature: Feature) {
    use es_runtime::process::{Policy, ProcessApplication, Runner, System};
    let build = |name: &str| {
        Application::builder(name.to_string())
            .database(db.clone())
            .create_tables(true)
    };
    let notes = match feature {
        Feature::Snapshots => build("notes").snapshot_period(2),
        _ => build("notes"),
    };
    let notes = Arc::new(notes.build().await.unwrap());
    let mut note = Note::write("one".into()).unwrap();
    notes.save(&mut note).await.unwrap();
    match feature {
        Feature::Plain | Feature::Snapshots => {}
        Feature::Process | Feature::DeadLetters => {
            let audit = Arc::new(build("audit").build().await.unwrap());
            let mut pa = ProcessApplication::new(audit, Policy::new())
                .following(&notes)
                .unwrap();
            if let Feature::DeadLetters = feature {
                pa = pa.parking_failures(db.as_ref());
                assert!(pa.parked().await.unwrap().is_empty());
            }
            assert_eq!(pa.pull().await.unwrap().processed, 1);
        }
        Feature::RunnerWithLeases => {
            let system = System::new()
                .pipeline("upstream | downstream")
                .process("upstream", Policy::new)
                .process("downstream", Policy::new);
            let runner = Runner::builder(&system, db.clone())
                .namespace("r_")
                .create_tables(true)
                .leases(Arc::new(es_runtime::process::lease::LocalLeases::new()))
                .concurrent()
                .await
                .unwrap();
            runner.stop().await.unwrap();
        }
        Feature::Projection => {
            let p = es_runtime::process::projection::Projector::new(Positions, db.clone())
                .create_tables(true)
                .following(&notes)
                .unwrap();
            assert_eq!(p.catch_up().await.unwrap().notifications, 1);
        }
    }
}

/// Runs every scenario on a fresh database from `fresh` and compares the tables `list` finds
/// (names without the prefix; `extra` are the backend's companions of the event table).
async fn features_add_only_their_tables<F, L>(fresh: F, list: L, extra: &[&str])
where
    F: Fn(usize) -> Arc<dyn es_runtime::application::Database>,
    L: AsyncFn(usize) -> Vec<String>,
{
    for (i, (feature, want)) in FEATURES.iter().enumerate() {
        let db = fresh(i);
        enable(db, *feature).await;
        let mut want: Vec<String> = want.iter().chain(extra).map(|s| s.to_string()).collect();
        want.push("schema_version".into());
        want.sort();
        let mut got = list(i).await;
        got.sort();
        assert_eq!(got, want, "{feature:?}");
    }
}

#[cfg(feature = "sqlite")]
async fn sqlite_each_feature_creates_only_its_tables() {
    use es_runtime::record::sqlite::SqliteDatabase;
    let dbs: Vec<SqliteDatabase> = (0..FEATURES.len())
        .map(|i| {
            SqliteDatabase::memory()
                .unwrap()
                .with_table_prefix(&format!("f{i}_"))
                .unwrap()
        })
        .collect();
    let fresh = |i: usize| -> Arc<dyn es_runtime::application::Database> {
        Arc::new(dbs[i].clone()) as Arc<dyn es_runtime::application::Database>
    };
    let list = async |i: usize| {
        let err =
            |e: es_runtime::record::sqlite::rusqlite::Error| Error::Operational(e.to_string());
        dbs[i]
            .with_connection(|c| {
                let mut st = c
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .map_err(err)?;
                let names = st
                    .query_map([], |r| r.get::<_, String>(0))
                    .map_err(err)?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(err)?;
                Ok(names)
            })
            .unwrap()
            .into_iter()
            .filter_map(|n| n.strip_prefix(&format!("f{i}_")).map(str::to_string))
            .collect()
    };
    features_add_only_their_tables(fresh, list, &[]).await;
}

#[cfg(feature = "sqlite")]
async fn a_feature_whose_table_is_missing_names_it() {
    use es_runtime::process::{Policy, ProcessApplication};
    use es_runtime::record::sqlite::SqliteDatabase;
    use es_runtime::record::Table;
    let db = Arc::new(SqliteDatabase::memory().unwrap());
    db.setup(&[Table::Events]).unwrap();
    let notes = Application::builder("notes")
        .database(db.clone())
        .build()
        .await
        .unwrap();
    let audit = Arc::new(
        Application::builder("audit")
            .database(db.clone())
            .build()
            .await
            .unwrap(),
    );
    let pa = ProcessApplication::new(audit, Policy::new())
        .following(&notes)
        .unwrap();
    let e = pa.pull().await.unwrap_err();
    assert!(
        matches!(&e, Error::Configuration(m) if m.contains("es_notification_tracking") && m.contains("create_tables(true)")),
        "{e}"
    );
    let e = Application::builder("notes")
        .database(db.clone())
        .snapshot_period(5)
        .build()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("es_snapshots"), "{e}");
}

#[cfg(feature = "postgres")]
async fn postgres_each_feature_creates_only_its_tables() {
    use es_runtime::record::postgres::PostgresDatabase;
    let url = server_support::probe::probe(server_support::probe::POSTGRES)
        .expect("the harness probed it");
    let base = PostgresDatabase::connect_with(&url, 4).await.unwrap();
    let tag = &Uuid::new_v4().simple().to_string()[..8];
    let schemas: Vec<String> = (0..FEATURES.len())
        .map(|i| format!("es_feat_{tag}_{i}"))
        .collect();
    let fresh = |i: usize| -> Arc<dyn es_runtime::application::Database> {
        Arc::new(base.clone().with_schema(&schemas[i]).unwrap())
    };
    let list = async |i: usize| -> Vec<String> {
        es_runtime::sqlx::query_scalar::<_, String>(
            "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(&schemas[i])
        .fetch_all(base.pool())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|n| n.strip_prefix("es_").map(str::to_string))
        .collect()
    };
    features_add_only_their_tables(fresh, list, &[]).await;
    for s in &schemas {
        es_runtime::sqlx::raw_sql(es_runtime::sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {s} CASCADE"
        )))
        .execute(base.pool())
        .await
        .unwrap();
    }
}

#[cfg(feature = "mysql")]
async fn mysql_each_feature_creates_only_its_tables() {
    use es_runtime::record::mysql::MySqlDatabase;
    let url =
        server_support::probe::probe(server_support::probe::MYSQL).expect("the harness probed it");
    let base = MySqlDatabase::connect_with(&url, 4).await.unwrap();
    let tag = &Uuid::new_v4().simple().to_string()[..8];
    let prefixes: Vec<String> = (0..FEATURES.len())
        .map(|i| format!("feat{tag}{i}_"))
        .collect();
    let fresh = |i: usize| -> Arc<dyn es_runtime::application::Database> {
        Arc::new(base.clone().with_table_prefix(&prefixes[i]).unwrap())
    };
    let list = async |i: usize| -> Vec<String> {
        es_runtime::sqlx::query_scalar::<_, String>(
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_schema = DATABASE()",
        )
        .fetch_all(base.pool())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|n| n.strip_prefix(prefixes[i].as_str()).map(str::to_string))
        .collect()
    };
    features_add_only_their_tables(fresh, list, &["notification_counters"]).await;
    for p in &prefixes {
        let drop = base.clone().with_table_prefix(p).unwrap();
        drop.drop_tables().await.unwrap();
        es_runtime::sqlx::raw_sql(es_runtime::sqlx::AssertSqlSafe(format!(
            "DROP TABLE IF EXISTS {p}schema_version"
        )))
        .execute(base.pool())
        .await
        .unwrap();
    }
}

fn main() -> std::process::ExitCode {
    server_support::harness::run_cases(&[
        #[cfg(feature = "sqlite")]
        case!(local sqlite_migration_is_the_ddl_and_makes_a_working_database),
        #[cfg(feature = "sqlite")]
        case!(local build_creates_tables_only_when_asked_and_records_the_version),
        #[cfg(feature = "postgres")]
        case!(POSTGRES postgres_migration_is_the_ddl_and_makes_a_working_database),
        #[cfg(feature = "mysql")]
        case!(MYSQL mysql_migration_is_the_ddl_and_makes_a_working_database),
        #[cfg(feature = "sqlite")]
        case!(local sqlite_each_feature_creates_only_its_tables),
        #[cfg(feature = "sqlite")]
        case!(local a_feature_whose_table_is_missing_names_it),
        #[cfg(feature = "postgres")]
        case!(POSTGRES postgres_each_feature_creates_only_its_tables),
        #[cfg(feature = "mysql")]
        case!(MYSQL mysql_each_feature_creates_only_its_tables),
    ])
}
