//! Choosing a database from a URL or the environment.
//!
//! | URL | database |
//! | --- | --- |
//! | `memory:` | in memory (nothing kept) |
//! | `sqlite::memory:` or `sqlite://:memory:` | SQLite in memory (feature `sqlite`) |
//! | `sqlite://path/to/file.db` or `sqlite:path` | SQLite file, WAL mode (feature `sqlite`) |
//! | `postgres://…` / `postgresql://…` | PostgreSQL (feature `postgres`) |
//! | `mysql://…` / `mariadb://…` | MySQL or MariaDB (feature `mysql`) |
//!
//! [`Application::from_env`](super::Application::from_env) reads the first set of
//! `ES_DATABASE_URL`, `DB_URI` (the reference library's name) and `DATABASE_URL` (sqlx's)
//! (default: an SQLite file `es.db` in the working directory when the `sqlite` feature is on,
//! else memory) and `CIPHER_KEY` (base64 AES key: turns encryption on).
//!
//! A variable set to the empty string counts as unset, as in the reference library
//! (`CIPHER_KEY=` means no encryption, `DB_URI=` the default database): see [`env_var`].

use super::Database;
use crate::error::{Error, Result};
use crate::record::memory::InMemoryDatabase;
use std::sync::Arc;

/// What [`Application::from_config`](super::Application::from_config) needs to know.
#[derive(Clone, Debug)]
pub struct Config {
    /// The database URL (see the table above).
    pub database_url: String,
    /// The cipher, if events are to be encrypted.
    pub cipher: Option<crate::mapper::Cipher>,
    /// Take a snapshot every this many events.
    pub snapshot_period: Option<u64>,
}

impl Config {
    /// Reads the first set of `ES_DATABASE_URL`, `DB_URI` and `DATABASE_URL` (default: an SQLite file `es.db` with the `sqlite`
    /// feature, else memory), `CIPHER_KEY` (base64 AES key, 16, 24 or 32 bytes) and
    /// `SNAPSHOT_PERIOD` from the environment. Empty variables count as unset.
    pub fn from_env() -> Result<Config> {
        Self::from_vars(env_var)
    }

    /// Like [`Config::from_env`], reading variables through `var`; here too an empty value
    /// counts as unset.
    ///
    /// ```
    /// use es_runtime::application::config::Config;
    /// let config = Config::from_vars(|k| match k {
    ///     "DB_URI" => Some("memory:".to_string()),
    ///     _ => Some(String::new()),
    /// })?;
    /// assert_eq!(config.database_url, "memory:");
    /// assert!(config.cipher.is_none());
    /// assert_eq!(config.snapshot_period, None);
    /// # Ok::<(), es_runtime::Error>(())
    /// ```
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let var = |k: &str| var(k).filter(|v| !v.is_empty());
        let database_url = var("ES_DATABASE_URL")
            .or_else(|| var("DB_URI"))
            .or_else(|| var("DATABASE_URL"))
            .unwrap_or_else(|| default_url().to_string());
        let cipher = match var("CIPHER_KEY") {
            Some(k) => Some(
                crate::mapper::Cipher::from_base64(&k)
                    .map_err(|e| Error::Configuration(format!("CIPHER_KEY: {e}")))?,
            ),
            None => None,
        };
        let snapshot_period = match var("SNAPSHOT_PERIOD") {
            Some(p) => Some(p.trim().parse::<u64>().map_err(|_| {
                Error::Configuration(format!("SNAPSHOT_PERIOD must be a whole number, got {p:?}"))
            })?),
            None => None,
        };
        Ok(Config {
            database_url,
            cipher,
            snapshot_period,
        })
    }
}

/// The environment variable `name`, or `None` when it is unset, empty or not Unicode: es
/// reads every variable through this, so that `NAME=` means the same as no `NAME`.
///
/// ```
/// std::env::set_var("ES_EXAMPLE_EMPTY", "");
/// assert_eq!(es_runtime::application::config::env_var("ES_EXAMPLE_EMPTY"), None);
/// ```
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The database used when no URL is configured.
pub fn default_url() -> &'static str {
    if cfg!(feature = "sqlite") {
        "sqlite://es.db"
    } else {
        "memory:"
    }
}

