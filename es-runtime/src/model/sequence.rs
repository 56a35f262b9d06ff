//! Integer sequence generators: 1, 2, 3, ... shared by the writers of one sequence, so each
//! gets a position of its own (for example to append to a [`BigArray`](super::bigarray::BigArray)
//! without contention on its last position).

use crate::error::{Error, Result};
use async_trait::async_trait;
use std::sync::atomic::{AtomicI64, Ordering};

/// Hands out the next integer of a sequence, never the same one twice.
#[async_trait]
pub trait IntegerSequenceGenerator: Send + Sync {
    /// The next integer (the first call returns 1).
    async fn next(&self) -> Result<i64>;
}

/// A generator in this process's memory.
#[derive(Debug, Default)]
pub struct InProcessSequence {
    last: AtomicI64,
}

impl InProcessSequence {
    /// A sequence whose first value is 1.
    pub fn new() -> Self {
        Self::default()
    }
    /// A sequence whose next value is `last + 1`.
    pub fn starting_after(last: i64) -> Self {
        InProcessSequence {
            last: AtomicI64::new(last),
        }
    }
}

#[async_trait]
impl IntegerSequenceGenerator for InProcessSequence {
    async fn next(&self) -> Result<i64> {
        let v = self.last.fetch_add(1, Ordering::SeqCst);
        v.checked_add(1)
            .ok_or_else(|| Error::Operational("integer sequence exhausted".into()))
    }
}

/// A generator on Redis (`INCR` of one key): shared by every process that uses the key.
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
        redis::cmd("INCR")
            .arg(&self.key)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(|e| Error::Operational(format!("redis: INCR {}: {e}", self.key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_sequence_counts_from_one_without_repeats_under_concurrency() {
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
        assert_eq!(all, (1..=800).collect::<Vec<_>>());
        assert_eq!(
            InProcessSequence::starting_after(41).next().await.unwrap(),
            42
        );
    }
}
