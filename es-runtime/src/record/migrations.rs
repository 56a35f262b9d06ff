//! Versioned SQL migrations: the schema as files for `sqlx migrate` (or any migration tool),
//! and the schema version recorded in the database.
//!
//! `es-runtime/migrations/{postgres,mysql,sqlite}/0001_es_tables.sql` hold, for the default
//! table prefix `es_`, the backend's `ddl()` followed by [`version_sql`]: a table
//! `es_schema_version` with one row per schema version applied. A test keeps the files equal
//! to what this module generates, so they never drift from the DDL es itself runs. Apply
//! them with, for example:
//!
//! ```text
//! sqlx migrate run --source es-runtime/migrations/postgres --database-url postgres://...
//! ```
//!
//! Every statement is idempotent (`IF NOT EXISTS`), so a database whose tables es created
//! (with `setup_tables`, or [`ApplicationBuilder::create_tables`](crate::application::ApplicationBuilder::create_tables))
//! can be handed to the migrations later, and the other way round.

use crate::error::Result;

/// The version of the schema es writes (the number of the newest migration file).
pub const SCHEMA_VERSION: i64 = 1;

/// What each version changed, by version (index 0 is version 1).
pub const DESCRIPTIONS: &[&str] = &["es tables"];

/// A backend's SQL dialect, for [`version_sql`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// The directory of this dialect's files under `es-runtime/migrations`.
    pub fn directory(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite",
        }
    }
}

/// The statements that create `{table}` (the prefixed, possibly schema-qualified name of
/// `schema_version`) and record every version up to [`SCHEMA_VERSION`] in it (idempotent).
pub fn version_sql(dialect: Dialect, table: &str) -> String {
    let rows: Vec<String> = DESCRIPTIONS
        .iter()
        .enumerate()
        .map(|(i, d)| format!("({}, '{d}')", i + 1))
        .collect();
    let rows = rows.join(", ");
    match dialect {
        Dialect::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {table} (\n    version     BIGINT PRIMARY KEY,\n    description TEXT   NOT NULL\n);\nINSERT INTO {table} (version, description) VALUES {rows}\n    ON CONFLICT (version) DO NOTHING;\n"
        ),
        Dialect::MySql => format!(
            "CREATE TABLE IF NOT EXISTS {table} (\n    version     BIGINT       NOT NULL PRIMARY KEY,\n    description VARCHAR(255) NOT NULL\n) ENGINE=InnoDB;\nINSERT IGNORE INTO {table} (version, description) VALUES {rows};\n"
        ),
        Dialect::Sqlite => format!(
            "CREATE TABLE IF NOT EXISTS {table} (\n    version     INTEGER PRIMARY KEY,\n    description TEXT    NOT NULL);\nINSERT OR IGNORE INTO {table} (version, description) VALUES {rows};\n"
        ),
    }
}

/// The whole migration for SQLite with table prefix `prefix`: [`crate::record::sqlite::ddl`]
/// and the version table.
#[cfg(feature = "sqlite")]
pub fn sqlite(prefix: &str) -> Result<String> {
    let ddl = crate::record::sqlite::ddl(prefix)?;
    Ok(format!(
        "{ddl}{}",
        version_sql(Dialect::Sqlite, &format!("{prefix}schema_version"))
    ))
}

/// The whole migration for this PostgreSQL database's schema and prefix:
/// [`PostgresDatabase::ddl`](crate::record::postgres::PostgresDatabase::ddl) and the version
/// table.
#[cfg(feature = "postgres")]
pub fn postgres(db: &crate::record::postgres::PostgresDatabase) -> String {
    let table = db.table_name("schema_version");
    format!("{}{}", db.ddl(), version_sql(Dialect::Postgres, &table))
}

/// The whole migration for this MySQL database's prefix:
/// [`MySqlDatabase::ddl`](crate::record::mysql::MySqlDatabase::ddl) (statements ended by
/// `;`) and the version table.
#[cfg(feature = "mysql")]
pub fn mysql(db: &crate::record::mysql::MySqlDatabase) -> String {
    let mut sql: String = db.ddl().iter().map(|s| format!("{s};\n")).collect();
    sql.push_str(&version_sql(
        Dialect::MySql,
        &db.table_name("schema_version"),
    ));
    sql
}

/// Records the schema version in a database whose tables `setup_tables` just created (what
/// [`ApplicationBuilder::create_tables`](crate::application::ApplicationBuilder::create_tables)
/// does after it), so that it says the same as a database made by the migrations.
pub(crate) async fn record_version(records: &dyn crate::record::RecordManager) -> Result<()> {
    let Some(any) = records.as_any() else {
        return Ok(());
    };
    #[cfg(feature = "sqlite")]
    if let Some(m) = any.downcast_ref::<crate::record::sqlite::SqliteRecordManager>() {
        let db = m.database();
        let sql = version_sql(Dialect::Sqlite, &db.table_name("schema_version"));
        return db.with_connection(|c| {
            c.execute_batch(&sql)
                .map_err(|e| crate::Error::Operational(format!("sqlite: {e}")))
        });
    }
    #[cfg(feature = "postgres")]
    if let Some(m) = any.downcast_ref::<crate::record::postgres::PostgresRecordManager>() {
        let db = m.database();
        let sql = version_sql(Dialect::Postgres, &db.table_name("schema_version"));
        return run_sqlx(
            sqlx::raw_sql(super::sql::dynamic(&sql))
                .execute(db.pool())
                .await
                .map(|_| ()),
        );
    }
    #[cfg(feature = "mysql")]
    if let Some(m) = any.downcast_ref::<crate::record::mysql::MySqlRecordManager>() {
        let db = m.database();
        let sql = version_sql(Dialect::MySql, &db.table_name("schema_version"));
        for stmt in sql.split(";\n").filter(|s| !s.trim().is_empty()) {
            run_sqlx(
                sqlx::raw_sql(super::sql::dynamic(stmt))
                    .execute(db.pool())
                    .await
                    .map(|_| ()),
            )?;
        }
        return Ok(());
    }
    let _ = any;
    Ok(())
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
fn run_sqlx(r: std::result::Result<(), sqlx::Error>) -> Result<()> {
    r.map_err(|e| crate::Error::Operational(format!("recording the schema version: {e}")))
}
