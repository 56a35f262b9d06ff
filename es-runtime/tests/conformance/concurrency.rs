//! Concurrent writers and readers (issue item 8).

use super::{app_name, item_tagged, Factory};
use es_runtime::record::{ItemQuery, RecordBatch, RecordKind, RecordManager};
use es_runtime::Error;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;
use uuid::Uuid;

const TASKS: usize = 8;

/// Runs one write per task, all released at once; returns each task's outcome.
async fn race(
    rm: &Arc<dyn RecordManager>,
    batches: Vec<RecordBatch>,
) -> Vec<es_runtime::Result<()>> {
    let barrier = Arc::new(Barrier::new(batches.len()));
    let handles: Vec<_> = batches
        .into_iter()
        .map(|b| {
            let rm = rm.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                rm.write(&b).await
            })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("writer task panicked"));
    }
    out
}

fn tag(task: usize) -> String {
    format!("task{task}")
}

/// 8 tasks append the same positions of one sequence: exactly one wins, the rest get
/// RecordConflict and leave nothing.
pub async fn race_for_the_same_positions(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    let rounds = 10;
    for _ in 0..rounds {
        let s = Uuid::new_v4();
        let batches = (0..TASKS)
            .map(|t| RecordBatch::items((0..4).map(|p| item_tagged(s, p, &tag(t))).collect()))
            .collect();
        let results = race(&rm, batches).await;
        let winners: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_ok())
            .map(|(t, _)| t)
            .collect();
        assert_eq!(winners.len(), 1, "exactly one writer must win: {results:?}");
        for r in &results {
            assert!(
                matches!(r, Ok(()) | Err(Error::RecordConflict(_))),
                "unexpected outcome {r:?}"
            );
        }
        let w = winners[0];
        let want: Vec<_> = (0..4).map(|p| item_tagged(s, p, &tag(w))).collect();
        assert_eq!(rm.get_items(s, &ItemQuery::all()).await.unwrap(), want);
    }
    let n = rm.get_notifications(1, 1000, None).await.unwrap();
    assert_eq!(
        n.iter().map(|n| n.id).collect::<Vec<_>>(),
        (1..=4 * rounds).collect::<Vec<_>>()
    );
}

/// 8 tasks append overlapping windows (task i: positions i, i+1, i+2): each position is held by
/// one successful batch, every successful batch is complete, every failed one is absent.
pub async fn race_for_overlapping_positions(f: impl Factory) {
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    let mut total_ok = 0;
    let mut sequences = Vec::new();
    for _ in 0..10 {
        let s = Uuid::new_v4();
        sequences.push(s);
        let batches = (0..TASKS)
            .map(|t| {
                RecordBatch::items(
                    (t as i64..t as i64 + 3)
                        .map(|p| item_tagged(s, p, &tag(t)))
                        .collect(),
                )
            })
            .collect();
        let results = race(&rm, batches).await;
        let ok: HashSet<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_ok())
            .map(|(t, _)| t)
            .collect();
        assert!(!ok.is_empty(), "some writer must win");
        for r in &results {
            assert!(
                matches!(r, Ok(()) | Err(Error::RecordConflict(_))),
                "unexpected outcome {r:?}"
            );
        }
        let stored = rm.get_items(s, &ItemQuery::all()).await.unwrap();
        let by_pos: BTreeMap<i64, _> = stored.iter().map(|i| (i.position, i.clone())).collect();
        for &t in &ok {
            for p in t as i64..t as i64 + 3 {
                assert_eq!(
                    by_pos.get(&p),
                    Some(&item_tagged(s, p, &tag(t))),
                    "winner {t} incomplete at {p}"
                );
            }
        }
        assert_eq!(
            stored.len(),
            ok.len() * 3,
            "a losing batch left items behind"
        );
        total_ok += ok.len();
    }
    let n = rm.get_notifications(1, 10_000, None).await.unwrap();
    assert_eq!(n.len(), total_ok * 3);
    assert_eq!(
        n.iter().map(|n| n.id).collect::<Vec<_>>(),
        (1..=n.len() as i64).collect::<Vec<_>>()
    );
    let keys: HashSet<_> = n
        .iter()
        .map(|n| (n.item.sequence_id, n.item.position))
        .collect();
    assert_eq!(keys.len(), n.len(), "an item has two notification ids");
}

