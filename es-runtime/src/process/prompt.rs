//! Prompts across processes: a follower in another process wakes as soon as its upstream
//! commits, instead of at its next poll.
//!
//! On PostgreSQL, a commit is followed by a `NOTIFY` on a channel per application and
//! pipeline, and followers `LISTEN` on their upstreams' channels
//! ([`sqlx::postgres::PgListener`], one connection per process). Notifications can be lost
//! (a listener's connection drops, and reconnects): polling stays on as the fallback, as it is
//! the only way on MySQL and SQLite ([`RunnerBuilder::poll_interval`](super::RunnerBuilder::poll_interval)).

use crate::error::Result;
use async_trait::async_trait;

/// Sends and receives prompts between processes.
#[async_trait]
pub trait Prompts: Send + Sync + 'static {
    /// Says that `application` (its name in the database) has new notifications in pipeline
    /// `pipeline_id`; called after the commit.
    async fn notify(&self, application: &str, pipeline_id: i64) -> Result<()>;

    /// Starts listening for prompts of these (application, pipeline) pairs.
    async fn listen(&self, channels: &[(String, i64)]) -> Result<Box<dyn PromptListener>>;
}

/// Prompts received, one at a time.
#[async_trait]
pub trait PromptListener: Send {
    /// The next prompt: which (application, pipeline) has new notifications. An error says
    /// prompts may have been lost meanwhile (the caller polls anyway).
    async fn recv(&mut self) -> Result<(String, i64)>;
}

/// The channel of an application and pipeline: `es_` and a hash, a valid identifier of at
/// most 63 characters whatever the application's name.
pub fn channel(application: &str, pipeline_id: i64) -> String {
    format!(
        "es_{:016x}",
        super::lease::key_number(&format!("{application}#{pipeline_id}"))
    )
}

/// Prompts for the database at `url`: `NOTIFY`/`LISTEN` on PostgreSQL, none elsewhere
/// (followers poll).
pub async fn for_url(url: &str) -> Result<Option<std::sync::Arc<dyn Prompts>>> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Some(std::sync::Arc::new(
            PostgresPrompts::connect(url).await?,
        ))),
        _ => Ok(None),
    }
}

#[cfg(feature = "postgres")]
pub use self::postgres::PostgresPrompts;

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use crate::error::Error;
    use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
    use std::collections::HashMap;

    /// `NOTIFY` after commits, `LISTEN` in followers.
    #[derive(Clone, Debug)]
    pub struct PostgresPrompts {
        url: String,
        pool: PgPool,
    }

    fn op(e: sqlx::Error) -> Error {
        Error::Operational(format!("postgres prompts: {e}"))
    }

    impl PostgresPrompts {
        /// Prompts through the PostgreSQL database at `url` (a pool of one connection sends
        /// them; each listener has its own).
        pub async fn connect(url: &str) -> Result<Self> {
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .connect(url)
                .await
                .map_err(op)?;
            Ok(PostgresPrompts {
                url: url.to_string(),
                pool,
            })
        }
    }

    struct Listener {
        listener: PgListener,
        names: HashMap<String, (String, i64)>,
    }

    #[async_trait]
    impl PromptListener for Listener {
        async fn recv(&mut self) -> Result<(String, i64)> {
            loop {
                let n = self.listener.recv().await.map_err(op)?;
                if let Some(k) = self.names.get(n.channel()) {
                    return Ok(k.clone());
                }
            }
        }
    }

    #[async_trait]
    impl Prompts for PostgresPrompts {
        async fn notify(&self, application: &str, pipeline_id: i64) -> Result<()> {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(channel(application, pipeline_id))
                .execute(&self.pool)
                .await
                .map_err(op)?;
            Ok(())
        }

        async fn listen(&self, channels: &[(String, i64)]) -> Result<Box<dyn PromptListener>> {
            let mut listener = PgListener::connect(&self.url).await.map_err(op)?;
            let names: HashMap<String, (String, i64)> = channels
                .iter()
                .map(|(a, p)| (channel(a, *p), (a.clone(), *p)))
                .collect();
            let list: Vec<&str> = names.keys().map(String::as_str).collect();
            listener.listen_all(list).await.map_err(op)?;
            Ok(Box::new(Listener { listener, names }))
        }
    }
}
