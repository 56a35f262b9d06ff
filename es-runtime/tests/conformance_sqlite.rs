//! The conformance suite against SQLite: a file in WAL mode, and in memory.

#![cfg(feature = "sqlite")]

#[macro_use]
mod conformance;

use es_runtime::record::sqlite::SqliteDatabase;
use es_runtime::record::{RecordKind, RecordManager};
use std::sync::{Arc, OnceLock};

/// One database file for the whole test binary (a new directory under `target/tmp` per run).
fn file_database() -> &'static SqliteDatabase {
    static DB: OnceLock<SqliteDatabase> = OnceLock::new();
    DB.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("es-conformance-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let db = SqliteDatabase::open(dir.join("es.db")).expect("open sqlite file");
        db.setup_tables().expect("create tables");
        db
    })
}

/// One in-memory database for the whole test binary, with a table prefix.
fn memory_database() -> &'static SqliteDatabase {
    static DB: OnceLock<SqliteDatabase> = OnceLock::new();
    DB.get_or_init(|| {
        let db = SqliteDatabase::memory()
            .and_then(|d| d.with_table_prefix("es_"))
            .expect("open sqlite memory");
        db.setup_tables().expect("create tables");
        db
    })
}

async fn make_file(
    kind: RecordKind,
    application_name: String,
    pipeline_id: i64,
) -> Arc<dyn RecordManager> {
    Arc::new(file_database().record_manager(kind, &application_name, pipeline_id))
}

async fn make_memory(
    kind: RecordKind,
    application_name: String,
    pipeline_id: i64,
) -> Arc<dyn RecordManager> {
    Arc::new(memory_database().record_manager(kind, &application_name, pipeline_id))
}

conformance_suite!(sqlite_file, make_file);
conformance_suite!(sqlite_memory, make_memory);
