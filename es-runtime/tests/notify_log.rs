//! Local notification logs and the reader (manual §10.4, §10.6), over raw items.

use es_runtime::notify::{
    NotificationLog, NotificationLogReader, RecordNotificationLog, SectionId,
};
use es_runtime::record::memory::InMemoryDatabase;
use es_runtime::record::{Notification, RecordBatch, RecordKind, RecordManager, SequencedItem};
use es_runtime::Error;
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

fn item(seq: Uuid, position: i64) -> SequencedItem {
    SequencedItem {
        sequence_id: seq,
        position,
        topic: "tests::Thing.Happened".into(),
        state: format!("{{\"n\":{position}}}").into_bytes().into(),
    }
}

fn records() -> Arc<dyn RecordManager> {
    Arc::new(InMemoryDatabase::new().record_manager(RecordKind::Events, "app", 0))
}

async fn write_n(records: &Arc<dyn RecordManager>, n: i64) -> Vec<SequencedItem> {
    let mut written = Vec::new();
    for _ in 0..n {
        let i = item(Uuid::new_v4(), 0);
        records
            .write(&RecordBatch::items(vec![i.clone()]))
            .await
            .unwrap();
        written.push(i);
    }
    written
}

fn ids(items: &[Notification]) -> Vec<i64> {
    items.iter().map(|n| n.id).collect()
}

async fn sections_link_and_normalise_as_in_the_manual() {
    let records = records();
    let log = RecordNotificationLog::new(records.clone(), 5).unwrap();
    let empty = log.section("current").await.unwrap();
    assert_eq!(empty.section_id, "1,5");
    assert_eq!(
        (empty.previous_id, empty.next_id, empty.items.len()),
        (None, None, 0)
    );

    let written = write_n(&records, 9).await;
    let current = log.section("current").await.unwrap();
    assert_eq!(current.section_id, "6,10");
    assert_eq!(current.previous_id.as_deref(), Some("1,5"));
    assert_eq!(current.next_id, None);
    assert_eq!(ids(&current.items), vec![6, 7, 8, 9]);
    assert!(!current.is_archived());

    let first = log.section("1,5").await.unwrap();
    assert_eq!(first.section_id, "1,5");
    assert_eq!(first.previous_id, None);
    assert_eq!(first.next_id.as_deref(), Some("6,10"));
    assert_eq!(ids(&first.items), vec![1, 2, 3, 4, 5]);
    assert_eq!(first.items[0].item, written[0]);
    assert_eq!(
        log.section("1,10").await.unwrap(),
        first,
        "1,10 is normalised to 1,5"
    );
    assert_eq!(log.section("3,4").await.unwrap().section_id, "1,5");
    assert_eq!(log.section("7,8").await.unwrap().section_id, "6,10");

    // A full current section: "current" moves on to the next, empty one.
    write_n(&records, 1).await;
    let current = log.section("current").await.unwrap();
    assert_eq!(current.section_id, "11,15");
    assert_eq!(current.previous_id.as_deref(), Some("6,10"));
    assert!(current.items.is_empty());
    let second = log.section("6,10").await.unwrap();
    assert_eq!(second.next_id.as_deref(), Some("11,15"));
    assert!(second.is_archived());
    // Beyond the end: empty, not archived.
    let beyond = log.section("101,105").await.unwrap();
    assert!(beyond.items.is_empty() && beyond.next_id.is_none());
}

async fn bad_section_ids_and_bad_configuration_are_typed_errors() {
    let log = RecordNotificationLog::new(records(), 5).unwrap();
    for bad in [
        "", "first", "1", "0,5", "5,1", "x,5", "1,y", "1,5,9", "-3,2",
    ] {
        match log.section(bad).await {
            Err(Error::BadSection(m)) => assert!(m.contains("section id"), "{m}"),
            other => panic!("{bad:?}: expected BadSection, got {other:?}"),
        }
    }
    let huge = format!("{},{}", i64::MAX - 1, i64::MAX);
    assert!(matches!(
        log.section(&huge).await,
        Err(Error::BadSection(_))
    ));
    assert!(matches!(
        RecordNotificationLog::new(records(), 0),
        Err(Error::Configuration(_))
    ));
    let snapshots: Arc<dyn RecordManager> =
        Arc::new(InMemoryDatabase::new().record_manager(RecordKind::Snapshots, "app", 0));
    assert!(matches!(
        RecordNotificationLog::new(snapshots, 5),
        Err(Error::Configuration(_))
    ));
    assert_eq!(SectionId::parse("2,3").unwrap().first(), Some(2));
}

