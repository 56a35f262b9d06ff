//! Time-bucketed logs: messages sequenced by time, split over buckets (manual,
//! `domain.model.timebucketedlog`).
//!
//! A log's messages are stored in a timestamp-sequenced table
//! ([`RecordKind::TimestampSequenced`]). Each message's position is the microsecond it was
//! logged. Messages are not all kept in one sequence, which would grow without end; each
//! calendar bucket of the log's [`BucketSize`] (a year, a month, ... a second, in UTC) is a
//! sequence of its own. Its id is derived from the log's id and the bucket's start, so writers
//! and readers find it without an index. Readers walk the buckets in time order, forwards or
//! backwards, between the log's start and the bounds they ask for.
//!
//! The log itself is a sequence of its own in the same table. It holds one `Started` record
//! with the log's name and bucket size, at the log's start time. Opening a log that exists
//! returns it as it was started.
//!
//! ```
//! # async fn demo() -> es_runtime::Result<()> {
//! use es_runtime::model::timebucketed::{BucketSize, MessageQuery, TimebucketedLog};
//! use es_runtime::record::{memory::InMemoryDatabase, RecordKind};
//! use std::sync::Arc;
//!
//! let records = Arc::new(
//!     InMemoryDatabase::new().record_manager(RecordKind::TimestampSequenced, "app", 0),
//! );
//! let log = TimebucketedLog::open(records, "audit", BucketSize::Day).await?;
//! log.log_message("door opened").await?;
//! log.log_message("door closed").await?;
//! let latest = log.messages(&MessageQuery::latest(1)).await?;
//! assert_eq!(latest[0].message, "door closed");
//! # Ok(()) }
//! ```

use crate::domain::event::Timestamp;
use crate::error::{Error, IntegrityError, Result};
use crate::record::{ItemQuery, RecordBatch, RecordKind, RecordManager, SequencedItem};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// The span of time one bucket of a log covers, in UTC. Sizes order from the longest (`Year`)
/// to the shortest (`Second`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketSize {
    /// A calendar year.
    Year,
    /// A calendar month.
    Month,
    /// A day.
    Day,
    /// An hour.
    Hour,
    /// A minute.
    Minute,
    /// A second.
    Second,
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// A civil date and time in UTC, from microseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl Civil {
    fn of(t: Timestamp) -> Civil {
        let secs = t.0.div_euclid(MICROS_PER_SECOND);
        let days = secs.div_euclid(SECONDS_PER_DAY);
        let rem = secs.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    fn timestamp(self) -> Timestamp {
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days * SECONDS_PER_DAY + self.hour * 3600 + self.minute * 60 + self.second;
        Timestamp(secs.saturating_mul(MICROS_PER_SECOND))
    }
}

