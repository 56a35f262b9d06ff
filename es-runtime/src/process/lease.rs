//! Leases: at most one active instance per (application, pipeline), across processes and
//! hosts.
//!
//! A follower takes the lease of its application and pipeline before it processes anything,
//! and keeps it while it runs; other instances stand by and take over when the holder stops or
//! dies. The lease lives in the database that already coordinates everything else:
//!
//! - PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a dedicated
//!   connection. When the holder dies, even by SIGKILL, its connection closes and the server
//!   releases the lock; a holder whose host vanishes without closing is dropped by the
//!   server's TCP keepalives, which the lease session sets to give up after about 10 s. The
//!   connection's `application_name` says who holds it (`pg_stat_activity`).
//! - MySQL: `GET_LOCK` on a dedicated connection, released the same way.
//! - SQLite (a file): an exclusive lock on a file next to the database
//!   ([`std::fs::File::try_lock`]), released by the operating system when the process dies.
//! - In memory: a lock within the process.
//!
//! Tracking records stay the backstop: should two instances ever process at once, the
//! second's writes conflict and are skipped (exactly once either way).

use crate::error::{Error, Result};
use async_trait::async_trait;
use sha2::Digest;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Where leases are kept: one lease per key, held by one holder at a time.
#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// Takes the lease `key` if nobody holds it; `None` if another holder does.
    async fn try_acquire(&self, key: &str) -> Result<Option<Box<dyn LeaseGuard>>>;

    /// What kind of lease this is, for logs (`"postgres advisory lock"`, ...).
    fn describe(&self) -> &'static str;
}

/// A held lease. Dropping it releases it too (a connection closes, a file unlocks), but
/// [`LeaseGuard::release`] says when that is done.
#[async_trait]
pub trait LeaseGuard: Send + Sync {
    /// True while the lease is still held: false once its connection is gone (the database
    /// may have given it to someone else).
    async fn check(&mut self) -> Result<bool>;

    /// Gives the lease up.
    async fn release(self: Box<Self>) -> Result<()>;
}

/// Who this process is, for logs and lease holders: `host:pid`.
pub fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// A 63-bit number for `key` (advisory lock ids), the same in every process.
pub(crate) fn key_number(key: &str) -> i64 {
    let d = sha2::Sha256::digest(key.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    (u64::from_le_bytes(b) >> 1) as i64
}

/// The MySQL `GET_LOCK` name of the lease `key` (`<application>#<pipeline>`): who holds it
/// is `SELECT IS_USED_LOCK(name)`, a connection id in the server's process list. Lock names
/// are at most 64 characters, so the key is hashed.
pub fn mysql_lock_name(key: &str) -> String {
    format!("es:{:016x}", key_number(key))
}

/// Leases for the database at `url` (as [`connect`](crate::application::connect) takes):
/// PostgreSQL and MySQL use their locks, a SQLite file a lock file beside it, anything else
/// (memory, SQLite in memory) locks within this process only.
pub async fn for_url(url: &str) -> Result<Arc<dyn Leases>> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(PostgresLeases::new(url)?)),
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => Ok(Arc::new(MySqlLeases::new(&url.replacen(
            "mariadb://",
            "mysql://",
            1,
        ))?)),
        "sqlite" => {
            let rest = &url["sqlite:".len()..];
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                Ok(Arc::new(LocalLeases::new()))
            } else {
                Ok(Arc::new(FileLeases::beside(std::path::Path::new(path))))
            }
        }
        "memory" | "popo" => Ok(Arc::new(LocalLeases::new())),
        _ => Err(Error::Configuration(format!(
            "no leases for {:?}: use memory:, sqlite:, postgres: or mysql: (with its feature)",
            crate::application::config::redact(url)
        ))),
    }
}

/// Leases within one process (for the in-memory database and tests).
#[derive(Clone, Debug, Default)]
pub struct LocalLeases {
    held: Arc<Mutex<HashSet<String>>>,
}

impl LocalLeases {
    /// No lease held yet.
    pub fn new() -> Self {
        Self::default()
    }
}

struct LocalGuard {
    held: Arc<Mutex<HashSet<String>>>,
    key: Option<String>,
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&k);
        }
    }
}

#[async_trait]
impl LeaseGuard for LocalGuard {
    async fn check(&mut self) -> Result<bool> {
        Ok(self.key.is_some())
    }
    async fn release(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl Leases for LocalLeases {
    async fn try_acquire(&self, key: &str) -> Result<Option<Box<dyn LeaseGuard>>> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if !held.insert(key.to_string()) {
            return Ok(None);
        }
        Ok(Some(Box::new(LocalGuard {
            held: self.held.clone(),
            key: Some(key.to_string()),
        })))
    }
    fn describe(&self) -> &'static str {
        "in-process lock"
    }
}