async fn reader_seeks_reads_bounded_and_lazily_and_keeps_its_position() {
    let records = records();
    let log = Arc::new(RecordNotificationLog::new(records.clone(), 5).unwrap());
    let mut reader = NotificationLogReader::new(log);
    assert_eq!(reader.position(), 0);
    reader.seek(10).unwrap();
    assert_eq!(reader.position(), 10);
    assert!(matches!(reader.seek(-1), Err(Error::BadSection(_))));
    reader.seek(0).unwrap();

    write_n(&records, 12).await;
    assert_eq!(ids(&reader.read(3).await.unwrap()), vec![1, 2, 3]);
    assert_eq!(reader.position(), 3);
    assert_eq!(reader.next_item().await.unwrap().map(|n| n.id), Some(4));
    assert_eq!(ids(&reader.read(4).await.unwrap()), vec![5, 6, 7, 8]);
    assert_eq!(
        ids(&reader.read_all().await.unwrap()),
        (9..=12).collect::<Vec<_>>()
    );
    assert!(reader.read_all().await.unwrap().is_empty());
    assert!(reader.next_item().await.unwrap().is_none());
    assert_eq!(reader.position(), 12);

    write_n(&records, 2).await;
    assert_eq!(ids(&reader.read_all().await.unwrap()), vec![13, 14]);
    reader.seek(6).unwrap();
    assert_eq!(ids(&reader.read(2).await.unwrap()), vec![7, 8]);
    reader.seek(100).unwrap();
    assert!(reader.read_all().await.unwrap().is_empty());
    assert_eq!(reader.position(), 100);
}

async fn reader_goes_straight_to_its_section_once_it_knows_the_size() {
    let records = records();
    write_n(&records, 100).await;
    let mut reader =
        NotificationLogReader::new(Arc::new(RecordNotificationLog::new(records, 10).unwrap()));
    assert_eq!(reader.read_all().await.unwrap().len(), 100);
    // "current" once, then sections 1..10 (walking back would take 10 more), then the
    // empty section 101,110 linked from the last.
    assert!(
        reader.sections_read() <= 12,
        "{} sections",
        reader.sections_read()
    );
    let before = reader.sections_read();
    reader.seek(55).unwrap();
    assert_eq!(reader.read(3).await.unwrap()[0].id, 56);
    assert_eq!(reader.sections_read() - before, 1, "one section for a seek");
}

async fn a_deleted_record_leaves_a_gap_the_reader_refuses_unless_allowed() {
    let records = records();
    let written = write_n(&records, 7).await;
    records
        .delete_item(written[2].sequence_id, 0)
        .await
        .unwrap();
    let log = Arc::new(RecordNotificationLog::new(records, 5).unwrap());
    let first = log.section("1,5").await.unwrap();
    assert_eq!(ids(&first.items), vec![1, 2, 4, 5]);
    assert_eq!(first.next_id.as_deref(), Some("6,10"), "still archived");
    // A reader refuses the gap by default (it cannot tell a deleted record from a lost
    // one) and passes over it when told to.
    let mut strict = NotificationLogReader::new(log.clone());
    assert!(matches!(strict.read_all().await, Err(Error::BadSection(_))));
    assert_eq!(strict.position(), 0);
    let mut reader = NotificationLogReader::new(log).allowing_gaps();
    assert_eq!(
        ids(&reader.read_all().await.unwrap()),
        vec![1, 2, 4, 5, 6, 7]
    );
}

/// [`tail_while_writing`] on two applications' logs: read section by section, then with
/// sections fetched three ahead.
#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn tail_without_and_with_prefetch(records: impl Fn(&str) -> Arc<dyn RecordManager>) {
    tail_while_writing(records("tail"), Follow::Sections(0)).await;
    tail_while_writing(records("tail2"), Follow::Sections(3)).await;
    tail_while_writing(records("tail3"), Follow::Streamed).await;
}

