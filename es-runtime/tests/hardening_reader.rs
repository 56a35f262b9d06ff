//! The notification log reader checks what a log hands it: gaps, items out of order, sections
//! that are not the ones asked for and links that go back or loop are each a typed error, with
//! the reader's position unchanged (issue 12, defect 1). The logs here are fakes that answer
//! whatever the test scripts.

use async_trait::async_trait;
use es_runtime::notify::{NotificationLog, NotificationLogReader, Section};
use es_runtime::record::{Notification, SequencedItem};
use es_runtime::Error;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// A notification numbered `id`.
fn n(id: i64) -> Notification {
    Notification {
        id,
        item: SequencedItem {
            sequence_id: Uuid::from_u128(id as u128),
            position: 0,
            topic: "tests::Thing.Created".into(),
            state: b"{}".to_vec().into(),
        },
        causal_dependencies: None,
    }
}

fn section(id: &str, ids: &[i64], previous: Option<&str>, next: Option<&str>) -> Section {
    Section {
        section_id: id.into(),
        items: ids.iter().map(|i| n(*i)).collect(),
        previous_id: previous.map(Into::into),
        next_id: next.map(Into::into),
    }
}

/// Answers a request for a section id.
type Answer = Box<dyn Fn(&str) -> Section + Send + Sync>;

/// A log that answers from a script: section id → section, `"current"` included; any other id
/// is answered by `fallback` (if any), and requests are counted.
struct Scripted {
    sections: HashMap<String, Section>,
    fallback: Option<Answer>,
    requests: AtomicUsize,
}

impl Scripted {
    fn new(sections: Vec<(&str, Section)>) -> Arc<Self> {
        Arc::new(Scripted {
            sections: sections
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            fallback: None,
            requests: AtomicUsize::new(0),
        })
    }
    fn answering(f: impl Fn(&str) -> Section + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Scripted {
            sections: HashMap::new(),
            fallback: Some(Box::new(f)),
            requests: AtomicUsize::new(0),
        })
    }
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl NotificationLog for Scripted {
    async fn section(&self, section_id: &str) -> es_runtime::Result<Section> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if let Some(s) = self.sections.get(section_id) {
            return Ok(s.clone());
        }
        match &self.fallback {
            Some(f) => Ok(f(section_id)),
            None => Err(Error::BadSection(format!("no section {section_id}"))),
        }
    }
}

fn ids(items: &[Notification]) -> Vec<i64> {
    items.iter().map(|n| n.id).collect()
}

/// The error of `read_all`, which must be `BadSection` and mention `what`; the position must
/// stay where it was.
async fn refused(reader: &mut NotificationLogReader, what: &str) -> String {
    let before = reader.position();
    let err = reader.read_all().await.unwrap_err();
    let Error::BadSection(msg) = &err else {
        panic!("expected BadSection, got {err:?}");
    };
    assert!(msg.contains(what), "{msg:?} does not mention {what:?}");
    assert_eq!(reader.position(), before, "the position moved");
    msg.clone()
}

#[tokio::test]
async fn a_gap_inside_a_section_is_refused_and_the_position_holds() {
    let sec = section("1,10", &[1, 2, 4, 5, 6], None, None);
    let log = Scripted::new(vec![("current", sec.clone()), ("1,10", sec)]);
    let mut reader = NotificationLogReader::new(log.clone());
    refused(&mut reader, "gap").await;
    // Asked again, the same answer: nothing was taken in between.
    refused(&mut reader, "gap").await;
    assert_eq!(reader.position(), 0);
    // Item by item, the items before the gap are not handed out either (the section is
    // checked whole before any of it is used).
    assert!(matches!(
        reader.next_item().await,
        Err(Error::BadSection(_))
    ));
    assert_eq!(reader.position(), 0);
}

#[tokio::test]
async fn a_gap_between_sections_is_refused_after_the_items_before_it() {
    let first = section("1,5", &[1, 2, 3, 4, 5], None, Some("6,10"));
    let second = section("6,10", &[7, 8], Some("1,5"), None);
    let log = Scripted::new(vec![
        ("current", second.clone()),
        ("1,5", first),
        ("6,10", second),
    ]);
    let mut reader = NotificationLogReader::new(log);
    // read_all fails whole: nothing is consumed.
    refused(&mut reader, "item 7 where 6 is next").await;
    // One at a time: 1..5 are fine, the sixth read fails, the position stays at 5.
    for i in 1..=5 {
        assert_eq!(reader.next_item().await.unwrap().unwrap().id, i);
    }
    assert!(matches!(
        reader.next_item().await,
        Err(Error::BadSection(_))
    ));
    assert_eq!(reader.position(), 5);
    refused(&mut reader, "gap").await;
}

#[tokio::test]
async fn an_archived_section_without_its_last_item_is_a_gap() {
    let first = section("1,5", &[1, 2, 3], None, Some("6,10"));
    let second = section("6,10", &[], Some("1,5"), None);
    let log = Scripted::new(vec![
        ("current", second.clone()),
        ("1,5", first),
        ("6,10", second),
    ]);
    let mut reader = NotificationLogReader::new(log);
    refused(&mut reader, "last item 5 is missing").await;
}