/// Leases as exclusive locks on files in one directory (`{stem}.{hash of key}.lease`).
#[derive(Clone, Debug)]
pub struct FileLeases {
    dir: std::path::PathBuf,
    stem: String,
}

impl FileLeases {
    /// Lock files in `dir`, named after `stem`.
    pub fn new(dir: impl Into<std::path::PathBuf>, stem: &str) -> Self {
        FileLeases {
            dir: dir.into(),
            stem: stem.to_string(),
        }
    }

    /// Lock files beside the database file `db`.
    pub fn beside(db: &std::path::Path) -> Self {
        let dir = db
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let stem = db
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "es".into());
        Self::new(dir, &stem)
    }
}

struct FileGuard {
    _file: std::fs::File,
}

#[async_trait]
impl LeaseGuard for FileGuard {
    async fn check(&mut self) -> Result<bool> {
        Ok(true)
    }
    async fn release(self: Box<Self>) -> Result<()> {
        // Closing the file releases the lock.
        Ok(())
    }
}

#[async_trait]
impl Leases for FileLeases {
    async fn try_acquire(&self, key: &str) -> Result<Option<Box<dyn LeaseGuard>>> {
        let path = self
            .dir
            .join(format!("{}.{:016x}.lease", self.stem, key_number(key)));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Operational(format!("cannot open lease file {path:?}: {e}")))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(FileGuard { _file: file }))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Operational(format!(
                "cannot lock lease file {path:?}: {e}"
            ))),
        }
    }
    fn describe(&self) -> &'static str {
        "file lock"
    }
}

/// A lock held by a database session (PostgreSQL advisory lock, MySQL `GET_LOCK`): what a
/// [`SessionGuard`] needs of its backend.
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[async_trait]
trait LockSession: Send + Sync {
    /// A round trip: fails once the session is gone.
    async fn ping(&mut self) -> Result<()>;
    /// Releases the lock and closes the session.
    async fn unlock(self) -> Result<()>;
}

/// A lease held as long as its session lives: checked by a round trip, lost (for good) when
/// one fails, released by unlocking and closing.
#[cfg(any(feature = "postgres", feature = "mysql"))]
struct SessionGuard<S>(Option<S>);

#[cfg(any(feature = "postgres", feature = "mysql"))]
#[async_trait]
impl<S: LockSession + 'static> LeaseGuard for SessionGuard<S> {
    async fn check(&mut self) -> Result<bool> {
        let Some(s) = self.0.as_mut() else {
            return Ok(false);
        };
        if s.ping().await.is_ok() {
            return Ok(true);
        }
        self.0 = None;
        Ok(false)
    }
    async fn release(mut self: Box<Self>) -> Result<()> {
        match self.0.take() {
            Some(s) => s.unlock().await,
            None => Ok(()),
        }
    }
}

#[cfg(feature = "postgres")]
pub use self::postgres::PostgresLeases;

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use sqlx::postgres::{PgConnectOptions, PgConnection};
    use sqlx::{ConnectOptions, Connection};
    use std::str::FromStr;

    /// Session-level advisory locks, each on its own connection.
    #[derive(Clone, Debug)]
    pub struct PostgresLeases {
        opts: PgConnectOptions,
    }

    impl PostgresLeases {
        /// Leases in the PostgreSQL database at `url`.
        pub fn new(url: &str) -> Result<Self> {
            let opts = PgConnectOptions::from_str(url).map_err(|e| {
                Error::Configuration(format!("postgres: invalid connection URL: {e}"))
            })?;
            Ok(PostgresLeases { opts })
        }
    }

    fn op(e: sqlx::Error) -> Error {
        Error::Operational(format!("postgres lease: {e}"))
    }

    /// The session holding advisory lock `lock`.
    struct PgSession {
        conn: PgConnection,
        lock: i64,
    }

    #[async_trait]
    impl LockSession for PgSession {
        async fn ping(&mut self) -> Result<()> {
            sqlx::query("SELECT 1")
                .execute(&mut self.conn)
                .await
                .map_err(op)?;
            Ok(())
        }
        async fn unlock(mut self) -> Result<()> {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.lock)
                .execute(&mut self.conn)
                .await
                .map_err(op)?;
            self.conn.close().await.map_err(op)
        }
    }

    #[async_trait]
    impl Leases for PostgresLeases {
        async fn try_acquire(&self, key: &str) -> Result<Option<Box<dyn LeaseGuard>>> {
            let name = format!("es lease {} {}", holder_name(), key);
            let mut c = self
                .opts
                .clone()
                .application_name(&name.chars().take(63).collect::<String>())
                .connect()
                .await
                .map_err(op)?;
            // A holder whose host disappears without closing its connection is dropped by
            // the server after about 5 + 2 * 3 seconds.
            sqlx::query(
                "SELECT set_config('tcp_keepalives_idle', '5', false), \
                 set_config('tcp_keepalives_interval', '2', false), \
                 set_config('tcp_keepalives_count', '3', false)",
            )
            .execute(&mut c)
            .await
            .map_err(op)?;
            let lock = key_number(key);
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(lock)
                .fetch_one(&mut c)
                .await
                .map_err(op)?;
            if !got {
                let _ = c.close().await;
                return Ok(None);
            }
            Ok(Some(Box::new(SessionGuard(Some(PgSession {
                conn: c,
                lock,
            })))))
        }
        fn describe(&self) -> &'static str {
            "postgres advisory lock"
        }
    }
}

