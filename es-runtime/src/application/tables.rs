//! Table creation (the tables of the features in use, and the schema version recorded as the
//! migrations record it): [`ApplicationBuilder::create_tables`](super::ApplicationBuilder::create_tables).

use crate::error::{Error, Result};
use crate::record::{RecordManager, Table};

/// Creates `tables` in the database `records` writes to, if they are missing (in memory, or
/// for a record manager of a table of yours, there is nothing to create).
pub(crate) async fn create(records: &dyn RecordManager, tables: &[Table]) -> Result<()> {
    if setup(records, tables).await? {
        crate::record::migrations::record_version(records).await?;
    }
    Ok(())
}

/// True when the backend created the tables.
async fn setup(records: &dyn RecordManager, tables: &[Table]) -> Result<bool> {
    let Some(any) = records.as_any() else {
        return Ok(false);
    };
    #[cfg(feature = "sqlite")]
    if let Some(m) = any.downcast_ref::<crate::record::sqlite::SqliteRecordManager>() {
        return m.database().setup(tables).map(|()| true);
    }
    #[cfg(feature = "postgres")]
    if let Some(m) = any.downcast_ref::<crate::record::postgres::PostgresRecordManager>() {
        return m.database().setup(tables).await.map(|()| true);
    }
    #[cfg(feature = "mysql")]
    if let Some(m) = any.downcast_ref::<crate::record::mysql::MySqlRecordManager>() {
        return m.database().setup(tables).await.map(|()| true);
    }
    let _ = (any, tables);
    Ok(false)
}

/// Creates the tracking table of `records` (when `create`), then checks with one cheap read
/// that it can be used: what process applications and projections need besides the events.
pub(crate) async fn tracking(records: &dyn RecordManager, create: bool, who: &str) -> Result<()> {
    if create {
        self::create(records, &[Table::Tracking]).await?;
    }
    records
        .max_tracking_id("")
        .await
        .map(|_| ())
        .map_err(|e| missing(who, e))
}

/// Checks with one cheap read (one sequence, one item) that the table of `records` can be
/// used: for tables without notification ids (snapshots, parked notifications).
pub(crate) async fn check_items(records: &dyn RecordManager, who: &str) -> Result<()> {
    let one = crate::record::ItemQuery {
        limit: Some(1),
        ..Default::default()
    };
    records
        .get_items(uuid::Uuid::nil(), &one)
        .await
        .map(|_| ())
        .map_err(|e| missing(who, e))
}

/// A missing table found while building `application`: says how to create it.
pub(crate) fn missing(application: &str, e: Error) -> Error {
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
