CREATE TABLE IF NOT EXISTS es_stored_events (
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
CREATE UNIQUE INDEX IF NOT EXISTS es_stored_events_notification_id_idx
    ON es_stored_events (application_name, pipeline_id, notification_id)
    WHERE notification_id IS NOT NULL;
DROP INDEX IF EXISTS es_stored_events_notification_idx;
CREATE INDEX IF NOT EXISTS es_stored_events_unsequenced_idx
    ON es_stored_events (application_name, pipeline_id, insert_order)
    WHERE notification_id IS NULL;
CREATE TABLE IF NOT EXISTS es_notification_tracking (
    application_name          TEXT   NOT NULL,
    upstream_application_name TEXT   NOT NULL,
    pipeline_id               BIGINT NOT NULL,
    notification_id           BIGINT NOT NULL,
    PRIMARY KEY (application_name, upstream_application_name, pipeline_id, notification_id)
);
CREATE TABLE IF NOT EXISTS es_snapshots (
    application_name   TEXT   NOT NULL,
    originator_id      UUID   NOT NULL,
    originator_version BIGINT NOT NULL,
    topic              TEXT   NOT NULL,
    state              BYTEA  NOT NULL,
    PRIMARY KEY (application_name, originator_id, originator_version)
);
CREATE TABLE IF NOT EXISTS es_timestamp_sequenced_items (
    application_name TEXT   NOT NULL,
    sequence_id      UUID   NOT NULL,
    position         BIGINT NOT NULL,
    topic            TEXT   NOT NULL,
    state            BYTEA  NOT NULL,
    PRIMARY KEY (application_name, sequence_id, position)
);
CREATE INDEX IF NOT EXISTS es_timestamp_sequenced_items_position_idx ON es_timestamp_sequenced_items (application_name, position);
CREATE OR REPLACE FUNCTION es_sequence_notifications(app TEXT, pipe BIGINT, lock_key BIGINT)
RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $es$
DECLARE
    top BIGINT;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'es: notification ids are assigned at READ COMMITTED isolation only, not %',
            current_setting('transaction_isolation') USING ERRCODE = '0A000';
    END IF;
    IF EXISTS (SELECT 1 FROM es_stored_events e
               WHERE e.application_name = app AND e.pipeline_id = pipe AND e.notification_id IS NULL) THEN
        PERFORM pg_advisory_xact_lock(lock_key);
        -- Statements below take their snapshots after the lock is held.
        SELECT COALESCE(MAX(e.notification_id), 0) INTO top FROM es_stored_events e
            WHERE e.application_name = app AND e.pipeline_id = pipe;
        -- Joined by ctid: a TID scan per row whatever the planner's statistics say (a fresh
        -- table without statistics could otherwise get a nested loop over sequential scans).
        -- Only this run updates these rows: the lock excludes other sequencers.
        UPDATE es_stored_events AS e SET notification_id = top + p.n
        FROM (SELECT q.c, row_number() OVER (ORDER BY q.insert_order) AS n
              FROM (SELECT r.ctid AS c, r.insert_order
                    FROM es_stored_events r
                    WHERE r.application_name = app AND r.pipeline_id = pipe
                      AND r.notification_id IS NULL
                    ORDER BY r.insert_order
                    LIMIT 10000) AS q) AS p
        WHERE e.ctid = p.c AND e.notification_id IS NULL;
    END IF;
    SELECT COALESCE(MAX(e.notification_id), 0) INTO top FROM es_stored_events e
        WHERE e.application_name = app AND e.pipeline_id = pipe;
    RETURN top;
END
$es$;
CREATE OR REPLACE FUNCTION es_notifications(app TEXT, pipe BIGINT, lock_key BIGINT,
                                    first_id BIGINT, last_id BIGINT, max_rows BIGINT)
RETURNS TABLE (notification_id BIGINT, originator_id UUID, originator_version BIGINT,
               topic TEXT, state BYTEA, causal_dependencies TEXT)
LANGUAGE plpgsql VOLATILE AS $es$
BEGIN
    PERFORM es_sequence_notifications(app, pipe, lock_key);
    RETURN QUERY
        SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state,
               e.causal_dependencies
        FROM es_stored_events e
        WHERE e.application_name = app AND e.pipeline_id = pipe
          AND e.notification_id BETWEEN first_id AND last_id
        ORDER BY e.notification_id
        LIMIT max_rows;
END
$es$;
CREATE TABLE IF NOT EXISTS es_schema_version (
    version     BIGINT PRIMARY KEY,
    description TEXT   NOT NULL
);
INSERT INTO es_schema_version (version, description) VALUES (1, 'es tables')
    ON CONFLICT (version) DO NOTHING;