impl BucketSize {
    /// The lower-case name: `year`, `month`, `day`, `hour`, `minute` or `second`.
    pub fn name(self) -> &'static str {
        match self {
            BucketSize::Year => "year",
            BucketSize::Month => "month",
            BucketSize::Day => "day",
            BucketSize::Hour => "hour",
            BucketSize::Minute => "minute",
            BucketSize::Second => "second",
        }
    }

    /// The civil time `c` truncated to the start of its bucket: every field finer than the
    /// bucket is reset.
    fn truncate(self, mut c: Civil) -> Civil {
        if self < BucketSize::Second {
            c.second = 0;
        }
        if self < BucketSize::Minute {
            c.minute = 0;
        }
        if self < BucketSize::Hour {
            c.hour = 0;
        }
        if self < BucketSize::Day {
            c.day = 1;
        }
        if self < BucketSize::Month {
            c.month = 1;
        }
        c
    }

    /// The start of the bucket holding `t`.
    pub fn start_of(self, t: Timestamp) -> Timestamp {
        self.truncate(Civil::of(t)).timestamp()
    }

    /// The start of the bucket after the one holding `t`.
    pub fn next_start(self, t: Timestamp) -> Timestamp {
        let mut c = self.truncate(Civil::of(t));
        match self {
            BucketSize::Year => c.year += 1,
            BucketSize::Month => {
                if c.month == 12 {
                    c.year += 1;
                    c.month = 1;
                } else {
                    c.month += 1;
                }
            }
            BucketSize::Day => {
                return Timestamp(c.timestamp().0 + SECONDS_PER_DAY * MICROS_PER_SECOND)
            }
            BucketSize::Hour => return Timestamp(c.timestamp().0 + 3600 * MICROS_PER_SECOND),
            BucketSize::Minute => return Timestamp(c.timestamp().0 + 60 * MICROS_PER_SECOND),
            BucketSize::Second => return Timestamp(c.timestamp().0 + MICROS_PER_SECOND),
        }
        c.timestamp()
    }

    /// The start of the bucket before the one holding `t`.
    pub fn previous_start(self, t: Timestamp) -> Timestamp {
        let start = self.start_of(t);
        self.start_of(Timestamp(start.0 - 1))
    }

    /// The bucket holding `t`, named as its start in UTC: `2026`, `2026-11`, `2026-11-23`,
    /// `2026-11-23T14`, `2026-11-23T14:05` or `2026-11-23T14:05:09`.
    pub fn label(self, t: Timestamp) -> String {
        let c = Civil::of(t);
        let full = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        );
        // What follows the year has a fixed width: drop the fields finer than the bucket.
        let finer = match self {
            BucketSize::Year => "-MM-DDTHH:MM:SS",
            BucketSize::Month => "-DDTHH:MM:SS",
            BucketSize::Day => "THH:MM:SS",
            BucketSize::Hour => ":MM:SS",
            BucketSize::Minute => ":SS",
            BucketSize::Second => "",
        };
        full[..full.len() - finer.len()].to_string()
    }
}

impl std::fmt::Display for BucketSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BucketSize {
    type Err = Error;

    /// A bucket size by name; anything else is [`Error::Configuration`].
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "year" => BucketSize::Year,
            "month" => BucketSize::Month,
            "day" => BucketSize::Day,
            "hour" => BucketSize::Hour,
            "minute" => BucketSize::Minute,
            "second" => BucketSize::Second,
            other => {
                return Err(Error::Configuration(format!(
                    "unknown bucket size {other:?}: use year, month, day, hour, minute or second"
                )))
            }
        })
    }
}

/// The id of the log named `name`.
pub fn log_id(name: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("es timebucketed log {name}").as_bytes(),
    )
}

/// The id of the bucket of log `log_id` that holds `t`.
pub fn bucket_id(log_id: Uuid, t: Timestamp, size: BucketSize) -> Uuid {
    Uuid::new_v5(&log_id, size.label(t).as_bytes())
}

/// Topics of the log's records (not domain events: plain records of this module).
const STARTED_TOPIC: &str = "es_runtime::model::timebucketed::Started";
const MESSAGE_TOPIC: &str = "es_runtime::model::timebucketed::MessageLogged";

#[derive(Serialize, Deserialize)]
struct Started {
    name: String,
    bucket_size: BucketSize,
}

#[derive(Serialize, Deserialize)]
struct MessageLogged<'a> {
    message: std::borrow::Cow<'a, str>,
}

/// A message read from a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedMessage {
    /// When it was logged.
    pub timestamp: Timestamp,
    /// The message.
    pub message: String,
}

/// Bounds, limit and order for reading a log's messages. Bounds are timestamps; without an
/// upper bound, reading starts from the bucket holding the present moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageQuery {
    /// Only messages logged after this.
    pub gt: Option<Timestamp>,
    /// Only messages logged at or after this.
    pub gte: Option<Timestamp>,
    /// Only messages logged before this.
    pub lt: Option<Timestamp>,
    /// Only messages logged at or before this.
    pub lte: Option<Timestamp>,
    /// At most this many messages.
    pub limit: Option<usize>,
    /// Newest first.
    pub descending: bool,
}

impl MessageQuery {
    /// Every message, oldest first.
    pub fn all() -> Self {
        Self::default()
    }

