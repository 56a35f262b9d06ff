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
//!
//! **A kept connection cut while idle** (the server ended the session: an administrator's
//! `pg_terminate_backend`, a restart, a proxy's idle timeout) fails the statement sent on it.
//! [`on_conn!`] runs a statement once more, on a connection from the pool, when it failed that
//! way on a kept connection: the session had ended (a fatal server error or a closed socket),
//! so the statement never ran, or ran and was rolled back with the session. Reads are retried
//! so, and so are writes: in the one narrow case where the server committed and the session
//! ended before the answer arrived, the retried write meets its own rows and is refused as a
//! conflict (es's inserts are unique by sequence and position), never stored twice. Only one
//! retry, and none after a streaming read has handed out rows.

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

    /// A connection for attempt `attempt` of a statement: the most recently used kept one, or
    /// one from the pool; a retry (attempt 1) always goes to the pool, which checks its
    /// connection before handing it out.
    pub(super) async fn take(self: &Arc<Self>, attempt: u32) -> Result<Lease> {
        if attempt > 0 {
            let conn = self.pool.acquire().await.map_err(map_err)?;
            return Ok(Lease {
                conn: Some(conn),
                owner: self.clone(),
                kept: false,
            });
        }
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
                kept: true,
            });
        }
        let conn = self.pool.acquire().await.map_err(map_err)?;
        Ok(Lease {
            conn: Some(conn),
            owner: self.clone(),
            kept: false,
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

/// A connection taken for one statement (or a few): [`Lease::finish`] puts it back.
pub(super) struct Lease {
    conn: Option<PoolConnection<Postgres>>,
    owner: Arc<Connections>,
    /// True for a connection kept between statements (not fresh from the pool).
    kept: bool,
}

/// What became of one attempt of a statement ([`Lease::finish`]).
pub(super) enum Attempt<T> {
    /// Its result.
    Done(Result<T>),
    /// The kept connection had been cut: run the statement again on another.
    Again,
}

/// Runs a statement on a connection of `$conns`, as `$c => body` (the body makes and awaits
/// the statement with `$c: &mut PgConnection`, giving a `Result<T, sqlx::Error>`), and runs it
/// once more on a connection from the pool if it failed because the kept connection it ran on
/// had been cut (see the module documentation). `retry_if = cond` adds a condition checked
/// after the failed attempt (a streaming read: only if nothing was handed out yet).
macro_rules! on_conn {
    ($conns:expr, $c:ident => $body:expr) => {
        on_conn!($conns, $c => $body, retry_if = true)
    };
    ($conns:expr, $c:ident => $body:expr, retry_if = $cond:expr) => {{
        let mut attempt = 0u32;
        loop {
            let mut lease = $conns.take(attempt).await?;
            let r = {
                let $c = lease.conn();
                $body
            };
            match lease.finish(r, attempt == 0 && $cond) {
                $crate::record::postgres::conn::Attempt::Done(r) => break r,
                $crate::record::postgres::conn::Attempt::Again => attempt += 1,
            }
        }
    }};
}
pub(super) use on_conn;

impl Lease {
    /// The connection.
    pub(super) fn conn(&mut self) -> &mut PgConnection {
        // `conn` is `None` only after `finish`, which consumes the lease.
        self.conn
            .as_deref_mut()
            .expect("a lease holds its connection until finished")
    }

    /// Ends the lease with the statement's result: the connection is kept when the statement
    /// succeeded or the server reported an error about it (the session then goes on, in a
    /// clean protocol state), and otherwise left to the pool.
    /// It is [`Attempt::Again`] instead when `may_retry` and the statement failed because this kept
    /// connection's session had ended.
    pub(super) fn finish<T>(
        mut self,
        r: std::result::Result<T, sqlx::Error>,
        may_retry: bool,
    ) -> Attempt<T> {
        let fine = match &r {
            Ok(_) => true,
            Err(e) => statement_error(e),
        };
        if fine {
            if let Some(conn) = self.conn.take() {
                self.owner.keep(conn);
            }
            return Attempt::Done(r.map_err(map_err));
        }
        // The connection broke (or the server ended the session): the kept ones are
        // suspect too, so let the pool check them all before they are used again.
        self.owner.release_all();
        match r {
            Err(e) if may_retry && self.kept && session_ended(&e) => {
                if let Some(conn) = self.conn.take() {
                    drop(conn.detach());
                }
                Attempt::Again
            }
            r => Attempt::Done(r.map_err(map_err)),
        }
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

/// True for an error that says the session is over: the server ended it (a fatal error, such
/// as `57P01` after `pg_terminate_backend`) or the socket closed.
fn session_ended(e: &sqlx::Error) -> bool {
    use sqlx::postgres::{PgDatabaseError, PgSeverity};
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic)),
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