#[tokio::test]
async fn items_out_of_order_are_refused_not_dropped() {
    let sec = section("1,10", &[3, 2, 1], None, None);
    let log = Scripted::new(vec![("current", sec.clone()), ("1,10", sec)]);
    let mut reader = NotificationLogReader::new(log);
    refused(&mut reader, "out of order").await;

    let sec = section("1,10", &[1, 3, 2], None, None);
    let log = Scripted::new(vec![("current", sec.clone()), ("1,10", sec)]);
    let mut reader = NotificationLogReader::new(log);
    refused(&mut reader, "out of order").await;

    // A repeated id is out of order too.
    let sec = section("1,10", &[1, 2, 2], None, None);
    let log = Scripted::new(vec![("current", sec.clone()), ("1,10", sec)]);
    let mut reader = NotificationLogReader::new(log);
    refused(&mut reader, "out of order").await;
}

#[tokio::test]
async fn an_item_outside_its_section_is_refused() {
    let sec = section("1,5", &[1, 2, 3, 4, 5, 6], None, None);
    let log = Scripted::new(vec![("current", sec.clone()), ("1,5", sec)]);
    let mut reader = NotificationLogReader::new(log);
    refused(&mut reader, "outside its range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_links_that_loop_are_refused_quickly() {
    // 1,5 → 6,10 → 1,5 → ...: every section full, the second links back to the first.
    let first = section("1,5", &[1, 2, 3, 4, 5], None, Some("6,10"));
    let second = section("6,10", &[6, 7, 8, 9, 10], Some("1,5"), Some("1,5"));
    let log = Scripted::new(vec![
        ("current", first.clone()),
        ("1,5", first),
        ("6,10", second),
    ]);
    let mut reader = NotificationLogReader::new(log.clone());
    let started = std::time::Instant::now();
    refused(&mut reader, "links forward").await;
    assert!(log.requests() < 10, "{} requests", log.requests());
    assert!(started.elapsed().as_secs() < 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_answers_another_section_than_asked_is_refused() {
    // Whatever is asked, the log answers "11,15", linked back to "6,10": following
    // previous links would never arrive.
    let log = Scripted::answering(|_| section("11,15", &[11], Some("6,10"), None));
    let mut reader = NotificationLogReader::new(log.clone());
    refused(&mut reader, "the log answered with section 11,15").await;
    assert!(log.requests() < 10, "{} requests", log.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_empty_sections_stop_at_the_walk_limit() {
    // With gaps allowed, empty archived sections are legal, but a log of only those never
    // ends: the reader gives up after its walk limit.
    let log = Scripted::answering(|id| {
        let first: i64 = id
            .split(',')
            .next()
            .and_then(|f| f.parse().ok())
            .unwrap_or(1);
        let prev = (first > 1).then(|| format!("{},{}", first - 5, first - 1));
        Section {
            section_id: format!("{first},{}", first + 4),
            items: vec![],
            previous_id: prev,
            next_id: Some(format!("{},{}", first + 5, first + 9)),
        }
    });
    let mut reader = NotificationLogReader::new(log.clone())
        .allowing_gaps()
        .with_max_walk(50);
    let started = std::time::Instant::now();
    refused(&mut reader, "followed 50 sections").await;
    assert!(log.requests() <= 52, "{} requests", log.requests());
    assert!(started.elapsed().as_secs() < 2);
    // Without gaps allowed the first empty archived section is refused at once.
    let mut strict = NotificationLogReader::new(log.clone());
    refused(&mut strict, "missing").await;
}

#[tokio::test]
async fn allowing_gaps_passes_over_missing_numbers_but_not_disorder() {
    let sec = section("1,10", &[1, 2, 4, 5, 6], None, None);
    let log = Scripted::new(vec![("current", sec.clone()), ("1,10", sec)]);
    let mut reader = NotificationLogReader::new(log).allowing_gaps();
    assert_eq!(ids(&reader.read_all().await.unwrap()), vec![1, 2, 4, 5, 6]);
    assert_eq!(reader.position(), 6);

    let sec = section("1,10", &[3, 2, 1], None, None);
    let log = Scripted::new(vec![("current", sec.clone()), ("1,10", sec)]);
    let mut reader = NotificationLogReader::new(log).allowing_gaps();
    refused(&mut reader, "out of order").await;
}

#[tokio::test]
async fn a_well_formed_log_still_reads_whole() {
    let first = section("1,5", &[1, 2, 3, 4, 5], None, Some("6,10"));
    let second = section("6,10", &[6, 7], Some("1,5"), None);
    let log = Scripted::new(vec![
        ("current", second.clone()),
        ("1,5", first),
        ("6,10", second),
    ]);
    let mut reader = NotificationLogReader::new(log);
    assert_eq!(
        ids(&reader.read_all().await.unwrap()),
        (1..=7).collect::<Vec<_>>()
    );
    reader.seek(3).unwrap();
    assert_eq!(ids(&reader.read_all().await.unwrap()), vec![4, 5, 6, 7]);
}
