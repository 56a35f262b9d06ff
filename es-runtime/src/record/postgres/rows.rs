//! Reading result rows: the columns es selects, taken straight from PostgreSQL's binary format.
//!
//! sqlx's generic `try_get` checks each column's type and allocates a `String` or `Vec<u8>` for
//! each text and byte value. Reading an event row needs neither: the statements are es's own, so
//! each column's type is known (and checked here by its length), the topic of a registered event
//! type is a `&'static str` already, and the states of a page are copied into shared buffers
//! that the items slice (one allocation per many rows rather than one per row).

use super::map_err;
use crate::error::{Error, IntegrityError, Result};
use crate::record::sql::ItemParts;
use crate::record::{Bytes, Notification, SequencedItem};
use sqlx::postgres::{PgRow, PgValueFormat};
use sqlx::{Row, ValueRef};
use std::borrow::Cow;
use uuid::Uuid;

/// Runs `query` on `conn` and hands each row to `f` as it arrives (no vector of rows in
/// between). Errors of `f` stop the reading; the statement's own errors are sqlx errors, for
/// [`super::conn::Lease::done`].
pub(super) async fn for_each_row<'q>(
    conn: &mut sqlx::PgConnection,
    query: super::PgQuery<'q>,
    mut f: impl FnMut(&PgRow) -> Result<()>,
) -> std::result::Result<Result<()>, sqlx::Error> {
    let mut rows = sqlx::Executor::fetch(conn, query);
    loop {
        let next = std::future::poll_fn(|cx| rows.as_mut().poll_next(cx)).await;
        match next {
            None => return Ok(Ok(())),
            Some(Err(e)) => return Err(e),
            Some(Ok(row)) => {
                if let Err(e) = f(&row) {
                    return Ok(Err(e));
                }
            }
        }
    }
}

/// A column that does not hold what es wrote there.
fn corrupt(column: usize, what: &str) -> Error {
    Error::DataIntegrity(IntegrityError::Corrupt(format!(
        "postgres: column {column} of a row is not {what}"
    )))
}

/// The bytes of column `i` in binary format (`None` for NULL), or `Err(None)` when the server
/// sent it as text (then the caller decodes it the generic way).
fn binary(row: &PgRow, i: usize) -> Result<std::result::Result<Option<&[u8]>, ()>> {
    let v = row.try_get_raw(i).map_err(map_err)?;
    if v.format() != PgValueFormat::Binary {
        return Ok(Err(()));
    }
    if v.is_null() {
        return Ok(Ok(None));
    }
    Ok(Ok(v.as_bytes().ok()))
}

/// A `BIGINT` column.
pub(super) fn int8(row: &PgRow, i: usize) -> Result<i64> {
    match binary(row, i)? {
        Ok(Some(b)) => b
            .try_into()
            .map(i64::from_be_bytes)
            .map_err(|_| corrupt(i, "a BIGINT")),
        Ok(None) => Err(corrupt(i, "a BIGINT (it is NULL)")),
        Err(()) => row.try_get(i).map_err(map_err),
    }
}

/// A nullable `BIGINT` column.
pub(super) fn opt_int8(row: &PgRow, i: usize) -> Result<Option<i64>> {
    match binary(row, i)? {
        Ok(None) => Ok(None),
        Ok(Some(_)) => int8(row, i).map(Some),
        Err(()) => row.try_get(i).map_err(map_err),
    }
}

/// A `UUID` column.
pub(super) fn uuid(row: &PgRow, i: usize) -> Result<Uuid> {
    match binary(row, i)? {
        Ok(Some(b)) => Uuid::from_slice(b).map_err(|_| corrupt(i, "a UUID")),
        Ok(None) => Err(corrupt(i, "a UUID (it is NULL)")),
        Err(()) => row.try_get(i).map_err(map_err),
    }
}

/// A `BOOLEAN` column.
pub(super) fn boolean(row: &PgRow, i: usize) -> Result<bool> {
    match binary(row, i)? {
        Ok(Some([b])) => Ok(*b != 0),
        Ok(_) => Err(corrupt(i, "a BOOLEAN")),
        Err(()) => row.try_get(i).map_err(map_err),
    }
}

/// A nullable `TEXT` column, owned.
pub(super) fn opt_text(row: &PgRow, i: usize) -> Result<Option<String>> {
    match binary(row, i)? {
        Ok(None) => Ok(None),
        Ok(Some(b)) => std::str::from_utf8(b)
            .map(|s| Some(s.to_string()))
            .map_err(|_| corrupt(i, "UTF-8 text")),
        Err(()) => row.try_get(i).map_err(map_err),
    }
}

/// Decodes rows into items, sharing the topics of registered event types and copying the states
/// into chunks that the items slice ([`ItemParts`]).
pub(super) struct ItemDecoder {
    parts: ItemParts,
}

impl ItemDecoder {
    pub(super) fn new() -> Self {
        ItemDecoder {
            parts: ItemParts::new("postgres"),
        }
    }

    /// A `TEXT` topic column: the registered type's own `&'static str` when there is one.
    pub(super) fn topic(&mut self, row: &PgRow, i: usize) -> Result<Cow<'static, str>> {
        match binary(row, i)? {
            Ok(Some(b)) => self.parts.topic(b, i),
            Ok(None) => Err(corrupt(i, "a topic (it is NULL)")),
            Err(()) => row.try_get::<String, _>(i).map(Cow::Owned).map_err(map_err),
        }
    }

    /// A `BYTEA` state column, in a shared chunk.
    pub(super) fn state(&mut self, row: &PgRow, i: usize) -> Result<Bytes> {
        match binary(row, i)? {
            Ok(Some(b)) => Ok(self.parts.state(b)),
            Ok(None) => Err(corrupt(i, "a state (it is NULL)")),
            Err(()) => row
                .try_get::<Vec<u8>, _>(i)
                .map(Bytes::from)
                .map_err(map_err),
        }
    }

    /// An item from columns `seq`, `pos`, `topic`, `state` (in that order from `first`).
    pub(super) fn item(&mut self, row: &PgRow, first: usize) -> Result<SequencedItem> {
        Ok(SequencedItem {
            sequence_id: uuid(row, first)?,
            position: int8(row, first + 1)?,
            topic: self.topic(row, first + 2)?,
            state: self.state(row, first + 3)?,
        })
    }

    /// A notification from columns `notification_id, originator_id, originator_version, topic,
    /// state, causal_dependencies` (in that order from `first`).
    pub(super) fn notification(&mut self, row: &PgRow, first: usize) -> Result<Notification> {
        Ok(Notification {
            id: int8(row, first)?,
            item: self.item(row, first + 1)?,
            causal_dependencies: opt_text(row, first + 5)?,
        })
    }
}