/// Tables made through [`connect`] are named `es_stored_events`, `es_snapshots`, ...: the prefix
/// keeps them apart from other libraries' tables of the same plain names in a shared database.
/// Every backend's constructor uses the same default, so both routes reach the same tables.
pub const TABLE_PREFIX: &str = crate::record::DEFAULT_TABLE_PREFIX;

/// Connects to the database a URL names. It creates no table now: each feature built on it
/// creates the tables it needs, if they are missing, when it is configured (an application
/// its event table, snapshots the snapshot table, process applications, runners and
/// projections the tracking table: see [`Table`](crate::record::Table)), as
/// [`ApplicationBuilder::create_tables`](super::ApplicationBuilder::create_tables) does.
pub async fn connect(url: &str) -> Result<Arc<dyn Database>> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        "memory" | "popo" => Ok(Arc::new(InMemoryDatabase::new())),
        "sqlite" => connect_sqlite(url).await,
        "postgres" | "postgresql" => connect_postgres(url).await,
        "mysql" | "mariadb" => connect_mysql(url).await,
        _ => Err(Error::Configuration(format!(
            "unsupported database URL {:?}: use memory:, sqlite:, postgres: or mysql:",
            redact(url)
        ))),
    }
}

/// Connects to a benchmark backend by name: `memory`, `sqlite-memory`, `sqlite-file` (a new
/// temporary file), `postgres` (`ES_POSTGRES_URL`), `mysql` (`ES_MYSQL_URL`).
pub async fn connect_backend(name: &str) -> Result<Arc<dyn Database>> {
    let url = match name {
        "memory" | "popo" => "memory:".to_string(),
        "sqlite-memory" => "sqlite::memory:".to_string(),
        "sqlite-file" => {
            let dir = std::env::temp_dir().join(format!("es-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Operational(format!("cannot create {dir:?}: {e}")))?;
            format!("sqlite://{}", dir.join("es.db").display())
        }
        "postgres" => env_var("ES_POSTGRES_URL")
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into()),
        "mysql" => {
            env_var("ES_MYSQL_URL").unwrap_or_else(|| "mysql://root@127.0.0.1:3306/test".into())
        }
        other => {
            return Err(Error::Configuration(format!(
            "unknown backend {other:?}: use memory, sqlite-memory, sqlite-file, postgres or mysql"
        )))
        }
    };
    connect(&url).await
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(not(feature = "sqlite"))]
async fn connect_sqlite(_url: &str) -> Result<Arc<dyn Database>> {
    Err(Error::Configuration(
        "SQLite URL given, but es-runtime was built without the `sqlite` feature".into(),
    ))
}

#[cfg(not(feature = "postgres"))]
async fn connect_postgres(_url: &str) -> Result<Arc<dyn Database>> {
    Err(Error::Configuration(
        "PostgreSQL URL given, but es-runtime was built without the `postgres` feature".into(),
    ))
}

#[cfg(not(feature = "mysql"))]
async fn connect_mysql(_url: &str) -> Result<Arc<dyn Database>> {
    Err(Error::Configuration(
        "MySQL URL given, but es-runtime was built without the `mysql` feature".into(),
    ))
}

#[cfg(feature = "sqlite")]
async fn connect_sqlite(url: &str) -> Result<Arc<dyn Database>> {
    use crate::record::sqlite::SqliteDatabase;
    let rest = &url["sqlite:".len().min(url.len())..];
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = path.split('?').next().unwrap_or_default();
    let db = match path {
        ":memory:" => SqliteDatabase::memory()?,
        "" => {
            return Err(Error::Configuration(format!(
                "SQLite URL {url:?} names no file: use sqlite://path/to/file.db or sqlite::memory:"
            )))
        }
        file => SqliteDatabase::open(file)?,
    }
    .with_table_prefix(TABLE_PREFIX)?;
    Ok(Arc::new(CreatingTables(db)))
}

#[cfg(feature = "postgres")]
async fn connect_postgres(url: &str) -> Result<Arc<dyn Database>> {
    let db = crate::record::postgres::PostgresDatabase::connect(url)
        .await?
        .with_table_prefix(TABLE_PREFIX)?;
    Ok(Arc::new(CreatingTables(db)))
}

#[cfg(feature = "mysql")]
async fn connect_mysql(url: &str) -> Result<Arc<dyn Database>> {
    let url = url.replacen("mariadb://", "mysql://", 1);
    let db = crate::record::mysql::MySqlDatabase::connect(&url)
        .await?
        .with_table_prefix(TABLE_PREFIX)?;
    Ok(Arc::new(CreatingTables(db)))
}

/// A database whose features create their tables ([`connect`]'s).
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
struct CreatingTables<D>(D);

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
impl<D: Database> Database for CreatingTables<D> {
    fn record_manager(
        &self,
        kind: crate::record::RecordKind,
        application_name: &str,
        pipeline_id: i64,
    ) -> Arc<dyn crate::record::RecordManager> {
        self.0.record_manager(kind, application_name, pipeline_id)
    }
    fn table_record_manager(
        &self,
        spec: &crate::record::mapped::TableSpec,
        application_name: &str,
        pipeline_id: i64,
    ) -> Result<Arc<dyn crate::record::RecordManager>> {
        self.0
            .table_record_manager(spec, application_name, pipeline_id)
    }
    fn creates_tables(&self) -> bool {
        true
    }
}

/// `Database` for a backend's database type, whose inherent `record_manager` returns its own
/// record manager type.
macro_rules! database_impl {
    ($feature:literal, $ty:ty) => {
        #[cfg(feature = $feature)]
        impl Database for $ty {
            fn record_manager(
                &self,
                kind: crate::record::RecordKind,
                application_name: &str,
                pipeline_id: i64,
            ) -> Arc<dyn crate::record::RecordManager> {
                Arc::new(<$ty>::record_manager(
                    self,
                    kind,
                    application_name,
                    pipeline_id,
                ))
            }
            fn table_record_manager(
                &self,
                spec: &crate::record::mapped::TableSpec,
                application_name: &str,
                pipeline_id: i64,
            ) -> Result<Arc<dyn crate::record::RecordManager>> {
                crate::record::mapped::map_table(self, spec, application_name, pipeline_id)
            }
        }
    };
}

database_impl!("sqlite", crate::record::sqlite::SqliteDatabase);
database_impl!("postgres", crate::record::postgres::PostgresDatabase);
database_impl!("mysql", crate::record::mysql::MySqlDatabase);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unsupported_scheme_is_a_configuration_error_naming_it() {
        let e = connect("oracle://scott:tiger@db/x")
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("unsupported database URL") && e.contains("oracle://scott:***@db/x"),
            "{e}"
        );
    }

    #[test]
    fn bad_environment_values_are_configuration_errors_naming_the_variable() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let e = Config::from_vars(vars(&[("CIPHER_KEY", "%%%")])).unwrap_err();
        assert!(
            matches!(&e, Error::Configuration(m) if m.contains("CIPHER_KEY") && m.contains("base64")),
            "{e}"
        );
        let e = Config::from_vars(vars(&[("CIPHER_KEY", "c2hvcnQ=")])).unwrap_err();
        assert!(
            matches!(&e, Error::Configuration(m) if m.contains("CIPHER_KEY") && m.contains("16, 24 or 32")),
            "{e}"
        );
        let e = Config::from_vars(vars(&[("SNAPSHOT_PERIOD", "ten")])).unwrap_err();
        assert!(
            matches!(&e, Error::Configuration(m) if m.contains("SNAPSHOT_PERIOD")),
            "{e}"
        );
        let c =
            Config::from_vars(vars(&[("DB_URI", "memory:"), ("SNAPSHOT_PERIOD", "5")])).unwrap();
        assert_eq!(
            (c.database_url.as_str(), c.snapshot_period),
            ("memory:", Some(5))
        );
        let c = Config::from_vars(vars(&[
            ("DB_URI", "memory:"),
            ("ES_DATABASE_URL", "sqlite::memory:"),
        ]))
        .unwrap();
        assert_eq!(
            c.database_url, "sqlite::memory:",
            "ES_DATABASE_URL wins over DB_URI"
        );
        let c = Config::from_vars(vars(&[("DATABASE_URL", "memory:")])).unwrap();
        assert_eq!(c.database_url, "memory:", "DATABASE_URL is read");
        let c = Config::from_vars(vars(&[
            ("DATABASE_URL", "sqlite::memory:"),
            ("DB_URI", "memory:"),
        ]))
        .unwrap();
        assert_eq!(c.database_url, "memory:", "DB_URI wins over DATABASE_URL");
    }

    #[test]
    fn redaction_hides_passwords_only() {
        assert_eq!(redact("postgres://u:secret@h/d"), "postgres://u:***@h/d");
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact("memory:"), "memory:");
    }
}
