//! The big array (manual §10.2.4): an effectively unbounded array stored as a tree of
//! fixed-size arrays, each one sequence of a record manager.
//!
//! Items live in *base* arrays (level 0): index `i` is position `i % N` of base array `i / N`,
//! so reading an item is one lookup whatever its index. Above them, the array at level `l`
//! and number `k` links the level `l - 1` arrays `k*N .. k*N + N`; the apex is array 0 of the
//! highest level, and a root sequence records each level the apex has reached. The next free
//! position is found by walking down from the apex, taking the last link at each level: one
//! read per level, and with arrays of 10,000 the tree has two levels below the apex only past
//! 100,000,000 items.
//!
//! Every array's id is computed from the big array's id, the level and the number (UUID v5),
//! so no lookups are needed to find an array. A position can be assigned once: a second
//! assignment is [`Error::Concurrency`] and leaves the first item in place.
//!
//! ```
//! # async fn demo() -> es_runtime::Result<()> {
//! use es_runtime::model::bigarray::BigArray;
//! use es_runtime::record::{memory::InMemoryRecordManager, RecordKind};
//! use std::sync::Arc;
//! let records = Arc::new(InMemoryRecordManager::new(RecordKind::Snapshots));
//! let array = BigArray::<String>::new(uuid::Uuid::new_v4(), records, 4)?;
//! assert_eq!(array.append(&"item0".to_string()).await?, 0);
//! array.assign(1, &"item1".to_string()).await?;
//! assert!(array.assign(1, &"item1a".to_string()).await.is_err());
//! assert_eq!(array.get(1).await?.as_deref(), Some("item1"));
//! assert_eq!(array.next_position().await?, 2);
//! # Ok(()) }
//! ```

use crate::error::{Error, IntegrityError, Result};
use crate::record::{ItemQuery, RecordBatch, RecordManager, SequencedItem};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Topic of an item assigned to a base array.
pub const ITEM_TOPIC: &str = "es::model::BigArray.ItemAssigned";
/// Topic of a link from an upper array to the array below.
pub const LINK_TOPIC: &str = "es::model::BigArray.ArrayLinked";
/// Topic of a record in the root sequence (the apex reached a level).
pub const APEX_TOPIC: &str = "es::model::BigArray.ApexRaised";

