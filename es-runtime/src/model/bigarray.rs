//! The big array (§10.2.4 of the manual): an array of effectively unbounded length, stored as a
//! tree of fixed-size arrays, with constant-time reads and near-constant appends.
//!
//! The tree has two levels. Item `i` lives at offset `i % size` of chunk `i / size`, a sequence
//! whose id is derived from the array's id and the chunk number (so reading an item is one
//! lookup, whatever the length). The root sequence records, at position `k`, that chunk `k` has
//! been started; the next free position is found from the root's last entry and that chunk's
//! last item: two reads. With the default chunk size of 2^20 the array holds 2^40 items.
//!
//! Assigning an occupied index is a [`Error::Concurrency`] error, so concurrent writers never
//! overwrite each other; an [`IntegerSequenceGenerator`](super::sequence::IntegerSequenceGenerator)
//! can hand each writer an index of its own.
//!
//! Store a big array in a record manager whose table has no notification log (for example of
//! kind [`RecordKind::TimestampSequenced`](crate::record::RecordKind)), or one of its own.

use crate::error::{Error, Result};
use crate::record::{ItemQuery, RecordBatch, RecordManager, SequencedItem};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;
use uuid::Uuid;

const ITEM_TOPIC: &str = "es.bigarray.item";
const CHUNK_TOPIC: &str = "es.bigarray.chunk";

/// The default number of items in one chunk.
pub const DEFAULT_CHUNK_SIZE: i64 = 1 << 20;

/// A big array of `T` (stored as JSON).
pub struct BigArray<T> {
    id: Uuid,
    chunk_size: i64,
    records: Arc<dyn RecordManager>,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for BigArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigArray")
            .field("id", &self.id)
            .field("chunk_size", &self.chunk_size)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> BigArray<T> {
    /// The big array `id` in `records`, with chunks of [`DEFAULT_CHUNK_SIZE`] items.
    pub fn new(records: Arc<dyn RecordManager>, id: Uuid) -> Self {
        BigArray {
            id,
            chunk_size: DEFAULT_CHUNK_SIZE,
            records,
            _t: PhantomData,
        }
    }

    /// The same array with chunks of `size` items (every user of one array must agree on it).
    pub fn with_chunk_size(mut self, size: i64) -> Result<Self> {
        if size < 1 {
            return Err(Error::Configuration(format!(
                "big array chunk size must be at least 1, got {size}"
            )));
        }
        self.chunk_size = size;
        Ok(self)
    }

    /// The array's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    fn chunk_id(&self, chunk: i64) -> Uuid {
        Uuid::new_v5(&self.id, &chunk.to_be_bytes())
    }

    fn check_index(index: i64) -> Result<()> {
        if index < 0 {
            return Err(Error::NotFound(format!("negative big array index {index}")));
        }
        Ok(())
    }

