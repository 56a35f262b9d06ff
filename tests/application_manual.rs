//! Chapter 9's custom application and chapter 13's snapshotting, ported, on every backend.

mod support;

use es_runtime::application::Application;
use es_runtime::prelude::*;
use es_runtime::record::ItemQuery;
use es_runtime::store::EventQuery;

#[aggregate]
pub struct CustomAggregate {
    #[attribute]
    a: i64,
}

#[aggregate]
impl CustomAggregate {
    #[event(Created)]
    pub fn create(a: i64) -> Self {
        CustomAggregate { a }
    }
}

/// The manual's `MyApplication`: an application with an application service.
struct MyApplication {
    app: Application,
}

impl MyApplication {
    fn create_aggregate(&self, a: i64) -> Result<CustomAggregate> {
        CustomAggregate::create(a)
    }
}

#[tokio::test]
async fn chapter_9_custom_application_on_every_backend() {
    for (backend, db) in support::databases().await {
        let app = MyApplication {
            app: support::app_on(&db, "ch9")
                .persist_aggregate::<CustomAggregate>()
                .build()
                .await
                .unwrap(),
        };
        let mut aggregate = app.create_aggregate(1).unwrap();
        app.app.save(&mut aggregate).await.unwrap();
        let repo = app.app.repository::<CustomAggregate>();
        assert!(repo.contains(aggregate.id()).await.unwrap(), "{backend}");
        let mut aggregate = repo.get(aggregate.id()).await.unwrap();
        assert_eq!(aggregate.a, 1);

        aggregate.set_a(2).unwrap();
        aggregate.set_a(3).unwrap();
        app.app.save(&mut aggregate).await.unwrap();
        let mut aggregate = repo.get(aggregate.id()).await.unwrap();
        assert_eq!(aggregate.a, 3, "{backend}");

        aggregate.discard().unwrap();
        app.app.save(&mut aggregate).await.unwrap();
        assert!(!repo.contains(aggregate.id()).await.unwrap(), "{backend}");
        assert!(
            matches!(repo.get(aggregate.id()).await, Err(Error::NotFound(_))),
            "{backend}"
        );

        // Stored events.
        let events = repo
            .events(aggregate.id(), &EventQuery::all())
            .await
            .unwrap();
        assert_eq!(events.len(), 4, "{backend}");
        assert!(events.iter().all(|e| e.originator_id() == aggregate.id()));
        assert_eq!(events[0].kind(), EventKind::Created);
        let created = events[0]
            .downcast_ref::<custom_aggregate::Created>()
            .unwrap();
        assert_eq!(created.a, 1);
        for (e, v) in events[1..3].iter().zip([2, 3]) {
            let changed = e
                .downcast_ref::<custom_aggregate::AttributeChanged>()
                .unwrap();
            assert_eq!(
                (changed.name.as_str(), changed.value.clone()),
                ("a", serde_json::json!(v))
            );
        }
        assert_eq!(events[3].kind(), EventKind::Discarded);

        // Sequenced items: readable, since no cipher key was set.
        let items = app
            .app
            .records()
            .get_items(aggregate.id(), &ItemQuery::all())
            .await
            .unwrap();
        assert_eq!(items.len(), 4);
        // The payload is stored as JSON behind a small binary header; expanded, each state
        // is the self-contained JSON the notification log serves.
        let state = |i: usize| {
            let json = es_runtime::domain::state::expand_item(&items[i]);
            String::from_utf8(json.into_owned()).unwrap()
        };
        assert!(
            items[0].topic.ends_with("CustomAggregate.Created"),
            "{}",
            items[0].topic
        );
        assert!(state(0).contains("\"a\":1") && state(0).contains("\"timestamp\":"));
        assert!(items[1].topic.ends_with("CustomAggregate.AttributeChanged"));
        assert!(state(1).contains("\"name\":\"a\"") && state(2).contains("\"value\":3"));
        assert!(items[3].topic.ends_with("CustomAggregate.Discarded"));
    }
}

#[aggregate]
pub struct Example {
    #[attribute]
    note: String,
}

#[aggregate]
impl Example {
    #[event(Created)]
    pub fn create(note: String) -> Self {
        Example { note }
    }
}

#[tokio::test]
async fn chapter_13_snapshotting_on_every_backend() {
    for (backend, db) in support::databases().await {
        let app = support::app_on(&db, "ch13")
            .snapshot_period(2)
            .build()
            .await
            .unwrap();
        let mut entity = Example::create("bar1".into()).unwrap();
        app.save(&mut entity).await.unwrap();
        let id = entity.id();
        assert!(
            app.get_snapshot::<Example>(id, None)
                .await
                .unwrap()
                .is_none(),
            "{backend}: one event, no snapshot"
        );

        let set = |e: &mut Example, v: &str| e.set_note(v.to_string()).unwrap();
        set(&mut entity, "bar2");
        app.save(&mut entity).await.unwrap();
        let snap = app
            .get_snapshot::<Example>(id, None)
            .await
            .unwrap()
            .expect("snapshot after two events");
        assert_eq!(
            (snap.note.as_str(), snap.version()),
            ("bar2", 2),
            "{backend}"
        );
        assert!(app.repository::<Example>().contains(id).await.unwrap());
        assert_eq!(app.get::<Example>(id).await.unwrap().note, "bar2");

        for v in ["bar3", "bar4", "bar5"] {
            set(&mut entity, v);
            app.save(&mut entity).await.unwrap();
        }
        assert_eq!(
            app.get_snapshot::<Example>(id, None)
                .await
                .unwrap()
                .unwrap()
                .note,
            "bar4",
            "{backend}"
        );

        for v in ["bar6", "bar7"] {
            set(&mut entity, v);
            app.save(&mut entity).await.unwrap();
        }
        assert_eq!(app.get::<Example>(id).await.unwrap().note, "bar7");
        assert_eq!(
            app.get_snapshot::<Example>(id, None)
                .await
                .unwrap()
                .unwrap()
                .note,
            "bar6",
            "{backend}"
        );

        // Discard on the eighth event: the latest snapshot says so.
        entity.discard().unwrap();
        app.save(&mut entity).await.unwrap();
        assert!(!app.repository::<Example>().contains(id).await.unwrap());
        let last = app
            .get_snapshot::<Example>(id, None)
            .await
            .unwrap()
            .unwrap();
        assert!(last.is_discarded() && last.version() == 8, "{backend}");
        assert!(matches!(
            app.get::<Example>(id).await,
            Err(Error::NotFound(_))
        ));

        // Historical snapshots.
        let s = app
            .get_snapshot::<Example>(id, Some(3))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((s.version(), s.note.as_str()), (2, "bar2"), "{backend}");
        let s = app
            .get_snapshot::<Example>(id, Some(4))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((s.version(), s.note.as_str()), (4, "bar4"), "{backend}");

        // Historical entities.
        let repo = app.repository::<Example>();
        for (v, note) in [(1, "bar1"), (2, "bar2"), (3, "bar3"), (4, "bar4")] {
            let e = repo.get_at_version(id, v).await.unwrap();
            assert_eq!((e.version(), e.note.as_str()), (v, note), "{backend}");
        }
    }
}
