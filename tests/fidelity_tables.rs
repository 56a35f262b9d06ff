//! Tables of one's own (manual §8.1, §15.2) and one default table prefix, on SQLite,
//! PostgreSQL and MySQL: tables are created by hand with plain SQL, and an `Application` is
//! pointed at them with a `TableSpec`.

mod support;

use es_runtime::application::{connect, Application, Database};
use es_runtime::prelude::*;
use es_runtime::record::mapped::TableSpec;
use es_runtime::record::{RecordBatch, SequencedItem};
use std::sync::Arc;

#[aggregate]
pub struct Account {
    #[attribute]
    owner: String,
    balance: i64,
}

#[aggregate]
impl Account {
    #[event(Opened)]
    pub fn open(owner: String) -> Self {
        Account { owner, balance: 0 }
    }

    #[event(Credited)]
    pub fn credit(&mut self, amount: i64) {
        self.balance += amount;
    }
}

/// One SQL backend of this build and machine, with a place of its own (a fresh schema or
/// database) and a way to run plain SQL there.
struct Backend {
    name: &'static str,
    db: Arc<dyn Database>,
    /// Qualifies a table name with the fresh schema or database.
    space: String,
    run: Box<dyn Fn(String) -> futures_sql::Fut + Send + Sync>,
    /// Counts rows: `SELECT COUNT(*) ...`.
    count: Box<dyn Fn(String) -> futures_sql::FutI64 + Send + Sync>,
    /// How the backend spells a 16-byte binary sequence id and a binary state.
    uuid_type: &'static str,
    state_type: &'static str,
    /// Drops the fresh schema or database.
    cleanup: Option<String>,
}

mod futures_sql {
    pub type Fut = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
    pub type FutI64 = std::pin::Pin<Box<dyn std::future::Future<Output = i64> + Send>>;
}

impl Backend {
    fn table(&self, name: &str) -> String {
        if self.space.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.space)
        }
    }
    async fn sql(&self, sql: String) {
        (self.run)(sql).await
    }
    async fn count(&self, sql: String) -> i64 {
        (self.count)(sql).await
    }
    async fn done(self) {
        if let Some(sql) = &self.cleanup {
            (self.run)(sql.clone()).await
        }
    }
}

/// The URL `url` with its database name replaced by `name`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url
        .rsplit_once('/')
        .expect("a database URL names a database");
    format!("{base}/{name}")
}

async fn backends() -> Vec<Backend> {
    let mut v = Vec::new();
    #[cfg(feature = "sqlite")]
    {
        use es_runtime::record::sqlite::SqliteDatabase;
        let db = SqliteDatabase::memory().unwrap();
        let (a, b) = (db.clone(), db.clone());
        v.push(Backend {
            name: "sqlite",
            db: Arc::new(db),
            space: String::new(),
            run: Box::new(move |sql| {
                let db = a.clone();
                Box::pin(async move {
                    db.with_connection(|c| {
                        c.execute_batch(&sql)
                            .map_err(|e| Error::Operational(e.to_string()))
                    })
                    .unwrap()
                })
            }),
            count: Box::new(move |sql| {
                let db = b.clone();
                Box::pin(async move {
                    db.with_connection(|c| {
                        c.query_row(&sql, [], |r| r.get(0))
                            .map_err(|e| Error::Operational(e.to_string()))
                    })
                    .unwrap()
                })
            }),
            uuid_type: "BLOB",
            state_type: "BLOB",
            cleanup: None,
        });
    }
    #[cfg(feature = "postgres")]
    if let Some(url) = support::server_url("ES_POSTGRES_URL", "postgres") {
        let db = es_runtime::record::postgres::PostgresDatabase::connect_with(&url, 3)
            .await
            .expect("PostgreSQL at ES_POSTGRES_URL");
        let schema = support::unique("fidelity");
        let pool = db.pool().clone();
        let cleanup = Some(format!("DROP SCHEMA {schema} CASCADE"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&pool)
            .await
            .unwrap();
        let (a, b) = (pool.clone(), pool);
        v.push(Backend {
            name: "postgres",
            db: Arc::new(db),
            space: schema,
            run: Box::new(move |sql| {
                let pool = a.clone();
                Box::pin(async move {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&pool)
                        .await
                        .unwrap();
                })
            }),
            count: Box::new(move |sql| {
                let pool = b.clone();
                Box::pin(async move {
                    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .fetch_one(&pool)
                        .await
                        .unwrap()
                })
            }),
            uuid_type: "UUID",
            state_type: "BYTEA",
            cleanup,
        });
    }
    #[cfg(feature = "mysql")]
    if let Some(url) = support::server_url("ES_MYSQL_URL", "mysql") {
        let name = support::unique("fidelity");
        let admin = es_runtime::record::mysql::MySqlDatabase::connect_with(&url, 1)
            .await
            .expect("MySQL at ES_MYSQL_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await
            .unwrap();
        let db = es_runtime::record::mysql::MySqlDatabase::connect_with(&url, 3)
            .await
            .unwrap();
        let pool = db.pool().clone();
        let (a, b) = (pool.clone(), pool);
        let cleanup = Some(format!("DROP DATABASE {name}"));
        v.push(Backend {
            name: "mysql",
            db: Arc::new(db),
            space: name,
            run: Box::new(move |sql| {
                let pool = a.clone();
                Box::pin(async move {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&pool)
                        .await
                        .unwrap();
                })
            }),
            count: Box::new(move |sql| {
                let pool = b.clone();
                Box::pin(async move {
                    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                    n
                })
            }),
            uuid_type: "BINARY(16)",
            state_type: "LONGBLOB",
            cleanup,
        });
    }
    v
}