    /// The item at `index`; [`Error::NotFound`] if nothing was assigned there.
    pub async fn get(&self, index: i64) -> Result<T> {
        Self::check_index(index)?;
        let (chunk, offset) = (index / self.chunk_size, index % self.chunk_size);
        let item = self
            .records
            .get_item(self.chunk_id(chunk), offset)
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => {
                    Error::NotFound(format!("big array {} index {index}", self.id))
                }
                other => other,
            })?;
        decode(&item)
    }

    /// Assigns `value` at `index`. An occupied index is [`Error::Concurrency`], and the item
    /// already there is left as it was.
    pub async fn assign(&self, index: i64, value: &T) -> Result<()> {
        Self::check_index(index)?;
        let (chunk, offset) = (index / self.chunk_size, index % self.chunk_size);
        let item = SequencedItem {
            sequence_id: self.chunk_id(chunk),
            position: offset,
            topic: ITEM_TOPIC.into(),
            state: serde_json::to_vec(value)?.into(),
        };
        let marker = SequencedItem {
            sequence_id: self.id,
            position: chunk,
            topic: CHUNK_TOPIC.into(),
            state: crate::record::Bytes::new(),
        };
        // First try with the chunk's root entry; if that is what conflicted, without it.
        match self
            .records
            .write(&RecordBatch::items(vec![item.clone(), marker]))
            .await
        {
            Ok(()) => return Ok(()),
            Err(Error::RecordConflict(_)) => {}
            Err(e) => return Err(e),
        }
        match self.records.write(&RecordBatch::items(vec![item])).await {
            Ok(()) => Ok(()),
            Err(Error::RecordConflict(_)) => Err(Error::Concurrency(format!(
                "big array {} index {index} is occupied",
                self.id
            ))),
            Err(e) => Err(e),
        }
    }

    /// The position after the last assigned item (0 for an empty array).
    pub async fn next_position(&self) -> Result<i64> {
        let last = ItemQuery {
            limit: Some(1),
            query_descending: true,
            results_descending: true,
            ..Default::default()
        };
        let Some(root) = self.records.get_items(self.id, &last).await?.pop() else {
            return Ok(0);
        };
        let chunk = root.position;
        let offset = self
            .records
            .get_items(self.chunk_id(chunk), &last)
            .await?
            .pop()
            .map(|i| i.position + 1)
            .unwrap_or(0);
        Ok(chunk * self.chunk_size + offset)
    }

    /// Appends `value` at the next position, retrying (up to `attempts` times) when another
    /// writer takes that position first. Returns the index.
    pub async fn append(&self, value: &T) -> Result<i64> {
        let mut tries = 0;
        loop {
            let index = self.next_position().await?;
            match self.assign(index, value).await {
                Ok(()) => return Ok(index),
                Err(Error::Concurrency(_)) if tries < 100 => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The items assigned in `range`, with their indexes, in order (unassigned indexes are
    /// left out).
    pub async fn slice(&self, range: Range<i64>) -> Result<Vec<(i64, T)>> {
        let start = range.start.max(0);
        let end = range.end;
        let mut out = Vec::new();
        if start >= end {
            return Ok(out);
        }
        let (first, last) = (start / self.chunk_size, (end - 1) / self.chunk_size);
        for chunk in first..=last {
            let base = chunk * self.chunk_size;
            let q = ItemQuery {
                gte: Some((start - base).max(0)),
                lt: Some((end - base).min(self.chunk_size)),
                ..Default::default()
            };
            for item in self.records.get_items(self.chunk_id(chunk), &q).await? {
                out.push((base + item.position, decode(&item)?));
            }
        }
        Ok(out)
    }
}

fn decode<T: DeserializeOwned>(item: &SequencedItem) -> Result<T> {
    if item.topic != ITEM_TOPIC {
        return Err(crate::error::IntegrityError::Corrupt(format!(
            "big array item has topic {:?}",
            item.topic
        ))
        .into());
    }
    serde_json::from_slice(&item.state).map_err(|e| {
        crate::error::IntegrityError::Corrupt(format!("big array item is not valid: {e}")).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::memory::InMemoryDatabase;
    use crate::record::RecordKind;

    fn array(size: i64) -> BigArray<String> {
        let records = Arc::new(InMemoryDatabase::new().record_manager(
            RecordKind::TimestampSequenced,
            "arrays",
            0,
        ));
        BigArray::new(records, Uuid::new_v4())
            .with_chunk_size(size)
            .unwrap()
    }

    #[tokio::test]
    async fn append_get_slice_across_chunks() {
        let a = array(3);
        assert_eq!(a.next_position().await.unwrap(), 0);
        for i in 0..10 {
            assert_eq!(a.append(&format!("item{i}")).await.unwrap(), i);
        }
        assert_eq!(a.next_position().await.unwrap(), 10);
        assert_eq!(a.get(7).await.unwrap(), "item7");
        let s = a.slice(2..8).await.unwrap();
        assert_eq!(
            s.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 6, 7]
        );
        assert_eq!(s[0].1, "item2");
        assert!(matches!(a.get(10).await, Err(Error::NotFound(_))));
        assert!(matches!(a.get(-1).await, Err(Error::NotFound(_))));
    }

    #[tokio::test]
    async fn occupied_index_is_a_concurrency_error_and_keeps_the_first_value() {
        let a = array(4);
        a.assign(5, &"first".to_string()).await.unwrap();
        assert!(matches!(
            a.assign(5, &"second".to_string()).await,
            Err(Error::Concurrency(_))
        ));
        assert_eq!(a.get(5).await.unwrap(), "first");
        // Another index of the same chunk still works (the chunk's root entry exists).
        a.assign(6, &"third".to_string()).await.unwrap();
        assert_eq!(a.next_position().await.unwrap(), 7);
    }

    #[tokio::test]
    async fn concurrent_appenders_get_distinct_positions() {
        let a = Arc::new(array(5));
        let mut tasks = Vec::new();
        for t in 0..8 {
            let a = a.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..10 {
                    got.push(a.append(&format!("{t}-{i}")).await.unwrap());
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (0..80).collect::<Vec<_>>());
        assert_eq!(a.slice(0..80).await.unwrap().len(), 80);
    }

    #[tokio::test]
    async fn big_indexes_are_constant_time_lookups() {
        let a = array(DEFAULT_CHUNK_SIZE);
        let far = 123_456_789_012;
        a.assign(far, &"far".to_string()).await.unwrap();
        assert_eq!(a.get(far).await.unwrap(), "far");
        assert_eq!(a.next_position().await.unwrap(), far + 1);
        let zero = BigArray::<String>::new(a.records.clone(), a.id).with_chunk_size(0);
        assert!(matches!(zero, Err(Error::Configuration(_))));
    }
}
