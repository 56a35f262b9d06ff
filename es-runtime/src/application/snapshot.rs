//! Snapshots: an aggregate's whole state at one version, so replay can start there.
//!
//! A snapshot is stored as an item of a snapshot table: sequence = aggregate id, position =
//! aggregate version (number of events applied: a snapshot at version 3 holds the state after
//! the first three events, which the reference library 7.1.1 numbers 2; see
//! [the domain docs](crate::domain#versions)), topic = aggregate topic, state = JSON of the
//! bookkeeping and the aggregate's serde state, through the same mapper as events (so it is
//! encrypted and compressed when events are).

use crate::domain::aggregate::{Aggregate, AggregateMeta};
use crate::domain::event::Timestamp;
use crate::error::{Error, IntegrityError, Result};
use crate::mapper::Mapper;
use crate::record::SequencedItem;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
struct SnapshotState<S> {
    topic: String,
    id: Uuid,
    version: u64,
    created_on: Timestamp,
    last_modified: Timestamp,
    head: String,
    discarded: bool,
    state: S,
}

/// Makes the snapshot item of an aggregate's current state.
pub fn to_item<A: Aggregate>(mapper: &Mapper, aggregate: &A) -> Result<SequencedItem> {
    let m = aggregate.meta();
    let s = SnapshotState {
        topic: A::TOPIC.to_string(),
        id: aggregate.id(),
        version: aggregate.version(),
        created_on: aggregate.created_on(),
        last_modified: aggregate.last_modified(),
        head: aggregate.head().to_string(),
        discarded: m.discarded,
        state: aggregate,
    };
    let json = serde_json::to_vec(&s)?;
    crate::domain::finite::check_written(A::TOPIC, aggregate, &json)?;
    Ok(SequencedItem {
        sequence_id: s.id,
        position: i64::try_from(s.version)
            .map_err(|_| Error::Encoding("version exceeds i64".into()))?,
        topic: mapper.encode_topic(A::TOPIC)?,
        state: mapper.encode_bytes(json)?.into(),
    })
}

/// Restores an aggregate from a snapshot item.
pub fn from_item<A: Aggregate>(mapper: &Mapper, item: &SequencedItem) -> Result<A> {
    let json = mapper.decode_bytes(&item.state)?;
    let s: SnapshotState<A> = serde_json::from_slice(&json).map_err(|e| {
        IntegrityError::Corrupt(format!(
            "snapshot of {} is not a {}: {e}",
            item.sequence_id,
            A::TOPIC
        ))
    })?;
    if s.topic != A::TOPIC || s.id != item.sequence_id || s.version as i64 != item.position {
        return Err(IntegrityError::Corrupt(format!(
            "snapshot at {}#{} holds {}#{} of {}",
            item.sequence_id, item.position, s.id, s.version, s.topic
        ))
        .into());
    }
    let mut a = s.state;
    *a.meta_mut() = AggregateMeta::restore(
        s.id,
        s.version,
        s.created_on,
        s.last_modified,
        s.head,
        s.discarded,
    );
    Ok(a)
}