/// The manual's `integer_sequenced_items`, made by hand: an application saves, gets and
/// conflicts on it, with no record manager written.
#[tokio::test]
async fn an_application_on_a_hand_made_integer_sequenced_items_table() {
    for b in backends().await {
        let t = b.table("integer_sequenced_items");
        b.sql(format!(
            "CREATE TABLE {t} (sequence_id {} NOT NULL, position BIGINT NOT NULL, \
             topic TEXT NOT NULL, state {} NOT NULL, PRIMARY KEY (sequence_id, position))",
            b.uuid_type, b.state_type
        ))
        .await;
        let app = Application::builder(support::unique("accounts"))
            .database(b.db.clone())
            .table(TableSpec::integer_sequenced(&t))
            .build()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", b.name));

        let mut a = Account::open("ada".into()).unwrap();
        a.credit(5).unwrap();
        a.set_owner("bob".into()).unwrap();
        app.save(&mut a).await.unwrap();
        let got: Account = app.get(a.id()).await.unwrap();
        assert_eq!(
            (got.owner.as_str(), got.balance, got.version()),
            ("bob", 5, 3),
            "{}",
            b.name
        );
        // The rows are in the user's table, positioned 0, 1, 2.
        assert_eq!(b.count(format!("SELECT COUNT(*) FROM {t}")).await, 3);
        assert_eq!(
            b.count(format!("SELECT MAX(position) FROM {t}")).await,
            2,
            "{}",
            b.name
        );
        assert_eq!(
            app.records().list_sequence_ids().await.unwrap(),
            vec![a.id()]
        );

        // Two copies of one version: the second save is a concurrency error, nothing written.
        let mut one: Account = app.get(a.id()).await.unwrap();
        let mut two: Account = app.get(a.id()).await.unwrap();
        one.credit(1).unwrap();
        two.credit(2).unwrap();
        two.credit(3).unwrap();
        app.save(&mut one).await.unwrap();
        let e = app.save(&mut two).await.unwrap_err();
        assert!(matches!(e, Error::Concurrency(_)), "{}: {e}", b.name);
        assert_eq!(
            two.pending_events().len(),
            2,
            "a failed save keeps its events"
        );
        assert_eq!(b.count(format!("SELECT COUNT(*) FROM {t}")).await, 4);
        let got: Account = app.get(a.id()).await.unwrap();
        assert_eq!(got.balance, 6, "{}", b.name);

        // A duplicate position written directly is a record conflict.
        let item = app.records().get_item(a.id(), 3).await.unwrap();
        let e = app
            .records()
            .write(&RecordBatch::items(vec![item]))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::RecordConflict(_)), "{}: {e}", b.name);

        // Ranges, limits and order.
        let q = es_runtime::record::ItemQuery {
            gte: Some(1),
            limit: Some(2),
            query_descending: true,
            ..Default::default()
        };
        let positions: Vec<i64> = app
            .records()
            .get_items(a.id(), &q)
            .await
            .unwrap()
            .iter()
            .map(|i| i.position)
            .collect();
        assert_eq!(positions, vec![2, 3], "{}", b.name);

        // What the table cannot carry is a typed error saying so.
        let e = app
            .records()
            .get_notifications(1, 10, None)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Configuration(m) if m.contains("no notification id column")),
            "{}: {e}",
            b.name
        );
        let e = app.records().max_tracking_id("up").await.unwrap_err();
        assert!(matches!(&e, Error::Configuration(m) if m.contains("tracking")));
        b.done().await;
    }
}

