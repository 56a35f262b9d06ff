//! A NaN or infinite number is refused when its event is triggered (issue 12, defect 4):
//! serde_json would store it as `null`, and the aggregate could never be loaded again. The
//! error names the event and the field; nothing is pending and the aggregate is unchanged.

mod support;

use es_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub celsius: f64,
}

#[aggregate]
pub struct Probe {
    #[attribute]
    gain: f64,
    readings: Vec<Reading>,
}

#[aggregate]
impl Probe {
    #[event(Installed)]
    pub fn install(gain: f64) -> Self {
        Probe {
            gain,
            readings: vec![],
        }
    }

    #[event(Measured)]
    pub fn measure(&mut self, readings: Vec<Reading>) {
        self.readings.extend(readings);
    }

    /// Makes a NaN itself: the aggregate's own arithmetic, then a snapshot of it.
    #[event(Calibrated)]
    pub fn calibrate(&mut self, by: f64) {
        self.gain /= by;
    }
}

/// The error must be NonFiniteNumber for `field` of an event whose topic ends with `event`.
fn assert_refused(e: Error, event: &str, field: &str) {
    match &e {
        Error::NonFiniteNumber {
            topic,
            field: f,
            value,
        } => {
            assert!(topic.ends_with(event), "{topic}");
            assert_eq!(f, field);
            assert!(!value.is_finite());
            assert!(e.to_string().contains(field), "{e}");
        }
        other => panic!("expected NonFiniteNumber, got {other:?}"),
    }
}

#[test]
fn creating_with_nan_or_infinity_is_refused_naming_the_field() {
    assert_refused(Probe::install(f64::NAN).unwrap_err(), "Installed", "gain");
    assert_refused(
        Probe::install(f64::NEG_INFINITY).unwrap_err(),
        "Installed",
        "gain",
    );
}

#[test]
fn a_command_with_a_nested_infinity_is_refused_and_changes_nothing() {
    let mut p = Probe::install(1.5).unwrap();
    p.measure(vec![Reading { celsius: 20.0 }]).unwrap();
    let (version, pending) = (p.version(), p.pending_events().len());
    let err = p
        .measure(vec![
            Reading { celsius: 21.0 },
            Reading {
                celsius: f64::INFINITY,
            },
        ])
        .unwrap_err();
    assert_refused(err, "Measured", "readings[1].celsius");
    assert_eq!(p.version(), version);
    assert_eq!(p.pending_events().len(), pending);
    assert_eq!(p.readings, vec![Reading { celsius: 20.0 }]);
    // A finite value still works after the refusal.
    p.measure(vec![Reading { celsius: 22.0 }]).unwrap();
    assert_eq!(p.version(), version + 1);
}

#[test]
fn an_attribute_set_to_nan_is_refused_and_changes_nothing() {
    let mut p = Probe::install(1.5).unwrap();
    let version = p.version();
    assert!(p.set_gain(f64::NAN).is_err());
    assert_eq!(p.gain, 1.5);
    assert_eq!(p.version(), version);
    assert_eq!(p.pending_events().len(), 1);
}

#[tokio::test]
async fn nothing_unreadable_is_stored_on_any_backend() {
    for (backend, db) in support::databases().await {
        let app = support::app_on(&db, "nan").build().await.unwrap();
        let mut p = Probe::install(2.0).unwrap();
        assert!(p.measure(vec![Reading { celsius: f64::NAN }]).is_err());
        app.save(&mut p).await.unwrap();
        // What was stored reads back: the refused event never existed.
        let back: Probe = app.repository().get(p.id()).await.unwrap();
        assert_eq!(back.version(), 1, "{backend}");
        assert_eq!(back.gain, 2.0, "{backend}");
        assert!(back.readings.is_empty(), "{backend}");
    }
}

#[tokio::test]
async fn a_snapshot_of_a_state_holding_infinity_is_refused_and_the_events_still_load() {
    let db: std::sync::Arc<dyn es_runtime::application::Database> =
        std::sync::Arc::new(es_runtime::record::memory::InMemoryDatabase::new());
    let app = support::app_on(&db, "nansnap")
        .snapshotting()
        .build()
        .await
        .unwrap();
    let mut p = Probe::install(1.5).unwrap();
    // A finite event whose mutation divides by zero: the state holds an infinity.
    p.calibrate(0.0).unwrap();
    app.save(&mut p).await.unwrap();
    let err = app.take_snapshot::<Probe>(p.id(), None).await.unwrap_err();
    match err {
        Error::NonFiniteNumber { field, .. } => assert_eq!(field, "gain"),
        other => panic!("expected NonFiniteNumber, got {other:?}"),
    }
    assert!(app
        .get_snapshot::<Probe>(p.id(), None)
        .await
        .unwrap()
        .is_none());
    let back: Probe = app.repository().get(p.id()).await.unwrap();
    assert_eq!(back.version(), 2);
    assert!(back.gain.is_infinite());
}
