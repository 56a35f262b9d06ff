//! Helpers shared by the sqlx record managers (PostgreSQL and MySQL/MariaDB).

use super::ItemQuery;
use crate::error::Error;

/// Checks that a table prefix or schema name is a plain SQL identifier part
/// (ASCII letters, digits and underscores, not starting with a digit, at most 40 bytes), so
/// that it can be spliced into statements without quoting.
pub(crate) fn check_identifier(what: &str, s: &str, allow_empty: bool) -> Result<(), Error> {
    if s.is_empty() {
        return if allow_empty {
            Ok(())
        } else {
            Err(Error::Configuration(format!("{what} must not be empty")))
        };
    }
    let ok = s.len() <= 40
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(Error::Configuration(format!(
            "{what} {s:?} is not allowed: use at most 40 ASCII letters, digits and underscores, not starting with a digit"
        )))
    }
}

/// The closed position range `[lo, hi]` a query selects, or `None` when it is empty.
pub(crate) fn bounds(q: &ItemQuery) -> Option<(i64, i64)> {
    let mut lo = i64::MIN;
    let mut hi = i64::MAX;
    if let Some(gt) = q.gt {
        lo = lo.max(gt.checked_add(1)?);
    }
    if let Some(gte) = q.gte {
        lo = lo.max(gte);
    }
    if let Some(lt) = q.lt {
        hi = hi.min(lt.checked_sub(1)?);
    }
    if let Some(lte) = q.lte {
        hi = hi.min(lte);
    }
    (lo <= hi).then_some((lo, hi))
}

/// A query's limit as a SQL bind value (`None`: no limit).
pub(crate) fn limit(q: Option<usize>) -> Option<i64> {
    q.map(|l| i64::try_from(l).unwrap_or(i64::MAX))
}

#[cfg(feature = "postgres")]
/// A stable 64-bit FNV-1a hash (for advisory lock keys: equal inputs give equal keys in every
/// process and every build).
pub(crate) fn stable_hash(parts: &[&[u8]]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// A statement built at run time from es's own identifiers (table prefix, schema), which
/// [`check_identifier`] has vetted: the one place es tells sqlx 0.9 such a string is safe.
pub(crate) fn dynamic(sql: impl AsRef<str>) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql.as_ref().to_owned())
}

/// Maps an sqlx error that is not a database error to an es error.
pub(crate) fn map_other(backend: &str, e: sqlx::Error) -> Error {
    use sqlx::Error as E;
    match e {
        E::Configuration(c) => Error::Configuration(format!("{backend}: {c}")),
        E::ColumnDecode { .. }
        | E::Decode(_)
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. }
        | E::TypeNotFound { .. } => {
            Error::DataIntegrity(crate::IntegrityError::Corrupt(format!("{backend}: {e}")))
        }
        E::RowNotFound => Error::NotFound(format!("{backend}: {e}")),
        other => Error::Operational(format!("{backend}: {other}")),
    }
}

/// How long connecting may take before the server counts as unreachable.
pub(crate) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Connects a pool of up to `max_connections`, after one direct attempt: a pool retries refused
/// connections until its acquire timeout, while an unreachable server should be reported at
/// once. `server` names it in messages (e.g. `PostgreSQL at host:port`).
pub(crate) async fn connect_pool<DB: sqlx::Database>(
    opts: <DB::Connection as sqlx::Connection>::Options,
    server: &str,
    max_connections: u32,
    map_err: fn(sqlx::Error) -> Error,
) -> Result<sqlx::Pool<DB>, Error> {
    use sqlx::{ConnectOptions, Connection};
    let unreachable = |e: sqlx::Error| match map_err(e) {
        Error::Operational(m) => Error::Operational(format!("cannot connect to {server}: {m}")),
        other => other,
    };
    let probe = tokio::time::timeout(CONNECT_TIMEOUT, opts.connect())
        .await
        .map_err(|_| {
            Error::Operational(format!(
                "cannot connect to {server}: no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(unreachable)?;
    // Closing the probe is a courtesy to the server; its failure changes nothing.
    let _ = probe.close().await;
    sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(opts)
        .await
        .map_err(unreachable)
}

pub(crate) use super::parts::ItemParts;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        assert!(check_identifier("prefix", "", true).is_ok());
        assert!(check_identifier("schema", "", false).is_err());
        assert!(check_identifier("prefix", "app_1_", true).is_ok());
        assert!(check_identifier("prefix", "1abc", true).is_err());
        assert!(check_identifier("prefix", "a;drop", true).is_err());
        assert!(check_identifier("prefix", "a\"b", true).is_err());
    }

    #[test]
    fn bounds_combine_and_detect_empty_ranges() {
        let q = ItemQuery {
            gt: Some(1),
            lte: Some(5),
            ..Default::default()
        };
        assert_eq!(bounds(&q), Some((2, 5)));
        let q = ItemQuery {
            gte: Some(3),
            lt: Some(3),
            ..Default::default()
        };
        assert_eq!(bounds(&q), None);
        let q = ItemQuery {
            gt: Some(i64::MAX),
            ..Default::default()
        };
        assert_eq!(bounds(&q), None);
        assert_eq!(bounds(&ItemQuery::all()), Some((i64::MIN, i64::MAX)));
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn stable_hash_separates_parts() {
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        assert_eq!(stable_hash(&[b"x"]), stable_hash(&[b"x"]));
    }
}
