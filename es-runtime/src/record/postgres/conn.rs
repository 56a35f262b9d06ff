//! The connections a PostgreSQL database runs its own statements on.
//!
//! sqlx's pool checks a connection with a round trip when it hands it out (`test_before_acquire`)
//! and again when it takes it back, so a statement run on the pool costs three round trips. es
//! keeps the connections it has used instead: a statement takes one, runs, and puts it back, in
//! one round trip. The connections still belong to the pool (they count against its
//! `max_connections`), at most half of them wait here (none of a pool of one), and a connection
//! is checked with a round trip only when it has been idle for a while or when it was last used
//! by another tokio runtime (whose I/O driver may be gone). A connection whose statement failed
//! other than with an error reported by the server, or whose future was dropped mid-statement,
//! is never kept: it goes back to the pool, which checks it as usual.

use super::map_err;
use crate::error::Result;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Connection, Postgres};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a kept connection may have been idle before it is checked again before use.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A kept connection.
struct Idle {
    conn: PoolConnection<Postgres>,
    since: Instant,
    runtime: tokio::runtime::Id,
}

/// The connections of one pool that es keeps between statements.
pub(super) struct Connections {
    pool: PgPool,
    idle: Mutex<Vec<Idle>>,
    cap: usize,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self.idle.lock().map(|v| v.len()).unwrap_or(0);
        f.debug_struct("Connections")
            .field("idle", &idle)
            .field("cap", &self.cap)
            .finish()
    }
}

impl Connections {
    pub(super) fn new(pool: PgPool) -> Arc<Self> {
        // Keep at most half the pool (none of a pool of one), so that the pool always has
        // connections for the application's own transactions.
        let cap = pool.options().get_max_connections() as usize / 2;
        Arc::new(Connections {
            pool,
            idle: Mutex::new(Vec::new()),
            cap,
        })
    }

    /// A connection: the most recently used kept one, or one from the pool.
    pub(super) async fn take(self: &Arc<Self>) -> Result<Lease> {
        let runtime = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
        loop {
            let kept = self.idle.lock().ok().and_then(|mut v| v.pop());
            let Some(mut kept) = kept else { break };
            if Some(kept.runtime) != runtime {
                // Made on another runtime: its socket may belong to a stopped I/O driver.
                // Close it rather than use it here.
                drop(kept.conn.detach());
                continue;
            }
            if kept.since.elapsed() >= CHECK_AFTER_IDLE && kept.conn.ping().await.is_err() {
                drop(kept.conn.detach());
                continue;
            }
            return Ok(Lease {
                conn: Some(kept.conn),
                owner: self.clone(),
            });
        }
        let conn = self.pool.acquire().await.map_err(map_err)?;
        Ok(Lease {
            conn: Some(conn),
            owner: self.clone(),
        })
    }

    fn keep(&self, conn: PoolConnection<Postgres>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current().map(|h| h.id()) else {
            return;
        };
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.cap {
                idle.push(Idle {
                    conn,
                    since: Instant::now(),
                    runtime,
                });
            }
            // Otherwise `conn` is dropped here and goes back to the pool.
        }
    }
}

impl Connections {
    /// Hands every kept connection back to the pool.
    fn release_all(&self) {
        let kept = match self.idle.lock() {
            Ok(mut idle) => std::mem::take(&mut *idle),
            Err(_) => return,
        };
        let runtime = tokio::runtime::Handle::try_current().is_ok();
        for k in kept {
            if runtime {
                drop(k.conn);
            } else {
                drop(k.conn.detach());
            }
        }
    }
}

impl Drop for Connections {
    fn drop(&mut self) {
        // Without a runtime, sqlx cannot take a connection back (it spawns a task to do it):
        // close them here instead.
        if tokio::runtime::Handle::try_current().is_err() {
            if let Ok(idle) = self.idle.get_mut() {
                for kept in idle.drain(..) {
                    drop(kept.conn.detach());
                }
            }
        }
    }
}

/// A connection taken for one statement (or a few): [`Lease::done`] puts it back.
pub(super) struct Lease {
    conn: Option<PoolConnection<Postgres>>,
    owner: Arc<Connections>,
}

impl Lease {
    /// The connection.
    pub(super) fn conn(&mut self) -> &mut PgConnection {
        // `conn` is `None` only after `done`, which consumes the lease.
        self.conn
            .as_deref_mut()
            .expect("a lease holds its connection until done")
    }

    /// Ends the lease with the statement's result: the connection is kept when the statement
    /// succeeded or the server reported an error about it (the session then goes on, in a
    /// clean protocol state), and otherwise left to the pool.
    pub(super) fn done<T>(mut self, r: std::result::Result<T, sqlx::Error>) -> Result<T> {
        let fine = match &r {
            Ok(_) => true,
            Err(e) => statement_error(e),
        };
        if fine {
            if let Some(conn) = self.conn.take() {
                self.owner.keep(conn);
            }
        } else {
            // The connection broke (or the server ended the session): the kept ones are
            // suspect too, so let the pool check them all before they are used again.
            self.owner.release_all();
        }
        r.map_err(map_err)
    }
}

/// True for an error the server reported about one statement, after which the session goes on
/// (not one that ends the session, such as an administrator's shutdown).
fn statement_error(e: &sqlx::Error) -> bool {
    use sqlx::postgres::{PgDatabaseError, PgSeverity};
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.severity(), PgSeverity::Error)),
        _ => false,
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if tokio::runtime::Handle::try_current().is_err() {
                drop(conn.detach());
            }
            // Otherwise dropped here: the pool checks it and takes it back.
        }
    }
}
