//! Schema evolution: rows really written by older shapes of an event (schema 1 and 2) are
//! upcast step by step (1 → 2 → 3) when read, on every backend, and still verify their hashes.

mod support;

use es_runtime::domain::aggregate::trigger;
use es_runtime::domain::event::JsonValue;
use es_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[aggregate]
pub struct Doc {
    first: String,
    last: String,
    title: Option<String>,
}

#[aggregate]
impl Doc {
    #[event(Created)]
    pub fn create() -> Self {
        Doc {
            first: String::new(),
            last: String::new(),
            title: None,
        }
    }
}

/// Schema 3, the current one: the only shape registered for the topic.
#[event(aggregate = Doc, topic = "evo.Doc.Renamed", version = 3, upcast = upcast_renamed)]
pub struct Renamed {
    pub first: String,
    pub last: String,
    pub title: Option<String>,
}

impl Mutate<Doc> for Renamed {
    fn mutate(&self, d: &mut Doc) {
        d.first = self.first.clone();
        d.last = self.last.clone();
        d.title = self.title.clone();
    }
}

/// 1 → 2 splits `name` into first and last; 2 → 3 adds an empty title.
fn upcast_renamed(from: u32, data: &mut JsonValue) -> Result<()> {
    match from {
        1 => {
            let name = data["name"].as_str().unwrap_or_default().to_string();
            let (first, last) = name.split_once(' ').unwrap_or((name.as_str(), ""));
            *data = serde_json::json!({ "first": first, "last": last });
            Ok(())
        }
        2 => {
            data["title"] = JsonValue::Null;
            Ok(())
        }
        v => Err(Error::Upcast(format!("no upcast from schema {v}"))),
    }
}

/// The shapes older code wrote, under the same topic (not registered: this build only reads).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenamedV1 {
    name: String,
}
impl EventPayload for RenamedV1 {
    type Aggregate = Doc;
    const TOPIC: &'static str = "evo.Doc.Renamed";
    const VERSION: u32 = 1;
    fn mutate(self, _: &mut Doc) -> Result<()> {
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenamedV2 {
    first: String,
    last: String,
}
impl EventPayload for RenamedV2 {
    type Aggregate = Doc;
    const TOPIC: &'static str = "evo.Doc.Renamed";
    const VERSION: u32 = 2;
    fn mutate(self, _: &mut Doc) -> Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn rows_of_older_schemas_are_upcast_step_by_step_on_every_backend() {
    for (backend, db) in support::databases().await {
        let app = support::app_on(&db, "evo").build().await.unwrap();
        let mut doc = Doc::create().unwrap();
        trigger(
            &mut doc,
            RenamedV1 {
                name: "Ada Lovelace".into(),
            },
        )
        .unwrap();
        app.save(&mut doc).await.unwrap();
        trigger(
            &mut doc,
            RenamedV2 {
                first: "Grace".into(),
                last: "Hopper".into(),
            },
        )
        .unwrap();
        app.save(&mut doc).await.unwrap();
        doc.trigger(Renamed {
            first: "Alan".into(),
            last: "Turing".into(),
            title: Some("Dr".into()),
        })
        .unwrap();
        app.save(&mut doc).await.unwrap();

        // The stored rows really are in the old shapes (each expanded into its JSON state).
        let items = app
            .records()
            .get_items(doc.id(), &Default::default())
            .await
            .unwrap();
        let state = |i: usize| {
            let json = es_runtime::domain::state::expand_item(&items[i]);
            String::from_utf8(json.into_owned()).unwrap()
        };
        assert!(
            state(1).contains("\"schema\":1") && state(1).contains("\"name\":\"Ada Lovelace\""),
            "{backend}"
        );
        assert!(
            state(2).contains("\"schema\":2") && !state(2).contains("title"),
            "{backend}"
        );
        assert!(state(3).contains("\"schema\":3"), "{backend}");

        // Read back: each old event comes out as schema 3, hashes verified over the old bytes.
        let events = app
            .event_store()
            .get_events(doc.id(), &Default::default())
            .await
            .unwrap();
        let renamed: Vec<&Renamed> = events[1..]
            .iter()
            .map(|e| &**e.downcast_ref::<Renamed>().unwrap())
            .collect();
        assert_eq!(
            (
                renamed[0].first.as_str(),
                renamed[0].last.as_str(),
                &renamed[0].title
            ),
            ("Ada", "Lovelace", &None)
        );
        assert_eq!(
            (
                renamed[1].first.as_str(),
                renamed[1].last.as_str(),
                &renamed[1].title
            ),
            ("Grace", "Hopper", &None)
        );
        assert_eq!(renamed[2].title.as_deref(), Some("Dr"));
        for e in &events {
            e.verify_hash().unwrap();
        }

        // Replay applies the upcast events: the state is the latest, the head the same.
        let copy: Doc = app.get(doc.id()).await.unwrap();
        assert_eq!(
            (
                copy.first.as_str(),
                copy.last.as_str(),
                copy.title.as_deref()
            ),
            ("Alan", "Turing", Some("Dr")),
            "{backend}"
        );
        assert_eq!(copy.head(), doc.head());
        let at_2: Doc = app.repository().get_at_version(doc.id(), 2).await.unwrap();
        assert_eq!(
            (at_2.first.as_str(), at_2.last.as_str()),
            ("Ada", "Lovelace"),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_schema_newer_than_this_build_is_a_typed_error() {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct RenamedV9 {
        first: String,
    }
    impl EventPayload for RenamedV9 {
        type Aggregate = Doc;
        const TOPIC: &'static str = "evo.Doc.Renamed";
        const VERSION: u32 = 9;
        fn mutate(self, _: &mut Doc) -> Result<()> {
            Ok(())
        }
    }
    let app = es_runtime::application::Application::builder("evo9")
        .memory()
        .build()
        .await
        .unwrap();
    let mut doc = Doc::create().unwrap();
    trigger(&mut doc, RenamedV9 { first: "x".into() }).unwrap();
    app.save(&mut doc).await.unwrap();
    assert!(matches!(
        app.get::<Doc>(doc.id()).await,
        Err(Error::Upcast(_))
    ));
}
