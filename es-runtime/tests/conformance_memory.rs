//! The conformance suite against the in-memory record manager.

#[macro_use]
mod conformance;

use es_runtime::record::memory::InMemoryDatabase;
use es_runtime::record::{RecordKind, RecordManager};
use std::sync::{Arc, OnceLock};

/// One database for the whole test binary, as a shared SQL server would be.
fn database() -> &'static InMemoryDatabase {
    static DB: OnceLock<InMemoryDatabase> = OnceLock::new();
    DB.get_or_init(InMemoryDatabase::new)
}

async fn make(
    kind: RecordKind,
    application_name: String,
    pipeline_id: i64,
) -> Arc<dyn RecordManager> {
    Arc::new(database().record_manager(kind, &application_name, pipeline_id))
}

conformance_suite!(memory, make);