/// A big array of items of type `T` (stored as JSON).
pub struct BigArray<T> {
    id: Uuid,
    records: Arc<dyn RecordManager>,
    size: i64,
    /// Links (level, number, position) known to be stored, to skip rewriting them.
    known_links: Mutex<HashSet<(u32, i64, i64)>>,
    /// Highest apex level known to be recorded in the root (-1: none yet).
    known_apex: AtomicI64,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for BigArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigArray")
            .field("id", &self.id)
            .field("array_size", &self.size)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> BigArray<T> {
    /// The big array `id`, stored in `records`, made of arrays of `array_size` items (at
    /// least 2). Two values with the same id, records and size are the same array.
    pub fn new(id: Uuid, records: Arc<dyn RecordManager>, array_size: usize) -> Result<Self> {
        if array_size < 2 || array_size > i32::MAX as usize {
            return Err(Error::Configuration(format!(
                "big array size must be between 2 and {}, not {array_size}",
                i32::MAX
            )));
        }
        Ok(BigArray {
            id,
            records,
            size: array_size as i64,
            known_links: Mutex::new(HashSet::new()),
            known_apex: AtomicI64::new(-1),
            _t: PhantomData,
        })
    }

    /// The big array's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The size of each array of the tree.
    pub fn array_size(&self) -> usize {
        self.size as usize
    }

    fn array_id(&self, level: u32, number: i64) -> Uuid {
        Uuid::new_v5(&self.id, format!("{level}/{number}").as_bytes())
    }

    fn root_id(&self) -> Uuid {
        Uuid::new_v5(&self.id, b"root")
    }

    /// N to the power `level`, or `None` past i64.
    fn span(&self, level: u32) -> Option<i64> {
        self.size.checked_pow(level)
    }

    /// The apex level needed to hold `index`: the least L with index < N^(L+1).
    fn level_for(&self, index: i64) -> u32 {
        let mut level = 0;
        while let Some(cap) = self.span(level + 1) {
            if index < cap {
                break;
            }
            level += 1;
        }
        level
    }

    /// Assigns `item` at `index`. If the position is taken, the error is
    /// [`Error::Concurrency`] and the stored item is unchanged.
    pub async fn assign(&self, index: i64, item: &T) -> Result<()> {
        if index < 0 {
            return Err(Error::NotFound(format!(
                "big array has no position {index}"
            )));
        }
        let state = serde_json::to_vec(item)?;
        let record = SequencedItem {
            sequence_id: self.array_id(0, index / self.size),
            position: index % self.size,
            topic: ITEM_TOPIC.to_string(),
            state,
        };
        match self.records.write(&RecordBatch::items(vec![record])).await {
            Ok(()) => {}
            Err(e) if e.is_conflict() => {
                // The taken position may lack its links (a writer stopped half-way): repair
                // them, so that the next position moves past it.
                self.link(index).await?;
                return Err(Error::Concurrency(format!(
                    "position {index} of big array {} is already assigned",
                    self.id
                )));
            }
            Err(e) => return Err(e),
        }
        self.link(index).await
    }

    /// Writes the links from the apex down to the base array holding `index`, and the apex
    /// level in the root; links that exist already are left alone.
    async fn link(&self, index: i64) -> Result<()> {
        let top = self.level_for(index);
        for level in 1..=top {
            // The level-(l-1) array holding `index`, and where it hangs in level l.
            let Some(child_span) = self.span(level) else {
                break;
            };
            let child = index / child_span;
            let key = (level, child / self.size, child % self.size);
            if self
                .known_links
                .lock()
                .map(|k| k.contains(&key))
                .unwrap_or(false)
            {
                continue;
            }
            let link = SequencedItem {
                sequence_id: self.array_id(level, key.1),
                position: key.2,
                topic: LINK_TOPIC.to_string(),
                state: b"{}".to_vec(),
            };
            self.write_idempotent(link).await?;
            if let Ok(mut k) = self.known_links.lock() {
                k.insert(key);
            }
        }
        if self.known_apex.load(Ordering::Acquire) < top as i64 {
            let apex = SequencedItem {
                sequence_id: self.root_id(),
                position: top as i64,
                topic: APEX_TOPIC.to_string(),
                state: b"{}".to_vec(),
            };
            self.write_idempotent(apex).await?;
            self.known_apex.fetch_max(top as i64, Ordering::AcqRel);
        }
        Ok(())
    }

    async fn write_idempotent(&self, item: SequencedItem) -> Result<()> {
        match self.records.write(&RecordBatch::items(vec![item])).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Appends `item` at the next position and returns its index. Another writer may take the
    /// position first: then the error is [`Error::Concurrency`] and the append can be retried.
    pub async fn append(&self, item: &T) -> Result<i64> {
        let index = self.next_position().await?;
        self.assign(index, item).await?;
        Ok(index)
    }

    async fn last_position(&self, sequence_id: Uuid) -> Result<Option<i64>> {
        let q = ItemQuery {
            limit: Some(1),
            query_descending: true,
            results_descending: true,
            ..Default::default()
        };
        Ok(self
            .records
            .get_items(sequence_id, &q)
            .await?
            .first()
            .map(|i| i.position))
    }

    /// The position after the highest assigned index (0 for an empty array).
    pub async fn next_position(&self) -> Result<i64> {
        let Some(apex) = self.last_position(self.root_id()).await? else {
            return Ok(0);
        };
        let level = u32::try_from(apex).map_err(|_| {
            IntegrityError::Corrupt(format!("big array {} has apex level {apex}", self.id))
        })?;
        let mut number = 0i64;
        for l in (1..=level).rev() {
            match self.last_position(self.array_id(l, number)).await? {
                Some(p) => number = number * self.size + p,
                None => return Ok(number.saturating_mul(self.span(l + 1).unwrap_or(i64::MAX))),
            }
        }
        Ok(match self.last_position(self.array_id(0, number)).await? {
            Some(p) => number * self.size + p + 1,
            None => number * self.size,
        })
    }

    fn decode(&self, index: i64, item: &SequencedItem) -> Result<T> {
        serde_json::from_slice(&item.state).map_err(|e| {
            IntegrityError::Corrupt(format!("item {index} of big array {}: {e}", self.id)).into()
        })
    }

    /// The item at `index`, or `None` if nothing is assigned there.
    pub async fn get(&self, index: i64) -> Result<Option<T>> {
        if index < 0 {
            return Ok(None);
        }
        match self
            .records
            .get_item(self.array_id(0, index / self.size), index % self.size)
            .await
        {
            Ok(item) => Ok(Some(self.decode(index, &item)?)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The items at `start..stop`, `None` where nothing is assigned; one read per base array.
    pub async fn slice(&self, start: i64, stop: i64) -> Result<Vec<Option<T>>> {
        let start = start.max(0);
        if stop <= start {
            return Ok(Vec::new());
        }
        let mut out: Vec<Option<T>> = Vec::with_capacity((stop - start).min(1 << 16) as usize);
        let mut base = start / self.size;
        while base * self.size < stop {
            let lo = (base * self.size).max(start);
            let hi = ((base + 1) * self.size).min(stop);
            let q = ItemQuery {
                gte: Some(lo % self.size),
                lt: Some(hi - base * self.size),
                ..Default::default()
            };
            let items = self.records.get_items(self.array_id(0, base), &q).await?;
            let mut next = lo;
            for item in &items {
                let index = base * self.size + item.position;
                while next < index {
                    out.push(None);
                    next += 1;
                }
                out.push(Some(self.decode(index, item)?));
                next = index + 1;
            }
            while next < hi {
                out.push(None);
                next += 1;
            }
            base += 1;
        }
        Ok(out)
    }
}
