//! The conformance suite against the MySQL/MariaDB server named by `ES_MYSQL_URL` (or at the
//! conventional local address), run by `server_support::harness`: when no server answers, the
//! cases are reported as ignored.
//!
//! All cases share one table prefix per test process (`es_conf_<unix seconds>_<random>_`);
//! tables of this kind older than an hour, left by earlier runs, are dropped when the first case
//! starts.

#[macro_use]
mod conformance;
mod server_support;

use es_runtime::record::mysql::MySqlDatabase;
use es_runtime::record::{RecordKind, RecordManager};
use es_runtime::sqlx::{self, mysql::MySqlPoolOptions};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The server's URL (the harness runs no case unless the probe found the server).
fn url() -> String {
    server_support::probe::probe(server_support::probe::MYSQL)
        .expect("the harness probed the server")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| {
        format!(
            "es_conf_{}_{}_",
            now(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    })
}

/// Creates the tables once per process (and drops stale ones from earlier runs).
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
    let db = MySqlDatabase::connect_with(&url, 2)
        .await
        .expect("connect to MySQL");
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name LIKE 'es\\_conf\\_%'",
    )
    .fetch_all(db.pool())
    .await
    .expect("list tables");
    let now = now();
    for t in stale {
        let secs: u64 = t
            .split('_')
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(now);
        if now.saturating_sub(secs) > 3600 {
            // Another run may be dropping it at the same time: that is fine.
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(String::from(&format!(
                "DROP TABLE IF EXISTS {t}"
            ))))
            .execute(db.pool())
            .await;
        }
    }
    db.with_table_prefix(prefix())
        .expect("prefix")
        .setup_tables()
        .await
        .expect("create tables");
}

/// A record manager over the shared tables. Each call has its own small pool, made in the
/// calling test's runtime (a pool must not outlive the runtime that drives its connections).
async fn make(
    kind: RecordKind,
    application_name: String,
    pipeline_id: i64,
) -> Arc<dyn RecordManager> {
    let url = url();
    setup_once(&url).await;
    let pool = MySqlPoolOptions::new()
        .max_connections(10)
        .connect_lazy(&url)
        .expect("pool");
    let db = MySqlDatabase::from_pool(pool)
        .with_table_prefix(prefix())
        .expect("prefix");
    Arc::new(db.record_manager(kind, &application_name, pipeline_id))
}

conformance_suite!(mysql, make, harness = server_support::probe::MYSQL);
