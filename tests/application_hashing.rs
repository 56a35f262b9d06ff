//! Salt and genesis hash per application: two applications in one process, each with its own
//! settings, on every backend; aggregates made outside an application are re-hashed as they
//! are saved, and aggregates loaded from one hash with its settings.

use es_runtime::domain::integrity::HashConfig;
use es_runtime::prelude::*;
use sha2::{Digest, Sha256};

mod support;

#[aggregate]
#[derive(PartialEq)]
pub struct Tally {
    total: i64,
}

#[aggregate]
impl Tally {
    #[event(Started)]
    pub fn start() -> Self {
        Tally { total: 0 }
    }
    #[event(Counted)]
    pub fn count(&mut self, n: i64) {
        self.total += n;
    }
}

/// The salted SHA-256 of an event's JSON state without its hash member, in hex.
fn expected_hash(salt: &str, event: &dyn AnyEvent) -> String {
    let state = event.to_state();
    let mut canonical = state[..state.len() - 75].to_vec();
    canonical.push(b'}');
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(&canonical);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn two_applications_with_their_own_salts_in_one_process() {
    let settings = [("salt of a", "genesis of a"), ("salt of b", "genesis of b")];
    for (backend, db) in support::databases().await {
        let mut apps = Vec::new();
        for (salt, genesis) in settings {
            let app = support::app_on(&db, "hashing")
                .hashing(HashConfig::new(salt, genesis))
                .build()
                .await
                .unwrap();
            apps.push(app);
        }
        let mut ids = Vec::new();
        for (app, (salt, genesis)) in apps.iter().zip(settings) {
            // Made outside any application: hashed with the process's default until saved.
            let mut t = Tally::start().unwrap();
            t.count(2).unwrap();
            app.save(&mut t).await.unwrap();
            // Loaded from the application, changed, saved again.
            let mut t: Tally = app.get(t.id()).await.unwrap();
            t.count(3).unwrap();
            app.save(&mut t).await.unwrap();

            let events = app
                .event_store()
                .get_events(t.id(), &Default::default())
                .await
                .unwrap();
            assert_eq!(events.len(), 3, "{backend}");
            assert_eq!(events[0].meta().previous_hash, genesis, "{backend}");
            for (i, e) in events.iter().enumerate() {
                assert_eq!(e.hash(), expected_hash(salt, e.as_ref()), "{backend} {i}");
                if i > 0 {
                    assert_eq!(e.meta().previous_hash, events[i - 1].hash(), "{backend}");
                }
            }
            let again: Tally = app.get(t.id()).await.unwrap();
            assert_eq!((again.total, again.version()), (5, 3), "{backend}");
            assert_eq!(again.head(), events[2].hash(), "{backend}");
            ids.push(t.id());
        }
        // Each application's rows do not verify with the other's salt.
        for (reader, id) in [(&apps[1], ids[0]), (&apps[0], ids[1])] {
            let owner = if std::ptr::eq(reader, &apps[1]) {
                &apps[0]
            } else {
                &apps[1]
            };
            let item = owner.records().get_item(id, 0).await.unwrap();
            assert!(
                matches!(
                    reader.mapper().from_item(&item),
                    Err(Error::DataIntegrity(IntegrityError::EventHash { .. }))
                ),
                "{backend}"
            );
        }
        // An event hashed with one application's settings is refused by the other's store.
        let mut t: Tally = apps[0].get(ids[0]).await.unwrap();
        t.count(1).unwrap();
        let pending = t.collect_pending();
        assert!(
            matches!(
                apps[1].event_store().store_all(&pending).await,
                Err(Error::Configuration(_))
            ),
            "{backend}"
        );
    }
}
