//! `prepare_batch` keeps the events pending until the caller confirms its transaction
//! committed (issue 12, defect 7), on SQLite (the server backends are in
//! `application_transactions.rs`).

#![cfg(feature = "sqlite")]

mod support;

use es_runtime::application::{Application, Saveable};
use es_runtime::prelude::*;
use es_runtime::record::sqlite::SqliteDatabase;
use es_runtime::record::RecordKind;
use std::sync::Arc;

#[aggregate]
pub struct Ledger {
    #[attribute]
    owner: String,
}

#[aggregate]
impl Ledger {
    #[event(Opened)]
    pub fn open(owner: String) -> Self {
        Ledger { owner }
    }
}

#[tokio::test]
async fn sqlite_commit_confirms_and_rollback_leaves_the_events_pending() {
    let db = SqliteDatabase::memory()
        .unwrap()
        .with_table_prefix(es_runtime::application::config::TABLE_PREFIX)
        .unwrap();
    db.setup_tables().unwrap();
    let name = support::unique("batch");
    let app = Application::builder(&name)
        .database(Arc::new(db.clone()))
        .build()
        .await
        .unwrap();
    let records = db.record_manager(RecordKind::Events, &name, 0);

    // Rolled back: nothing stored, the event still pending, a plain save stores it.
    let mut a = Ledger::open("ada".into()).unwrap();
    {
        let batch = app.prepare_batch([&mut a as &mut dyn Saveable]).unwrap();
        let failed: es_runtime::Result<()> = db.transaction(|tx| {
            records.write_in_transaction(tx, &batch)?;
            Err(Error::Operational("the caller's own step failed".into()))
        });
        assert!(failed.is_err());
    }
    assert!(matches!(
        app.get::<Ledger>(a.id()).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(a.pending_events().len(), 1);
    app.save(&mut a).await.unwrap();
    assert_eq!(app.get::<Ledger>(a.id()).await.unwrap().owner, "ada");

    // Committed and confirmed: stored, nothing pending, later events follow on.
    let mut b = Ledger::open("bob".into()).unwrap();
    let batch = app.prepare_batch([&mut b as &mut dyn Saveable]).unwrap();
    db.transaction(|tx| records.write_in_transaction(tx, &batch))
        .unwrap();
    batch.confirm().await.unwrap();
    assert!(b.pending_events().is_empty());
    b.set_owner("eve".into()).unwrap();
    app.save(&mut b).await.unwrap();
    let back: Ledger = app.get(b.id()).await.unwrap();
    assert_eq!((back.owner.as_str(), back.version()), ("eve", 2));
}
