//! The MySQL/MariaDB schema: DDL, creation, layout check, removal.

use super::{map_err, MySqlDatabase};
use crate::error::{Error, Result};
use crate::record::Table;

impl MySqlDatabase {
    /// The statements that create every table (each idempotent), in order.
    pub fn ddl(&self) -> Vec<String> {
        self.ddl_of(&Table::ALL)
    }

    /// The statements that create the chosen tables (see [`Table`]; the event table comes
    /// with `notification_counters`), in the order of [`ddl`](Self::ddl).
    pub fn ddl_of(&self, tables: &[Table]) -> Vec<String> {
        let t = |n: &str| self.table_name(n);
        let opts = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
        let owners = [
            Table::Events,
            Table::Events,
            Table::Tracking,
            Table::Snapshots,
            Table::TimestampSequenced,
        ];
        let all = [
            format!(
                "CREATE TABLE IF NOT EXISTS {} (
    application_name    VARCHAR(255) NOT NULL,
    originator_id       BINARY(16)   NOT NULL,
    originator_version  BIGINT       NOT NULL,
    pipeline_id         BIGINT       NOT NULL,
    notification_id     BIGINT       NOT NULL,
    topic               TEXT         NOT NULL,
    state               LONGBLOB     NOT NULL,
    causal_dependencies TEXT         NULL,
    PRIMARY KEY (application_name, originator_id, originator_version),
    UNIQUE KEY notification_idx (application_name, pipeline_id, notification_id)
) {opts}",
                t("stored_events")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (
    application_name VARCHAR(255) NOT NULL,
    pipeline_id      BIGINT       NOT NULL,
    last_id          BIGINT       NOT NULL,
    PRIMARY KEY (application_name, pipeline_id)
) {opts}",
                t("notification_counters")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (
    application_name          VARCHAR(255) NOT NULL,
    upstream_application_name VARCHAR(255) NOT NULL,
    pipeline_id               BIGINT       NOT NULL,
    notification_id           BIGINT       NOT NULL,
    PRIMARY KEY (application_name, upstream_application_name, pipeline_id, notification_id)
) {opts}",
                t("notification_tracking")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (
    application_name   VARCHAR(255) NOT NULL,
    originator_id      BINARY(16)   NOT NULL,
    originator_version BIGINT       NOT NULL,
    topic              TEXT         NOT NULL,
    state              LONGBLOB     NOT NULL,
    PRIMARY KEY (application_name, originator_id, originator_version)
) {opts}",
                t("snapshots")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (
    application_name VARCHAR(255) NOT NULL,
    sequence_id      BINARY(16)   NOT NULL,
    position         BIGINT       NOT NULL,
    topic            TEXT         NOT NULL,
    state            LONGBLOB     NOT NULL,
    PRIMARY KEY (application_name, sequence_id, position),
    KEY position_idx (application_name, position)
) {opts}",
                t("timestamp_sequenced_items")
            ),
        ];
        owners
            .into_iter()
            .zip(all)
            .filter(|(owner, _)| tables.contains(owner))
            .map(|(_, sql)| sql)
            .collect()
    }

    /// Creates every table if it does not exist.
    pub async fn setup_tables(&self) -> Result<()> {
        self.setup(&Table::ALL).await
    }

    /// Creates the chosen tables if they do not exist (see [`Table`]).
    pub async fn setup(&self, tables: &[Table]) -> Result<()> {
        for stmt in self.ddl_of(tables) {
            sqlx::raw_sql(crate::record::sql::dynamic(&stmt))
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
        }
        // A table of the same name with another layout (another library's) is a configuration
        // error, reported now rather than at the first write.
        let checks = [
            (Table::Events, "stored_events", "application_name, originator_id, originator_version, pipeline_id, notification_id, topic, state, causal_dependencies"),
            (Table::Events, "notification_counters", "application_name, pipeline_id, last_id"),
            (Table::Tracking, "notification_tracking", "application_name, upstream_application_name, pipeline_id, notification_id"),
            (Table::Snapshots, "snapshots", "application_name, originator_id, originator_version, topic, state"),
            (Table::TimestampSequenced, "timestamp_sequenced_items", "application_name, sequence_id, position, topic, state"),
        ];
        let checks = checks
            .into_iter()
            .filter(|(owner, ..)| tables.contains(owner));
        for (_, table, cols) in checks {
            let t = self.table_name(table);
            let sql = format!("SELECT {cols} FROM {t} LIMIT 0");
            let probe = sqlx::query(crate::record::sql::dynamic(&sql))
                .execute(&self.pool)
                .await;
            if let Err(e) = probe {
                let undefined_column = e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| c == "42S22");
                if !undefined_column {
                    return Err(map_err(e));
                }
                return Err(Error::Configuration(format!(
                    "mysql: table {t} exists with a layout es does not use ({}): \
                     choose another table prefix",
                    map_err(e)
                )));
            }
        }
        Ok(())
    }

    /// Drops the tables. For tests.
    pub async fn drop_tables(&self) -> Result<()> {
        let names = [
            "stored_events",
            "notification_counters",
            "notification_tracking",
            "snapshots",
            "timestamp_sequenced_items",
        ];
        let list: Vec<String> = names.iter().map(|n| self.table_name(n)).collect();
        sqlx::raw_sql(crate::record::sql::dynamic(format!(
            "DROP TABLE IF EXISTS {}",
            list.join(", ")
        )))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
