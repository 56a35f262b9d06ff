//! The database a URL names, opened without creating anything, and the per-application counts
//! that only SQL over the events table gives.

use es_runtime::record::mysql::MySqlDatabase;
use es_runtime::record::postgres::PostgresDatabase;
use es_runtime::record::sqlite::SqliteDatabase;
use es_runtime::record::{RecordKind, RecordManager};
use es_runtime::sqlx;
use es_runtime::{Error, Result};
use std::sync::Arc;

/// One application's share of the events table.
#[derive(Debug, PartialEq, Eq)]
pub struct AppCounts {
    /// The application name.
    pub name: String,
    /// How many aggregates (distinct originator ids) have events.
    pub aggregates: i64,
    /// How many events are stored.
    pub events: i64,
    /// How many of them have a notification id.
    pub notifications: i64,
}

/// A database of one of the backends that keep data (`memory:` keeps nothing for a tool).
pub enum Store {
    Sqlite(SqliteDatabase),
    Postgres(PostgresDatabase),
    MySql(MySqlDatabase),
}

impl Store {
    /// Opens the database at `url` with tables named `<prefix>stored_events`, ...; creates
    /// nothing (a missing table is the backend's error on first use).
    pub async fn open(url: &str, prefix: &str) -> Result<Store> {
        let scheme = url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => {
                let rest = &url["sqlite:".len()..];
                let path = rest.strip_prefix("//").unwrap_or(rest);
                let path = path.split('?').next().unwrap_or_default();
                if path.is_empty() || path == ":memory:" {
                    return Err(Error::Configuration(format!(
                        "{url:?} names no database file: use sqlite://path/to/file.db"
                    )));
                }
                if !std::path::Path::new(path).exists() {
                    return Err(Error::Configuration(format!(
                        "no SQLite database at {path:?}"
                    )));
                }
                Ok(Store::Sqlite(
                    SqliteDatabase::open(path)?.with_table_prefix(prefix)?,
                ))
            }
            "postgres" | "postgresql" => Ok(Store::Postgres(
                PostgresDatabase::connect_with(url, 4)
                    .await?
                    .with_table_prefix(prefix)?,
            )),
            "mysql" | "mariadb" => {
                let url = url.replacen("mariadb://", "mysql://", 1);
                Ok(Store::MySql(
                    MySqlDatabase::connect_with(&url, 4)
                        .await?
                        .with_table_prefix(prefix)?,
                ))
            }
            _ => Err(Error::Configuration(format!(
                "unsupported database URL {:?}: use sqlite://FILE, postgres://... or mysql://...",
                es_runtime::application::config::redact(url)
            ))),
        }
    }

    /// The events record manager of one application.
    pub fn events(&self, app: &str) -> Arc<dyn RecordManager> {
        let kind = RecordKind::Events;
        match self {
            Store::Sqlite(db) => Arc::new(db.record_manager(kind, app, 0)),
            Store::Postgres(db) => Arc::new(db.record_manager(kind, app, 0)),
            Store::MySql(db) => Arc::new(db.record_manager(kind, app, 0)),
        }
    }

    /// Counts per application, by name.
    pub async fn counts(&self) -> Result<Vec<AppCounts>> {
        let sql = |table: String| {
            format!(
                "SELECT application_name, COUNT(DISTINCT originator_id), COUNT(*), \
                 COUNT(notification_id) FROM {table} GROUP BY application_name \
                 ORDER BY application_name"
            )
        };
        let rows: Vec<(String, i64, i64, i64)> = match self {
            Store::Sqlite(db) => {
                let sql = sql(db.table_name("stored_events"));
                db.with_connection(|c| {
                    let mut st = c.prepare(&sql).map_err(sqlite_err)?;
                    let rows = st
                        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .map_err(sqlite_err)?;
                    rows.collect::<std::result::Result<_, _>>()
                        .map_err(sqlite_err)
                })?
            }
            // The statement is built from the table name, a checked identifier.
            Store::Postgres(db) => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql(db.table_name("stored_events"))))
                    .fetch_all(db.pool())
                    .await
                    .map_err(sql_err)?
            }
            Store::MySql(db) => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql(db.table_name("stored_events"))))
                    .fetch_all(db.pool())
                    .await
                    .map_err(sql_err)?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(name, aggregates, events, notifications)| AppCounts {
                name,
                aggregates,
                events,
                notifications,
            })
            .collect())
    }
}

fn sqlite_err(e: rusqlite::Error) -> Error {
    Error::Operational(format!("SQLite: {e}"))
}

fn sql_err(e: sqlx::Error) -> Error {
    Error::Operational(format!("SQL: {e}"))
}
