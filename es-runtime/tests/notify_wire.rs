//! Wire compatibility with the reference library's `NotificationLogView` (eventsourcing 7.1.1),
//! checked against sections that library served (tests/fixtures).

use es_runtime::notify::{
    decode_section, encode_section, NotificationLogView, RecordNotificationLog, Section,
};
use es_runtime::record::memory::InMemoryDatabase;
use es_runtime::record::{Notification, RecordBatch, RecordKind, RecordManager, SequencedItem};
use es_runtime::Error;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

const FIXTURES: [&str; 2] = [
    include_str!("fixtures/py711-notification-section-1-5.json"),
    include_str!("fixtures/py711-notification-section-current.json"),
];

#[test]
fn reference_sections_decode_with_the_remote_log_decoder() {
    for fixture in FIXTURES {
        let section: Section<Notification> = decode_section(fixture.as_bytes()).unwrap();
        assert_eq!(section.section_id, "1,20");
        assert_eq!(
            (section.previous_id.as_deref(), section.next_id.as_deref()),
            (None, None)
        );
        assert_eq!(
            section.items.iter().map(|n| n.id).collect::<Vec<_>>(),
            (1..=7).collect::<Vec<_>>()
        );
        let first = &section.items[0];
        assert_eq!(
            first.item.sequence_id,
            Uuid::parse_str("4b800622cd544f37b328c173bbc25b05").unwrap()
        );
        assert_eq!(first.item.position, 0);
        assert_eq!(
            first.item.topic,
            "eventsourcing.domain.model.aggregate#AggregateRoot.Created"
        );
        assert_eq!(first.causal_dependencies, None);
        // The state is the reference event's JSON text, kept byte for byte.
        let state: Value = serde_json::from_slice(&first.item.state).unwrap();
        assert_eq!(
            state["originator_id"]["UUID"],
            "4b800622cd544f37b328c173bbc25b05"
        );
        assert_eq!(state["__event_topic__"], &*first.item.topic);
    }
}

#[test]
fn the_view_writes_the_bytes_the_reference_library_writes() {
    for fixture in FIXTURES {
        let section: Section<Notification> = decode_section(fixture.as_bytes()).unwrap();
        let ours = encode_section(&section).unwrap();
        // The reference library's json_dumps: sorted keys, compact separators, ASCII. (The
        // fixture was pretty-printed when captured; serde_json's map is sorted.)
        let theirs =
            serde_json::to_string(&serde_json::from_str::<Value>(fixture).unwrap()).unwrap();
        assert_eq!(ours, theirs);
    }
}

/// The JSON types of a value, with object keys: the "shape" two sections must share.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::String(_) => "string".into(),
        Value::Number(n) if n.is_i64() => "integer".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

async fn es_log_with_events(
    n: i64,
    section_size: usize,
) -> (Arc<dyn RecordManager>, RecordNotificationLog) {
    let records: Arc<dyn RecordManager> =
        Arc::new(InMemoryDatabase::new().record_manager(RecordKind::Events, "wire", 0));
    for _ in 0..n {
        let id = Uuid::new_v4();
        let state = format!("{{\"topic\":\"tests::Thing.Created\",\"originator_id\":\"{id}\"}}");
        let item = SequencedItem {
            sequence_id: id,
            position: 0,
            topic: "tests::Thing.Created".into(),
            state: state.into_bytes().into(),
        };
        records
            .write(&RecordBatch::items(vec![item]))
            .await
            .unwrap();
    }
    let log = RecordNotificationLog::new(records.clone(), section_size).unwrap();
    (records, log)
}

