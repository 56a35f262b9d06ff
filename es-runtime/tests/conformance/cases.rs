//! The functional cases: one function per behaviour of the `RecordManager` trait.

use super::{app_name, item, item_tagged, Factory};
use es_runtime::record::{ItemQuery, RecordBatch, RecordKind, SequencedItem, Tracking};
use es_runtime::Error;
use uuid::Uuid;

fn batch(items: Vec<SequencedItem>) -> RecordBatch {
    RecordBatch::items(items)
}

fn tracked(items: Vec<SequencedItem>, upstream: &str, id: i64) -> RecordBatch {
    RecordBatch {
        items,
        tracking: Some(Tracking {
            upstream_application: upstream.to_string(),
            notification_id: id,
        }),
        causal_dependencies: None,
    }
}

fn assert_conflict<T: std::fmt::Debug>(r: es_runtime::Result<T>, what: &str) {
    match r {
        Err(Error::RecordConflict(_)) => {}
        other => panic!("{what}: expected RecordConflict, got {other:?}"),
    }
}

/// A batch over two sequences is written whole and reads back byte for byte.
pub async fn batch_append_is_atomic_and_readable(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let items = vec![item(a, 0), item(a, 1), item(b, 0), item(a, 2)];
    rm.write(&batch(items.clone())).await.unwrap();
    let got_a = rm.get_items(a, &ItemQuery::all()).await.unwrap();
    assert_eq!(
        got_a,
        vec![items[0].clone(), items[1].clone(), items[3].clone()]
    );
    assert_eq!(
        rm.get_items(b, &ItemQuery::all()).await.unwrap(),
        vec![items[2].clone()]
    );
    assert_eq!(rm.get_item(a, 1).await.unwrap(), items[1]);
    // Binary state survives as bytes (not text).
    let c = Uuid::new_v4();
    let bin = SequencedItem {
        sequence_id: c,
        position: 7,
        topic: "tests::Binary".into(),
        state: vec![0, 255, 1, 254, 0, 0, 128].into(),
    };
    rm.write(&batch(vec![bin.clone()])).await.unwrap();
    assert_eq!(rm.get_item(c, 7).await.unwrap(), bin);
    // Notification ids follow the batch order.
    let n = rm.get_notifications(1, 100, None).await.unwrap();
    let got: Vec<_> = n.iter().map(|n| (n.id, n.item.clone())).collect();
    let mut want: Vec<_> = items
        .into_iter()
        .enumerate()
        .map(|(i, it)| (i as i64 + 1, it))
        .collect();
    want.push((5, bin));
    assert_eq!(got, want);
}

