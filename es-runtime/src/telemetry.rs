//! What es reports about its work: `tracing` spans and `metrics` counters.
//!
//! es only emits: it never installs a subscriber or a recorder. Pick your own (for example
//! `tracing_subscriber::fmt().init()` for logs, or an OpenTelemetry layer, and any `metrics`
//! exporter such as Prometheus); without one, a span or a counter costs an atomic load.
//!
//! # Spans
//!
//! Every span carries `duration_us` (microseconds, recorded when it closes) and `error` (the
//! error's message, when it failed), besides the fields below. Their level is `INFO`, except
//! `es.replay` (`DEBUG`, it is inside `es.get`).
//!
//! | span | where | fields |
//! | --- | --- | --- |
//! | `es.save` | an atomic write of events (every save, process event and `save_in`) | `application`, `aggregate_id` (the first event's), `version` (its originator version), `events`, `upstream` and `notification_id` (a process application's tracking record) |
//! | `es.get` | getting an aggregate from a repository | `application`, `aggregate` (type topic), `aggregate_id`, `version` (found) |
//! | `es.replay` | reading and applying stored events | `application`, `aggregate_id`, `from` (first version read), `events` (applied) |
//! | `es.process` | a process application's response to one notification | `application`, `upstream`, `notification_id`, `events` (written), `attempts` |
//! | `es.http.serve` | serving a notification log section | `section_id` |
//! | `es.http.read` | reading a section from a remote log | `url`, `section_id`, `notifications` |
//!
//! # Metrics
//!
//! | metric | kind | labels | what |
//! | --- | --- | --- | --- |
//! | `es_events_saved_total` | counter | `application` | events written |
//! | `es_conflicts_total` | counter | `application` | writes refused because another writer was first (concurrency errors and tracking conflicts) |
//! | `es_command_retries_total` | counter | `application` | commands run again by [`Application::update`](crate::application::Application::update) after a conflict |
//! | `es_replay_events` | histogram | `application` | events applied per replay (replay length) |
//! | `es_notifications_processed_total` | counter | `application`, `upstream` | notifications a process application recorded |
//! | `es_process_lag_seconds` | histogram | `application`, `upstream` | age of an upstream event when its processing was recorded |
//!
//! ```
//! // A span of your own around es's, with the same conventions:
//! # async fn demo() -> es_runtime::Result<()> {
//! let span = tracing::info_span!("projection.batch", rows = 3, duration_us = tracing::field::Empty, error = tracing::field::Empty);
//! es_runtime::telemetry::timed(span, async { Ok::<_, es_runtime::Error>(()) }).await?;
//! # Ok(()) }
//! ```

use crate::error::Result;
use crate::record::RecordBatch;
use std::fmt::Display;
use std::future::Future;
use std::time::Instant;
use tracing::Instrument;

/// A span of es: the fields given, plus `duration_us` and `error` recorded by [`timed`].
#[macro_export]
#[doc(hidden)]
macro_rules! __es_span {
    ($level:ident, $name:literal $(, $($fields:tt)*)?) => {
        ::tracing::span!(::tracing::Level::$level, $name, $($($fields)*,)? duration_us = ::tracing::field::Empty, error = ::tracing::field::Empty)
    };
}
pub(crate) use crate::__es_span as span;

/// Runs `fut` inside `span`, then records on the span how long it took (`duration_us`) and,
/// if it failed, the error (`error`). Declare both fields on the span (as
/// `tracing::field::Empty`) for them to be recorded. For spans of your own that follow es's
/// conventions (a projection's batches, a command handler).
pub async fn timed<T, E: Display>(
    span: tracing::Span,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    if span.is_disabled() {
        // No subscriber wants it: not even the clock is read.
        return fut.await;
    }
    let start = Instant::now();
    let out = fut.instrument(span.clone()).await;
    span.record("duration_us", start.elapsed().as_micros() as u64);
    if let Err(e) = &out {
        span.record("error", tracing::field::display(e));
    }
    out
}

/// Records `value` in `field` of the current span (a count known only at the end).
pub(crate) fn record(field: &'static str, value: u64) {
    tracing::Span::current().record(field, value);
}

/// The `es.save` span of a batch.
pub(crate) fn save_span(application: &str, batch: &RecordBatch) -> tracing::Span {
    let first = batch.items.first();
    let tracking = batch.tracking.as_ref();
    span!(
        INFO,
        "es.save",
        application,
        aggregate_id = first.map(|i| tracing::field::display(i.sequence_id)),
        version = first.map(|i| i.position),
        events = batch.items.len(),
        upstream = tracking.map(|t| t.upstream_application.as_str()),
        notification_id = tracking.map(|t| t.notification_id)
    )
}

/// Counts a write's events or its conflict, and passes its result on.
pub(crate) fn count_save(application: &str, batch: &RecordBatch, result: Result<()>) -> Result<()> {
    match &result {
        Ok(()) => {
            metrics::counter!("es_events_saved_total", "application" => application.to_string())
                .increment(batch.items.len() as u64)
        }
        Err(e) if e.is_conflict() => {
            metrics::counter!("es_conflicts_total", "application" => application.to_string())
                .increment(1)
        }
        Err(_) => {}
    }
    result
}

/// Records a replay's length on its span and in `es_replay_events`.
pub(crate) fn count_replay(span: &tracing::Span, application: &str, events: u64) {
    span.record("events", events);
    metrics::histogram!("es_replay_events", "application" => application.to_string())
        .record(events as f64);
}

/// Counts a recorded notification and its lag (age of the event now).
pub(crate) fn count_processed(application: &str, upstream: &str, event_micros: i64) {
    let (app, up) = (application.to_string(), upstream.to_string());
    metrics::counter!("es_notifications_processed_total", "application" => app.clone(), "upstream" => up.clone()).increment(1);
    let lag = (crate::domain::event::Timestamp::now().as_micros() - event_micros).max(0);
    metrics::histogram!("es_process_lag_seconds", "application" => app, "upstream" => up)
        .record(lag as f64 / 1e6);
}