/// How a tailing reader follows the log.
#[derive(Clone, Copy, Debug)]
enum Follow {
    /// `read(13)` section by section, fetching this many sections ahead; every section is
    /// checked for gaps.
    Sections(usize),
    /// `for_each`, straight from the records; every call is checked for gaps.
    Streamed,
}

/// Writers commit concurrently while a reader tails the log: the reader sees every
/// notification once, in id order, and each is the item that was written.
async fn tail_while_writing(records: Arc<dyn RecordManager>, follow: Follow) {
    const WRITERS: usize = 4;
    const BATCHES: usize = 60;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let records = records.clone();
        tasks.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for b in 0..BATCHES {
                let seq = Uuid::new_v4();
                let n = 1 + (w + b) % 3;
                let items: Vec<_> = (0..n as i64).map(|p| item(seq, p)).collect();
                records
                    .write(&RecordBatch::items(items.clone()))
                    .await
                    .unwrap();
                written.extend(items);
                tokio::task::yield_now().await;
            }
            written
        }));
    }
    let total: usize = (0..WRITERS)
        .map(|w| (0..BATCHES).map(|b| 1 + (w + b) % 3).sum::<usize>())
        .sum();
    let log = RecordNotificationLog::new(records.clone(), 7).unwrap();
    let mut reader = match follow {
        Follow::Sections(prefetch) => {
            NotificationLogReader::new(Arc::new(GapSpy(log))).with_prefetch(prefetch)
        }
        Follow::Streamed => NotificationLogReader::new(Arc::new(log)),
    };
    let mut seen: Vec<Notification> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while seen.len() < total {
        if std::time::Instant::now() > deadline {
            let max = records.max_notification_id().await.unwrap();
            let all = records.get_notifications(1, max, None).await.unwrap();
            let seen_ids: HashSet<i64> = seen.iter().map(|n| n.id).collect();
            let missing: Vec<i64> = all
                .iter()
                .map(|n| n.id)
                .filter(|i| !seen_ids.contains(i))
                .collect();
            panic!(
                "reader stalled at {} of {total}: position {}, max id {max}, {} visible, missing {missing:?}",
                seen.len(),
                reader.position(),
                all.len()
            );
        }
        let batch = match follow {
            Follow::Sections(_) => reader.read(13).await.unwrap(),
            Follow::Streamed => {
                let mut batch: Vec<Notification> = Vec::new();
                let from = reader.position();
                let n = reader
                    .for_each(|n| {
                        batch.push(n);
                        Ok(())
                    })
                    .await
                    .unwrap();
                assert_eq!(n, batch.len());
                assert_eq!(
                    ids(&batch),
                    (from + 1..=from + n as i64).collect::<Vec<_>>(),
                    "one for_each hands out a run without gaps"
                );
                assert_eq!(reader.position(), from + n as i64);
                batch
            }
        };
        if batch.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        seen.extend(batch);
    }
    let mut written = HashSet::new();
    for t in tasks {
        for i in t.await.unwrap() {
            written.insert((i.sequence_id, i.position));
        }
    }
    assert_eq!(
        ids(&seen),
        (1..=total as i64).collect::<Vec<_>>(),
        "no skip, no repeat, in order"
    );
    let seen_items: HashSet<_> = seen
        .iter()
        .map(|n| (n.item.sequence_id, n.item.position))
        .collect();
    assert_eq!(seen_items, written);
    assert!(reader.read_all().await.unwrap().is_empty());
}

async fn reader_never_skips_or_repeats_while_writers_commit_in_memory() {
    tail_while_writing(records(), Follow::Sections(0)).await;
}

async fn a_streaming_reader_never_skips_or_repeats_while_writers_commit_in_memory() {
    tail_while_writing(records(), Follow::Streamed).await;
}

async fn a_prefetching_reader_never_skips_or_repeats_while_writers_commit_in_memory() {
    tail_while_writing(records(), Follow::Sections(3)).await;
}

