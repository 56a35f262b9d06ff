//! The application layer on the in-memory store with a hand-written aggregate. (The same
//! behaviours through the macros and on every backend are in the workspace's `tests/`.)

mod common;
use common::{Added, Counter, Started};
use es_runtime::application::{Application, Saveable};
use es_runtime::domain::aggregate::{create, trigger};
use es_runtime::mapper::{Cipher, Mapper};
use es_runtime::prelude::*;
use es_runtime::record::memory::InMemoryDatabase;
use es_runtime::record::ItemQuery;
use es_runtime::store::{retry, EventQuery};
use std::sync::Arc;
use std::time::Duration;

fn counter(n: i64) -> Counter {
    create(Uuid::new_v4(), Started { count: n }).unwrap()
}

#[tokio::test]
async fn save_get_and_compare_state_and_head() {
    let app = Application::builder("t").memory().build().await.unwrap();
    let mut c = counter(1);
    trigger(&mut c, Added { by: 4 }).unwrap();
    app.save(&mut c).await.unwrap();
    assert!(c.pending_events().is_empty());
    let copy: Counter = app.get(c.id()).await.unwrap();
    assert_eq!(copy, c);
    assert_eq!(copy.head(), c.head());
    assert!(app.repository::<Counter>().contains(c.id()).await.unwrap());
    assert!(!app
        .repository::<Counter>()
        .contains(Uuid::new_v4())
        .await
        .unwrap());
    assert!(matches!(
        app.get::<Counter>(Uuid::new_v4()).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn stale_save_is_a_concurrency_error_and_writes_nothing() {
    let app = Application::builder("t").memory().build().await.unwrap();
    let mut c = counter(1);
    app.save(&mut c).await.unwrap();
    let mut a: Counter = app.get(c.id()).await.unwrap();
    let mut b: Counter = app.get(c.id()).await.unwrap();
    trigger(&mut a, Added { by: 1 }).unwrap();
    app.save(&mut a).await.unwrap();
    trigger(&mut b, Added { by: 10 }).unwrap();
    trigger(&mut b, Added { by: 10 }).unwrap();
    assert!(matches!(app.save(&mut b).await, Err(Error::Concurrency(_))));
    assert_eq!(
        b.pending_events().len(),
        2,
        "failed save gives the events back"
    );
    let now: Counter = app.get(c.id()).await.unwrap();
    assert_eq!(now.count, 2);
    assert_eq!(now.version(), 2);
}

#[tokio::test]
async fn save_all_is_atomic_across_aggregates() {
    let app = Application::builder("t").memory().build().await.unwrap();
    let mut x = counter(1);
    app.save(&mut x).await.unwrap();
    let mut stale: Counter = app.get(x.id()).await.unwrap();
    trigger(&mut x, Added { by: 1 }).unwrap();
    app.save(&mut x).await.unwrap();
    let mut fresh = counter(7);
    trigger(&mut stale, Added { by: 1 }).unwrap();
    let r = app
        .save_all(&mut [&mut fresh as &mut dyn Saveable, &mut stale])
        .await;
    assert!(matches!(r, Err(Error::Concurrency(_))));
    assert!(matches!(
        app.get::<Counter>(fresh.id()).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(app.records().max_notification_id().await.unwrap(), 2);
}

#[tokio::test]
async fn historical_state_and_discard() {
    let app = Application::builder("t").memory().build().await.unwrap();
    let mut c = counter(1);
    for by in [1, 2, 3] {
        trigger(&mut c, Added { by }).unwrap();
    }
    app.save(&mut c).await.unwrap();
    let repo = app.repository::<Counter>();
    assert_eq!(repo.get_at_version(c.id(), 1).await.unwrap().count, 1);
    assert_eq!(repo.get_at_version(c.id(), 3).await.unwrap().count, 4);
    assert!(matches!(
        repo.get_at_version(c.id(), 9).await,
        Err(Error::NotFound(_))
    ));
    c.discard().unwrap();
    app.save(&mut c).await.unwrap();
    assert!(matches!(repo.get(c.id()).await, Err(Error::NotFound(_))));
    assert!(!repo.contains(c.id()).await.unwrap());
    assert_eq!(repo.get_at_version(c.id(), 4).await.unwrap().count, 7);
    assert_eq!(
        repo.events(c.id(), &EventQuery::all()).await.unwrap().len(),
        5
    );
}

#[tokio::test]
async fn snapshots_every_n_events_and_replay_starts_from_them() {
    let db = InMemoryDatabase::new();
    let app = Application::builder("snap")
        .database(Arc::new(db.clone()))
        .snapshot_period(3)
        .build()
        .await
        .unwrap();
    let mut c = counter(0);
    for _ in 0..7 {
        trigger(&mut c, Added { by: 1 }).unwrap();
        app.save(&mut c).await.unwrap();
    }
    // versions 1 (created) .. 8; snapshots when crossing 3 and 6.
    let snaps = app.snapshot_records().unwrap();
    let items = snaps.get_items(c.id(), &ItemQuery::all()).await.unwrap();
    let versions: Vec<i64> = items.iter().map(|i| i.position).collect();
    assert_eq!(versions, vec![3, 6]);
    // Remove the events the snapshot covers: replay must start from the snapshot.
    for v in 0..6 {
        app.records().delete_item(c.id(), v).await.unwrap();
    }
    let copy: Counter = app.get(c.id()).await.unwrap();
    assert_eq!(copy.count, 7);
    assert_eq!(copy.head(), c.head());
    assert_eq!(
        app.repository::<Counter>()
            .get_at_version(c.id(), 6)
            .await
            .unwrap()
            .count,
        5
    );
    // Discard, snapshot the discarded state: the repository says NotFound.
    c.discard().unwrap();
    app.save(&mut c).await.unwrap();
    assert_eq!(app.take_snapshot::<Counter>(c.id(), None).await.unwrap(), 9);
    assert!(matches!(
        app.get::<Counter>(c.id()).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn cache_never_returns_a_stale_copy() {
    let db = Arc::new(InMemoryDatabase::new());
    let cached = Application::builder("c")
        .database(db.clone())
        .cache()
        .build()
        .await
        .unwrap();
    let other = Application::builder("c")
        .database(db.clone())
        .build()
        .await
        .unwrap();
    let mut c = counter(1);
    cached.save(&mut c).await.unwrap();
    assert_eq!(cached.get::<Counter>(c.id()).await.unwrap().count, 1);
    let mut elsewhere: Counter = other.get(c.id()).await.unwrap();
    trigger(&mut elsewhere, Added { by: 5 }).unwrap();
    other.save(&mut elsewhere).await.unwrap();
    assert_eq!(cached.get::<Counter>(c.id()).await.unwrap().count, 6);
}

#[tokio::test]
async fn encrypted_records_reveal_no_plaintext_and_need_the_key() {
    let db = Arc::new(InMemoryDatabase::new());
    let key = Cipher::random_key(32).unwrap();
    let app = Application::builder("enc")
        .database(db.clone())
        .cipher(Cipher::from_base64(&key).unwrap())
        .snapshot_period(2)
        .build()
        .await
        .unwrap();
    let mut c = counter(424242);
    trigger(&mut c, Added { by: 1 }).unwrap();
    app.save(&mut c).await.unwrap();
    for n in app.records().get_notifications(1, 10, None).await.unwrap() {
        let text = String::from_utf8_lossy(&n.item.state).to_string() + &n.item.topic;
        assert!(
            !text.contains("424242") && !text.contains("Counter"),
            "{text}"
        );
    }
    let snap = &app
        .snapshot_records()
        .unwrap()
        .get_items(c.id(), &ItemQuery::all())
        .await
        .unwrap()[0];
    assert!(!String::from_utf8_lossy(&snap.state).contains("424242"));
    assert_eq!(app.get::<Counter>(c.id()).await.unwrap().count, 424243);
    let wrong = Application::builder("enc")
        .database(db.clone())
        .cipher(Cipher::from_base64(&Cipher::random_key(32).unwrap()).unwrap())
        .build()
        .await
        .unwrap();
    assert!(matches!(
        wrong.get::<Counter>(c.id()).await,
        Err(Error::DataIntegrity(IntegrityError::Cipher(_)))
    ));
    let none = Application::builder("enc")
        .database(db)
        .build()
        .await
        .unwrap();
    assert!(matches!(
        none.get::<Counter>(c.id()).await,
        Err(Error::DataIntegrity(_))
    ));
}

#[tokio::test]
async fn persist_filter_keeps_other_aggregates_out() {
    let app = Application::builder("f")
        .memory()
        .persist_if(|e| e.topic() != Added::TOPIC)
        .build()
        .await
        .unwrap();
    let mut c = counter(1);
    trigger(&mut c, Added { by: 1 }).unwrap();
    app.save(&mut c).await.unwrap();
    assert_eq!(app.records().max_notification_id().await.unwrap(), 1);
}

#[tokio::test]
async fn corrupt_and_foreign_rows_are_typed_errors() {
    let app = Application::builder("x").memory().build().await.unwrap();
    let mut c = counter(1);
    trigger(&mut c, Added { by: 1 }).unwrap();
    app.save(&mut c).await.unwrap();
    let records = app.records().clone();
    let mut item = records.get_item(c.id(), 1).await.unwrap();
    let mapper = Mapper::new();
    // Damaged state.
    let mut damaged = item.clone();
    let mut bytes = damaged.state.to_vec();
    let at = bytes
        .windows(6)
        .position(|w| w == b"\"by\":1")
        .expect("the payload is stored as JSON");
    bytes[at + 5] = b'2';
    damaged.state = bytes.into();
    assert!(matches!(
        mapper.from_item(&damaged),
        Err(Error::DataIntegrity(IntegrityError::EventHash { .. }))
    ));
    // Not JSON at all.
    let mut garbage = item.clone();
    garbage.state = vec![0xff, 0, 1, 2].into();
    assert!(matches!(
        mapper.from_item(&garbage),
        Err(Error::DataIntegrity(IntegrityError::Corrupt(_)))
    ));
    // Moved to another position. A compact state does not repeat the version and topic its
    // row's columns hold, but its hash covers them: a moved row or a swapped topic no longer
    // verifies. (A format-1 state, which holds them, is a `Corrupt` error: core_by_hand.rs.)
    let mut moved = item.clone();
    moved.position = 5;
    assert!(matches!(
        mapper.from_item(&moved),
        Err(Error::DataIntegrity(IntegrityError::EventHash {
            version: 5,
            ..
        }))
    ));
    // Topic swapped in the column.
    item.topic = "tests::Counter.Other".into();
    assert!(matches!(
        mapper.from_item(&item),
        Err(Error::DataIntegrity(IntegrityError::EventHash { .. }))
    ));
    // A format-1 (JSON) row moved or retitled is `Corrupt`: the state says where it belongs.
    let event = app.event_store().get_event(c.id(), 1).await.unwrap();
    let mut old = records.get_item(c.id(), 1).await.unwrap();
    old.state = event.to_state().into();
    assert!(mapper.from_item(&old).unwrap().eq_dyn(event.as_ref()));
    let mut moved = old.clone();
    moved.position = 5;
    assert!(matches!(
        mapper.from_item(&moved),
        Err(Error::DataIntegrity(IntegrityError::Corrupt(_)))
    ));
    old.topic = "tests::Counter.Other".into();
    assert!(matches!(
        mapper.from_item(&old),
        Err(Error::DataIntegrity(IntegrityError::Corrupt(_)))
    ));
}

#[tokio::test]
async fn compression_round_trips_and_only_above_threshold() {
    let mapper = Mapper::new().with_compression(16);
    let c = counter(1);
    let e = &c.pending_events()[0];
    let item = mapper.to_item(e.as_ref()).unwrap();
    assert_eq!(
        item.state[0], 1,
        "states above the threshold are compressed"
    );
    assert!(mapper.from_item(&item).unwrap().eq_dyn(e.as_ref()));
    let small = Mapper::new()
        .with_compression(100_000)
        .to_item(e.as_ref())
        .unwrap();
    assert_eq!(small.state[0], es_runtime::domain::state::COMPACT);
}

#[tokio::test]
async fn retry_reloads_after_a_concurrency_error() {
    let app = Application::builder("r").memory().build().await.unwrap();
    let mut c = counter(0);
    app.save(&mut c).await.unwrap();
    let id = c.id();
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    retry(3, Duration::from_millis(1), || async {
        let mut mine: Counter = app.get(id).await?;
        if attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            // Someone else saves between our read and our write.
            let mut other: Counter = app.get(id).await?;
            trigger(&mut other, Added { by: 100 })?;
            app.save(&mut other).await?;
        }
        trigger(&mut mine, Added { by: 1 })?;
        app.save(&mut mine).await
    })
    .await
    .unwrap();
    assert_eq!(attempts.into_inner(), 2);
    assert_eq!(app.get::<Counter>(id).await.unwrap().count, 101);
}

/// §8.1: item types with field names of one's own.
#[tokio::test]
async fn custom_item_types_with_their_own_field_names() {
    use es_runtime::record::{SequencedItem, StoredEvent};

    #[derive(Debug, PartialEq)]
    struct LedgerLine {
        account: Uuid,
        line_no: i64,
        kind: String,
        body: Vec<u8>,
    }
    impl From<SequencedItem> for LedgerLine {
        fn from(i: SequencedItem) -> Self {
            LedgerLine {
                account: i.sequence_id,
                line_no: i.position,
                kind: i.topic.into_owned(),
                body: i.state.to_vec(),
            }
        }
    }
    impl From<LedgerLine> for SequencedItem {
        fn from(l: LedgerLine) -> Self {
            SequencedItem {
                sequence_id: l.account,
                position: l.line_no,
                topic: l.kind.into(),
                state: l.body.into(),
            }
        }
    }

    let c = counter(5);
    let e = &c.pending_events()[0];
    let mapper = Mapper::new();
    let line: LedgerLine = mapper.to_item_as(e.as_ref()).unwrap();
    assert_eq!(
        (line.account, line.line_no, line.kind.as_str()),
        (c.id(), 0, Started::TOPIC)
    );
    assert!(mapper.from_item_as(line).unwrap().eq_dyn(e.as_ref()));
    let stored: StoredEvent = mapper.to_item_as(e.as_ref()).unwrap();
    assert_eq!(
        (stored.originator_id, stored.originator_version),
        (c.id(), 0)
    );
    assert!(mapper.from_item_as(stored).unwrap().eq_dyn(e.as_ref()));
}

#[tokio::test]
async fn replays_in_pages_of_any_size_give_the_same_aggregate() {
    use es_runtime::record::{RecordKind, RecordManager};
    use es_runtime::store::EventStore;
    let records: Arc<dyn RecordManager> =
        Arc::new(InMemoryDatabase::new().record_manager(RecordKind::Events, "app", 0));
    let store = EventStore::new(records, Mapper::new());
    let mut c: Counter = create(Uuid::new_v4(), Started { count: 0 }).unwrap();
    for by in 1..=9 {
        trigger(&mut c, Added { by }).unwrap();
    }
    store.store_all(&c.collect_pending()).await.unwrap();
    common::assert_paged_replays(&store, c.id()).await;
    // Nothing before the first event: nothing to replay.
    let mut target: Option<Counter> = None;
    store
        .replay_into(c.id(), &EventQuery::all().lt(0).page_size(3), &mut target)
        .await
        .unwrap();
    assert!(target.is_none());
}
