//! The domain core used without macros: what `#[aggregate]` generates, written out by hand.

mod common;
use common::{Added, Counter, Started};
use es_runtime::domain::aggregate::{create, replay, trigger};
use es_runtime::domain::event::decode_event;
use es_runtime::prelude::*;

fn history() -> (Counter, Vec<Box<dyn AnyEvent>>) {
    let mut c = create(Uuid::new_v4(), Started { count: 1 }).unwrap();
    trigger(&mut c, Added { by: 2 }).unwrap();
    trigger(&mut c, Added { by: 3 }).unwrap();
    let events = c.collect_pending();
    (c, events)
}

#[test]
fn trigger_applies_and_replay_rebuilds_the_same_state_and_head() {
    let (c, events) = history();
    assert_eq!(c.count, 6);
    assert_eq!(c.version(), 3);
    assert_eq!(events.len(), 3);
    let stored: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|e| (e.topic().to_string(), e.to_state()))
        .collect();
    let decoded: Vec<Box<dyn AnyEvent>> = stored
        .iter()
        .map(|(t, s)| decode_event(t, s).unwrap())
        .collect();
    for (a, b) in events.iter().zip(&decoded) {
        assert!(**a == **b);
    }
    let copy: Counter = replay(decoded).unwrap().unwrap();
    assert_eq!(copy, c);
    assert_eq!(copy.head(), events[2].meta().hash);
}

#[test]
fn damaged_state_is_an_event_hash_error() {
    let (_, events) = history();
    let mut state = events[1].to_state();
    let s = String::from_utf8(state.clone())
        .unwrap()
        .replace("\"by\":2", "\"by\":9");
    state = s.into_bytes();
    match decode_event(events[1].topic(), &state) {
        Err(Error::DataIntegrity(IntegrityError::EventHash { .. })) => {}
        other => panic!("expected EventHash, got {other:?}"),
    }
}

#[test]
fn broken_chain_and_wrong_version_are_typed_errors() {
    let (_, events) = history();
    let without_second = vec![events[0].clone(), events[2].clone()];
    match replay::<Counter>(without_second) {
        Err(Error::DataIntegrity(IntegrityError::OriginatorVersion { .. })) => {}
        other => panic!("expected OriginatorVersion, got {other:?}"),
    }
    let (_, other_events) = history();
    let mixed = vec![events[0].clone(), other_events[1].clone()];
    match replay::<Counter>(mixed) {
        Err(Error::DataIntegrity(IntegrityError::OriginatorId { .. })) => {}
        other => panic!("expected OriginatorId, got {other:?}"),
    }
}

#[test]
fn discarded_aggregate_rejects_commands() {
    let (mut c, _) = history();
    c.discard().unwrap();
    assert!(c.is_discarded());
    let before = c.clone();
    assert!(matches!(
        trigger(&mut c, Added { by: 1 }),
        Err(Error::EntityIsDiscarded(_))
    ));
    assert_eq!(c, before);
}

#[test]
fn unknown_topic_is_a_topic_resolution_error() {
    let (_, events) = history();
    let state = String::from_utf8(events[1].to_state()).unwrap();
    let err = decode_event("tests::Nope", state.as_bytes()).unwrap_err();
    assert!(matches!(err, Error::DataIntegrity(_)), "{err}");
    assert!(matches!(
        es_runtime::domain::topic::resolve("tests::Nope"),
        Err(Error::TopicResolution(_))
    ));
}

/// A state as another writer might lay it out (keys sorted, spaces), hashed the same way.
fn relaid(state: &[u8], extra: &str) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_slice(state).unwrap();
    let mut fields = v.as_object().unwrap().clone();
    fields.remove("hash");
    // serde_json's map is sorted by key: "data" comes first, unlike es's own layout.
    let body = serde_json::to_string_pretty(&serde_json::Value::Object(fields)).unwrap();
    let open = body.trim_end().strip_suffix('}').unwrap().to_string() + extra;
    let hash = es_runtime::domain::integrity::hash_canonical(format!("{open}}}").as_bytes());
    format!("{open},\"hash\":\"{hash}\"}}").into_bytes()
}

#[test]
fn states_in_another_layout_decode_to_the_same_event() {
    let (_, events) = history();
    for e in &events {
        let state = relaid(&e.to_state(), "");
        assert!(!state.starts_with(b"{\"topic\""));
        let d = decode_event(e.topic(), &state).unwrap();
        assert_eq!(d.data_json().replace([' ', '\n'], ""), e.data_json());
        assert_eq!(d.meta().originator_version, e.meta().originator_version);
        assert_eq!(d.meta().previous_hash, e.meta().previous_hash);
        assert_eq!(d.meta().timestamp, e.meta().timestamp);
        // A new layout is new bytes, so a new hash.
        assert_ne!(d.meta().hash, e.meta().hash);
    }
}

#[test]
fn members_after_the_payload_in_es_layout_are_corrupt() {
    let (_, events) = history();
    let state = events[1].to_state();
    let n = state.len() - 75;
    let open = String::from_utf8(state[..n].to_vec()).unwrap() + ",\"extra\":1";
    let hash = es_runtime::domain::integrity::hash_canonical(format!("{open}}}").as_bytes());
    let forged = format!("{open},\"hash\":\"{hash}\"}}").into_bytes();
    assert!(matches!(
        decode_event(events[1].topic(), &forged),
        Err(Error::DataIntegrity(_))
    ));
}

#[test]
fn every_truncation_and_flipped_byte_is_a_typed_error() {
    let (_, events) = history();
    for e in &events {
        let state = e.to_state();
        for cut in 0..state.len() {
            assert!(matches!(
                decode_event(e.topic(), &state[..cut]),
                Err(Error::DataIntegrity(_))
            ));
        }
        for i in 0..state.len() {
            let mut bad = state.clone();
            bad[i] ^= 0x55;
            assert!(decode_event(e.topic(), &bad).is_err(), "byte {i} flipped");
        }
    }
}