/// The reference library's `stored_events` layout: two applications share one table, each
/// with a gap-free notification log numbered by es.
#[tokio::test]
async fn a_stored_events_table_shared_by_two_applications_serves_their_logs() {
    for b in backends().await {
        let t = b.table("stored_events");
        b.sql(format!(
            "CREATE TABLE {t} (application_name VARCHAR(64) NOT NULL, originator_id {} NOT NULL, \
             originator_version BIGINT NOT NULL, pipeline_id BIGINT NOT NULL, \
             notification_id BIGINT NOT NULL, topic TEXT NOT NULL, state {} NOT NULL, \
             PRIMARY KEY (application_name, originator_id, originator_version))",
            b.uuid_type, b.state_type
        ))
        .await;
        let build = |name: &str| {
            Application::builder(name)
                .database(b.db.clone())
                .table(TableSpec::stored_events(&t))
                .build()
        };
        let (one, two) = (build("one").await.unwrap(), build("two").await.unwrap());
        let mut ids = Vec::new();
        for k in 0..3 {
            let mut a = Account::open(format!("a{k}")).unwrap();
            a.credit(k).unwrap();
            one.save(&mut a).await.unwrap();
            ids.push(a.id());
            let mut other = Account::open(format!("b{k}")).unwrap();
            two.save(&mut other).await.unwrap();
        }
        let log = one.records().all_notifications().await.unwrap();
        let numbers: Vec<i64> = log.iter().map(|n| n.id).collect();
        assert_eq!(numbers, (1..=6).collect::<Vec<_>>(), "{}", b.name);
        assert!(log.iter().all(|n| ids.contains(&n.item.sequence_id)));
        assert_eq!(two.records().max_notification_id().await.unwrap(), 3);
        assert_eq!(
            two.records()
                .get_notifications(2, 3, Some(1))
                .await
                .unwrap()
                .len(),
            1
        );
        // The application's notification log reads the table too.
        let section = one.notification_log(4).unwrap();
        let mut reader = es_runtime::notify::NotificationLogReader::new(Arc::new(section));
        assert_eq!(reader.read_all().await.unwrap().len(), 6, "{}", b.name);
        // Each application sees only its own aggregates.
        assert_eq!(one.records().list_sequence_ids().await.unwrap().len(), 3);
        let got: Account = one.get(ids[2]).await.unwrap();
        assert_eq!(got.balance, 2);
        assert!(matches!(
            two.get::<Account>(ids[2]).await,
            Err(Error::NotFound(_))
        ));

        // Concurrent writers of one log: every id once, no gap, no conflict.
        let one = Arc::new(one);
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let app = one.clone();
                tokio::spawn(async move {
                    for _ in 0..10 {
                        let mut a = Account::open("w".into()).unwrap();
                        a.credit(1).unwrap();
                        app.save(&mut a).await.unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        let numbers: Vec<i64> = one
            .records()
            .notifications(.., None)
            .await
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(numbers, (1..=86).collect::<Vec<_>>(), "{}", b.name);
        drop((one, two));
        b.done().await;
    }
}

/// Text columns for ids and states, a snapshot table of one's own, and typed errors for a
/// missing table, a missing column, a binary state in a text column and bad names.
#[tokio::test]
async fn text_columns_snapshot_tables_and_mistakes() {
    for b in backends().await {
        let (t, s) = (b.table("items_text"), b.table("my_snapshots"));
        b.sql(format!(
            "CREATE TABLE {t} (id CHAR(36) NOT NULL, version BIGINT NOT NULL, \
             kind TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (id, version))"
        ))
        .await;
        b.sql(format!(
            "CREATE TABLE {s} (sequence_id {} NOT NULL, position BIGINT NOT NULL, \
             topic TEXT NOT NULL, state {} NOT NULL, PRIMARY KEY (sequence_id, position))",
            b.uuid_type, b.state_type
        ))
        .await;
        let spec = TableSpec::integer_sequenced(&t)
            .sequence_id("id")
            .position("version")
            .topic("kind")
            .state("body")
            .uuid_as_text()
            .state_as_text();
        let app = Application::builder("texts")
            .database(b.db.clone())
            .table(spec.clone())
            .snapshot_table(TableSpec::snapshots(&s))
            .snapshot_period(2)
            .build()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", b.name));
        let mut a = Account::open("ada".into()).unwrap();
        a.credit(7).unwrap();
        app.save(&mut a).await.unwrap();
        assert_eq!(
            b.count(format!(
                "SELECT COUNT(*) FROM {t} WHERE id = '{}'",
                a.id().hyphenated()
            ))
            .await,
            2,
            "{}: ids are stored as hyphenated text",
            b.name
        );
        assert_eq!(b.count(format!("SELECT COUNT(*) FROM {s}")).await, 1);
        let snap: Option<Account> = app.get_snapshot(a.id(), None).await.unwrap();
        assert_eq!(snap.map(|s| s.balance), Some(7), "{}", b.name);
        assert_eq!(app.get::<Account>(a.id()).await.unwrap().balance, 7);

        // A state that is not UTF-8 (here: compressed) cannot go into a text column.
        let squeezed = Application::builder("texts")
            .database(b.db.clone())
            .table(spec.clone())
            .compress_above(0)
            .build()
            .await
            .unwrap();
        let mut c = Account::open("x".repeat(500)).unwrap();
        let e = squeezed.save(&mut c).await.unwrap_err();
        assert!(matches!(e, Error::Encoding(_)), "{}: {e}", b.name);

        // A table or column that is not there fails the build, naming the spec.
        for wrong in [
            TableSpec::integer_sequenced(b.table("no_such_table")),
            spec.clone().topic("no_such_column"),
        ] {
            let e = Application::builder("texts")
                .database(b.db.clone())
                .table(wrong)
                .build()
                .await
                .unwrap_err();
            assert!(
                matches!(&e, Error::Configuration(m) if m.contains("TableSpec")),
                "{}: {e}",
                b.name
            );
        }
        let e = Application::builder("texts")
            .database(b.db.clone())
            .table(TableSpec::integer_sequenced("x; DROP TABLE y"))
            .build()
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Configuration(_)), "{e}");
        // Tracking records cannot be written to such a table.
        let item = SequencedItem {
            sequence_id: uuid::Uuid::new_v4(),
            position: 0,
            topic: "t".into(),
            state: b"{}".to_vec().into(),
        };
        let batch = RecordBatch {
            items: vec![item],
            tracking: Some(es_runtime::record::Tracking {
                upstream_application: "up".into(),
                notification_id: 1,
            }),
            causal_dependencies: None,
        };
        let e = app.records().write(&batch).await.unwrap_err();
        assert!(matches!(&e, Error::Configuration(m) if m.contains("tracking")));
        assert_eq!(b.count(format!("SELECT COUNT(*) FROM {t}")).await, 2);
        drop((app, squeezed));
        b.done().await;
    }
}

/// An in-memory database has no tables to map: a typed error, not a panic.
#[tokio::test]
async fn memory_cannot_map_a_table() {
    let e = Application::builder("m")
        .memory()
        .table(TableSpec::integer_sequenced("integer_sequenced_items"))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Configuration(m) if m.contains("integer_sequenced_items")),
        "{e}"
    );
}

