//! The big array on every backend, with positions from a shared sequence generator.

mod support;

use es_runtime::model::bigarray::BigArray;
use es_runtime::model::sequence::{IntegerSequenceGenerator, SimpleIntegerSequenceGenerator};
use es_runtime::record::RecordKind;
use es_runtime::Error;
use std::sync::Arc;
use uuid::Uuid;

#[tokio::test]
async fn big_array_on_every_backend() {
    for (backend, db) in support::databases().await {
        let records = db.record_manager(RecordKind::TimestampSequenced, &support::unique("arr"), 0);
        let a = Arc::new(BigArray::<u64>::new(Uuid::new_v4(), records, 4).unwrap());
        // Writers take positions from a shared generator, then assign: no contention.
        let positions = Arc::new(SimpleIntegerSequenceGenerator::new());
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
        let all = a.slice(0, 20).await.unwrap();
        assert_eq!(all.len(), 20, "{backend}");
        assert!(
            all.iter()
                .enumerate()
                .all(|(i, v)| *v == Some(i as u64 * 10)),
            "{backend}"
        );
        assert!(
            matches!(a.assign(3, &0).await, Err(Error::Concurrency(_))),
            "{backend}"
        );
        assert_eq!(a.get(3).await.unwrap(), Some(30));
        assert_eq!(a.append(&7).await.unwrap(), 20);
    }
}