#[cfg(feature = "sqlite")]
async fn reader_never_skips_or_repeats_while_writers_commit_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("es_notify_{}.db", Uuid::new_v4().simple()));
    let url = format!("sqlite://{}", dir.display());
    let db = es_runtime::application::connect(&url).await.unwrap();
    // A database from `connect` creates the tables of the features in use: an application
    // makes the events table these raw record managers write to.
    es_runtime::application::Application::builder("tail")
        .database(db.clone())
        .build()
        .await
        .unwrap();
    let records = db.record_manager(RecordKind::Events, "tail", 0);
    tail_while_writing(records, Follow::Sections(0)).await;
    tail_while_writing(
        db.record_manager(RecordKind::Events, "tail2", 0),
        Follow::Sections(3),
    )
    .await;
    tail_while_writing(
        db.record_manager(RecordKind::Events, "tail3", 0),
        Follow::Streamed,
    )
    .await;
    let _ = std::fs::remove_file(&dir);
}

mod server_support;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use server_support::server_url;

#[cfg(feature = "postgres")]
async fn reader_never_skips_or_repeats_while_writers_commit_on_postgres() {
    use es_runtime::record::postgres::PostgresDatabase;
    let url = server_url("ES_POSTGRES_URL", "postgres").expect("the harness found the server");
    let prefix = format!("es_tail_{}_", &Uuid::new_v4().simple().to_string()[..10]);
    let db = PostgresDatabase::connect_with(&url, 6)
        .await
        .expect("PostgreSQL at ES_POSTGRES_URL")
        .with_table_prefix(&prefix)
        .unwrap();
    db.setup_tables().await.unwrap();
    tail_without_and_with_prefetch(|name| Arc::new(db.record_manager(RecordKind::Events, name, 0)))
        .await;
    db.drop_tables().await.unwrap();
}

#[cfg(feature = "mysql")]
async fn reader_never_skips_or_repeats_while_writers_commit_on_mysql() {
    use es_runtime::record::mysql::MySqlDatabase;
    let url = server_url("ES_MYSQL_URL", "mysql").expect("the harness found the server");
    let prefix = format!("es_tail_{}_", &Uuid::new_v4().simple().to_string()[..10]);
    let db = MySqlDatabase::connect_with(&url, 6)
        .await
        .expect("MySQL at ES_MYSQL_URL")
        .with_table_prefix(&prefix)
        .unwrap();
    db.setup_tables().await.unwrap();
    tail_without_and_with_prefetch(|name| Arc::new(db.record_manager(RecordKind::Events, name, 0)))
        .await;
    db.drop_tables().await.unwrap();
}

/// Checks every section the reader gets: its items are numbered from the section's first
/// number without gaps, and an archived section holds all its numbers (no record is deleted in
/// these tests).
struct GapSpy(RecordNotificationLog);

#[async_trait::async_trait]
impl NotificationLog for GapSpy {
    async fn section(&self, id: &str) -> es_runtime::Result<es_runtime::notify::Section> {
        let s = self.0.section(id).await?;
        let Some(SectionId::Range { first, last }) = s.id().ok() else {
            panic!("section id {}", s.section_id)
        };
        let ids: Vec<i64> = s.items.iter().map(|n| n.id).collect();
        assert!(
            ids.iter().enumerate().all(|(i, &n)| n == first + i as i64),
            "asked {id}, got {} with ids {ids:?}",
            s.section_id
        );
        if s.next_id.is_some() {
            assert_eq!(
                ids.len() as i64,
                last - first + 1,
                "archived {} holds {ids:?}",
                s.section_id
            );
        }
        Ok(s)
    }
}

async fn a_prefetching_reader_reads_seeks_and_counts_like_one_that_does_not() {
    let records = records();
    write_n(&records, 103).await;
    let log = Arc::new(RecordNotificationLog::new(records.clone(), 10).unwrap());
    let mut plain = NotificationLogReader::new(log.clone());
    let mut ahead = NotificationLogReader::new(log).with_prefetch(3);
    let all = plain.read_all().await.unwrap();
    assert_eq!(ids(&ahead.read_all().await.unwrap()), ids(&all));
    assert_eq!(ahead.position(), 103);
    // Sections fetched ahead count as read; at most the prefetch beyond the end of the log.
    assert!(ahead.sections_read() >= plain.sections_read());
    assert!(ahead.sections_read() <= plain.sections_read() + 3);
    // Reads in small steps cross section boundaries without a skip or a repeat.
    ahead.seek(4).unwrap();
    let mut got = Vec::new();
    loop {
        let batch = ahead.read(7).await.unwrap();
        if batch.is_empty() {
            break;
        }
        got.extend(ids(&batch));
    }
    assert_eq!(got, (5..=103).collect::<Vec<_>>());
    // Writes after the end are read on the next call.
    write_n(&records, 12).await;
    assert_eq!(
        ids(&ahead.read_all().await.unwrap()),
        (104..=115).collect::<Vec<_>>()
    );
    assert_eq!(ahead.position(), 115);
}

