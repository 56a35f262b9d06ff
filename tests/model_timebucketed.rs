//! Time-bucketed logs on every backend: messages across bucket boundaries, read forwards and
//! backwards with bounds and limits, reopening, collisions and bad input.

mod support;

use es_runtime::model::timebucketed::{
    bucket_id, BucketSize, LoggedMessage, MessageQuery, TimebucketedLog,
};
use es_runtime::prelude::*;
use es_runtime::record::RecordKind;
use std::sync::Arc;

/// Microseconds since the epoch of a UTC date (days from 1970-01-01 given directly).
fn day(n: i64, hour: i64) -> Timestamp {
    Timestamp((n * 86_400 + hour * 3600) * 1_000_000)
}

fn texts(m: &[LoggedMessage]) -> Vec<&str> {
    m.iter().map(|m| m.message.as_str()).collect()
}

#[tokio::test]
async fn messages_across_buckets_are_read_in_both_orders_with_bounds_and_limits() {
    for (backend, db) in support::databases().await {
        let records = db.record_manager(RecordKind::TimestampSequenced, &support::unique("tbl"), 0);
        let name = support::unique("log");
        // Started on day 20,000 (2024-10-04); buckets of a day.
        let log =
            TimebucketedLog::open_from(records.clone(), &name, BucketSize::Day, day(20_000, 0))
                .await
                .unwrap();
        // Three days of messages, with an empty day between.
        for (d, h, text) in [
            (20_000, 1, "a"),
            (20_000, 5, "b"),
            (20_001, 2, "c"),
            (20_003, 0, "d"),
            (20_003, 23, "e"),
        ] {
            assert_eq!(
                log.log_message_at(day(d, h), text).await.unwrap(),
                day(d, h),
                "{backend}"
            );
        }
        // Each day is a sequence of its own.
        let second_day = records
            .get_items(
                bucket_id(log.id(), day(20_001, 0), BucketSize::Day),
                &Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(second_day.len(), 1, "{backend}");

        let all = log.messages(&MessageQuery::all()).await.unwrap();
        assert_eq!(texts(&all), vec!["a", "b", "c", "d", "e"], "{backend}");
        assert_eq!(all[2].timestamp, day(20_001, 2));
        let newest = log.messages(&MessageQuery::latest(3)).await.unwrap();
        assert_eq!(texts(&newest), vec!["e", "d", "c"], "{backend}");
        let window = log
            .messages(&MessageQuery {
                gt: Some(day(20_000, 1)),
                lt: Some(day(20_003, 23)),
                ..MessageQuery::all()
            })
            .await
            .unwrap();
        assert_eq!(texts(&window), vec!["b", "c", "d"], "{backend}");
        let window_back = log
            .messages(&MessageQuery {
                gte: Some(day(20_000, 5)),
                lte: Some(day(20_003, 0)),
                limit: Some(2),
                descending: true,
                ..MessageQuery::all()
            })
            .await
            .unwrap();
        assert_eq!(texts(&window_back), vec!["d", "c"], "{backend}");
        assert!(log
            .messages(&MessageQuery {
                lt: Some(day(20_000, 0)),
                ..MessageQuery::all()
            })
            .await
            .unwrap()
            .is_empty());

        // Reopened under the same name, it is the log as it was started (its own bucket size).
        let again = TimebucketedLog::open(records.clone(), &name, BucketSize::Hour)
            .await
            .unwrap();
        assert_eq!(again.bucket_size(), BucketSize::Day, "{backend}");
        assert_eq!(again.started_on(), day(20_000, 0));
        assert_eq!(again.id(), log.id());
        assert_eq!(
            texts(&again.messages(&MessageQuery::all()).await.unwrap()),
            vec!["a", "b", "c", "d", "e"]
        );
    }
}

#[tokio::test]
async fn a_taken_microsecond_moves_the_message_on_and_now_is_logged_after_the_start() {
    for (backend, db) in support::databases().await {
        let records = db.record_manager(RecordKind::TimestampSequenced, &support::unique("tbl"), 0);
        let log = TimebucketedLog::open(records, &support::unique("log"), BucketSize::Second)
            .await
            .unwrap();
        let t = log.log_message("first").await.unwrap();
        assert!(t >= log.started_on(), "{backend}");
        // Another message at the same microsecond goes to the next one.
        let t2 = log.log_message_at(t, "second").await.unwrap();
        assert_eq!(t2, Timestamp(t.0 + 1), "{backend}");
        let all = log.messages(&MessageQuery::all()).await.unwrap();
        assert_eq!(texts(&all), vec!["first", "second"], "{backend}");
    }
}

#[tokio::test]
async fn bad_input_is_a_typed_error() {
    let db: Arc<dyn es_runtime::application::Database> =
        Arc::new(es_runtime::record::memory::InMemoryDatabase::new());
    // Not a timestamp-sequenced table.
    let events = db.record_manager(RecordKind::Events, "app", 0);
    assert!(matches!(
        TimebucketedLog::open(events, "x", BucketSize::Day).await,
        Err(Error::Configuration(_))
    ));
    let records = db.record_manager(RecordKind::TimestampSequenced, "app", 0);
    let log = TimebucketedLog::open_from(records.clone(), "x", BucketSize::Month, day(100, 0))
        .await
        .unwrap();
    // Older than the log.
    assert!(matches!(
        log.log_message_at(day(99, 0), "late").await,
        Err(Error::Configuration(_))
    ));
    // Something that is not a message in a bucket.
    records
        .write(&es_runtime::record::RecordBatch::items(vec![
            es_runtime::record::SequencedItem {
                sequence_id: bucket_id(log.id(), day(100, 1), BucketSize::Month),
                position: day(100, 1).0,
                topic: "something::Else".into(),
                state: b"{}".to_vec().into(),
            },
        ]))
        .await
        .unwrap();
    assert!(matches!(
        log.messages(&MessageQuery::all()).await,
        Err(Error::DataIntegrity(_))
    ));
    // A damaged start record.
    let damaged = db.record_manager(RecordKind::TimestampSequenced, "app2", 0);
    damaged
        .write(&es_runtime::record::RecordBatch::items(vec![
            es_runtime::record::SequencedItem {
                sequence_id: es_runtime::model::timebucketed::log_id("y"),
                position: 5,
                topic: "es_runtime::model::timebucketed::Started".into(),
                state: b"{\"name\":".to_vec().into(),
            },
        ]))
        .await
        .unwrap();
    assert!(matches!(
        TimebucketedLog::open(damaged, "y", BucketSize::Day).await,
        Err(Error::DataIntegrity(_))
    ));
}
