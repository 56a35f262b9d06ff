CREATE TABLE IF NOT EXISTS es_stored_events (
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
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS es_notification_counters (
    application_name VARCHAR(255) NOT NULL,
    pipeline_id      BIGINT       NOT NULL,
    last_id          BIGINT       NOT NULL,
    PRIMARY KEY (application_name, pipeline_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS es_notification_tracking (
    application_name          VARCHAR(255) NOT NULL,
    upstream_application_name VARCHAR(255) NOT NULL,
    pipeline_id               BIGINT       NOT NULL,
    notification_id           BIGINT       NOT NULL,
    PRIMARY KEY (application_name, upstream_application_name, pipeline_id, notification_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS es_snapshots (
    application_name   VARCHAR(255) NOT NULL,
    originator_id      BINARY(16)   NOT NULL,
    originator_version BIGINT       NOT NULL,
    topic              TEXT         NOT NULL,
    state              LONGBLOB     NOT NULL,
    PRIMARY KEY (application_name, originator_id, originator_version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS es_timestamp_sequenced_items (
    application_name VARCHAR(255) NOT NULL,
    sequence_id      BINARY(16)   NOT NULL,
    position         BIGINT       NOT NULL,
    topic            TEXT         NOT NULL,
    state            LONGBLOB     NOT NULL,
    PRIMARY KEY (application_name, sequence_id, position),
    KEY position_idx (application_name, position)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS es_schema_version (
    version     BIGINT       NOT NULL PRIMARY KEY,
    description VARCHAR(255) NOT NULL
) ENGINE=InnoDB;
INSERT IGNORE INTO es_schema_version (version, description) VALUES (1, 'es tables');
