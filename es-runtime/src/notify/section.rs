//! Sections and section ids.

use crate::error::{Error, Result};
use crate::record::Notification;

/// One section of a notification log: its id, its items and the ids of its neighbours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section<I = Notification> {
    /// `"first,last"`: the numbers of the first and last items the section can hold.
    pub section_id: String,
    /// The items, in order (fewer than the section size in the current section).
    pub items: Vec<I>,
    /// The section before this one; `None` for the first section.
    pub previous_id: Option<String>,
    /// The section after this one; `None` unless this section is full (archived).
    pub next_id: Option<String>,
}

impl<I> Section<I> {
    /// The parsed id of this section.
    pub fn id(&self) -> Result<SectionId> {
        SectionId::parse(&self.section_id)
    }

    /// True if the section is full: its content will never change (it can be cached).
    pub fn is_archived(&self) -> bool {
        self.next_id.is_some()
    }
}

/// What a notification log item tells the reader about its place in the log.
pub trait LogItem: Send + Sync + 'static {
    /// The item's number in the log, if the item carries it (record notifications do). Items
    /// without one are numbered by their place in their section.
    fn notification_id(&self) -> Option<i64> {
        None
    }
}

impl LogItem for Notification {
    fn notification_id(&self) -> Option<i64> {
        Some(self.id)
    }
}

impl<T: Send + Sync + 'static> LogItem for Option<T> {}
impl LogItem for String {}
impl LogItem for serde_json::Value {}

/// A parsed section id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionId {
    /// `"current"`: the section holding the next position.
    Current,
    /// `"first,last"` (1-based, inclusive).
    Range {
        /// Number of the first item.
        first: i64,
        /// Number of the last item.
        last: i64,
    },
}

impl SectionId {
    /// Parses `"current"` or `"first,last"` with `1 <= first <= last`; anything else is
    /// [`Error::BadSection`].
    pub fn parse(s: &str) -> Result<SectionId> {
        if s == "current" {
            return Ok(SectionId::Current);
        }
        let bad = |why: &str| Error::BadSection(format!("section id {s:?} {why}"));
        let (a, b) = s
            .split_once(',')
            .ok_or_else(|| bad("is neither \"current\" nor \"first,last\""))?;
        let first: i64 = a
            .trim()
            .parse()
            .map_err(|_| bad("does not start with an integer"))?;
        let last: i64 = b
            .trim()
            .parse()
            .map_err(|_| bad("does not end with an integer"))?;
        if first < 1 {
            return Err(bad("starts below 1"));
        }
        if last < first {
            return Err(bad("ends before it starts"));
        }
        Ok(SectionId::Range { first, last })
    }

    /// Formats `"first,last"`.
    pub fn format(first: i64, last: i64) -> String {
        format!("{first},{last}")
    }

    /// The number of the first item, for a range.
    pub fn first(&self) -> Option<i64> {
        match self {
            SectionId::Current => None,
            SectionId::Range { first, .. } => Some(*first),
        }
    }
}

/// Where a requested section starts (0-based), for a log of `section_size` whose next free
/// position (0-based) is `next_position`: the start of the section containing the requested
/// first item, or of the section containing `next_position` for `"current"`.
pub(crate) fn section_start(id: SectionId, section_size: i64, next_position: i64) -> Result<i64> {
    let zero_based = match id {
        SectionId::Current => next_position,
        SectionId::Range { first, .. } => first - 1,
    };
    let start = zero_based / section_size * section_size;
    // The section must be addressable: its last number must fit in an i64.
    start.checked_add(section_size).ok_or_else(|| {
        Error::BadSection(format!("section starting at {} is out of range", start + 1))
    })?;
    Ok(start)
}

/// Builds a section starting at 0-based `start` with these items; `full` says whether the log
/// already extends past its end (so it is archived and links to the next section).
pub(crate) fn make_section<I>(
    start: i64,
    section_size: i64,
    items: Vec<I>,
    full: bool,
) -> Section<I> {
    let previous_id = (start > 0).then(|| SectionId::format(start + 1 - section_size, start));
    let next_id =
        full.then(|| SectionId::format(start + section_size + 1, start + 2 * section_size));
    Section {
        section_id: SectionId::format(start + 1, start + section_size),
        items,
        previous_id,
        next_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_current_and_ranges_and_rejects_the_rest() {
        assert_eq!(SectionId::parse("current").unwrap(), SectionId::Current);
        assert_eq!(
            SectionId::parse("1,5").unwrap(),
            SectionId::Range { first: 1, last: 5 }
        );
        for bad in [
            "", "1", "a,b", "0,5", "-1,5", "5,1", "1,5,6", "Current", "1;5",
        ] {
            assert!(
                matches!(SectionId::parse(bad), Err(Error::BadSection(_))),
                "{bad:?} should be a bad section"
            );
        }
    }

    #[test]
    fn ids_normalise_to_the_section_containing_their_first_number() {
        assert_eq!(
            section_start(SectionId::parse("1,10").unwrap(), 5, 0).unwrap(),
            0
        );
        assert_eq!(
            section_start(SectionId::parse("7,8").unwrap(), 5, 0).unwrap(),
            5
        );
        assert_eq!(section_start(SectionId::Current, 5, 9).unwrap(), 5);
        assert_eq!(section_start(SectionId::Current, 5, 10).unwrap(), 10);
        assert!(section_start(
            SectionId::parse(&format!("{},{}", i64::MAX, i64::MAX)).unwrap(),
            5,
            0
        )
        .is_err());
        let s = make_section(5, 5, vec![1, 2, 3, 4], false);
        assert_eq!(s.section_id, "6,10");
        assert_eq!(s.previous_id.as_deref(), Some("1,5"));
        assert_eq!(s.next_id, None);
        let s = make_section(0, 5, vec![1, 2, 3, 4, 5], true);
        assert_eq!((s.previous_id, s.next_id.as_deref()), (None, Some("6,10")));
    }
}
