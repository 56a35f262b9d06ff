//! Bad configuration gives clear errors at construction time.

mod support;
// The name `case!` expects (see `support::harness`).
use support as server_support;

use es_runtime::application::{connect, Config};
use es_runtime::Error;

async fn unsupported_scheme_names_the_url() {
    let Err(e) = connect("oracle://db/x").await else {
        panic!("an unsupported scheme must fail")
    };
    assert!(
        matches!(&e, Error::Configuration(m) if m.contains("oracle://db/x")),
        "{e}"
    );
}

async fn malformed_cipher_key_fails_before_connecting() {
    let e = Config::from_vars(|k| (k == "CIPHER_KEY").then(|| "not-a-key".to_string()))
        .expect_err("must fail");
    assert!(
        matches!(&e, Error::Configuration(m) if m.contains("CIPHER_KEY")),
        "{e}"
    );
}

#[cfg(feature = "postgres")]
async fn unreachable_postgres_is_operational_naming_the_address() {
    let started = std::time::Instant::now();
    let Err(e) = connect("postgres://postgres@127.0.0.1:1/test").await else {
        panic!("connecting to a closed port must fail")
    };
    assert!(
        matches!(&e, Error::Operational(m) if m.contains("127.0.0.1:1")),
        "{e}"
    );
    assert!(started.elapsed().as_secs() < 30);
}

/// The error building an application on `db` gives (it must fail).
#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn build_error(db: std::sync::Arc<dyn es_runtime::application::Database>) -> Error {
    es_runtime::application::Application::builder("x")
        .database(db)
        .build()
        .await
        .expect_err("building on a database without tables must fail")
}

#[cfg(feature = "postgres")]
async fn missing_postgres_tables_are_reported_when_the_application_is_built() {
    let url =
        support::server_url("ES_POSTGRES_URL", "postgres").expect("the harness found the server");
    let db = es_runtime::record::postgres::PostgresDatabase::connect_with(&url, 1)
        .await
        .unwrap()
        .with_table_prefix(&support::unique("missing"))
        .unwrap();
    let e = build_error(std::sync::Arc::new(db)).await;
    assert!(
        matches!(&e, Error::Configuration(m) if m.contains("setup_tables")),
        "{e}"
    );
}

#[cfg(feature = "mysql")]
async fn missing_mysql_tables_are_reported_when_the_application_is_built() {
    let url = support::server_url("ES_MYSQL_URL", "mysql").expect("the harness found the server");
    let db = es_runtime::record::mysql::MySqlDatabase::connect_with(&url, 1)
        .await
        .unwrap()
        .with_table_prefix(&support::unique("missing"))
        .unwrap();
    let e = build_error(std::sync::Arc::new(db)).await;
    assert!(
        matches!(&e, Error::Configuration(m) if m.contains("stored_events")),
        "{e}"
    );
}

/// Runs every case; those whose server does not answer are reported as ignored (see
/// `server_support::harness`).
fn main() -> std::process::ExitCode {
    support::harness::run_cases(&[
        case!(local unsupported_scheme_names_the_url),
        case!(local malformed_cipher_key_fails_before_connecting),
        #[cfg(feature = "postgres")]
        case!(local unreachable_postgres_is_operational_naming_the_address),
        #[cfg(feature = "postgres")]
        case!(POSTGRES missing_postgres_tables_are_reported_when_the_application_is_built),
        #[cfg(feature = "mysql")]
        case!(MYSQL missing_mysql_tables_are_reported_when_the_application_is_built),
    ])
}
