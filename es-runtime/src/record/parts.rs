//! Building items from the bytes of result rows, shared by the SQL record managers.

use super::Bytes;
use crate::error::{Error, IntegrityError};
use bytes::BytesMut;
use std::borrow::Cow;

/// Builds items from the bytes of a row's columns without an allocation per value: the topic of
/// a registered event type is its own `&'static str` (the last few are remembered), and states
/// are copied into shared buffers of at least [`STATE_CHUNK`] bytes that the items slice.
pub(crate) struct ItemParts {
    /// The backend's name, for error messages.
    backend: &'static str,
    states: BytesMut,
    topics: [Option<&'static str>; 4],
}

/// States are copied into buffers of at least this size.
pub(crate) const STATE_CHUNK: usize = 64 * 1024;

impl ItemParts {
    pub(crate) fn new(backend: &'static str) -> Self {
        ItemParts {
            backend,
            states: BytesMut::new(),
            topics: [None; 4],
        }
    }

    /// A topic from its bytes: the registered type's own `&'static str` when there is one.
    /// `column` names the column in the error when the bytes are not UTF-8.
    pub(crate) fn topic(&mut self, b: &[u8], column: usize) -> Result<Cow<'static, str>, Error> {
        if let Some(t) = self.topics.iter().flatten().find(|t| t.as_bytes() == b) {
            return Ok(Cow::Borrowed(*t));
        }
        let s = std::str::from_utf8(b).map_err(|_| {
            Error::DataIntegrity(IntegrityError::Corrupt(format!(
                "{}: column {column} of a row is not UTF-8 text",
                self.backend
            )))
        })?;
        match crate::domain::topic::registered(s) {
            Some(t) => {
                self.topics.rotate_right(1);
                self.topics[0] = Some(t);
                Ok(Cow::Borrowed(t))
            }
            // Encrypted topics, unknown ones (reported when the event is decoded), ...
            None => Ok(Cow::Owned(s.to_string())),
        }
    }

    /// A state from its bytes, in a shared buffer.
    pub(crate) fn state(&mut self, b: &[u8]) -> Bytes {
        if self.states.capacity() - self.states.len() < b.len() {
            self.states = BytesMut::with_capacity(STATE_CHUNK.max(b.len()));
        }
        self.states.extend_from_slice(b);
        self.states.split().freeze()
    }
}
