//! Publishing on save (the persistence-policy pattern of manual §15, turned around: es writes
//! through the application, and subscribers see what was stored, after it was committed).

mod support;

use es_runtime::application::Saveable;
use es_runtime::domain::pubsub::is_kind;
use es_runtime::prelude::*;
use es_runtime::record::ItemQuery;
use std::sync::{Arc, Mutex};

#[aggregate]
pub struct Note {
    #[attribute]
    text: String,
}

#[aggregate]
impl Note {
    #[event(Written)]
    pub fn write(text: String) -> Self {
        Note { text }
    }
}

type Seen = Arc<Mutex<Vec<Vec<(Uuid, u64, &'static str)>>>>;

fn recorder(seen: &Seen) -> impl Fn(&[Box<dyn AnyEvent>]) + Send + Sync + 'static {
    let seen = seen.clone();
    move |events: &[Box<dyn AnyEvent>]| {
        let list = events
            .iter()
            .map(|e| {
                (
                    e.meta().originator_id,
                    e.meta().originator_version,
                    e.topic(),
                )
            })
            .collect();
        seen.lock().unwrap().push(list);
    }
}

#[tokio::test]
async fn subscribers_see_what_a_save_stored_in_order_and_nothing_of_a_failed_save() {
    for (backend, db) in support::databases().await {
        let app = support::app_on(&db, "publish").build().await.unwrap();
        let seen: Seen = Arc::default();
        let sub = app.subscribers().subscribe(recorder(&seen), None);

        let mut a = Note::write("one".into()).unwrap();
        a.set_text("two".into()).unwrap();
        a.set_text("three".into()).unwrap();
        assert!(seen.lock().unwrap().is_empty(), "nothing before the save");
        app.save(&mut a).await.unwrap();
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 1, "{backend}: one list per aggregate");
            let versions: Vec<u64> = seen[0].iter().map(|(_, v, _)| *v).collect();
            assert_eq!(versions, vec![0, 1, 2], "{backend}: in order");
            assert!(seen[0].iter().all(|(id, _, _)| *id == a.id()));
            assert!(
                seen[0][0].2.ends_with("Written"),
                "{backend}: {:?}",
                seen[0]
            );
        }

        // A stale copy conflicts: nothing is published.
        let mut stale: Note = app.get(a.id()).await.unwrap();
        a.set_text("four".into()).unwrap();
        app.save(&mut a).await.unwrap();
        stale.set_text("lost".into()).unwrap();
        let e = app.save(&mut stale).await.unwrap_err();
        assert!(matches!(e, Error::Concurrency(_)), "{backend}: {e}");
        assert_eq!(
            seen.lock().unwrap().len(),
            2,
            "{backend}: the conflict published nothing"
        );

        // save_all: one list per aggregate, in the order given.
        let mut b = Note::write("b".into()).unwrap();
        let mut c = Note::write("c".into()).unwrap();
        app.save_all(&mut [&mut b as &mut dyn Saveable, &mut c])
            .await
            .unwrap();
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 4, "{backend}");
            assert_eq!(seen[2][0].0, b.id());
            assert_eq!(seen[3][0].0, c.id());
        }

        // Predicates, and unsubscribing.
        let created: Seen = Arc::default();
        app.subscribers()
            .subscribe(recorder(&created), is_kind(EventKind::Created));
        assert!(app.subscribers().unsubscribe(sub));
        let mut d = Note::write("d".into()).unwrap();
        app.save(&mut d).await.unwrap();
        d.set_text("e".into()).unwrap();
        app.save(&mut d).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 4, "{backend}: unsubscribed");
        assert_eq!(created.lock().unwrap().len(), 1, "{backend}: only Created");
    }
}

/// An async subscriber is awaited before the save returns, and it can read the events back
/// from the store: they were committed before it was called.
#[tokio::test]
async fn an_async_subscriber_is_awaited_after_the_commit() {
    for (backend, db) in support::databases().await {
        let app = support::app_on(&db, "publish_async").build().await.unwrap();
        let records = app.records().clone();
        let found: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
        let f = found.clone();
        app.subscribers().subscribe_async(
            move |events| {
                let (records, found) = (records.clone(), f.clone());
                async move {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    let id = events[0].meta().originator_id;
                    let stored = records.get_items(id, &ItemQuery::all()).await.unwrap();
                    found.lock().unwrap().push((events.len(), stored.len()));
                }
            },
            None,
        );
        let mut a = Note::write("one".into()).unwrap();
        a.set_text("two".into()).unwrap();
        app.save(&mut a).await.unwrap();
        assert_eq!(
            *found.lock().unwrap(),
            vec![(2, 2)],
            "{backend}: awaited before save returned, and both events were already stored"
        );
        a.set_text("three".into()).unwrap();
        app.save(&mut a).await.unwrap();
        assert_eq!(found.lock().unwrap()[1], (1, 3), "{backend}");
    }
}

/// Events an application does not persist are not published either.
#[tokio::test]
async fn only_persisted_events_are_published() {
    let app = es_runtime::application::Application::builder("filtered")
        .memory()
        .persist_if(|e| e.kind() == EventKind::Created)
        .build()
        .await
        .unwrap();
    let seen: Seen = Arc::default();
    app.subscribers().subscribe(recorder(&seen), None);
    let mut a = Note::write("one".into()).unwrap();
    a.set_text("two".into()).unwrap();
    app.save(&mut a).await.unwrap();
    a.set_text("three".into()).unwrap();
    app.save(&mut a).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.len(),
        1,
        "a save that stored nothing publishes nothing"
    );
    assert_eq!(seen[0].len(), 1);
    assert_eq!(seen[0][0].1, 0);
}