    /// The `n` newest messages, newest first.
    pub fn latest(n: usize) -> Self {
        MessageQuery {
            limit: Some(n),
            descending: true,
            ..Self::default()
        }
    }
}

/// A time-bucketed log in a timestamp-sequenced table.
#[derive(Clone)]
pub struct TimebucketedLog {
    records: Arc<dyn RecordManager>,
    id: Uuid,
    name: String,
    bucket_size: BucketSize,
    started_on: Timestamp,
}

impl std::fmt::Debug for TimebucketedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimebucketedLog")
            .field("name", &self.name)
            .field("bucket_size", &self.bucket_size)
            .field("started_on", &self.started_on)
            .finish()
    }
}

/// How many times a message whose microsecond is taken (by another writer) is moved on by one
/// microsecond and written again.
const COLLISION_RETRIES: usize = 100;

impl TimebucketedLog {
    /// The log named `name` in `records` (a [`RecordKind::TimestampSequenced`] manager): as it
    /// was started, if it exists (with the bucket size it was started with), or started now
    /// with buckets of `bucket_size`.
    pub async fn open(
        records: Arc<dyn RecordManager>,
        name: &str,
        bucket_size: BucketSize,
    ) -> Result<Self> {
        Self::open_from(records, name, bucket_size, Timestamp::now()).await
    }