/// A database made by its constructor and one made from a URL use the same tables (`es_`
/// prefix), on every backend.
#[tokio::test]
async fn the_direct_constructor_and_the_url_use_the_same_tables() {
    // Backend, database by constructor, database by URL, the tables the constructor made.
    type Route = (
        &'static str,
        Arc<dyn Database>,
        Arc<dyn Database>,
        Vec<String>,
    );
    let mut routes: Vec<Route> = Vec::new();
    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(unused_mut))]
    let mut cleanups: Vec<futures_sql::Fut> = Vec::new();
    #[cfg(feature = "sqlite")]
    {
        use es_runtime::record::sqlite::SqliteDatabase;
        let dir = std::env::temp_dir().join(support::unique("es-prefix"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("es.db");
        let direct = SqliteDatabase::open(&file).unwrap();
        assert_eq!(direct.table_prefix(), "es_");
        direct.setup_tables().unwrap();
        let tables = direct
            .with_connection(|c| {
                let mut s = c
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                    .unwrap();
                let names = s
                    .query_map([], |r| r.get::<_, String>(0))
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                Ok(names)
            })
            .unwrap();
        let by_url = connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        routes.push(("sqlite", Arc::new(direct), by_url, tables));
    }
    #[cfg(feature = "postgres")]
    if let Some(url) = support::server_url("ES_POSTGRES_URL", "postgres") {
        use es_runtime::record::postgres::PostgresDatabase;
        let name = support::unique("fidelity");
        let admin = PostgresDatabase::connect_with(&url, 1).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await
            .unwrap();
        let url = with_database(&url, &name);
        let direct = PostgresDatabase::connect_with(&url, 2).await.unwrap();
        direct.setup_tables().await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY 1",
        )
        .fetch_all(direct.pool())
        .await
        .unwrap();
        let by_url = connect(&url).await.unwrap();
        routes.push(("postgres", Arc::new(direct), by_url, tables));
        cleanups.push(Box::pin(async move {
            let drop = format!("DROP DATABASE {name} WITH (FORCE)");
            sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(admin.pool())
                .await
                .unwrap();
        }));
    }
    #[cfg(feature = "mysql")]
    if let Some(url) = support::server_url("ES_MYSQL_URL", "mysql") {
        use es_runtime::record::mysql::MySqlDatabase;
        let name = support::unique("fidelity");
        let admin = MySqlDatabase::connect_with(&url, 1).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await
            .unwrap();
        let url = with_database(&url, &name);
        let direct = MySqlDatabase::connect_with(&url, 2).await.unwrap();
        direct.setup_tables().await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_schema = DATABASE() ORDER BY 1",
        )
        .fetch_all(direct.pool())
        .await
        .unwrap();
        let by_url = connect(&url).await.unwrap();
        routes.push(("mysql", Arc::new(direct), by_url, tables));
        cleanups.push(Box::pin(async move {
            let drop = format!("DROP DATABASE {name}");
            sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(admin.pool())
                .await
                .unwrap();
        }));
    }
    for (backend, direct, by_url, tables) in routes {
        assert!(!tables.is_empty(), "{backend}");
        assert!(
            tables.iter().all(|t| t.starts_with("es_")),
            "{backend}: {tables:?}"
        );
        let name = support::unique("prefix");
        let writer = Application::builder(&name)
            .database(direct)
            .build()
            .await
            .unwrap();
        let mut a = Account::open("ada".into()).unwrap();
        writer.save(&mut a).await.unwrap();
        let reader = Application::builder(&name)
            .database(by_url)
            .build()
            .await
            .unwrap();
        let got: Account = reader.get(a.id()).await.unwrap();
        assert_eq!(got.owner, "ada", "{backend}");
        assert_eq!(reader.records().max_notification_id().await.unwrap(), 1);
    }
    for c in cleanups {
        c.await;
    }
}
