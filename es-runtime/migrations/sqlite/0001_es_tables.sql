CREATE TABLE IF NOT EXISTS es_stored_events (
    application_name    TEXT    NOT NULL,
    originator_id       BLOB    NOT NULL,
    originator_version  INTEGER NOT NULL,
    pipeline_id         INTEGER NOT NULL,
    notification_id     INTEGER NOT NULL,
    topic               TEXT    NOT NULL,
    state               BLOB    NOT NULL,
    causal_dependencies TEXT,
    PRIMARY KEY (application_name, originator_id, originator_version));
CREATE UNIQUE INDEX IF NOT EXISTS es_stored_events_notification_idx
    ON es_stored_events (application_name, pipeline_id, notification_id);
CREATE TABLE IF NOT EXISTS es_notification_tracking (
    application_name          TEXT    NOT NULL,
    upstream_application_name TEXT    NOT NULL,
    pipeline_id               INTEGER NOT NULL,
    notification_id           INTEGER NOT NULL,
    PRIMARY KEY (application_name, upstream_application_name, pipeline_id, notification_id));
CREATE TABLE IF NOT EXISTS es_snapshots (
    application_name    TEXT    NOT NULL,
    originator_id       BLOB    NOT NULL,
    originator_version  INTEGER NOT NULL,
    topic               TEXT    NOT NULL,
    state               BLOB    NOT NULL,
    PRIMARY KEY (application_name, originator_id, originator_version));
CREATE TABLE IF NOT EXISTS es_timestamp_sequenced_items (
    application_name    TEXT    NOT NULL,
    sequence_id         BLOB    NOT NULL,
    position            INTEGER NOT NULL,
    topic               TEXT    NOT NULL,
    state               BLOB    NOT NULL,
    PRIMARY KEY (application_name, sequence_id, position));
CREATE INDEX IF NOT EXISTS es_timestamp_sequenced_items_position_idx
    ON es_timestamp_sequenced_items (application_name, position);
CREATE TABLE IF NOT EXISTS es_schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT    NOT NULL);
INSERT OR IGNORE INTO es_schema_version (version, description) VALUES (1, 'es tables');