/// 8 tasks × 500 one-event saves on separate sequences while a reader tails the log: ids are
/// exactly 1..=4000, none twice, and the reader only ever sees a contiguous prefix.
pub async fn writers_with_tailing_reader(f: impl Factory) {
    const PER_TASK: i64 = 500;
    let total = TASKS as i64 * PER_TASK;
    let rm = f.make(RecordKind::Events, app_name(), 0).await;
    let deadline = Instant::now() + Duration::from_secs(120);

    let reader = {
        let rm = rm.clone();
        tokio::spawn(async move {
            let mut next = 1i64;
            let mut seen = Vec::new();
            let mut last_max = 0;
            let mut turn = 0u64;
            while next <= total {
                assert!(Instant::now() < deadline, "reader stuck at {next}");
                turn += 1;
                let got = if turn.is_multiple_of(2) {
                    // What max_notification_id reports must be readable in full.
                    let max = rm.max_notification_id().await.unwrap();
                    assert!(
                        max >= last_max,
                        "max notification id went back from {last_max} to {max}"
                    );
                    last_max = max;
                    if max < next {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                    let got = rm.get_notifications(next, max, None).await.unwrap();
                    assert_eq!(
                        got.len() as i64,
                        max - next + 1,
                        "max said {max} but ids {next}..={max} are not all visible"
                    );
                    got
                } else if turn.is_multiple_of(3) {
                    // Streamed, as a reader's for_each reads a local log.
                    let mut got = Vec::new();
                    rm.for_each_notification(next, next + 199, Some(200), &mut |n| {
                        got.push(n);
                        Ok(())
                    })
                    .await
                    .unwrap();
                    got
                } else {
                    rm.get_notifications(next, next + 99, Some(100))
                        .await
                        .unwrap()
                };
                if got.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                for n in got {
                    assert_eq!(
                        n.id, next,
                        "reader saw a gap: expected id {next}, got {}",
                        n.id
                    );
                    next += 1;
                    seen.push(n);
                }
            }
            seen
        })
    };

    let writers: Vec<_> = (0..TASKS)
        .map(|t| {
            let rm = rm.clone();
            tokio::spawn(async move {
                let s = Uuid::new_v4();
                for p in 0..PER_TASK {
                    rm.write(&RecordBatch::items(vec![item_tagged(s, p, &tag(t))]))
                        .await
                        .unwrap();
                }
                s
            })
        })
        .collect();
    let mut sequences = Vec::new();
    for w in writers {
        sequences.push(w.await.expect("writer panicked"));
    }
    let seen = reader.await.expect("reader failed");

    assert_eq!(seen.len() as i64, total);
    assert_eq!(
        seen.iter().map(|n| n.id).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
    let distinct: HashSet<_> = seen
        .iter()
        .map(|n| (n.item.sequence_id, n.item.position))
        .collect();
    assert_eq!(distinct.len() as i64, total, "an item was notified twice");
    // Within a sequence, notification order is write order.
    let mut last: HashMap<Uuid, i64> = HashMap::new();
    for n in &seen {
        let prev = last
            .insert(n.item.sequence_id, n.item.position)
            .unwrap_or(-1);
        assert_eq!(
            n.item.position,
            prev + 1,
            "sequence {} out of order",
            n.item.sequence_id
        );
    }
    for s in sequences {
        assert_eq!(last.get(&s), Some(&(PER_TASK - 1)));
    }
    assert_eq!(rm.max_notification_id().await.unwrap(), total);
    let again = rm.get_notifications(1, total, None).await.unwrap();
    assert_eq!(
        again.iter().map(|n| n.id).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>()
    );
}
