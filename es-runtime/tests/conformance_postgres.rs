//! The conformance suite against the PostgreSQL server named by `ES_POSTGRES_URL` (or at the
//! conventional local address), run by `server_support::harness`: when no server answers, the
//! cases are reported as ignored.
//!
//! All cases share one schema per test process (`es_conf_<unix seconds>_<random>`); schemas
//! of this kind older than an hour, left by earlier runs, are dropped when the first case starts.

#[macro_use]
mod conformance;
mod server_support;

use es_runtime::record::postgres::PostgresDatabase;
use es_runtime::record::{RecordKind, RecordManager};
use es_runtime::sqlx::{self, postgres::PgPoolOptions};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The server's URL (the harness runs no case unless the probe found the server).
fn url() -> String {
    server_support::probe::probe(server_support::probe::POSTGRES)
        .expect("the harness probed the server")
}

fn schema() -> &'static str {
    static SCHEMA: OnceLock<String> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!(
            "es_conf_{secs}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    })
}

/// Creates the schema once per process (and drops stale ones from earlier runs).
async fn setup_once(url: &str) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let url = url.to_string();
    // Spawned, so that the suite's generic futures need not prove sqlx's futures `Send`.
    DONE.get_or_init(|| async move {
        tokio::spawn(setup(url)).await.expect("setup task");
    })
    .await;
}

async fn setup(url: String) {
    {
        let db = PostgresDatabase::connect_with(&url, 2)
            .await
            .expect("connect to PostgreSQL");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::TEXT FROM pg_namespace WHERE nspname LIKE 'es\\_conf\\_%'",
        )
        .fetch_all(db.pool())
        .await
        .expect("list schemas");
        for s in stale {
            let secs: u64 = s
                .split('_')
                .nth(2)
                .and_then(|t| t.parse().ok())
                .unwrap_or(now);
            if now.saturating_sub(secs) > 3600 {
                // Another run may be dropping it at the same time: that is fine.
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(String::from(&format!(
                    "DROP SCHEMA IF EXISTS {s} CASCADE"
                ))))
                .execute(db.pool())
                .await;
            }
        }
        db.with_schema(schema())
            .expect("schema name")
            .setup_tables()
            .await
            .expect("create tables");
    }
}

/// A record manager over the shared schema. Each call has its own small pool, made in the
/// calling test's runtime (a pool must not outlive the runtime that drives its connections).
async fn make(
    kind: RecordKind,
    application_name: String,
    pipeline_id: i64,
) -> Arc<dyn RecordManager> {
    let url = url();
    setup_once(&url).await;
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect_lazy(&url)
        .expect("pool");
    let db = PostgresDatabase::from_pool(pool)
        .with_schema(schema())
        .expect("schema name");
    Arc::new(db.record_manager(kind, &application_name, pipeline_id))
}

conformance_suite!(postgres, make, harness = server_support::probe::POSTGRES);
