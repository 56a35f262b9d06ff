//! Integer sequence generators: 0, 1, 2, ... shared by the writers of one sequence, so each
//! gets a position of its own (for example to append to a [`BigArray`](super::bigarray::BigArray)
//! without contention on its last position). As in the manual (§10.2.4), the first integer is 0,
//! the first index of an array:
//!
//! ```
//! # async fn demo() -> es_runtime::Result<()> {
//! use es_runtime::model::sequence::{InProcessSequence, IntegerSequenceGenerator};
//! let integers = InProcessSequence::new();
//! assert_eq!(integers.next().await?, 0);
//! assert_eq!(integers.next().await?, 1);
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
//! ```

use crate::error::{Error, Result};
use async_trait::async_trait;
use std::sync::atomic::{AtomicI64, Ordering};

/// Hands out the next integer of a sequence, never the same one twice.
#[async_trait]
pub trait IntegerSequenceGenerator: Send + Sync {
    /// The next integer (the first call returns 0).
    async fn next(&self) -> Result<i64>;
}

/// A generator in this process's memory.
#[derive(Debug, Default)]
pub struct InProcessSequence {
    /// The integer the next call returns.
    next: AtomicI64,
}

impl InProcessSequence {
    /// A sequence whose first value is 0.
    pub fn new() -> Self {
        Self::default()
    }
    /// A sequence whose next value is `last + 1` (`starting_after(-1)` is [`InProcessSequence::new`]).
    /// After `i64::MAX` the sequence is exhausted: [`Error::Operational`].
    pub fn starting_after(last: i64) -> Self {
        InProcessSequence {
            // After i64::MAX the sequence is exhausted (marked by i64::MIN, see `next`).
            next: AtomicI64::new(last.checked_add(1).unwrap_or(i64::MIN)),
        }
    }
}

#[async_trait]
impl IntegerSequenceGenerator for InProcessSequence {
    async fn next(&self) -> Result<i64> {
        // Never moves past i64::MAX, which is handed out once, after which the sequence is
        // exhausted (marked by i64::MIN, which no sequence hands out).
        let exhausted = || Error::Operational("integer sequence exhausted".into());
        let v = self
            .next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| match v {
                i64::MIN => None,
                i64::MAX => Some(i64::MIN),
                v => Some(v + 1),
            })
            .map_err(|_| exhausted())?;
        Ok(v)
    }
}

/// A generator on Redis (`INCR` of one key): shared by every process that uses the key. The
/// first integer is 0 (the key holds how many integers were handed out).
#[cfg(feature = "redis")]
pub struct RedisSequence {
    conn: redis::aio::MultiplexedConnection,
    key: String,
}

#[cfg(feature = "redis")]
impl std::fmt::Debug for RedisSequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSequence")
            .field("key", &self.key)
            .finish()
    }
}

#[cfg(feature = "redis")]
impl RedisSequence {
    /// Connects to Redis at `url` (`redis://host:port`) and uses `key`.
    pub async fn connect(url: &str, key: impl Into<String>) -> Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::Configuration(format!("redis: invalid URL: {e}")))?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| Error::Operational(format!("redis: cannot connect: {e}")))?;
        Ok(RedisSequence {
            conn,
            key: key.into(),
        })
    }

    /// The key the sequence is kept under.
    pub fn key(&self) -> &str {
        &self.key
    }
}

#[cfg(feature = "redis")]
#[async_trait]
impl IntegerSequenceGenerator for RedisSequence {
    async fn next(&self) -> Result<i64> {
        let mut conn = self.conn.clone();
        let count = redis::cmd("INCR")
            .arg(&self.key)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(|e| Error::Operational(format!("redis: INCR {}: {e}", self.key)))?;
        // INCR answers the count after this call: 1 for the first.
        Ok(count - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_sequence_counts_from_zero_without_repeats_under_concurrency() {
        let s = std::sync::Arc::new(InProcessSequence::new());
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mut v = Vec::new();
                for _ in 0..100 {
                    v.push(s.next().await.unwrap());
                }
                v
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (0..800).collect::<Vec<_>>());
        assert_eq!(
            InProcessSequence::starting_after(41).next().await.unwrap(),
            42
        );
        let last = InProcessSequence::starting_after(i64::MAX - 1);
        assert_eq!(last.next().await.unwrap(), i64::MAX);
        assert!(matches!(last.next().await, Err(Error::Operational(_))));
        assert!(matches!(last.next().await, Err(Error::Operational(_))));
        assert!(matches!(
            InProcessSequence::starting_after(i64::MAX).next().await,
            Err(Error::Operational(_))
        ));
    }
}