    /// Like [`TimebucketedLog::open`], but a new log starts at `started_on` (to log messages
    /// of the past, as when moving an existing log into es).
    pub async fn open_from(
        records: Arc<dyn RecordManager>,
        name: &str,
        bucket_size: BucketSize,
        started_on: Timestamp,
    ) -> Result<Self> {
        if records.kind() != RecordKind::TimestampSequenced {
            return Err(Error::Configuration(format!(
                "a time-bucketed log needs a timestamp-sequenced record manager, not {:?}",
                records.kind()
            )));
        }
        let id = log_id(name);
        for _ in 0..2 {
            if let Some(log) = Self::find(&records, id).await? {
                return Ok(log);
            }
            let state = serde_json::to_vec(&Started {
                name: name.to_string(),
                bucket_size,
            })
            .map_err(|e| Error::Encoding(e.to_string()))?;
            let item = SequencedItem {
                sequence_id: id,
                position: started_on.0,
                topic: STARTED_TOPIC.into(),
                state: state.into(),
            };
            match records.write(&RecordBatch::items(vec![item])).await {
                Ok(()) => {
                    return Ok(TimebucketedLog {
                        records,
                        id,
                        name: name.to_string(),
                        bucket_size,
                        started_on,
                    })
                }
                // Another writer started it first (or at the same microsecond): read theirs.
                Err(Error::RecordConflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Self::find(&records, id).await?.ok_or_else(|| {
            Error::Operational(format!("time-bucketed log {name:?} could not be started"))
        })
    }

    /// The log with id `id` as it was started, if there is one.
    async fn find(records: &Arc<dyn RecordManager>, id: Uuid) -> Result<Option<Self>> {
        let first = records
            .get_items(
                id,
                &ItemQuery {
                    limit: Some(1),
                    ..ItemQuery::all()
                },
            )
            .await?;
        let Some(item) = first.into_iter().next() else {
            return Ok(None);
        };
        if item.topic != STARTED_TOPIC {
            return Err(corrupt(format!(
                "the first record of log {id} is {:?}, not the log's start",
                item.topic
            )));
        }
        let started: Started = serde_json::from_slice(&item.state)
            .map_err(|e| corrupt(format!("the start of log {id} does not decode: {e}")))?;
        Ok(Some(TimebucketedLog {
            records: records.clone(),
            id,
            name: started.name,
            bucket_size: started.bucket_size,
            started_on: Timestamp(item.position),
        }))
    }

    /// The log's id (derived from its name: [`log_id`]).
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The log's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The size of the log's buckets.
    pub fn bucket_size(&self) -> BucketSize {
        self.bucket_size
    }

    /// When the log was started: no message is older.
    pub fn started_on(&self) -> Timestamp {
        self.started_on
    }

    /// Logs `message` now; returns its timestamp.
    pub async fn log_message(&self, message: &str) -> Result<Timestamp> {
        self.log_message_at(Timestamp::now().max(self.started_on), message)
            .await
    }

    /// Logs `message` at `at` (not before the log's start: that is [`Error::Configuration`]).
    /// When another message already holds that microsecond, the message is logged at the next
    /// free one; returns the timestamp it was logged at.
    pub async fn log_message_at(&self, at: Timestamp, message: &str) -> Result<Timestamp> {
        if at < self.started_on {
            return Err(Error::Configuration(format!(
                "message at {} is older than the start of log {:?} ({})",
                at.0, self.name, self.started_on.0
            )));
        }
        let state = serde_json::to_vec(&MessageLogged {
            message: message.into(),
        })
        .map_err(|e| Error::Encoding(e.to_string()))?;
        let mut t = at;
        for _ in 0..COLLISION_RETRIES {
            let item = SequencedItem {
                sequence_id: bucket_id(self.id, t, self.bucket_size),
                position: t.0,
                topic: MESSAGE_TOPIC.into(),
                state: state.clone().into(),
            };
            match self.records.write(&RecordBatch::items(vec![item])).await {
                Ok(()) => return Ok(t),
                Err(Error::RecordConflict(_)) => t = Timestamp(t.0 + 1),
                Err(e) => return Err(e),
            }
        }
        Err(Error::Concurrency(format!(
            "log {:?}: {COLLISION_RETRIES} microseconds after {} were all taken",
            self.name, at.0
        )))
    }

    /// The messages `q` selects, walking the buckets between the log's start and the query's
    /// bounds in the query's order, one read per bucket until the limit is reached. Empty
    /// buckets cost a read each: choose a bucket size that suits how often the log is written,
    /// and bound the query when the log is sparse.
    pub async fn messages(&self, q: &MessageQuery) -> Result<Vec<LoggedMessage>> {
        let Some((lo, hi)) = self.range(q) else {
            return Ok(Vec::new());
        };
        let limit = q.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut bucket = if q.descending {
            self.bucket_size.start_of(Timestamp(hi))
        } else {
            self.bucket_size.start_of(Timestamp(lo))
        };
        while out.len() < limit {
            let end = self.bucket_size.next_start(bucket).0 - 1;
            if bucket.0 > hi || end < lo {
                break;
            }
            let items = self
                .records
                .get_items(
                    bucket_id(self.id, bucket, self.bucket_size),
                    &ItemQuery {
                        gte: Some(lo.max(bucket.0)),
                        lte: Some(hi.min(end)),
                        limit: Some(limit - out.len()),
                        query_descending: q.descending,
                        results_descending: q.descending,
                        ..ItemQuery::all()
                    },
                )
                .await?;
            for item in items {
                out.push(decode_message(&item)?);
            }
            bucket = if q.descending {
                self.bucket_size.previous_start(bucket)
            } else {
                Timestamp(end + 1)
            };
        }
        Ok(out)
    }

    /// The closed range of microseconds `q` selects within the log's life.
    fn range(&self, q: &MessageQuery) -> Option<(i64, i64)> {
        let mut lo = self.started_on.0;
        if let Some(t) = q.gt {
            lo = lo.max(t.0.checked_add(1)?);
        }
        if let Some(t) = q.gte {
            lo = lo.max(t.0);
        }
        let mut hi = match (q.lt, q.lte) {
            (None, None) => Timestamp::now().0,
            _ => i64::MAX,
        };
        if let Some(t) = q.lt {
            hi = hi.min(t.0.checked_sub(1)?);
        }
        if let Some(t) = q.lte {
            hi = hi.min(t.0);
        }
        (lo <= hi && q.limit != Some(0)).then_some((lo, hi))
    }
}

fn corrupt(msg: String) -> Error {
    Error::DataIntegrity(IntegrityError::Corrupt(msg))
}

fn decode_message(item: &SequencedItem) -> Result<LoggedMessage> {
    if item.topic != MESSAGE_TOPIC {
        return Err(corrupt(format!(
            "record {}#{} of a log bucket is {:?}, not a message",
            item.sequence_id, item.position, item.topic
        )));
    }
    let m: MessageLogged<'_> = serde_json::from_slice(&item.state).map_err(|e| {
        corrupt(format!(
            "message {}#{} does not decode: {e}",
            item.sequence_id, item.position
        ))
    })?;
    Ok(LoggedMessage {
        timestamp: Timestamp(item.position),
        message: m.message.into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: u32, d: u32, h: i64, mi: i64, s: i64) -> Timestamp {
        Civil {
            year: y,
            month: m,
            day: d,
            hour: h,
            minute: mi,
            second: s,
        }
        .timestamp()
    }

    #[test]
    fn civil_dates_round_trip_over_four_centuries() {
        for days in (-146_097 * 2..146_097 * 2).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn buckets_start_and_follow_on_calendar_boundaries() {
        let t = Timestamp(at(2024, 2, 29, 23, 59, 59).0 + 999_999);
        assert_eq!(BucketSize::Year.start_of(t), at(2024, 1, 1, 0, 0, 0));
        assert_eq!(BucketSize::Year.next_start(t), at(2025, 1, 1, 0, 0, 0));
        assert_eq!(BucketSize::Year.previous_start(t), at(2023, 1, 1, 0, 0, 0));
        assert_eq!(BucketSize::Month.start_of(t), at(2024, 2, 1, 0, 0, 0));
        assert_eq!(BucketSize::Month.next_start(t), at(2024, 3, 1, 0, 0, 0));
        assert_eq!(BucketSize::Month.previous_start(t), at(2024, 1, 1, 0, 0, 0));
        assert_eq!(BucketSize::Day.start_of(t), at(2024, 2, 29, 0, 0, 0));
        assert_eq!(BucketSize::Day.next_start(t), at(2024, 3, 1, 0, 0, 0));
        assert_eq!(BucketSize::Hour.next_start(t), at(2024, 3, 1, 0, 0, 0));
        assert_eq!(BucketSize::Minute.start_of(t), at(2024, 2, 29, 23, 59, 0));
        assert_eq!(BucketSize::Second.start_of(t), at(2024, 2, 29, 23, 59, 59));
        assert_eq!(BucketSize::Second.next_start(t), at(2024, 3, 1, 0, 0, 0));
        let dec = at(2023, 12, 15, 1, 2, 3);
        assert_eq!(BucketSize::Month.next_start(dec), at(2024, 1, 1, 0, 0, 0));
        assert_eq!(
            BucketSize::Month.previous_start(at(2024, 1, 10, 0, 0, 0)),
            at(2023, 12, 1, 0, 0, 0)
        );
        // Before the epoch too.
        let old = at(1969, 12, 31, 23, 30, 0);
        assert_eq!(BucketSize::Day.start_of(old), at(1969, 12, 31, 0, 0, 0));
        assert_eq!(BucketSize::Year.next_start(old), Timestamp(0));
    }

    #[test]
    fn labels_name_the_bucket_start_and_sizes_parse_by_name() {
        let t = at(2026, 11, 23, 14, 5, 9);
        let labels: Vec<String> = [
            BucketSize::Year,
            BucketSize::Month,
            BucketSize::Day,
            BucketSize::Hour,
            BucketSize::Minute,
            BucketSize::Second,
        ]
        .iter()
        .map(|s| {
            assert_eq!(s.name().parse::<BucketSize>().unwrap(), *s);
            s.label(t)
        })
        .collect();
        assert_eq!(
            labels,
            vec![
                "2026",
                "2026-11",
                "2026-11-23",
                "2026-11-23T14",
                "2026-11-23T14:05",
                "2026-11-23T14:05:09"
            ]
        );
        assert!(matches!(
            "fortnight".parse::<BucketSize>(),
            Err(Error::Configuration(_))
        ));
    }
}
