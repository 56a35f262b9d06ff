//! The PostgreSQL schema: DDL, creation, layout check, removal.

use super::sequencer::SEQUENCER_BATCH;
use super::{map_err, PostgresDatabase};
use crate::error::{Error, Result};
use crate::record::sql::stable_hash;
use crate::record::Table;

impl PostgresDatabase {
    /// The SQL that creates the schema (if one is configured), every table, their indexes and
    /// the two functions of the notification sequencer. Every statement is idempotent.
    pub fn ddl(&self) -> String {
        self.ddl_of(&Table::ALL)
    }

    /// The SQL of the chosen tables only (see [`Table`]; the event table comes with the
    /// sequencer's functions), as [`ddl`](Self::ddl).
    pub fn ddl_of(&self, tables: &[Table]) -> String {
        let n = &self.names;
        let events = n.table("stored_events");
        let tracking = n.table("notification_tracking");
        let snapshots = n.table("snapshots");
        let timed = n.table("timestamp_sequenced_items");
        let timed_idx = n.index("timestamp_sequenced_items_position_idx");
        let mut others = String::new();
        if tables.contains(&Table::Tracking) {
            others.push_str(&format!(
                r#"CREATE TABLE IF NOT EXISTS {tracking} (
    application_name          TEXT   NOT NULL,
    upstream_application_name TEXT   NOT NULL,
    pipeline_id               BIGINT NOT NULL,
    notification_id           BIGINT NOT NULL,
    PRIMARY KEY (application_name, upstream_application_name, pipeline_id, notification_id)
);
"#
            ));
        }
        if tables.contains(&Table::Snapshots) {
            others.push_str(&format!(
                r#"CREATE TABLE IF NOT EXISTS {snapshots} (
    application_name   TEXT   NOT NULL,
    originator_id      UUID   NOT NULL,
    originator_version BIGINT NOT NULL,
    topic              TEXT   NOT NULL,
    state              BYTEA  NOT NULL,
    PRIMARY KEY (application_name, originator_id, originator_version)
);
"#
            ));
        }
        if tables.contains(&Table::TimestampSequenced) {
            others.push_str(&format!(
                r#"CREATE TABLE IF NOT EXISTS {timed} (
    application_name TEXT   NOT NULL,
    sequence_id      UUID   NOT NULL,
    position         BIGINT NOT NULL,
    topic            TEXT   NOT NULL,
    state            BYTEA  NOT NULL,
    PRIMARY KEY (application_name, sequence_id, position)
);
CREATE INDEX IF NOT EXISTS {timed_idx} ON {timed} (application_name, position);
"#
            ));
        }
        let sequencer = n.table("sequence_notifications");
        let reader = n.table("notifications");
        let schema = n
            .schema
            .as_ref()
            .map(|s| format!("CREATE SCHEMA IF NOT EXISTS {s};\n"))
            .unwrap_or_default();
        if !tables.contains(&Table::Events) {
            return format!("{schema}{others}");
        }
        let (notif_idx, pending_idx) = (
            n.index("stored_events_notification_id_idx"),
            n.index("stored_events_unsequenced_idx"),
        );
        // Earlier versions of this schema had a notification index that also held the rows
        // still waiting for an id (under NULL): replaced by the partial index above, which
        // inserts do not touch.
        let old_notif_idx = match &n.schema {
            Some(s) => format!("{s}.{}", n.index("stored_events_notification_idx")),
            None => n.index("stored_events_notification_idx"),
        };
        format!(
            r#"{schema}CREATE TABLE IF NOT EXISTS {events} (
    application_name    TEXT    NOT NULL,
    originator_id       UUID    NOT NULL,
    originator_version  BIGINT  NOT NULL,
    pipeline_id         BIGINT  NOT NULL,
    notification_id     BIGINT,
    insert_order        BIGINT  GENERATED ALWAYS AS IDENTITY,
    topic               TEXT    NOT NULL,
    state               BYTEA   NOT NULL,
    causal_dependencies TEXT,
    PRIMARY KEY (application_name, originator_id, originator_version)
);
CREATE UNIQUE INDEX IF NOT EXISTS {notif_idx}
    ON {events} (application_name, pipeline_id, notification_id)
    WHERE notification_id IS NOT NULL;
DROP INDEX IF EXISTS {old_notif_idx};
CREATE INDEX IF NOT EXISTS {pending_idx}
    ON {events} (application_name, pipeline_id, insert_order)
    WHERE notification_id IS NULL;
{others}CREATE OR REPLACE FUNCTION {sequencer}(app TEXT, pipe BIGINT, lock_key BIGINT)
RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $es$
DECLARE
    top BIGINT;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'es: notification ids are assigned at READ COMMITTED isolation only, not %',
            current_setting('transaction_isolation') USING ERRCODE = '0A000';
    END IF;
    IF EXISTS (SELECT 1 FROM {events} e
               WHERE e.application_name = app AND e.pipeline_id = pipe AND e.notification_id IS NULL) THEN
        PERFORM pg_advisory_xact_lock(lock_key);
        -- Statements below take their snapshots after the lock is held.
        SELECT COALESCE(MAX(e.notification_id), 0) INTO top FROM {events} e
            WHERE e.application_name = app AND e.pipeline_id = pipe;
        -- Joined by ctid: a TID scan per row whatever the planner's statistics say (a fresh
        -- table without statistics could otherwise get a nested loop over sequential scans).
        -- Only this run updates these rows: the lock excludes other sequencers.
        UPDATE {events} AS e SET notification_id = top + p.n
        FROM (SELECT q.c, row_number() OVER (ORDER BY q.insert_order) AS n
              FROM (SELECT r.ctid AS c, r.insert_order
                    FROM {events} r
                    WHERE r.application_name = app AND r.pipeline_id = pipe
                      AND r.notification_id IS NULL
                    ORDER BY r.insert_order
                    LIMIT {SEQUENCER_BATCH}) AS q) AS p
        WHERE e.ctid = p.c AND e.notification_id IS NULL;
    END IF;
    SELECT COALESCE(MAX(e.notification_id), 0) INTO top FROM {events} e
        WHERE e.application_name = app AND e.pipeline_id = pipe;
    RETURN top;
