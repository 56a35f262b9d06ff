//! Integer sequence generators (manual §10.2.4): contiguous integers 0, 1, 2, ... shared by
//! several writers, for assigning big array positions without looking for the next one.
//!
//! [`SimpleIntegerSequenceGenerator`] serves one process (its clones share the count);
//! `RedisIncr` (feature `redis`) serves many processes on many hosts with Redis' `INCR`.
//!
//! ```
//! # async fn demo() -> es_runtime::Result<()> {
//! use es_runtime::model::sequence::{IntegerSequenceGenerator, SimpleIntegerSequenceGenerator};
//! let integers = SimpleIntegerSequenceGenerator::new();
//! assert_eq!(integers.next().await?, 0);
//! assert_eq!(integers.next().await?, 1);
//! # Ok(()) }
//! ```

use crate::error::Result;
use async_trait::async_trait;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of contiguous integers: each call returns a number no other call returned.
#[async_trait]
pub trait IntegerSequenceGenerator: Send + Sync {
    /// The next integer.
    async fn next(&self) -> Result<i64>;
}

/// Integers from an in-process counter, shared by clones and threads.
#[derive(Clone, Debug, Default)]
pub struct SimpleIntegerSequenceGenerator {
    next: Arc<AtomicI64>,
}

impl SimpleIntegerSequenceGenerator {
    /// Counts from 0.
    pub fn new() -> Self {
        Self::starting_at(0)
    }

    /// Counts from `start` (for example from a big array's next position after a restart).
    pub fn starting_at(start: i64) -> Self {
        SimpleIntegerSequenceGenerator {
            next: Arc::new(AtomicI64::new(start)),
        }
    }

    /// The next integer, without a runtime.
    pub fn next_value(&self) -> i64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

#[async_trait]
impl IntegerSequenceGenerator for SimpleIntegerSequenceGenerator {
    async fn next(&self) -> Result<i64> {
        Ok(self.next_value())
    }
}

impl Iterator for SimpleIntegerSequenceGenerator {
    type Item = i64;
    fn next(&mut self) -> Option<i64> {
        Some(self.next_value())
    }
}

#[cfg(feature = "redis")]
pub use redis_incr::RedisIncr;

#[cfg(feature = "redis")]
mod redis_incr {
    use super::IntegerSequenceGenerator;
    use crate::error::{Error, Result};
    use async_trait::async_trait;

    /// Integers from Redis' `INCR` on one key: shared by every process that uses the key.
    /// The first number is 0 (`INCR` returns 1 on a new key).
    #[derive(Clone)]
    pub struct RedisIncr {
        connection: redis::aio::MultiplexedConnection,
        key: String,
    }

    impl std::fmt::Debug for RedisIncr {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisIncr").field("key", &self.key).finish()
        }
    }

    fn operational(e: redis::RedisError) -> Error {
        Error::Operational(format!("redis: {e}"))
    }

    impl RedisIncr {
        /// Connects to the Redis server at `url` (`redis://host:port/db`) and counts on `key`.
        pub async fn connect(url: &str, key: impl Into<String>) -> Result<RedisIncr> {
            let client = redis::Client::open(url)
                .map_err(|e| Error::Configuration(format!("redis URL {url:?}: {e}")))?;
            let connection = client
                .get_multiplexed_async_connection()
                .await
                .map_err(operational)?;
            Ok(RedisIncr {
                connection,
                key: key.into(),
            })
        }

        /// The key counted on.
        pub fn key(&self) -> &str {
            &self.key
        }

        /// Sets the count so that the next number is `next` (to resume after the highest
        /// assigned big array position, for example).
        pub async fn reset_to(&self, next: i64) -> Result<()> {
            let mut c = self.connection.clone();
            redis::cmd("SET")
                .arg(&self.key)
                .arg(next)
                .query_async::<()>(&mut c)
                .await
                .map_err(operational)
        }

        /// Deletes the key (the next number is 0 again).
        pub async fn delete(&self) -> Result<()> {
            let mut c = self.connection.clone();
            redis::cmd("DEL")
                .arg(&self.key)
                .query_async::<()>(&mut c)
                .await
                .map_err(operational)
        }
    }

    #[async_trait]
    impl IntegerSequenceGenerator for RedisIncr {
        async fn next(&self) -> Result<i64> {
            let mut c = self.connection.clone();
            let n: i64 = redis::cmd("INCR")
                .arg(&self.key)
                .query_async(&mut c)
                .await
                .map_err(operational)?;
            Ok(n - 1)
        }
    }
}
