//! Shared by the workspace's end-to-end tests: every backend this build and machine offer.
//!
//! Memory always; SQLite with the `sqlite` feature; PostgreSQL and MySQL with their features
//! and a server at `ES_POSTGRES_URL` / `ES_MYSQL_URL` (or the conventional local address). One
//! line per test binary says whether each server backend ran or was skipped; with
//! `ES_REQUIRE_SERVERS=1` (as CI sets) an unreachable server fails the test instead.

#![allow(dead_code)]

use es_runtime::application::{Application, ApplicationBuilder, Database};
use std::sync::Arc;

/// A unique application name, so tests can share databases and run in parallel.
pub fn unique(tag: &str) -> String {
    format!("{tag}_{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

#[path = "../../es-runtime/tests/server_support/probe.rs"]
pub mod probe;

/// The runner of suites with server cases (`harness = false` in the root `Cargo.toml`): a case
/// whose server does not answer is reported as ignored, not passed. Its `case!` macro names
/// `crate::server_support`: such a suite says `use support as server_support;`.
#[path = "../../es-runtime/tests/server_support/harness.rs"]
pub mod harness;

/// The URL in `var` (or the conventional local address) if a server answers there, else
/// `None`; the first call per backend prints whether it runs (a failure when servers are
/// required and none answers).
pub fn server_url(var: &str, _backend: &str) -> Option<String> {
    probe::probe(probe::by_var(var)).ok()
}

/// Every backend to run on, by name.
pub async fn databases() -> Vec<(&'static str, Arc<dyn Database>)> {
    let mut v: Vec<(&'static str, Arc<dyn Database>)> = vec![(
        "memory",
        Arc::new(es_runtime::record::memory::InMemoryDatabase::new()),
    )];
    #[cfg(feature = "sqlite")]
    {
        // Every table made up front, as on the servers below (a database from `connect`
        // would create only those of the features a test configures).
        let db = es_runtime::record::sqlite::SqliteDatabase::memory()
            .and_then(|d| d.with_table_prefix(es_runtime::application::config::TABLE_PREFIX))
            .expect("sqlite in memory");
        db.setup_tables().expect("sqlite tables");
        v.push(("sqlite", Arc::new(db)));
    }
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