END
$es$;
CREATE OR REPLACE FUNCTION {reader}(app TEXT, pipe BIGINT, lock_key BIGINT,
                                    first_id BIGINT, last_id BIGINT, max_rows BIGINT)
RETURNS TABLE (notification_id BIGINT, originator_id UUID, originator_version BIGINT,
               topic TEXT, state BYTEA, causal_dependencies TEXT)
LANGUAGE plpgsql VOLATILE AS $es$
BEGIN
    PERFORM {sequencer}(app, pipe, lock_key);
    RETURN QUERY
        SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state,
               e.causal_dependencies
        FROM {events} e
        WHERE e.application_name = app AND e.pipeline_id = pipe
          AND e.notification_id BETWEEN first_id AND last_id
        ORDER BY e.notification_id
        LIMIT max_rows;
END
$es$;
"#
        )
    }

    /// Creates the schema, every table, the indexes and functions if they do not exist
    /// (serialised by an advisory lock, so concurrent callers do not race on the catalog).
    pub async fn setup_tables(&self) -> Result<()> {
        self.setup(&Table::ALL).await
    }

    /// Creates the chosen tables (see [`Table`]) as [`setup_tables`](Self::setup_tables)
    /// creates them all.
    pub async fn setup(&self, tables: &[Table]) -> Result<()> {
        let key = stable_hash(&[
            b"es setup",
            self.names.schema.as_deref().unwrap_or("").as_bytes(),
            self.names.prefix.as_bytes(),
        ]);
        // Executor methods return boxed `Send` futures: callers may spawn this one.
        use sqlx::Executor as _;
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let locked = (&mut *tx)
            .execute(sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key))
            .await;
        locked.map_err(map_err)?;
        let ddl = self.ddl_of(tables);
        let created = (&mut *tx)
            .execute(sqlx::raw_sql(crate::record::sql::dynamic(&ddl)))
            .await;
        if let Err(e) = created {
            drop(tx);
            // A foreign table of the same name makes the DDL fail: name it if that is why.
            self.check_layout(tables).await?;
            return Err(map_err(e));
        }
        tx.commit().await.map_err(map_err)?;
        self.check_layout(tables).await
    }

    /// Fails with [`Error::Configuration`] when a table of the same name exists with another
    /// layout (for instance another library's `stored_events`).
    async fn check_layout(&self, tables: &[Table]) -> Result<()> {
        let checks = [
            (Table::Events, "application_name, originator_id, originator_version, pipeline_id, notification_id, insert_order, topic, state, causal_dependencies"),
            (Table::Tracking, "application_name, upstream_application_name, pipeline_id, notification_id"),
            (Table::Snapshots, "application_name, originator_id, originator_version, topic, state"),
            (Table::TimestampSequenced, "application_name, sequence_id, position, topic, state"),
        ];
        for (table, cols) in checks.into_iter().filter(|(t, _)| tables.contains(t)) {
            let t = self.names.table(table.name());
            let sql = format!("SELECT {cols} FROM {t} LIMIT 0");
            let probe =
                sqlx::Executor::execute(&self.pool, sqlx::query(crate::record::sql::dynamic(&sql)))
                    .await;
            if let Err(e) = probe {
                let undefined_column = e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| c == "42703");
                if !undefined_column {
                    return Err(map_err(e));
                }
                return Err(Error::Configuration(format!(
                    "postgres: table {t} exists with a layout es does not use ({}): \
                     choose another table prefix or schema",
                    map_err(e)
                )));
            }
        }
        Ok(())
    }

    /// Drops the tables and functions (and the schema, if one is configured). For tests.
    pub async fn drop_tables(&self) -> Result<()> {
        let n = &self.names;
        let sql = match &n.schema {
            Some(s) => format!("DROP SCHEMA IF EXISTS {s} CASCADE"),
            None => format!(
                "DROP TABLE IF EXISTS {}, {}, {}, {} CASCADE; \
                 DROP FUNCTION IF EXISTS {}(TEXT, BIGINT, BIGINT, BIGINT, BIGINT, BIGINT); \
                 DROP FUNCTION IF EXISTS {}(TEXT, BIGINT, BIGINT);",
                n.table("stored_events"),
                n.table("notification_tracking"),
                n.table("snapshots"),
                n.table("timestamp_sequenced_items"),
                n.table("notifications"),
                n.table("sequence_notifications"),
            ),
        };
        sqlx::raw_sql(crate::record::sql::dynamic(&sql))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
