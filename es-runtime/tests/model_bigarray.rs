//! The big array's notification log (manual §10.4.3) and the manual's big array example
//! (§10.2.4), with an in-process integer sequence generator.

use es_runtime::model::bigarray::BigArray;
use es_runtime::model::sequence::{InProcessSequence, IntegerSequenceGenerator};
use es_runtime::notify::{BigArrayNotificationLog, NotificationLog, NotificationLogReader};
use es_runtime::record::memory::InMemoryDatabase;
use es_runtime::record::{RecordKind, RecordManager};
use es_runtime::Error;
use std::sync::Arc;
use uuid::Uuid;

fn records() -> Arc<dyn RecordManager> {
    Arc::new(InMemoryDatabase::new().record_manager(RecordKind::TimestampSequenced, "arrays", 0))
}

fn s(x: &str) -> String {
    x.to_string()
}

#[tokio::test]
async fn the_manual_big_array_example() {
    let array = BigArray::<String>::new(records(), Uuid::new_v4())
        .with_chunk_size(10000)
        .unwrap();
    for i in 0..4 {
        array.append(&format!("item{i}")).await.unwrap();
    }
    assert_eq!(array.next_position().await.unwrap(), 4);
    array.assign(4, &s("item4")).await.unwrap();
    assert!(matches!(
        array.assign(4, &s("item4a")).await,
        Err(Error::Concurrency(_))
    ));
    assert_eq!(array.get(4).await.unwrap(), "item4", "the first item stays");

    let integers = InProcessSequence::starting_after(4);
    array
        .assign(integers.next().await.unwrap(), &s("item5"))
        .await
        .unwrap();
    array
        .assign(integers.next().await.unwrap(), &s("item6"))
        .await
        .unwrap();
    assert_eq!(array.next_position().await.unwrap(), 7);
    assert_eq!(array.get(0).await.unwrap(), "item0");
    let slice: Vec<String> = array
        .slice(5..7)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(slice, vec![s("item5"), s("item6")]);
}

#[tokio::test]
async fn the_manual_big_array_notification_log_example() {
    let array = Arc::new(
        BigArray::<String>::new(records(), Uuid::new_v4())
            .with_chunk_size(10)
            .unwrap(),
    );
    for i in 0..7 {
        array.append(&format!("item{i}")).await.unwrap();
    }
    let log = Arc::new(BigArrayNotificationLog::new(array.clone(), 5).unwrap());
    let section = log.section("current").await.unwrap();
    assert_eq!(section.section_id, "6,10");
    assert_eq!(section.previous_id.as_deref(), Some("1,5"));
    assert_eq!(section.next_id, None);
    assert_eq!(section.items, vec![Some(s("item5")), Some(s("item6"))]);

    let section = log.section("1,10").await.unwrap();
    assert_eq!(section.section_id, "1,5");
    assert_eq!(section.previous_id, None);
    assert_eq!(section.next_id.as_deref(), Some("6,10"));
    let expected: Vec<_> = (0..5).map(|i| Some(format!("item{i}"))).collect();
    assert_eq!(section.items, expected);
    assert!(matches!(
        log.section("0,5").await,
        Err(Error::BadSection(_))
    ));

    // A gap reads as None, and the reader numbers items by their place.
    array.assign(8, &s("item8")).await.unwrap();
    let mut reader = NotificationLogReader::new(log as Arc<dyn NotificationLog<Option<String>>>);
    let all = reader.read_all().await.unwrap();
    assert_eq!(all.len(), 9);
    assert_eq!(all[7], None);
    assert_eq!(all[8].as_deref(), Some("item8"));
    assert_eq!(reader.position(), 9);
    array.assign(9, &s("item9")).await.unwrap();
    array.assign(10, &s("item10")).await.unwrap();
    assert_eq!(
        reader.read_all().await.unwrap(),
        vec![Some(s("item9")), Some(s("item10"))]
    );
    assert_eq!(reader.position(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_tails_a_big_array_filled_by_concurrent_writers() {
    let array = Arc::new(
        BigArray::<i64>::new(records(), Uuid::new_v4())
            .with_chunk_size(8)
            .unwrap(),
    );
    let integers = Arc::new(InProcessSequence::new());
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (array, integers) = (array.clone(), integers.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let i = integers.next().await.unwrap();
                array.assign(i, &(i * 2)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let log: Arc<dyn NotificationLog<Option<i64>>> =
        Arc::new(BigArrayNotificationLog::new(array, 5).unwrap());
    let mut reader = NotificationLogReader::new(log);
    let all = reader.read_all().await.unwrap();
    assert_eq!(all, (0..200).map(|i| Some(i * 2)).collect::<Vec<_>>());
}