/// A batch with one taken position fails with RecordConflict and writes nothing.
pub async fn conflict_writes_nothing(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    rm.write(&batch(vec![item(a, 0), item(a, 1)]))
        .await
        .unwrap();
    // The conflicting item is last: the new items before it must not stay.
    let r = rm
        .write(&batch(vec![
            item(b, 0),
            item_tagged(a, 2, "new"),
            item_tagged(a, 1, "other"),
        ]))
        .await;
    assert!(matches!(&r, Err(e) if e.is_conflict()));
    assert_conflict(r, "occupied position");
    assert!(rm.get_items(b, &ItemQuery::all()).await.unwrap().is_empty());
    assert_eq!(
        rm.get_items(a, &ItemQuery::all()).await.unwrap(),
        vec![item(a, 0), item(a, 1)]
    );
    assert!(matches!(rm.get_item(a, 2).await, Err(Error::NotFound(_))));
    assert_eq!(rm.max_notification_id().await.unwrap(), 2);
    // The failure consumed no notification id.
    rm.write(&batch(vec![item(b, 0)])).await.unwrap();
    let n = rm.get_notifications(1, 10, None).await.unwrap();
    assert_eq!(n.iter().map(|n| n.id).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(n[2].item, item(b, 0));
}

/// A batch that repeats a position (conflicts with itself) writes nothing.
pub async fn self_conflicting_batch_writes_nothing(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    let a = Uuid::new_v4();
    let r = rm
        .write(&batch(vec![
            item(a, 0),
            item(a, 1),
            item_tagged(a, 1, "again"),
        ]))
        .await;
    assert_conflict(r, "batch repeating a position");
    assert!(rm.get_items(a, &ItemQuery::all()).await.unwrap().is_empty());
    assert_eq!(rm.max_notification_id().await.unwrap(), 0);
    assert!(rm.list_sequence_ids().await.unwrap().is_empty());
}

/// Writing an empty batch succeeds and changes nothing.
pub async fn empty_batch_is_a_no_op(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    rm.write(&RecordBatch::default()).await.unwrap();
    assert_eq!(rm.max_notification_id().await.unwrap(), 0);
    assert!(rm.list_sequence_ids().await.unwrap().is_empty());
}

/// A missing item is NotFound (missing position, missing sequence).
pub async fn get_item_missing_is_not_found(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    let a = Uuid::new_v4();
    assert!(matches!(rm.get_item(a, 0).await, Err(Error::NotFound(_))));
    rm.write(&batch(vec![item(a, 0)])).await.unwrap();
    assert!(matches!(rm.get_item(a, 1).await, Err(Error::NotFound(_))));
    assert!(matches!(rm.get_item(a, -1).await, Err(Error::NotFound(_))));
    assert_eq!(rm.get_item(a, 0).await.unwrap(), item(a, 0));
}

/// What `get_items` must return, computed from the full ascending sequence.
fn expected(all: &[SequencedItem], q: &ItemQuery) -> Vec<SequencedItem> {
    let mut sel: Vec<SequencedItem> = all
        .iter()
        .filter(|i| q.contains(i.position))
        .cloned()
        .collect();
    if q.query_descending {
        sel.reverse();
    }
    if let Some(l) = q.limit {
        sel.truncate(l);
    }
    if q.query_descending != q.results_descending {
        sel.reverse();
    }
    sel
}

/// Every combination of gt / gte / lt / lte / limit and query / results order.
pub async fn get_items_bounds_limits_and_orders(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    let a = Uuid::new_v4();
    let other = Uuid::new_v4();
    let all: Vec<_> = (0..10).map(|p| item(a, p)).collect();
    rm.write(&batch(all.clone())).await.unwrap();
    rm.write(&batch(vec![item(other, 3), item(other, 4)]))
        .await
        .unwrap();
    let bounds = [None, Some(2), Some(6)];
    let mut checked = 0;
    for gt in [None, Some(2)] {
        for gte in [None, Some(3)] {
            for lt in [None, Some(8)] {
                for lte in [None, Some(6)] {
                    for limit in [None, Some(0), Some(1), Some(3), Some(50)] {
                        for query_descending in [false, true] {
                            for results_descending in [false, true] {
                                let q = ItemQuery {
                                    gt,
                                    gte,
                                    lt,
                                    lte,
                                    limit,
                                    query_descending,
                                    results_descending,
                                };
                                let got = rm.get_items(a, &q).await.unwrap();
                                assert_eq!(got, expected(&all, &q), "query {q:?}");
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 320);
    // Empty ranges, and bounds outside the sequence.
    for (lo, hi) in [(Some(6), Some(2)), (Some(20), None), (None, Some(-5))] {
        let q = ItemQuery {
            gte: lo,
            lte: hi,
            ..ItemQuery::all()
        };
        assert_eq!(
            rm.get_items(a, &q).await.unwrap(),
            expected(&all, &q),
            "query {q:?}"
        );
    }
    // Extreme bounds select nothing or everything, never overflow.
    let extremes = [
        (
            ItemQuery {
                gt: Some(i64::MAX),
                ..ItemQuery::all()
            },
            0,
        ),
        (
            ItemQuery {
                lt: Some(i64::MIN),
                ..ItemQuery::all()
            },
            0,
        ),
        (
            ItemQuery {
                gt: Some(i64::MIN),
                ..ItemQuery::all()
            },
            10,
        ),
        (
            ItemQuery {
                lt: Some(i64::MAX),
                lte: Some(i64::MAX),
                gte: Some(i64::MIN),
                ..ItemQuery::all()
            },
            10,
        ),
        (
            ItemQuery {
                limit: Some(usize::MAX),
                ..ItemQuery::all()
            },
            10,
        ),
    ];
    for (q, n) in extremes {
        let got = rm.get_items(a, &q).await.unwrap();
        assert_eq!(got.len(), n, "query {q:?}");
        assert_eq!(got, expected(&all, &q), "query {q:?}");
    }
    for b in bounds {
        let q = ItemQuery {
            gt: b,
            lt: b.map(|b| b + 2),
            ..ItemQuery::all()
        };
        assert_eq!(
            rm.get_items(a, &q).await.unwrap(),
            expected(&all, &q),
            "query {q:?}"
        );
    }
}

/// An unknown sequence reads as empty, not as an error.
pub async fn get_items_of_unknown_sequence_is_empty(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    assert!(rm
        .get_items(Uuid::new_v4(), &ItemQuery::all())
        .await
        .unwrap()
        .is_empty());
}

/// Each sequence with items is listed once.
pub async fn list_sequence_ids(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    assert!(rm.list_sequence_ids().await.unwrap().is_empty());
    let mut ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    for (n, id) in ids.iter().enumerate() {
        let items = (0..=n as i64).map(|p| item(*id, p)).collect();
        rm.write(&batch(items)).await.unwrap();
    }
    let mut got = rm.list_sequence_ids().await.unwrap();
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
}

/// A deleted item is gone; deleting a missing item is not an error; the rest stays.
pub async fn delete_item(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    let a = Uuid::new_v4();
    rm.write(&batch(vec![item(a, 0), item(a, 1), item(a, 2)]))
        .await
        .unwrap();
    rm.delete_item(a, 1).await.unwrap();
    assert!(matches!(rm.get_item(a, 1).await, Err(Error::NotFound(_))));
    assert_eq!(
        rm.get_items(a, &ItemQuery::all()).await.unwrap(),
        vec![item(a, 0), item(a, 2)]
    );
    rm.delete_item(a, 1).await.unwrap();
    rm.delete_item(Uuid::new_v4(), 0).await.unwrap();
    rm.delete_item(a, 0).await.unwrap();
    rm.delete_item(a, 2).await.unwrap();
    assert!(rm.get_items(a, &ItemQuery::all()).await.unwrap().is_empty());
    assert!(rm.list_sequence_ids().await.unwrap().is_empty());
    // The position is free again.
    rm.write(&batch(vec![item_tagged(a, 1, "again")]))
        .await
        .unwrap();
    assert_eq!(rm.get_item(a, 1).await.unwrap(), item_tagged(a, 1, "again"));
}

/// Notifications by id range (inclusive) and limit, in id order, with their items.
pub async fn notifications_by_range_and_limit(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    assert!(rm.get_notifications(1, 10, None).await.unwrap().is_empty());
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    // Ten items in four batches, interleaving two sequences.
    let mut written = Vec::new();
    for chunk in [
        vec![item(a, 0)],
        vec![item(b, 0), item(b, 1), item(a, 1)],
        vec![item(a, 2)],
    ] {
        rm.write(&batch(chunk.clone())).await.unwrap();
        written.extend(chunk);
    }
    let more: Vec<_> = (2..7).map(|p| item(b, p)).collect();
    rm.write(&batch(more.clone())).await.unwrap();
    written.extend(more);
    assert_eq!(written.len(), 10);
    let ids = |v: &[es_runtime::record::Notification]| v.iter().map(|n| n.id).collect::<Vec<_>>();

    let all = rm.get_notifications(1, 10, None).await.unwrap();
    assert_eq!(ids(&all), (1..=10).collect::<Vec<_>>());
    assert_eq!(
        all.iter().map(|n| n.item.clone()).collect::<Vec<_>>(),
        written
    );
    assert!(all.iter().all(|n| n.causal_dependencies.is_none()));

    assert_eq!(
        ids(&rm.get_notifications(3, 6, None).await.unwrap()),
        vec![3, 4, 5, 6]
    );
    assert_eq!(
        ids(&rm.get_notifications(3, 6, Some(2)).await.unwrap()),
        vec![3, 4]
    );
    assert_eq!(
        ids(&rm.get_notifications(3, 100, Some(50)).await.unwrap()),
        (3..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        ids(&rm.get_notifications(0, 2, None).await.unwrap()),
        vec![1, 2]
    );
    assert_eq!(
        ids(&rm.get_notifications(10, 10, None).await.unwrap()),
        vec![10]
    );
    assert_eq!(
        rm.get_notifications(4, 4, None).await.unwrap()[0].item,
        written[3]
    );
    assert!(rm.get_notifications(11, 20, None).await.unwrap().is_empty());
    assert!(rm.get_notifications(6, 5, None).await.unwrap().is_empty());
    assert!(rm
        .get_notifications(1, 10, Some(0))
        .await
        .unwrap()
        .is_empty());
}

/// `for_each_notification` hands out exactly what `get_notifications` returns, in order and
/// by value, for every range and limit; it stops at the first error of the callback and
/// returns that error.
pub async fn for_each_notification_streams_the_same_notifications(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for p in 0..12 {
        rm.write(&batch(vec![item(if p % 2 == 0 { a } else { b }, p / 2)]))
            .await
            .unwrap();
    }
    rm.write(&batch((6..15).map(|p| item(a, p)).collect()))
        .await
        .unwrap();
    let streamed = |start: i64, end: i64, limit: Option<usize>| {
        let rm = rm.clone();
        async move {
            let mut got = Vec::new();
            let n = rm
                .for_each_notification(start, end, limit, &mut |n| {
                    got.push(n);
                    Ok(())
                })
                .await
                .unwrap();
            assert_eq!(n, got.len(), "the count returned is the count handed out");
            got
        }
    };
    for (start, end, limit) in [
        (1, 21, None),
        (1, i64::MAX, None),
        (0, 5, None),
        (3, 9, Some(4)),
        (3, 100, Some(50)),
        (21, 21, None),
        (22, 40, None),
        (9, 8, None),
        (1, 21, Some(0)),
        (5, 5, Some(1)),
    ] {
        assert_eq!(
            streamed(start, end, limit).await,
            rm.get_notifications(start, end, limit).await.unwrap(),
            "range {start}..={end}, limit {limit:?}"
        );
    }
    assert_eq!(streamed(1, i64::MAX, None).await.len(), 21);

    // The callback's error stops the reading and comes back as it was.
    let mut seen = Vec::new();
    let err = rm
        .for_each_notification(1, 21, None, &mut |n| {
            if n.id == 4 {
                return Err(Error::Configuration(format!("stop at {}", n.id)));
            }
            seen.push(n.id);
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Configuration(m) if m == "stop at 4"),
        "{err:?}"
    );
    assert_eq!(seen, vec![1, 2, 3]);
}

/// The highest notification id: 0 when empty, then the count of items written.
pub async fn max_notification_id(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    assert_eq!(rm.max_notification_id().await.unwrap(), 0);
    let a = Uuid::new_v4();
    rm.write(&batch(vec![item(a, 0)])).await.unwrap();
    assert_eq!(rm.max_notification_id().await.unwrap(), 1);
    rm.write(&batch((1..4).map(|p| item(a, p)).collect()))
        .await
        .unwrap();
    assert_eq!(rm.max_notification_id().await.unwrap(), 4);
}

/// Causal dependencies are stored with the first item of a batch and come back with its
/// notification only.
pub async fn causal_dependencies_with_first_item(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    rm.write(&batch(vec![item(b, 0)])).await.unwrap();
    let deps =
        r#"[{"application_name":"upstream","pipeline_id":0,"notification_id":7}]"#.to_string();
    rm.write(&RecordBatch {
        items: vec![item(a, 0), item(a, 1), item(b, 1)],
        tracking: None,
        causal_dependencies: Some(deps.clone()),
    })
    .await
    .unwrap();
    let n = rm.get_notifications(1, 10, None).await.unwrap();
    let got: Vec<_> = n
        .iter()
        .map(|n| (n.id, n.causal_dependencies.clone()))
        .collect();
    assert_eq!(
        got,
        vec![(1, None), (2, Some(deps.clone())), (3, None), (4, None)]
    );
    assert_eq!(n[1].item, item(a, 0));
}

/// A tracking record commits with the events; a batch repeating it writes nothing.
pub async fn tracking_written_with_events(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    let up = app_name();
    assert_eq!(rm.max_tracking_id(&up).await.unwrap(), 0);
    assert!(!rm.has_tracking_record(&up, 1).await.unwrap());
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    rm.write(&tracked(vec![item(a, 0)], &up, 1)).await.unwrap();
    assert!(rm.has_tracking_record(&up, 1).await.unwrap());
    assert_eq!(rm.max_tracking_id(&up).await.unwrap(), 1);
    rm.write(&tracked(vec![item(a, 1)], &up, 3)).await.unwrap();
    assert_eq!(rm.max_tracking_id(&up).await.unwrap(), 3);
    assert!(!rm.has_tracking_record(&up, 2).await.unwrap());
    // The same upstream notification again: nothing of the batch is written.
    let r = rm
        .write(&tracked(vec![item(b, 0), item(a, 2)], &up, 1))
        .await;
    assert_conflict(r, "repeated tracking record");
    assert!(rm.get_items(b, &ItemQuery::all()).await.unwrap().is_empty());
    assert!(matches!(rm.get_item(a, 2).await, Err(Error::NotFound(_))));
    assert_eq!(rm.max_notification_id().await.unwrap(), 2);
    // An event conflict also drops the tracking record.
    let r = rm.write(&tracked(vec![item(a, 0)], &up, 5)).await;
    assert_conflict(r, "event conflict with tracking");
    assert!(!rm.has_tracking_record(&up, 5).await.unwrap());
    assert_eq!(rm.max_tracking_id(&up).await.unwrap(), 3);
}

/// A process application that produced no event still records what it processed.
pub async fn tracking_only_batch(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    let up = app_name();
    rm.write(&tracked(vec![], &up, 4)).await.unwrap();
    assert!(rm.has_tracking_record(&up, 4).await.unwrap());
    assert_eq!(rm.max_tracking_id(&up).await.unwrap(), 4);
    assert_eq!(rm.max_notification_id().await.unwrap(), 0);
    assert_conflict(
        rm.write(&tracked(vec![], &up, 4)).await,
        "repeated tracking-only batch",
    );
}

/// Tracking is kept per (application, upstream, pipeline).
pub async fn tracking_is_per_pipeline_and_upstream(f: impl Factory) {
    let app = app_name();
    let p0 = f.make(RecordKind::Events, app.clone(), 0).await;
    let p1 = f.make(RecordKind::Events, app.clone(), 1).await;
    let other_app = f.make(RecordKind::Events, app_name(), 0).await;
    let (up1, up2) = (app_name(), app_name());
    p0.write(&tracked(vec![], &up1, 9)).await.unwrap();
    p0.write(&tracked(vec![], &up2, 2)).await.unwrap();
    assert_eq!(p0.max_tracking_id(&up1).await.unwrap(), 9);
    assert_eq!(p0.max_tracking_id(&up2).await.unwrap(), 2);
    assert_eq!(p1.max_tracking_id(&up1).await.unwrap(), 0);
    assert!(!p1.has_tracking_record(&up1, 9).await.unwrap());
    assert_eq!(other_app.max_tracking_id(&up1).await.unwrap(), 0);
    // The same upstream id in another pipeline or application is not a conflict.
    p1.write(&tracked(vec![], &up1, 9)).await.unwrap();
    other_app.write(&tracked(vec![], &up1, 9)).await.unwrap();
    assert!(p1.has_tracking_record(&up1, 9).await.unwrap());
    assert!(other_app.has_tracking_record(&up1, 9).await.unwrap());
}

/// Snapshots: their own table, no notifications, latest at or below a version.
pub async fn snapshots(f: impl Factory) {
    let app = app_name();
    let snaps = f.make(RecordKind::Snapshots, app.clone(), 0).await;
    let events = f.make(RecordKind::Events, app.clone(), 0).await;
    assert_eq!(snaps.kind(), RecordKind::Snapshots);
    let a = Uuid::new_v4();
    // Event and snapshot at the same (sequence, position) do not collide.
    events.write(&batch(vec![item(a, 2)])).await.unwrap();
    for v in [2, 5, 9] {
        snaps
            .write(&batch(vec![item_tagged(a, v, "snap")]))
            .await
            .unwrap();
    }
    assert_eq!(events.max_notification_id().await.unwrap(), 1);
    assert_eq!(events.get_item(a, 2).await.unwrap(), item(a, 2));
    let latest_at_or_below = |v: i64| ItemQuery {
        lte: Some(v),
        limit: Some(1),
        query_descending: true,
        results_descending: true,
        ..ItemQuery::all()
    };
    for (at, want) in [
        (6, Some(5)),
        (5, Some(5)),
        (100, Some(9)),
        (2, Some(2)),
        (1, None),
    ] {
        let got = snaps.get_items(a, &latest_at_or_below(at)).await.unwrap();
        assert_eq!(
            got,
            want.map(|w| item_tagged(a, w, "snap"))
                .into_iter()
                .collect::<Vec<_>>(),
            "at {at}"
        );
    }
    assert_conflict(
        snaps.write(&batch(vec![item(a, 5)])).await,
        "snapshot at a taken version",
    );
    snaps.delete_item(a, 9).await.unwrap();
    assert_eq!(
        snaps.get_items(a, &latest_at_or_below(100)).await.unwrap(),
        vec![item_tagged(a, 5, "snap")]
    );
    assert_eq!(snaps.list_sequence_ids().await.unwrap(), vec![a]);
    assert_eq!(
        events.get_items(a, &ItemQuery::all()).await.unwrap(),
        vec![item(a, 2)]
    );
}

/// Timestamp-sequenced items: positions are microseconds, read back by time range.
pub async fn timestamp_sequenced(f: impl Factory) {
    let app = app_name();
    let ts = f.make(RecordKind::TimestampSequenced, app.clone(), 0).await;
    let events = f.make(RecordKind::Events, app.clone(), 0).await;
    assert_eq!(ts.kind(), RecordKind::TimestampSequenced);
    let s = Uuid::new_v4();
    let t0: i64 = 1_763_900_000_000_000; // 2025-11-23 in microseconds
    let items: Vec<_> = [0, 1, 250, 1_000_000]
        .iter()
        .map(|d| item(s, t0 + d))
        .collect();
    ts.write(&batch(items[..2].to_vec())).await.unwrap();
    ts.write(&batch(items[2..].to_vec())).await.unwrap();
    assert_eq!(ts.get_item(s, t0 + 250).await.unwrap(), items[2]);
    assert_eq!(ts.get_items(s, &ItemQuery::all()).await.unwrap(), items);
    let q = ItemQuery {
        gt: Some(t0),
        lt: Some(t0 + 1_000_000),
        ..ItemQuery::all()
    };
    assert_eq!(ts.get_items(s, &q).await.unwrap(), items[1..3].to_vec());
    let q = ItemQuery {
        limit: Some(2),
        query_descending: true,
        ..ItemQuery::all()
    };
    assert_eq!(
        ts.get_items(s, &q).await.unwrap(),
        vec![items[2].clone(), items[3].clone()]
    );
    assert_conflict(
        ts.write(&batch(vec![item(s, t0 + 1)])).await,
        "same timestamp twice",
    );
    assert_eq!(ts.list_sequence_ids().await.unwrap(), vec![s]);
    assert_eq!(events.max_notification_id().await.unwrap(), 0);
    assert!(events
        .get_items(s, &ItemQuery::all())
        .await
        .unwrap()
        .is_empty());
}

/// Timestamp-sequenced items of several sequences read back in application-wide time order.
pub async fn timestamp_sequenced_in_order(f: impl Factory) {
    let app = app_name();
    let ts = f.make(RecordKind::TimestampSequenced, app.clone(), 0).await;
    let other = f.make(RecordKind::TimestampSequenced, app_name(), 0).await;
    let t0: i64 = 1_763_900_000_000_000;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    ts.write(&batch(vec![item(a, t0 + 30), item(a, t0 + 10)]))
        .await
        .unwrap();
    ts.write(&batch(vec![item(b, t0 + 20), item(b, t0 + 40)]))
        .await
        .unwrap();
    other.write(&batch(vec![item(a, t0 + 15)])).await.unwrap();
    let order = |v: Vec<es_runtime::record::SequencedItem>| {
        v.into_iter()
            .map(|i| (i.sequence_id, i.position - t0))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        order(ts.get_items_in_order(t0, t0 + 100, None).await.unwrap()),
        vec![(a, 10), (b, 20), (a, 30), (b, 40)]
    );
    assert_eq!(
        order(
            ts.get_items_in_order(t0 + 15, t0 + 35, Some(1))
                .await
                .unwrap()
        ),
        vec![(b, 20)]
    );
    assert!(ts
        .get_items_in_order(t0 + 41, t0 + 100, None)
        .await
        .unwrap()
        .is_empty());
}

/// Two applications in one database see only their own records; each log starts at 1.
pub async fn applications_share_a_database(f: impl Factory) {
    let (x, y) = (app_name(), app_name());
    let rx = f.make(RecordKind::Events, x.clone(), 0).await;
    let ry = f.make(RecordKind::Events, y.clone(), 0).await;
    assert_eq!(rx.application_name(), x);
    assert_eq!(ry.application_name(), y);
    let (a, b, shared) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    rx.write(&batch(vec![item(a, 0), item(shared, 0)]))
        .await
        .unwrap();
    // The same (sequence, position) in another application is not a conflict.
    ry.write(&batch(vec![item_tagged(shared, 0, "y"), item(b, 0)]))
        .await
        .unwrap();
    let ids = |v: Vec<es_runtime::record::Notification>| {
        v.into_iter().map(|n| (n.id, n.item)).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(rx.get_notifications(1, 10, None).await.unwrap()),
        vec![(1, item(a, 0)), (2, item(shared, 0))]
    );
    assert_eq!(
        ids(ry.get_notifications(1, 10, None).await.unwrap()),
        vec![(1, item_tagged(shared, 0, "y")), (2, item(b, 0))]
    );
    assert!(matches!(rx.get_item(b, 0).await, Err(Error::NotFound(_))));
    assert_eq!(
        ry.get_item(shared, 0).await.unwrap(),
        item_tagged(shared, 0, "y")
    );
    let mut lx = rx.list_sequence_ids().await.unwrap();
    lx.sort();
    let mut want = vec![a, shared];
    want.sort();
    assert_eq!(lx, want);
    let up = app_name();
    rx.write(&tracked(vec![], &up, 3)).await.unwrap();
    assert_eq!(ry.max_tracking_id(&up).await.unwrap(), 0);
    ry.delete_item(shared, 0).await.unwrap();
    assert_eq!(rx.get_item(shared, 0).await.unwrap(), item(shared, 0));
}

/// Each pipeline of one application has its own notification sequence; the items themselves
/// (one aggregate table per application) are shared, so positions still conflict across pipelines.
pub async fn pipelines_have_separate_notification_sequences(f: impl Factory) {
    let app = app_name();
    let p0 = f.make(RecordKind::Events, app.clone(), 0).await;
    let p1 = f.make(RecordKind::Events, app.clone(), 1).await;
    assert_eq!(p1.pipeline_id(), 1);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    p0.write(&batch(vec![item(a, 0), item(a, 1)]))
        .await
        .unwrap();
    p1.write(&batch(vec![item(b, 0)])).await.unwrap();
    p0.write(&batch(vec![item(a, 2)])).await.unwrap();
    let n0 = p0.get_notifications(1, 10, None).await.unwrap();
    let n1 = p1.get_notifications(1, 10, None).await.unwrap();
    assert_eq!(
        n0.into_iter().map(|n| (n.id, n.item)).collect::<Vec<_>>(),
        vec![(1, item(a, 0)), (2, item(a, 1)), (3, item(a, 2))]
    );
    assert_eq!(
        n1.into_iter().map(|n| (n.id, n.item)).collect::<Vec<_>>(),
        vec![(1, item(b, 0))]
    );
    assert_eq!(p0.max_notification_id().await.unwrap(), 3);
    assert_eq!(p1.max_notification_id().await.unwrap(), 1);
    assert_conflict(
        p1.write(&batch(vec![item(a, 1)])).await,
        "position taken in another pipeline",
    );
    assert_eq!(p1.max_notification_id().await.unwrap(), 1);
    assert_eq!(p1.get_item(a, 2).await.unwrap(), item(a, 2));
}
