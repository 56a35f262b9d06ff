//! The domain library's collection aggregate: set semantics, events, discarding, and a round
//! trip through an application on every backend.

mod support;

use es_runtime::domain::aggregate::replay;
use es_runtime::model::collection::{events, Collection};
use es_runtime::prelude::*;

#[test]
fn items_are_a_set_and_only_changes_are_events() {
    let mut c = Collection::create().unwrap();
    assert!(c.is_empty());
    c.add_item("b").unwrap();
    c.add_item("a").unwrap();
    c.add_item("b").unwrap();
    c.remove_item("zzz").unwrap();
    assert_eq!(c.iter().collect::<Vec<_>>(), vec!["a", "b"]);
    assert_eq!(c.len(), 2);
    c.remove_item("a").unwrap();
    assert!(!c.contains("a"));
    assert!(c.contains("b"));
    let events = c.collect_pending();
    // Created, ItemAdded b, ItemAdded a, ItemRemoved a.
    assert_eq!(events.len(), 4);
    let added = events[1]
        .downcast_ref::<events::ItemAdded>()
        .expect("the second event adds an item");
    assert_eq!(added.data().item, "b");
    assert!(events[3].downcast_ref::<events::ItemRemoved>().is_some());
    // Replaying the events rebuilds the same set, version and head.
    let again: Collection = replay(events).unwrap().unwrap();
    assert_eq!(again.items(), c.items());
    assert_eq!(again.version(), c.version());
    assert_eq!(again.head(), c.head());
}

#[test]
fn a_discarded_collection_refuses_changes() {
    let mut c = Collection::create_with(Uuid::from_u128(5)).unwrap();
    assert_eq!(c.id(), Uuid::from_u128(5));
    c.add_item("x").unwrap();
    c.discard().unwrap();
    for r in [
        c.add_item("y"),
        c.add_item("x"),
        c.remove_item("x"),
        c.remove_item("q"),
    ] {
        assert!(
            matches!(r, Err(Error::EntityIsDiscarded(id)) if id == Uuid::from_u128(5)),
            "{r:?}"
        );
    }
    assert!(c.contains("x"), "nothing changed");
}

#[tokio::test]
async fn a_collection_is_saved_and_read_back_on_every_backend() {
    for (backend, db) in support::databases().await {
        let app = support::app_on(&db, "coll").build().await.unwrap();
        let mut c = Collection::create().unwrap();
        for item in ["red", "green", "blue"] {
            c.add_item(item).unwrap();
        }
        app.save(&mut c).await.unwrap();
        c.remove_item("green").unwrap();
        app.save(&mut c).await.unwrap();
        let copy: Collection = app.get(c.id()).await.unwrap();
        assert_eq!(
            copy.iter().collect::<Vec<_>>(),
            vec!["blue", "red"],
            "{backend}"
        );
        assert_eq!(copy.version(), 5, "{backend}");
        // As it was after the first save.
        let before: Collection = app
            .repository::<Collection>()
            .get_at_version(c.id(), 4)
            .await
            .unwrap();
        assert!(before.contains("green"), "{backend}");
    }
}
