//! Shared by the workspace's end-to-end tests: every backend this build and machine offer.
//!
//! Memory always; SQLite with the `sqlite` feature; PostgreSQL and MySQL with their features
//! and `ES_POSTGRES_URL` / `ES_MYSQL_URL` set. A backend whose variable is unset is skipped with a
//! message; with `ES_REQUIRE_SERVERS=1` (as CI sets) an unset variable or an unreachable server
//! fails the test instead.

#![allow(dead_code)]

use es_runtime::application::{Application, ApplicationBuilder, Database};
use std::sync::Arc;

/// A unique application name, so tests can share databases and run in parallel.
pub fn unique(tag: &str) -> String {
    format!("{tag}_{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

fn require_servers() -> bool {
    std::env::var("ES_REQUIRE_SERVERS").as_deref() == Ok("1")
}

/// The URL in `var`, or `None` after saying the backend is skipped (a failure when servers are
/// required).
pub fn server_url(var: &str, backend: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                !require_servers(),
                "{var} is not set but ES_REQUIRE_SERVERS=1"
            );
            {
                use std::io::Write as _;
                // Straight to stderr: cargo test shows it even when the test passes.
                let _ = writeln!(std::io::stderr(), "skipped {backend}: {var} not set");
            }
            None
        }
    }
}

/// Every backend to run on, by name.
pub async fn databases() -> Vec<(&'static str, Arc<dyn Database>)> {
    let mut v: Vec<(&'static str, Arc<dyn Database>)> = vec![(
        "memory",
        Arc::new(es_runtime::record::memory::InMemoryDatabase::new()),
    )];
    #[cfg(feature = "sqlite")]
    v.push((
        "sqlite",
        es_runtime::application::connect("sqlite::memory:")
            .await
            .expect("sqlite in memory"),
    ));
    #[cfg(not(feature = "sqlite"))]
    {
        use std::io::Write as _;
        // Straight to stderr: cargo test shows it even when the test passes.
        let _ = writeln!(
            std::io::stderr(),
            "skipped sqlite: built without the sqlite feature"
        );
    }
    #[cfg(feature = "postgres")]
    if let Some(url) = server_url("ES_POSTGRES_URL", "postgres") {
        let db = es_runtime::record::postgres::PostgresDatabase::connect_with(&url, 3)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at ES_POSTGRES_URL cannot be reached: {e}"))
            .with_table_prefix(es_runtime::application::config::TABLE_PREFIX)
            .expect("prefix");
        db.setup_tables().await.expect("postgres tables");
        v.push(("postgres", Arc::new(db)));
    }
    #[cfg(not(feature = "postgres"))]
    {
        use std::io::Write as _;
        // Straight to stderr: cargo test shows it even when the test passes.
        let _ = writeln!(
            std::io::stderr(),
            "skipped postgres: built without the postgres feature"
        );
    }
    #[cfg(feature = "mysql")]
    if let Some(url) = server_url("ES_MYSQL_URL", "mysql") {
        let db = es_runtime::record::mysql::MySqlDatabase::connect_with(&url, 3)
            .await
            .unwrap_or_else(|e| panic!("MySQL at ES_MYSQL_URL cannot be reached: {e}"))
            .with_table_prefix(es_runtime::application::config::TABLE_PREFIX)
            .expect("prefix");
        db.setup_tables().await.expect("mysql tables");
        v.push(("mysql", Arc::new(db)));
    }
    #[cfg(not(feature = "mysql"))]
    {
        use std::io::Write as _;
        // Straight to stderr: cargo test shows it even when the test passes.
        let _ = writeln!(
            std::io::stderr(),
            "skipped mysql: built without the mysql feature"
        );
    }
    v
}

/// A builder for a fresh application on `db`.
pub fn app_on(db: &Arc<dyn Database>, tag: &str) -> ApplicationBuilder {
    Application::builder(unique(tag)).database(db.clone())
}
