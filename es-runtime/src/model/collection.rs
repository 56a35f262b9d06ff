//! Collections: an aggregate that holds a set of items (manual, `domain.model.collection`).
//!
//! A [`Collection`] keeps a set of strings, typically the ids of other aggregates: the members
//! of a group, the products of a catalogue, the documents of a folder. Adding and removing are
//! events (`ItemAdded`, `ItemRemoved`), so the set is rebuilt on replay and its history is
//! kept. Adding an item that is already there, or removing one that is not, changes nothing and
//! records nothing. The event types are in [`events`].
//!
//! ```
//! use es_runtime::model::collection::Collection;
//! use es_runtime::prelude::*;
//!
//! # fn main() -> es_runtime::Result<()> {
//! let mut team = Collection::create()?;
//! team.add_item("alice")?;
//! team.add_item("bob")?;
//! team.add_item("alice")?; // already there: no event
//! team.remove_item("bob")?;
//! assert!(team.contains("alice"));
//! assert_eq!(team.items().len(), 1);
//! // Created, two ItemAdded, one ItemRemoved.
//! let events = team.collect_pending();
//! assert_eq!(events.len(), 4);
//! let again: Collection = es_runtime::domain::aggregate::replay(events)?.unwrap();
//! assert_eq!(again.items(), team.items());
//! # Ok(()) }
//! ```

use crate::domain::aggregate::Aggregate as _;
use crate::error::Result;
use std::collections::BTreeSet;
use uuid::Uuid;

/// A set of items, event sourced.
#[crate::aggregate(crate = "crate")]
pub struct Collection {
    items: BTreeSet<String>,
}

#[crate::aggregate(crate = "crate", events = "events")]
impl Collection {
    /// A new, empty collection.
    #[event(Created)]
    pub fn create() -> Self {
        Collection {
            items: BTreeSet::new(),
        }
    }

    #[event(ItemAdded)]
    fn item_added(&mut self, item: String) {
        self.items.insert(item);
    }

    #[event(ItemRemoved)]
    fn item_removed(&mut self, item: String) {
        self.items.remove(&item);
    }
}

impl Collection {
    /// A new, empty collection with this id (for instance a name-based `Uuid::new_v5`, so that
    /// the collection of a known thing can be found again without an index).
    pub fn create_with(id: Uuid) -> Result<Self> {
        Self::create_with_id(id)
    }

    /// Adds `item`: triggers `ItemAdded`, unless the item is already in the collection.
    /// Fails with [`crate::Error::EntityIsDiscarded`] once the collection is discarded.
    pub fn add_item(&mut self, item: impl Into<String>) -> Result<()> {
        let item = item.into();
        if self.items.contains(&item) {
            return self.check_not_discarded();
        }
        self.item_added(item)
    }

    /// Removes `item`: triggers `ItemRemoved`, unless the item is not in the collection.
    /// Fails with [`crate::Error::EntityIsDiscarded`] once the collection is discarded.
    pub fn remove_item(&mut self, item: &str) -> Result<()> {
        if !self.items.contains(item) {
            return self.check_not_discarded();
        }
        self.item_removed(item.to_string())
    }

    /// The items, in order.
    pub fn items(&self) -> &BTreeSet<String> {
        &self.items
    }

    /// True if `item` is in the collection.
    pub fn contains(&self, item: &str) -> bool {
        self.items.contains(item)
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the collection holds no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(String::as_str)
    }

    fn check_not_discarded(&self) -> Result<()> {
        if self.is_discarded() {
            return Err(crate::Error::EntityIsDiscarded(self.id()));
        }
        Ok(())
    }
}
