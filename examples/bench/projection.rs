//! `projection`: a projection's catch-up rate. N `SomethingHappened` events are written first;
//! then a `#[projection]` catches up from notification 1, inserting one row per event into a
//! plain SQL table (in batches of the projector's default size, each batch one transaction
//! with its tracking records). Reported as `projection` (events applied per second: reading
//! the log, decoding, the handler's insert, the tracking records, the commits), then
//! `raw_projection`: the driver alone inserting the same rows, in transactions of the same
//! size, with statements prepared once. SQLite (`sqlite-file`, `sqlite-memory`) and PostgreSQL.

use super::world::{world, World};
use es_runtime::application::{Application, Database};
use es_runtime::prelude::*;
use es_runtime::process::projection::{Projector, DEFAULT_BATCH};
use es_runtime::record::tx::Backend;
use std::sync::Arc;
use std::time::Instant;

/// One row per event: `(originator:version, length of what happened)`.
struct Ledger {
    table: String,
}

#[projection(name = "ledger")]
impl Ledger {
    async fn happened(&self, tx: &mut Tx, e: &Event<world::SomethingHappened>) -> Result<()> {
        let id = format!("{}:{}", e.originator_id(), e.originator_version());
        let value = e.what.len() as i64;
        match tx.backend() {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                let sql = format!("INSERT INTO {} (id, value) VALUES (?1, ?2)", self.table);
                tx.sqlite(move |t| {
                    t.prepare_cached(&sql)?.execute((id, value))?;
                    Ok(())
                })
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let sql = format!("INSERT INTO {} (id, value) VALUES ($1, $2)", self.table);
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(id)
                    .bind(value)
                    .execute(&mut **tx.postgres()?)
                    .await?;
                Ok(())
            }
            other => Err(Error::Configuration(format!(
                "the projection bench runs on SQLite and PostgreSQL, not {other:?}"
            ))),
        }
    }
}

fn table() -> String {
    format!(
        "es_bench_proj_{}",
        &Uuid::new_v4().simple().to_string()[..10]
    )
}

/// The rows the raw side inserts: the same shape and count as the projection's.
fn rows(n: usize) -> Vec<(String, i64)> {
    (0..n)
        .map(|i| (format!("{}:{}", Uuid::new_v4(), i % 100 + 1), 9))
        .collect()
}

pub async fn run(db: &Arc<dyn Database>, backend: &str, n: usize) -> Result<()> {
    let app = Application::builder(format!("proj{}", &Uuid::new_v4().simple().to_string()[..8]))
        .database(db.clone())
        .build()
        .await?;
    let per_world = 100;
    let worlds = n.div_ceil(per_world).max(1);
    for _ in 0..worlds {
        let mut w = World::create("gods")?;
        for i in 0..per_world {
            w.make_it_so(format!("thing {i:03}"))?;
        }
        app.save(&mut w).await?;
    }
    let count = worlds * per_world;
    let table = table();
    let ledger = Projector::new(
        Ledger {
            table: table.clone(),
        },
        db.clone(),
    )
    .named(format!("ledger_{table}"))
    .following(&app)?;
    create(ledger.records(), &table).await?;
    // Let PostgreSQL's sequencer number the rows first: that is write work, not catch-up.
    app.records().max_notification_id().await?;
    let t = Instant::now();
    let progress = ledger.catch_up().await?;
    let s = t.elapsed().as_secs_f64();
    if progress.applied != count {
        return Err(Error::Operational(format!(
            "applied {} events, expected {count}",
            progress.applied
        )));
    }
    super::raw::report_secs("projection", backend, count, s);
    let s = raw(backend, count).await?;
    super::raw::report_secs("raw_projection", backend, count, s);
    Ok(())
}

async fn create(records: &Arc<dyn es_runtime::record::RecordManager>, table: &str) -> Result<()> {
    let mut tx = records.begin_tx().await?;
    let sql = format!("CREATE TABLE {table} (id VARCHAR(64) PRIMARY KEY, value BIGINT NOT NULL)");
    match tx.backend() {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => tx.sqlite(move |t| {
            t.execute_batch(&sql)?;
            Ok(())
        })?,
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut **tx.postgres()?)
                .await?;
        }
        other => {
            return Err(Error::Configuration(format!(
                "the projection bench runs on SQLite and PostgreSQL, not {other:?}"
            )))
        }
    }
    tx.commit_tracked(None, &[]).await
}

/// The driver alone: the same inserts in transactions of [`DEFAULT_BATCH`] rows. Seconds.
async fn raw(backend: &str, count: usize) -> Result<f64> {
    let rows = rows(count);
    let table = table();
    match backend {
        #[cfg(feature = "sqlite")]
        "sqlite-file" | "sqlite-memory" => {
            use es_runtime::record::sqlite::rusqlite::Connection;
            let op = |e: es_runtime::record::sqlite::rusqlite::Error| Error::from(e);
            let conn = if backend == "sqlite-memory" {
                Connection::open_in_memory().map_err(op)?
            } else {
                let dir = std::env::temp_dir().join(format!("es-{}", Uuid::new_v4().simple()));
                std::fs::create_dir_all(&dir).map_err(|e| Error::Operational(e.to_string()))?;
                let c = Connection::open(dir.join("raw.db")).map_err(op)?;
                c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
                    .map_err(op)?;
                c.execute_batch("PRAGMA synchronous=NORMAL").map_err(op)?;
                c
            };
            conn.execute_batch(&format!(
                "CREATE TABLE {table} (id VARCHAR(64) PRIMARY KEY, value BIGINT NOT NULL)"
            ))
            .map_err(op)?;
            let sql = format!("INSERT INTO {table} (id, value) VALUES (?1, ?2)");
            let t = Instant::now();
            for chunk in rows.chunks(DEFAULT_BATCH) {
                conn.execute_batch("BEGIN IMMEDIATE").map_err(op)?;
                for (id, v) in chunk {
                    conn.prepare_cached(&sql)
                        .map_err(op)?
                        .execute((id, v))
                        .map_err(op)?;
                }
                conn.execute_batch("COMMIT").map_err(op)?;
            }
            Ok(t.elapsed().as_secs_f64())
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            use sqlx::{Connection, PgConnection};
            let url = std::env::var("ES_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let mut conn = PgConnection::connect(&url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE {table} (id VARCHAR(64) PRIMARY KEY, value BIGINT NOT NULL)"
            )))
            .execute(&mut conn)
            .await?;
            let sql = format!("INSERT INTO {table} (id, value) VALUES ($1, $2)");
            let t = Instant::now();
            for chunk in rows.chunks(DEFAULT_BATCH) {
                let mut tx = conn.begin().await?;
                for (id, v) in chunk {
                    sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(id)
                        .bind(v)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
            let s = t.elapsed().as_secs_f64();
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
                .execute(&mut conn)
                .await?;
            Ok(s)
        }
        other => Err(Error::Configuration(format!(
            "the projection bench runs on sqlite-file, sqlite-memory and postgres, not {other}"
        ))),
    }
}
