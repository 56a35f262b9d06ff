//! Reading stored events without their payload types: for tools (the `es` command-line tool)
//! that show and check a database whose domain types they do not know.
//!
//! [`Mapper::inspect_item`] runs every check a typed read runs (decryption, decompression, the
//! event's own hash over the exact stored bytes, the sequence and position it is stored under)
//! and returns the envelope with the payload as JSON text; [`Mapper::verify_chain`] also checks
//! that one aggregate's events form an unbroken hash chain from the genesis hash.
//!
//! ```
//! use es_runtime::mapper::Mapper;
//! use es_runtime::prelude::*;
//!
//! #[aggregate]
//! pub struct Counter { n: u64 }
//!
//! #[aggregate]
//! impl Counter {
//!     #[event(Started)]
//!     pub fn start() -> Self { Counter { n: 0 } }
//!     #[event(Incremented)]
//!     pub fn increment(&mut self) { self.n += 1; }
//! }
//!
//! # fn main() -> es_runtime::Result<()> {
//! let mut c = Counter::start()?;
//! c.increment()?;
//! let mapper = Mapper::new();
//! let mut items = mapper.to_items(&c.collect_pending())?;
//! let events = mapper.verify_chain(&items)?;
//! assert_eq!(events[1].topic, <Counter as Aggregate>::TOPIC.to_string() + ".Incremented");
//! assert_eq!(events[1].data, "{}");
//!
//! // A changed byte breaks the first event's own hash: the error names it.
//! let mut state = items[0].state.to_vec();
//! let at = state.len() - 10;
//! state[at] = if state[at] == b'0' { b'1' } else { b'0' };
//! items[0].state = state.into();
//! let err = mapper.verify_chain(&items).unwrap_err();
//! assert!(err.to_string().contains(&format!("{} v0", c.id())), "{err}");
//! # Ok(()) }
//! ```

use super::Mapper;
use crate::domain::event::EventMeta;
use crate::domain::integrity;
use crate::error::{IntegrityError, Result};
use crate::record::SequencedItem;

/// A stored event, decoded without its payload type, after its checks passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    /// The event's topic (in clear, also when stored encrypted).
    pub topic: String,
    /// The envelope: aggregate id and version, timestamp, hashes, schema.
    pub meta: EventMeta,
    /// The payload, as the JSON text that was hashed.
    pub data: String,
}

impl Mapper {
    /// Decodes a stored item without knowing its type: decrypts and decompresses it, verifies
    /// the event's hash over the exact stored bytes and checks that the item is stored under
    /// the aggregate id and version (and, unencrypted, the topic) its state names.
    pub fn inspect_item(&self, item: &SequencedItem) -> Result<RawEvent> {
        let json = self.decode_bytes(&item.state)?;
        let s = self.check(item, &json)?;
        Ok(RawEvent {
            meta: s.meta(),
            topic: s.topic.into_owned(),
            data: s.data.to_string(),
        })
    }

    /// Checks one aggregate's stored items, in version order, as a hash chain: each item passes
    /// [`Mapper::inspect_item`], versions run 0, 1, 2, ... without gaps, the first event's
    /// previous hash is the genesis hash and each later one's is the hash of the event before.
    /// Returns the events, or the error of the first broken one (it names the aggregate and
    /// version).
    pub fn verify_chain(&self, items: &[SequencedItem]) -> Result<Vec<RawEvent>> {
        let mut events: Vec<RawEvent> = Vec::with_capacity(items.len());
        for (expected, item) in (0u64..).zip(items) {
            let e = self.inspect_item(item).map_err(|err| match err {
                // A state too damaged to name its event: say where it is stored.
                crate::Error::DataIntegrity(IntegrityError::Corrupt(why)) => {
                    IntegrityError::Corrupt(format!(
                        "{} v{}: {why}",
                        item.sequence_id, item.position
                    ))
                    .into()
                }
                other => other,
            })?;
            let m = &e.meta;
            if m.originator_version != expected {
                return Err(IntegrityError::OriginatorVersion {
                    originator_id: m.originator_id,
                    event: m.originator_version,
                    expected,
                }
                .into());
            }
            let head = events
                .last()
                .map_or(integrity::genesis_hash(), |p| p.meta.hash.as_str());
            if m.previous_hash != head {
                return Err(IntegrityError::HeadHash {
                    originator_id: m.originator_id,
                    version: m.originator_version,
                    expected: head.to_string(),
                    actual: m.previous_hash.clone(),
                }
                .into());
            }
            events.push(e);
        }
        Ok(events)
    }
}
