//! The domain library's structures on every backend, and the Redis sequence generator.

mod support;
// The name `case!` expects (see `support::harness`).
use support as server_support;

use es_runtime::model::bigarray::BigArray;
use es_runtime::model::sequence::{InProcessSequence, IntegerSequenceGenerator};
use es_runtime::record::RecordKind;
use es_runtime::Error;
use std::sync::Arc;
use uuid::Uuid;

async fn big_array_on_every_backend() {
    for (backend, db) in support::databases().await {
        let records = db.record_manager(RecordKind::TimestampSequenced, &support::unique("arr"), 0);
        let a = Arc::new(
            BigArray::<u64>::new(records, Uuid::new_v4())
                .with_chunk_size(4)
                .unwrap(),
        );
        // Writers take positions from a shared generator, then assign: no contention.
        let positions = Arc::new(InProcessSequence::new());
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (a, positions) = (a.clone(), positions.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    let i = positions.next().await.unwrap();
                    a.assign(i, &(i as u64 * 10)).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(a.next_position().await.unwrap(), 20, "{backend}");
        let all = a.slice(0..20).await.unwrap();
        assert_eq!(all.len(), 20, "{backend}");
        assert!(all.iter().all(|(i, v)| *v == *i as u64 * 10), "{backend}");
        assert!(
            matches!(a.assign(3, &0).await, Err(Error::Concurrency(_))),
            "{backend}"
        );
        assert_eq!(a.get(3).await.unwrap(), 30);
        assert_eq!(a.append(&7).await.unwrap(), 20);
    }
}

#[cfg(feature = "redis")]
async fn redis_sequence_hands_out_each_integer_once() {
    use es_runtime::model::sequence::RedisSequence;
    let url = support::server_url("ES_REDIS_URL", "redis").expect("the harness found the server");
    let key = support::unique("es-seq");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (url, key) = (url.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let s = RedisSequence::connect(&url, key).await.unwrap();
            let mut got = Vec::new();
            for _ in 0..50 {
                got.push(s.next().await.unwrap());
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (0..200).collect::<Vec<_>>(), "0 first");
}

#[cfg(feature = "redis")]
async fn unreachable_redis_is_operational() {
    use es_runtime::model::sequence::RedisSequence;
    let e = RedisSequence::connect("redis://127.0.0.1:1", "k")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Operational(_)), "{e}");
    let e = RedisSequence::connect("not a url", "k").await.unwrap_err();
    assert!(matches!(e, Error::Configuration(_)), "{e}");
}

/// Runs every case; those whose server does not answer are reported as ignored (see
/// `server_support::harness`).
fn main() -> std::process::ExitCode {
    support::harness::run_cases(&[
        case!(local big_array_on_every_backend),
        #[cfg(feature = "redis")]
        case!(REDIS redis_sequence_hands_out_each_integer_once),
        #[cfg(feature = "redis")]
        case!(local unreachable_redis_is_operational),
    ])
}