/// A log scripted section by section: each id answers the next of its sections in turn (the
/// last one again once they run out), and `fail` names sections that fail once.
struct Scripted {
    sections: std::sync::Mutex<std::collections::HashMap<String, Vec<es_runtime::notify::Section>>>,
    fail: std::sync::Mutex<HashSet<String>>,
    asked: std::sync::Mutex<Vec<String>>,
    /// Whether the log tells readers its section size up front.
    sized: bool,
}

impl Scripted {
    fn new() -> Self {
        Scripted {
            sections: Default::default(),
            fail: Default::default(),
            asked: Default::default(),
            sized: false,
        }
    }

    /// Section `first..=first+4` holding the items numbered `present`, archived or not.
    fn add(&self, first: i64, present: &[i64], archived: bool) {
        let id = SectionId::format(first, first + 4);
        let section = es_runtime::notify::Section {
            section_id: id.clone(),
            items: present
                .iter()
                .map(|&n| Notification {
                    id: n,
                    item: item(Uuid::nil(), n),
                    causal_dependencies: None,
                })
                .collect(),
            previous_id: (first > 1).then(|| SectionId::format(first - 5, first - 1)),
            next_id: archived.then(|| SectionId::format(first + 5, first + 9)),
        };
        self.sections
            .lock()
            .unwrap()
            .entry(id)
            .or_default()
            .push(section);
    }
}

#[async_trait::async_trait]
impl NotificationLog for Scripted {
    async fn section(&self, id: &str) -> es_runtime::Result<es_runtime::notify::Section> {
        // Normalise to the section holding the first number, as logs do.
        let first = SectionId::parse(id)?.first().unwrap_or(1);
        let first = (first - 1) / 5 * 5 + 1;
        let id = SectionId::format(first, first + 4);
        self.asked.lock().unwrap().push(id.clone());
        if self.fail.lock().unwrap().remove(&id) {
            return Err(Error::Operational(format!("section {id} failed")));
        }
        let mut all = self.sections.lock().unwrap();
        let list = all.entry(id.clone()).or_default();
        Ok(match list.len() {
            0 => es_runtime::notify::Section {
                section_id: id,
                items: vec![],
                previous_id: (first > 1).then(|| SectionId::format(first - 5, first - 1)),
                next_id: None,
            },
            1 => list[0].clone(),
            _ => list.remove(0),
        })
    }

    fn section_size(&self) -> Option<usize> {
        self.sized.then_some(5)
    }
}

async fn sections_fetched_after_a_partial_one_are_dropped_and_asked_again() {
    // 1..5 full; 6..10 partial when first asked (only 6 and 7 visible then) and full later;
    // 11..15 already holds 11 when it is fetched ahead: commits landed in between.
    let log = Arc::new(Scripted::new());
    log.add(1, &[1, 2, 3, 4, 5], true);
    log.add(6, &[6, 7], false);
    log.add(6, &[6, 7, 8, 9, 10], true);
    log.add(11, &[11], false);
    let mut reader = NotificationLogReader::new(log.clone()).with_prefetch(2);
    let mut got = Vec::new();
    while let Some(n) = reader.next_item().await.unwrap() {
        got.push(n.id);
    }
    // Never 11 before 8, 9 and 10: the 11..15 fetched ahead was dropped, and both sections
    // were asked again.
    assert_eq!(got, (1..=11).collect::<Vec<_>>());
    assert_eq!(reader.position(), 11);
    let asked = log.asked.lock().unwrap().clone();
    let times = |id: &str| asked.iter().filter(|a| *a == id).count();
    assert_eq!(times("6,10"), 2, "{asked:?}");
    assert!(times("11,15") >= 2, "{asked:?}");
}

