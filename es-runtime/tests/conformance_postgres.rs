//! The conformance suite against the PostgreSQL server named by `ES_POSTGRES_URL`.
//!
//! All cases share one schema per test process (`es_conf_<unix seconds>_<random>`); schemas
//! of this kind older than an hour, left by earlier runs, are dropped when the first case starts.

#![cfg(feature = "postgres")]

#[macro_use]
mod conformance;

use es_runtime::record::postgres::PostgresDatabase;
use es_runtime::record::{RecordKind, RecordManager};
use es_runtime::sqlx::{self, postgres::PgPoolOptions};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

fn url() -> Option<String> {
    std::env::var("ES_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

fn required() -> bool {
    std::env::var("ES_REQUIRE_SERVERS").as_deref() == Ok("1")
}

/// Why the cases are skipped, if they are; panics when servers are required but unusable.
fn skip() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    let reason = REASON.get_or_init(|| {
        let Some(url) = url() else {
            return Some("postgres: ES_POSTGRES_URL not set".into());
        };
        // A plain TCP check: enough to tell an absent server from a present one.
        let opts: sqlx::postgres::PgConnectOptions = match url.parse() {
            Ok(o) => o,
            Err(e) => return Some(format!("postgres: bad ES_POSTGRES_URL: {e}")),
        };
        let addr = format!("{}:{}", opts.get_host(), opts.get_port());
        let reachable = std::net::ToSocketAddrs::to_socket_addrs(&addr.as_str())
            .ok()
            .and_then(|mut a| a.next())
            .is_some_and(|a| {
                std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(3)).is_ok()
            });
        (!reachable).then(|| format!("postgres: cannot reach {addr}"))
    });
    if let Some(r) = reason {
        assert!(!required(), "ES_REQUIRE_SERVERS=1 but {r}");
    }
    reason.clone()
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
    let url = url().expect("skip() checked the URL");
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

conformance_suite!(postgres, make, skip = skip());