#[tokio::test]
async fn es_sections_have_the_shape_of_the_reference_sections() {
    let (_, log) = es_log_with_events(7, 20).await;
    let view = NotificationLogView::new(Arc::new(log));
    let (json, archived) = view.present_section("1,5").await.unwrap();
    assert!(!archived);
    let ours: Value = serde_json::from_str(&json).unwrap();
    let theirs: Value = serde_json::from_str(FIXTURES[0]).unwrap();
    assert_eq!(shape(&ours), shape(&theirs));
    assert_eq!(
        ours["section_id"], theirs["section_id"],
        "same normalisation with the same size"
    );
    assert_eq!(ours["items"].as_array().unwrap().len(), 7);
    // UUIDs as the reference encodes them: {"UUID": 32 lowercase hex digits}.
    let uuid = ours["items"][0]["originator_id"].as_object().unwrap();
    assert_eq!(uuid.len(), 1);
    let hex = uuid["UUID"].as_str().unwrap();
    assert!(
        hex.len() == 32
            && hex
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{hex}"
    );
    // Exactly the four section keys: the reference client builds Section(**dict).
    let keys: Vec<_> = ours.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["items", "next_id", "previous_id", "section_id"]);
}

#[test]
fn binary_states_non_ascii_text_and_dependencies_round_trip() {
    let item = |state: Vec<u8>, topic: &str| Notification {
        id: 1,
        item: SequencedItem {
            sequence_id: Uuid::new_v4(),
            position: 3,
            topic: topic.to_string().into(),
            state: state.into(),
        },
        causal_dependencies: Some("[{\"notification_id\":5,\"pipeline_id\":0}]".into()),
    };
    let section = Section {
        section_id: "1,5".into(),
        items: vec![
            item(vec![0xff, 0x00, 0x9c, 1, 2], "t"),
            item("{\"name\":\"Zoë 😀\"}".as_bytes().to_vec(), "Café"),
        ],
        previous_id: None,
        next_id: None,
    };
    let json = encode_section(&section).unwrap();
    assert!(json.is_ascii());
    assert!(
        json.contains(r#""state":{"__bytes__":"/wCcAQI="}"#),
        "{json}"
    );
    assert!(json.contains(r#"Zo\u00eb \ud83d\ude00"#), "{json}");
    assert!(json.contains(r#""topic":"Caf\u00e9""#), "{json}");
    let back: Section<Notification> = decode_section(json.as_bytes()).unwrap();
    assert_eq!(back, section);
}

#[test]
fn the_decoder_accepts_the_reference_variants() {
    let json = r#"{"section_id":"6,10","previous_id":"1,5","next_id":null,"items":[
        {"id":6,"sequence_id":{"UUID":"4b800622cd544f37b328c173bbc25b05"},"position":2,"topic":"t","state":"{}"},
        {"id":7,"originator_id":"4b800622-cd54-4f37-b328-c173bbc25b05","originator_version":3,"topic":"t","state":"{}",
         "causal_dependencies":[{"notification_id":1}]}]}"#;
    let s: Section<Notification> = decode_section(json.as_bytes()).unwrap();
    assert_eq!(s.items[0].item.position, 2);
    assert_eq!(s.items[0].causal_dependencies, None);
    assert_eq!(s.items[1].item.sequence_id, s.items[0].item.sequence_id);
    assert_eq!(
        s.items[1].causal_dependencies.as_deref(),
        Some(r#"[{"notification_id":1}]"#)
    );
}

#[test]
fn malformed_sections_are_bad_section_errors() {
    let cases = [
        "",
        "not json",
        "[]",
        r#"{"items":[]}"#,
        r#"{"section_id":"current","items":[]}"#,
        r#"{"section_id":"1,5","items":[],"next_id":"later"}"#,
        r#"{"section_id":"1,5","items":[{"id":1}]}"#,
        r#"{"section_id":"1,5","items":[{"id":1,"originator_id":{"UUID":"nope"},"originator_version":0,"topic":"t","state":"{}"}]}"#,
        r#"{"section_id":"1,5","items":[{"id":1,"originator_id":{"UUID":"4b800622cd544f37b328c173bbc25b05"},"originator_version":0,"topic":"t","state":{"__bytes__":"%%%"}}]}"#,
    ];
    for c in cases {
        match decode_section::<Notification>(c.as_bytes()) {
            Err(Error::BadSection(_)) => {}
            other => panic!("{c:?}: expected BadSection, got {other:?}"),
        }
    }
}