async fn a_section_fetched_ahead_that_fails_is_an_error_and_nothing_is_consumed() {
    let log = Arc::new(Scripted::new());
    for first in [1, 6, 11] {
        let items: Vec<i64> = (first..first + 5).collect();
        log.add(first, &items, true);
    }
    log.add(16, &[16, 17], false);
    log.fail.lock().unwrap().insert("11,15".into());
    let mut reader = NotificationLogReader::new(log.clone()).with_prefetch(2);
    // The first read stops where the failed section begins: nothing of this call is lost.
    let err = reader.read(100).await.unwrap_err();
    assert!(matches!(err, Error::Operational(_)), "{err:?}");
    assert_eq!(reader.position(), 0);
    // Asked again (no longer failing), the whole log comes back in order.
    assert_eq!(
        ids(&reader.read_all().await.unwrap()),
        (1..=17).collect::<Vec<_>>()
    );
    // And item by item, an error leaves the position after the last item returned.
    let log = Arc::new(Scripted::new());
    for first in [1, 6] {
        let items: Vec<i64> = (first..first + 5).collect();
        log.add(first, &items, true);
    }
    log.fail.lock().unwrap().insert("6,10".into());
    let mut reader = NotificationLogReader::new(log.clone()).with_prefetch(1);
    for n in 1..=5 {
        assert_eq!(reader.next_item().await.unwrap().map(|i| i.id), Some(n));
    }
    assert!(reader.next_item().await.is_err());
    assert_eq!(reader.position(), 5);
    assert_eq!(reader.next_item().await.unwrap().map(|i| i.id), Some(6));
}

