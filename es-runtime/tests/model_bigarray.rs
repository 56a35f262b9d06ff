//! The big array, its notification log and integer sequence generators (manual §10.2.4,
//! §10.4.3).

use es_runtime::model::bigarray::BigArray;
use es_runtime::model::sequence::{IntegerSequenceGenerator, SimpleIntegerSequenceGenerator};
use es_runtime::notify::{BigArrayNotificationLog, NotificationLog, NotificationLogReader};
use es_runtime::record::memory::InMemoryDatabase;
use es_runtime::record::{RecordKind, RecordManager};
use es_runtime::Error;
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

fn records() -> Arc<dyn RecordManager> {
    Arc::new(InMemoryDatabase::new().record_manager(RecordKind::Events, "arrays", 0))
}

fn again_records() -> Arc<dyn RecordManager> {
    records()
}

fn s(x: &str) -> String {
    x.to_string()
}

#[tokio::test]
async fn the_manual_big_array_example() {
    let array = BigArray::<String>::new(Uuid::new_v4(), records(), 10000).unwrap();
    for i in 0..4 {
        array.append(&format!("item{i}")).await.unwrap();
    }
    assert_eq!(array.next_position().await.unwrap(), 4);
    array.assign(4, &s("item4")).await.unwrap();
    match array.assign(4, &s("item4a")).await {
        Err(Error::Concurrency(m)) => assert!(m.contains("position 4"), "{m}"),
        other => panic!("expected a concurrency error, got {other:?}"),
    }
    assert_eq!(
        array.get(4).await.unwrap(),
        Some(s("item4")),
        "the first item stays"
    );

    let integers = SimpleIntegerSequenceGenerator::new();
    let generated: Vec<i64> = integers.clone().take(5).collect();
    assert_eq!(generated, vec![0, 1, 2, 3, 4]);
    array
        .assign(integers.next().await.unwrap(), &s("item5"))
        .await
        .unwrap();
    array
        .assign(integers.next().await.unwrap(), &s("item6"))
        .await
        .unwrap();
    assert_eq!(array.next_position().await.unwrap(), 7);
    assert_eq!(array.get(0).await.unwrap(), Some(s("item0")));
    assert_eq!(
        array.slice(5, 7).await.unwrap(),
        vec![Some(s("item5")), Some(s("item6"))]
    );
    assert_eq!(array.get(7).await.unwrap(), None);
    assert_eq!(array.get(-1).await.unwrap(), None);
    assert!(array.assign(-1, &s("x")).await.is_err());
}

#[tokio::test]
async fn a_small_tree_grows_levels_and_finds_the_next_position() {
    let records = records();
    let id = Uuid::new_v4();
    let array = BigArray::<i64>::new(id, records.clone(), 3).unwrap();
    assert_eq!(array.next_position().await.unwrap(), 0);
    for i in 0..30 {
        assert_eq!(array.append(&(i * 10)).await.unwrap(), i);
        assert_eq!(array.next_position().await.unwrap(), i + 1);
    }
    // Far ahead: the apex rises several levels at once (3^6 = 729 > 500).
    array.assign(500, &5000).await.unwrap();
    assert_eq!(array.next_position().await.unwrap(), 501);
    array.assign(100_000, &1).await.unwrap();
    assert_eq!(array.next_position().await.unwrap(), 100_001);
    // A second value over the same records sees the same array.
    let again = BigArray::<i64>::new(id, records, 3).unwrap();
    assert_eq!(again.next_position().await.unwrap(), 100_001);
    assert_eq!(again.get(29).await.unwrap(), Some(290));
    assert_eq!(again.get(500).await.unwrap(), Some(5000));
    let slice = again.slice(27, 33).await.unwrap();
    assert_eq!(
        slice,
        vec![Some(270), Some(280), Some(290), None, None, None]
    );
    let sparse = again.slice(498, 502).await.unwrap();
    assert_eq!(sparse, vec![None, None, Some(5000), None]);
    assert!(again.slice(10, 5).await.unwrap().is_empty());
    assert!(matches!(
        BigArray::<i64>::new(id, again_records(), 1),
        Err(Error::Configuration(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_with_retries_fill_every_position_once() {
    let array = Arc::new(BigArray::<String>::new(Uuid::new_v4(), records(), 4).unwrap());
    let mut tasks = Vec::new();
    for t in 0..8 {
        let array = array.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for k in 0..25 {
                loop {
                    match array.append(&format!("{t}-{k}")).await {
                        Ok(_) => break,
                        Err(Error::Concurrency(_)) => conflicts += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(array.next_position().await.unwrap(), 200);
    let all = array.slice(0, 200).await.unwrap();
    let distinct: HashSet<_> = all.iter().map(|i| i.clone().expect("no gaps")).collect();
    assert_eq!(distinct.len(), 200);
}

#[tokio::test]
async fn the_manual_big_array_notification_log_example() {
    let array = Arc::new(BigArray::<String>::new(Uuid::new_v4(), records(), 10).unwrap());
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

    // A gap reads as None, and the reader numbers items by place.
    array.assign(8, &s("item8")).await.unwrap();
    let mut reader = NotificationLogReader::new(log as Arc<dyn NotificationLog<Option<String>>>);
    let all = reader.read_all().await.unwrap();
    assert_eq!(all.len(), 9);
    assert_eq!(all[7], None);
    assert_eq!(all[8].as_deref(), Some("item8"));
    assert_eq!(reader.position(), 9);
    array.assign(9, &s("item9")).await.unwrap();
    assert_eq!(reader.read_all().await.unwrap(), vec![Some(s("item9"))]);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_incr_issues_contiguous_integers_to_concurrent_clients() {
    use es_runtime::model::sequence::RedisIncr;
    let url = match std::env::var("ES_REDIS_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var("ES_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "ES_REDIS_URL is not set but ES_REQUIRE_SERVERS=1"
            );
            println!("skipped redis: ES_REDIS_URL not set");
            return;
        }
    };
    let key = format!("es-test-{}", Uuid::new_v4().simple());
    let first = RedisIncr::connect(&url, &key)
        .await
        .expect("Redis at ES_REDIS_URL");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let g = RedisIncr::connect(&url, &key).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..50 {
                got.push(g.next().await.unwrap());
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (0..200).collect::<Vec<_>>());
    first.reset_to(7).await.unwrap();
    assert_eq!(first.next().await.unwrap(), 7);
    first.delete().await.unwrap();
    assert_eq!(first.next().await.unwrap(), 0);
    first.delete().await.unwrap();
    assert!(matches!(
        RedisIncr::connect("nonsense://", "k").await,
        Err(Error::Configuration(_))
    ));
    assert!(matches!(
        RedisIncr::connect("redis://127.0.0.1:1", "k").await,
        Err(Error::Operational(_))
    ));
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn big_array_positions_from_redis() {
    use es_runtime::model::sequence::RedisIncr;
    let Some(url) = std::env::var("ES_REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        println!("skipped redis: ES_REDIS_URL not set");
        return;
    };
    let key = format!("es-test-{}", Uuid::new_v4().simple());
    let integers = RedisIncr::connect(&url, &key)
        .await
        .expect("Redis at ES_REDIS_URL");
    let array = BigArray::<String>::new(Uuid::new_v4(), records(), 4).unwrap();
    for i in 0..6 {
        array
            .assign(integers.next().await.unwrap(), &format!("item{i}"))
            .await
            .unwrap();
    }
    assert_eq!(array.next_position().await.unwrap(), 6);
    assert_eq!(array.get(5).await.unwrap().as_deref(), Some("item5"));
    integers.delete().await.unwrap();
}
