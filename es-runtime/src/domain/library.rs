//! Small event types that are not tied to an aggregate's sequence: events stamped with the time
//! they were made, and events identified by a time-based UUID (sequencing by time, as in
//! timestamp-sequenced logs).
//!
//! Aggregate events need neither: every [`Event`](crate::domain::event::Event) already carries a
//! timestamp. A Logged event is an aggregate event declared with
//! `#[event(aggregate = Log, kind = Logged)]`; predicates recognise it by
//! [`EventKind::Logged`](crate::domain::event::EventKind::Logged).
//!
//! ```
//! use es_runtime::domain::library::{EventWithTimeUuid, EventWithTimestamp};
//!
//! let seen = EventWithTimestamp::new("job #1 seen");
//! let done = EventWithTimestamp::new("job #1 done");
//! assert!(done.timestamp > seen.timestamp);
//! let e = EventWithTimeUuid::new(42);
//! assert_eq!(e.event_id.get_version_num(), 1);
//! ```

use crate::domain::event::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A value stamped with the time it was made.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventWithTimestamp<T> {
    /// When the event was made (strictly increasing within a process).
    pub timestamp: Timestamp,
    /// What happened.
    pub data: T,
}

impl<T> EventWithTimestamp<T> {
    /// Stamps `data` with the current time.
    pub fn new(data: T) -> Self {
        EventWithTimestamp {
            timestamp: Timestamp::now(),
            data,
        }
    }
}

impl<T> std::ops::Deref for EventWithTimestamp<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

/// A value identified by a time-based (version 1) UUID.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventWithTimeUuid<T> {
    /// A version 1 UUID made from the current time (see [`time_uuid`]).
    pub event_id: Uuid,
    /// What happened.
    pub data: T,
}

impl<T> EventWithTimeUuid<T> {
    /// Identifies `data` with a new time-based UUID.
    pub fn new(data: T) -> Self {
        EventWithTimeUuid {
            event_id: time_uuid(),
            data,
        }
    }
    /// The time encoded in the event id.
    pub fn timestamp(&self) -> Timestamp {
        timestamp_of(&self.event_id).unwrap_or_default()
    }
}

impl<T> std::ops::Deref for EventWithTimeUuid<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

/// 100-nanosecond intervals between the Gregorian epoch (1582-10-15) and the Unix epoch.
const GREGORIAN_OFFSET: u64 = 0x01B2_1DD2_1381_4000;

/// A new version 1 (time-based) UUID. Its time is the current [`Timestamp`] (so UUIDs made in
/// one process are in time order, never equal); the node id is random per process.
pub fn time_uuid() -> Uuid {
    use std::sync::OnceLock;
    static NODE: OnceLock<[u8; 6]> = OnceLock::new();
    let node = NODE.get_or_init(|| {
        let r = Uuid::new_v4();
        let b = r.as_bytes();
        // Multicast bit set: marks a random (not hardware) node id.
        [b[0] | 1, b[1], b[2], b[3], b[4], b[5]]
    });
    let micros = Timestamp::now().as_micros().max(0) as u64;
    let ticks = micros * 10 + GREGORIAN_OFFSET;
    let counter = (micros & 0x3fff) as u16;
    uuid::Builder::from_gregorian_timestamp(ticks, counter, node).into_uuid()
}

/// The time inside a version 1 UUID, or `None` for other versions.
pub fn timestamp_of(id: &Uuid) -> Option<Timestamp> {
    let (ticks, _) = id.get_timestamp()?.to_gregorian();
    Some(Timestamp(
        ((ticks.saturating_sub(GREGORIAN_OFFSET)) / 10) as i64,
    ))
}
