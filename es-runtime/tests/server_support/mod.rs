//! Shared by the PostgreSQL and MySQL backend tests: server URLs (run, skip or fail: see
//! [`probe`]), the runner of the server-only suites ([`harness`]) and backend-independent
//! concurrency checks over any `RecordManager`.

#![allow(dead_code)]

use es_runtime::record::{RecordBatch, RecordManager, SequencedItem};
use es_runtime::Error;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub mod harness;
pub mod probe;

/// The server URL from `var` (or the conventional local address), or `None` when no server
/// answers there; the first call per backend prints whether the suite runs (see [`probe`]).
/// Panics when `ES_REQUIRE_SERVERS=1` and no server answers.
pub fn server_url(var: &str, _backend: &str) -> Option<String> {
    probe::probe(probe::by_var(var)).ok()
}

/// A unique lower-case name for one test's schema or table prefix.
pub fn unique_name(tag: &str) -> String {
    format!("es_{tag}_{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// An item with a recognisable topic.
pub fn item(sequence_id: Uuid, position: i64, topic: &str) -> SequencedItem {
    SequencedItem {
        sequence_id,
        position,
        topic: topic.to_string().into(),
        state: format!("{{\"p\":{position}}}").into_bytes().into(),
    }
}

/// Item 8(a): 8 tasks race to append overlapping batches of one sequence, round after round:
/// exactly one batch wins each round, the losers get `RecordConflict`, nothing partial remains.
pub async fn racing_appenders<M: RecordManager>(managers: Vec<Arc<M>>, rounds: i64) {
    assert_eq!(managers.len(), 8);
    let seq = Uuid::new_v4();
    for round in 0..rounds {
        let base = round * 10;
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = Vec::new();
        for (t, m) in managers.iter().enumerate() {
            let m = m.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                // Every batch starts at `base`, so they all collide; lengths differ (1..=5).
                let len = 1 + (t as i64 % 5);
                let items = (0..len)
                    .map(|k| item(seq, base + k, &format!("task{t}")))
                    .collect();
                barrier.wait().await;
                (t, len, m.write(&RecordBatch::items(items)).await)
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            let (t, len, r) = task.await.unwrap();
            match r {
                Ok(()) => winners.push((t, len)),
                Err(Error::RecordConflict(_)) => {}
                Err(e) => panic!("round {round}: task {t} failed with {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let (t, len) = winners[0];
        let stored = managers[0]
            .get_items(
                seq,
                &es_runtime::record::ItemQuery {
                    gte: Some(base),
                    lt: Some(base + 10),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let positions: Vec<i64> = stored.iter().map(|i| i.position).collect();
        assert_eq!(
            positions,
            (base..base + len).collect::<Vec<_>>(),
            "round {round}"
        );
        assert!(
            stored.iter().all(|i| i.topic == format!("task{t}")),
            "round {round}: mixed batch"
        );
    }
}

/// Item 8(b): `writers` tasks each write `per_writer` one-event transactions on their own
/// sequence while a reader tails the notification log. Ids are exactly 1..=total, no
/// duplicates, each writer's events appear in its order, and the reader never observes a gap
/// (every page it reads starts where the previous one ended and is contiguous).
pub async fn tailing_reader<M: RecordManager>(
    writer_managers: Vec<Arc<M>>,
    reader: Arc<M>,
    per_writer: i64,
) {
    let writers = writer_managers.len() as i64;
    let total = writers * per_writer;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader_task = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen: Vec<(i64, Uuid, i64)> = Vec::new();
            let mut next = 1i64;
            let mut last_max = 0i64;
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let page = reader
                    .get_notifications(next, next + 499, Some(500))
                    .await
                    .unwrap();
                for (k, n) in page.iter().enumerate() {
                    assert_eq!(n.id, next + k as i64, "reader saw a gap before id {}", n.id);
                    seen.push((n.id, n.item.sequence_id, n.item.position));
                }
                next += page.len() as i64;
                let max = reader.max_notification_id().await.unwrap();
                assert!(
                    max >= last_max,
                    "max notification id went back from {last_max} to {max}"
                );
                assert!(
                    max >= next - 1,
                    "max {max} below ids already read ({})",
                    next - 1
                );
                last_max = max;
                if next > total {
                    break;
                }
                if page.is_empty() {
                    assert!(Instant::now() < deadline, "reader timed out at id {next}");
                    let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(if finished { 20 } else { 2 })).await;
                }
            }
            // Nothing beyond the total appears later.
            let extra = reader
                .get_notifications(total + 1, total + 10, None)
                .await
                .unwrap();
            assert!(extra.is_empty());
            seen
        })
    };
    let mut tasks = Vec::new();
    for m in writer_managers {
        tasks.push(tokio::spawn(async move {
            let seq = Uuid::new_v4();
            for v in 0..per_writer {
                m.write(&RecordBatch::items(vec![item(seq, v, "tail")]))
                    .await
                    .unwrap();
            }
            seq
        }));
    }
    let mut seqs = HashSet::new();
    for t in tasks {
        seqs.insert(t.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader_task.await.unwrap();
    assert_eq!(seen.len() as i64, total);
    let ids: Vec<i64> = seen.iter().map(|s| s.0).collect();
    assert_eq!(ids, (1..=total).collect::<Vec<_>>());
    let distinct: HashSet<(Uuid, i64)> = seen.iter().map(|s| (s.1, s.2)).collect();
    assert_eq!(distinct.len() as i64, total, "an item appeared twice");
    for seq in seqs {
        let versions: Vec<i64> = seen.iter().filter(|s| s.1 == seq).map(|s| s.2).collect();
        assert_eq!(
            versions,
            (0..per_writer).collect::<Vec<_>>(),
            "writer order not kept"
        );
    }
}
