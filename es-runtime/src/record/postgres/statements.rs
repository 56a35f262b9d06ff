//! The SQL statements of a PostgreSQL record manager.

use super::Names;
use crate::record::RecordKind;

#[derive(Debug)]
pub(super) struct Statements {
    pub(super) insert: String,
    pub(super) insert_items: String,
    pub(super) get_item: String,
    pub(super) get_items_asc: String,
    pub(super) get_items_desc: String,
    pub(super) list: String,
    pub(super) delete: String,
    pub(super) notifications: String,
    pub(super) notifications_fast: String,
    pub(super) max_fast: String,
    pub(super) max_notification: String,
    pub(super) max_tracking: String,
    pub(super) has_tracking: String,
    pub(super) in_order: String,
}

impl Statements {
    pub(super) fn new(n: &Names, kind: RecordKind) -> Self {
        let tracking = n.table("notification_tracking");
        let (table, seq, pos) = match kind {
            RecordKind::Events => (
                n.table("stored_events"),
                "originator_id",
                "originator_version",
            ),
            RecordKind::Snapshots => (n.table("snapshots"), "originator_id", "originator_version"),
            RecordKind::TimestampSequenced => (
                n.table("timestamp_sequenced_items"),
                "sequence_id",
                "position",
            ),
        };
        let track = format!(
            "tr AS (INSERT INTO {tracking} (application_name, upstream_application_name, pipeline_id, notification_id) \
             SELECT $1, $7, $2, $8 WHERE $7::TEXT IS NOT NULL)"
        );
        // $1 app, $2 pipeline, $3 ids, $4 positions, $5 topics, $6 states, $7 upstream,
        // $8 tracked id, $9 causal dependencies (events only).
        let insert = match kind {
            RecordKind::Events => format!(
                "WITH ev AS (INSERT INTO {table} (application_name, pipeline_id, originator_id, originator_version, \
                 topic, state, causal_dependencies) \
                 SELECT $1, $2, i.id, i.pos, i.topic, i.state, CASE WHEN i.n = 1 THEN $9::TEXT END \
                 FROM UNNEST($3::UUID[], $4::BIGINT[], $5::TEXT[], $6::BYTEA[]) WITH ORDINALITY AS i(id, pos, topic, state, n) \
                 ORDER BY i.n), {track} SELECT 1"
            ),
            _ => format!(
                "WITH ev AS (INSERT INTO {table} (application_name, {seq}, {pos}, topic, state) \
                 SELECT $1, i.id, i.pos, i.topic, i.state \
                 FROM UNNEST($3::UUID[], $4::BIGINT[], $5::TEXT[], $6::BYTEA[]) AS i(id, pos, topic, state)), \
                 {track} SELECT $9::TEXT IS NULL"
            ),
        };
        // Items only (no tracking record, no causal dependencies): $1 app, then for events
        // $2 pipeline, then the arrays of ids, positions, topics and states. Rows are inserted
        // in the order of the arrays (the identity column of events follows it).
        let insert_items = match kind {
            RecordKind::Events => format!(
                "INSERT INTO {table} (application_name, pipeline_id, originator_id, originator_version, \
                 topic, state) \
                 SELECT $1, $2, i.id, i.pos, i.topic, i.state \
                 FROM UNNEST($3::UUID[], $4::BIGINT[], $5::TEXT[], $6::BYTEA[]) WITH ORDINALITY AS i(id, pos, topic, state, n) \
                 ORDER BY i.n"
            ),
            _ => format!(
                "INSERT INTO {table} (application_name, {seq}, {pos}, topic, state) \
                 SELECT $1, i.id, i.pos, i.topic, i.state \
                 FROM UNNEST($2::UUID[], $3::BIGINT[], $4::TEXT[], $5::BYTEA[]) AS i(id, pos, topic, state)"
            ),
        };
        let range = format!(
            "SELECT {pos}, topic, state FROM {table} WHERE application_name = $1 AND {seq} = $2 \
             AND {pos} BETWEEN $3 AND $4 ORDER BY {pos}"
        );
        Statements {
            insert,
            insert_items,
            get_item: format!(
                "SELECT topic, state FROM {table} WHERE application_name = $1 AND {seq} = $2 AND {pos} = $3"
            ),
            get_items_asc: format!("{range} ASC LIMIT $5"),
            get_items_desc: format!("{range} DESC LIMIT $5"),
            list: format!("SELECT DISTINCT {seq} FROM {table} WHERE application_name = $1"),
            delete: format!("DELETE FROM {table} WHERE application_name = $1 AND {seq} = $2 AND {pos} = $3"),
            notifications: format!(
                "SELECT notification_id, originator_id, originator_version, topic, state, causal_dependencies \
                 FROM {}($1, $2, $3, $4, $5, $6)",
                n.table("notifications")
            ),
            // The common case in one plain statement: the page as numbered now, and whether any
            // committed row still waits for an id (then the sequencer runs, see below).
            notifications_fast: format!(
                "SELECT p.pending, e.notification_id, e.originator_id, e.originator_version, e.topic, \
                 e.state, e.causal_dependencies \
                 FROM (SELECT EXISTS (SELECT 1 FROM {events} q WHERE q.application_name = $1 \
                       AND q.pipeline_id = $2 AND q.notification_id IS NULL) AS pending) p \
                 LEFT JOIN LATERAL (SELECT r.notification_id, r.originator_id, r.originator_version, \
                       r.topic, r.state, r.causal_dependencies FROM {events} r \
                       WHERE r.application_name = $1 AND r.pipeline_id = $2 \
                       AND r.notification_id BETWEEN $3 AND $4 \
                       ORDER BY r.notification_id LIMIT $5) e ON TRUE",
                events = n.table("stored_events")
            ),
            max_fast: format!(
                "SELECT (SELECT COALESCE(MAX(e.notification_id), 0) FROM {events} e \
                 WHERE e.application_name = $1 AND e.pipeline_id = $2), \
                 EXISTS (SELECT 1 FROM {events} q WHERE q.application_name = $1 \
                 AND q.pipeline_id = $2 AND q.notification_id IS NULL)",
                events = n.table("stored_events")
            ),
            max_notification: format!("SELECT {}($1, $2, $3)", n.table("sequence_notifications")),
            max_tracking: format!(
                "SELECT COALESCE(MAX(notification_id), 0) FROM {tracking} \
                 WHERE application_name = $1 AND upstream_application_name = $2 AND pipeline_id = $3"
            ),
            has_tracking: format!(
                "SELECT EXISTS (SELECT 1 FROM {tracking} WHERE application_name = $1 \
                 AND upstream_application_name = $2 AND pipeline_id = $3 AND notification_id = $4)"
            ),
            in_order: format!(
                "SELECT {seq}, {pos}, topic, state FROM {table} WHERE application_name = $1 \
                 AND {pos} BETWEEN $2 AND $3 ORDER BY {pos}, {seq} LIMIT $4"
            ),
        }
    }
}
