//! From notifications back to domain events.

use crate::domain::event::AnyEvent;
use crate::error::Result;
use crate::mapper::Mapper;
use crate::record::Notification;

/// The domain events of `notifications`, through `mapper` (the application's: it decrypts and
/// decompresses as configured, verifies each event's hash and resolves its topic).
///
/// ```
/// # async fn demo(app: &es_runtime::application::Application) -> es_runtime::Result<()> {
/// use es_runtime::notify::{to_events, NotificationLogReader, RecordNotificationLog};
/// let log = RecordNotificationLog::for_application(app, 20)?;
/// let mut reader = NotificationLogReader::new(std::sync::Arc::new(log));
/// for event in to_events(app.mapper(), &reader.read_all().await?)? {
///     println!("{} v{}", event.topic(), event.meta().originator_version);
/// }
/// # Ok(()) }
/// ```
pub fn to_events(
    mapper: &Mapper,
    notifications: &[Notification],
) -> Result<Vec<Box<dyn AnyEvent>>> {
    notifications
        .iter()
        .map(|n| mapper.from_item(&n.item))
        .collect()
}

/// Like [`to_events`], keeping each event's notification id.
pub fn to_events_with_ids(
    mapper: &Mapper,
    notifications: &[Notification],
) -> Result<Vec<(i64, Box<dyn AnyEvent>)>> {
    notifications
        .iter()
        .map(|n| Ok((n.id, mapper.from_item(&n.item)?)))
        .collect()
}
