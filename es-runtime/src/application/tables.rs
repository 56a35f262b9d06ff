//! Table creation at build time (the backend's tables, and the schema version recorded as
//! the migrations record it): [`ApplicationBuilder::create_tables`](super::ApplicationBuilder::create_tables).

use crate::error::{Error, Result};
use crate::record::RecordManager;

/// Creates the tables of the database `records` writes to, if they are missing (in memory
/// there is nothing to create).
pub(super) async fn create(records: &dyn RecordManager) -> Result<()> {
    setup(records).await?;
    crate::record::migrations::record_version(records).await
}

async fn setup(records: &dyn RecordManager) -> Result<()> {
    let Some(any) = records.as_any() else {
        return Ok(());
    };
    #[cfg(feature = "sqlite")]
    if let Some(m) = any.downcast_ref::<crate::record::sqlite::SqliteRecordManager>() {
        return m.database().setup_tables();
    }
    #[cfg(feature = "postgres")]
    if let Some(m) = any.downcast_ref::<crate::record::postgres::PostgresRecordManager>() {
        return m.database().setup_tables().await;
    }
    #[cfg(feature = "mysql")]
    if let Some(m) = any.downcast_ref::<crate::record::mysql::MySqlRecordManager>() {
        return m.database().setup_tables().await;
    }
    let _ = any;
    Ok(())
}

/// A missing table found while building `application`: says how to create it.
pub(super) fn missing(application: &str, e: Error) -> Error {
    match e {
        Error::Configuration(m) if m.contains("exist") || m.contains("no such table") => {
            Error::Configuration(format!(
                "application {application}: {m} (or call .create_tables(true) on the builder, \
                 or run the migrations in es-runtime/migrations)"
            ))
        }
        other => other,
    }
}