async fn a_reader_that_knows_the_section_size_fetches_ahead_from_the_start_and_drops_it_at_the_end()
{
    // The first section is partial when first asked; 6..10 (asked at once, ahead) already
    // holds 6: the reader must not use it before it has read 3, 4 and 5.
    let mut log = Scripted::new();
    log.sized = true;
    log.add(1, &[1, 2], false);
    log.add(1, &[1, 2, 3, 4, 5], true);
    log.add(6, &[6], false);
    let log = Arc::new(log);
    let mut reader = NotificationLogReader::new(log.clone()).with_prefetch(2);
    assert_eq!(
        ids(&reader.read_all().await.unwrap()),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(reader.position(), 6);
    {
        let asked = log.asked.lock().unwrap().clone();
        let times = |id: &str| asked.iter().filter(|a| *a == id).count();
        // Never "current": the size was known. 1..5 twice (partial, then full); 6..10 asked
        // ahead at once, dropped, and asked again after the full 1..5.
        assert_eq!(times("current"), 0, "{asked:?}");
        assert_eq!(times("1,5"), 2, "{asked:?}");
        assert!(times("6,10") >= 2, "{asked:?}");
    }
    // At the end of the log the reader no longer asks ahead of a section it has not seen full.
    log.asked.lock().unwrap().clear();
    assert!(reader.read_all().await.unwrap().is_empty());
    assert_eq!(*log.asked.lock().unwrap(), vec!["6,10".to_string()]);
    // A seek starts over, fetching ahead again.
    reader.seek(0).unwrap();
    assert_eq!(
        ids(&reader.read_all().await.unwrap()),
        vec![1, 2, 3, 4, 5, 6]
    );
}

/// A log that can only be read by sections (it does not pass `stream_after` on), as a remote
/// log.
struct SectionsOnly(RecordNotificationLog);

#[async_trait::async_trait]
impl NotificationLog for SectionsOnly {
    async fn section(&self, id: &str) -> es_runtime::Result<es_runtime::notify::Section> {
        self.0.section(id).await
    }
    fn section_size(&self) -> Option<usize> {
        Some(self.0.section_size())
    }
}

/// `for_each` hands out every item after the position, in order, leaves the position at the
/// last one, and continues from there after more writes; with the log streamed straight from
/// the records and with a log read by sections alike.
async fn for_each_reads_to_the_end_and_continues_from_its_position() {
    for streamed in [true, false] {
        let records = records();
        let written = write_n(&records, 23).await;
        let log = RecordNotificationLog::new(records.clone(), 5).unwrap();
        let mut reader = if streamed {
            NotificationLogReader::new(Arc::new(log))
        } else {
            NotificationLogReader::new(Arc::new(SectionsOnly(log)))
        };
        // An item read the lazy way leaves the rest of its section buffered: for_each hands
        // those out first, then the rest, once each.
        assert_eq!(reader.next_item().await.unwrap().unwrap().id, 1);
        let mut got = Vec::new();
        let n = reader
            .for_each(|n| {
                got.push(n);
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(n, 22, "streamed: {streamed}");
        assert_eq!(ids(&got), (2..=23).collect::<Vec<_>>());
        assert_eq!(
            got.iter().map(|n| n.item.clone()).collect::<Vec<_>>(),
            written[1..].to_vec()
        );
        assert_eq!(reader.position(), 23);
        assert_eq!(reader.for_each(|_| Ok(())).await.unwrap(), 0);
        write_n(&records, 4).await;
        let mut more = Vec::new();
        reader
            .for_each(|n| {
                more.push(n.id);
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(more, vec![24, 25, 26, 27]);
        // Seeking back reads again from there.
        reader.seek(20).unwrap();
        let mut again = Vec::new();
        reader
            .for_each(|n| {
                again.push(n.id);
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(again, (21..=27).collect::<Vec<_>>());
    }
}

/// When the callback fails, `for_each` returns its error and the position stays at the item
/// before the one it failed on: the next read starts with that item again (whether it was
/// buffered, streamed or read by sections).
async fn for_each_that_fails_leaves_the_failed_item_to_be_read_again() {
    for streamed in [true, false] {
        for fail_at in [3, 9, 17] {
            let records = records();
            write_n(&records, 17).await;
            let log = RecordNotificationLog::new(records.clone(), 5).unwrap();
            let mut reader = if streamed {
                NotificationLogReader::new(Arc::new(log))
            } else {
                NotificationLogReader::new(Arc::new(SectionsOnly(log)))
            };
            // Items 2..=5 buffered.
            reader.next_item().await.unwrap();
            let mut taken = Vec::new();
            let err = reader
                .for_each(|n| {
                    if n.id == fail_at {
                        return Err(Error::Configuration(format!("refused {}", n.id)));
                    }
                    taken.push(n.id);
                    Ok(())
                })
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::Configuration(m) if *m == format!("refused {fail_at}")),
                "{err:?}"
            );
            assert_eq!(taken, (2..fail_at).collect::<Vec<_>>());
            assert_eq!(reader.position(), fail_at - 1, "streamed: {streamed}");
            let rest: Vec<i64> = reader
                .read_all()
                .await
                .unwrap()
                .iter()
                .map(|n| n.id)
                .collect();
            assert_eq!(rest, (fail_at..=17).collect::<Vec<_>>());
        }
    }
}

/// A log longer than several pages of notifications (read page by page from a store that does
/// not stream) is handed out whole and in order.
async fn for_each_streams_a_log_longer_than_one_page() {
    let records = records();
    let total = 3 * es_runtime::record::NOTIFICATION_PAGE as i64 + 7;
    let items: Vec<_> = (0..total).map(|p| item(Uuid::new_v4(), p)).collect();
    for chunk in items.chunks(1000) {
        records
            .write(&RecordBatch::items(chunk.to_vec()))
            .await
            .unwrap();
    }
    let mut reader =
        NotificationLogReader::new(Arc::new(RecordNotificationLog::new(records, 20).unwrap()));
    let mut next = 1;
    let n = reader
        .for_each(|n| {
            assert_eq!(n.id, next);
            next += 1;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(n as i64, total);
    assert_eq!(reader.position(), total);
}

/// A record manager that hands out notifications out of order (a broken backend): reading stops
/// at the first id that goes backwards, with a typed error, instead of moving the reader's
/// position backwards or handing out an id twice. What was handed out before stays handed out.
struct OutOfOrder(Arc<dyn RecordManager>);

#[async_trait::async_trait]
impl RecordManager for OutOfOrder {
    fn kind(&self) -> RecordKind {
        self.0.kind()
    }
    fn application_name(&self) -> &str {
        self.0.application_name()
    }
    fn pipeline_id(&self) -> i64 {
        self.0.pipeline_id()
    }
    async fn write(&self, batch: &RecordBatch) -> es_runtime::Result<()> {
        self.0.write(batch).await
    }
    async fn get_item(&self, s: Uuid, p: i64) -> es_runtime::Result<SequencedItem> {
        self.0.get_item(s, p).await
    }
    async fn get_items(
        &self,
        s: Uuid,
        q: &es_runtime::record::ItemQuery,
    ) -> es_runtime::Result<Vec<SequencedItem>> {
        self.0.get_items(s, q).await
    }
    async fn list_sequence_ids(&self) -> es_runtime::Result<Vec<Uuid>> {
        self.0.list_sequence_ids().await
    }
    async fn delete_item(&self, s: Uuid, p: i64) -> es_runtime::Result<()> {
        self.0.delete_item(s, p).await
    }
    async fn get_notifications(
        &self,
        start: i64,
        end: i64,
        limit: Option<usize>,
    ) -> es_runtime::Result<Vec<Notification>> {
        let mut page = self.0.get_notifications(start, end, limit).await?;
        if page.len() >= 3 {
            page.swap(1, 2);
        }
        Ok(page)
    }
    async fn max_notification_id(&self) -> es_runtime::Result<i64> {
        self.0.max_notification_id().await
    }
    async fn max_tracking_id(&self, upstream: &str) -> es_runtime::Result<i64> {
        self.0.max_tracking_id(upstream).await
    }
    async fn has_tracking_record(&self, upstream: &str, id: i64) -> es_runtime::Result<bool> {
        self.0.has_tracking_record(upstream, id).await
    }
}

async fn notifications_out_of_order_are_a_typed_error_and_the_position_holds() {
    let inner = records();
    write_n(&inner, 5).await;
    let log = RecordNotificationLog::new(Arc::new(OutOfOrder(inner)), 10).unwrap();
    let mut reader = NotificationLogReader::new(Arc::new(log));
    let mut taken = Vec::new();
    let err = reader
        .for_each(|n| {
            taken.push(n.id);
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadSection(_)), "{err:?}");
    // Id 1 was handed out; 3 came next, a gap, and stopped the read before it was used.
    assert_eq!(taken, vec![1]);
    assert_eq!(reader.position(), 1);
}

/// Runs every case; those whose server does not answer are reported as ignored (see
/// `server_support::harness`).
fn main() -> std::process::ExitCode {
    server_support::harness::run_cases(&[
        case!(local sections_link_and_normalise_as_in_the_manual),
        case!(local bad_section_ids_and_bad_configuration_are_typed_errors),
        case!(local reader_seeks_reads_bounded_and_lazily_and_keeps_its_position),
        case!(local reader_goes_straight_to_its_section_once_it_knows_the_size),
        case!(local a_deleted_record_leaves_a_gap_the_reader_refuses_unless_allowed),
        case!(local reader_never_skips_or_repeats_while_writers_commit_in_memory),
        case!(local a_streaming_reader_never_skips_or_repeats_while_writers_commit_in_memory),
        case!(local a_prefetching_reader_never_skips_or_repeats_while_writers_commit_in_memory),
        #[cfg(feature = "sqlite")]
        case!(local reader_never_skips_or_repeats_while_writers_commit_on_sqlite),
        #[cfg(feature = "postgres")]
        case!(POSTGRES reader_never_skips_or_repeats_while_writers_commit_on_postgres),
        #[cfg(feature = "mysql")]
        case!(MYSQL reader_never_skips_or_repeats_while_writers_commit_on_mysql),
        case!(local a_prefetching_reader_reads_seeks_and_counts_like_one_that_does_not),
        case!(local sections_fetched_after_a_partial_one_are_dropped_and_asked_again),
        case!(local a_section_fetched_ahead_that_fails_is_an_error_and_nothing_is_consumed),
        case!(local a_reader_that_knows_the_section_size_fetches_ahead_from_the_start_and_drops_it_at_the_end),
        case!(local for_each_reads_to_the_end_and_continues_from_its_position),
        case!(local for_each_that_fails_leaves_the_failed_item_to_be_read_again),
        case!(local for_each_streams_a_log_longer_than_one_page),
        case!(local notifications_out_of_order_are_a_typed_error_and_the_position_holds),
    ])
}