#[cfg(feature = "mysql")]
pub use self::mysql::MySqlLeases;

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
    use sqlx::{ConnectOptions, Connection};
    use std::str::FromStr;

    /// `GET_LOCK` locks, each on its own connection.
    #[derive(Clone, Debug)]
    pub struct MySqlLeases {
        opts: MySqlConnectOptions,
    }

    impl MySqlLeases {
        /// Leases in the MySQL database at `url`.
        pub fn new(url: &str) -> Result<Self> {
            let opts = MySqlConnectOptions::from_str(url)
                .map_err(|e| Error::Configuration(format!("mysql: invalid connection URL: {e}")))?;
            Ok(MySqlLeases { opts })
        }
    }

    fn op(e: sqlx::Error) -> Error {
        Error::Operational(format!("mysql lease: {e}"))
    }

    /// The session holding the `GET_LOCK` lock `name`.
    struct MySession {
        conn: MySqlConnection,
        name: String,
    }

    #[async_trait]
    impl LockSession for MySession {
        async fn ping(&mut self) -> Result<()> {
            sqlx::query("SELECT 1")
                .execute(&mut self.conn)
                .await
                .map_err(op)?;
            Ok(())
        }
        async fn unlock(mut self) -> Result<()> {
            sqlx::query("SELECT RELEASE_LOCK(?)")
                .bind(&self.name)
                .execute(&mut self.conn)
                .await
                .map_err(op)?;
            self.conn.close().await.map_err(op)
        }
    }

    #[async_trait]
    impl Leases for MySqlLeases {
        async fn try_acquire(&self, key: &str) -> Result<Option<Box<dyn LeaseGuard>>> {
            let mut c = self.opts.clone().connect().await.map_err(op)?;
            let name = mysql_lock_name(key);
            let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 0)")
                .bind(&name)
                .fetch_one(&mut c)
                .await
                .map_err(op)?;
            if got != Some(1) {
                let _ = c.close().await;
                return Ok(None);
            }
            Ok(Some(Box::new(SessionGuard(Some(MySession {
                conn: c,
                name,
            })))))
        }
        fn describe(&self) -> &'static str {
            "mysql GET_LOCK"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_and_file_leases_have_one_holder_at_a_time() {
        let dir = std::env::temp_dir().join(format!("es-lease-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let stores: Vec<(Arc<dyn Leases>, Arc<dyn Leases>)> = {
            let local = Arc::new(LocalLeases::new());
            vec![
                (local.clone(), local),
                (
                    Arc::new(FileLeases::new(&dir, "db")),
                    Arc::new(FileLeases::new(&dir, "db")),
                ),
            ]
        };
        for (a, b) in stores {
            let mut held = a.try_acquire("orders#0").await.unwrap().unwrap();
            assert!(held.check().await.unwrap());
            assert!(
                b.try_acquire("orders#0").await.unwrap().is_none(),
                "{}",
                a.describe()
            );
            let other = b.try_acquire("orders#1").await.unwrap();
            assert!(other.is_some(), "another key is free");
            held.release().await.unwrap();
            let again = b.try_acquire("orders#0").await.unwrap();
            assert!(again.is_some(), "{}: free once released", a.describe());
            drop(again);
            assert!(
                a.try_acquire("orders#0").await.unwrap().is_some(),
                "free once dropped"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn urls_choose_their_leases() {
        assert_eq!(
            for_url("memory:").await.unwrap().describe(),
            "in-process lock"
        );
        assert_eq!(
            for_url("sqlite::memory:").await.unwrap().describe(),
            "in-process lock"
        );
        assert_eq!(
            for_url("sqlite:///tmp/x.db").await.unwrap().describe(),
            "file lock"
        );
        assert!(matches!(
            for_url("ftp://x").await,
            Err(Error::Configuration(_))
        ));
    }
}
