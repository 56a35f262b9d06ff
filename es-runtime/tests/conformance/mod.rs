//! The record-manager conformance suite: written once against `dyn RecordManager`, run against
//! every backend.
//!
//! # How to use it
//!
//! In a test file (a crate root under `es-runtime/tests/`):
//!
//! ```ignore
//! #[macro_use]
//! mod conformance;
//!
//! use es_runtime::record::{RecordKind, RecordManager};
//! use std::sync::Arc;
//!
//! // Returns a record manager of `kind` for `application_name` and `pipeline_id`. Every call of
//! // one test binary should use the SAME database (tables already created), so that the cases
//! // about several applications / pipelines sharing a database mean something.
//! async fn make(kind: RecordKind, application_name: String, pipeline_id: i64) -> Arc<dyn RecordManager> {
//!     todo!()
//! }
//!
//! // Expands to `mod my_backend { ... }` with one `#[tokio::test]` per case.
//! conformance_suite!(my_backend, make);
//!
//! // Optionally: `skip = <expr of type Option<String>>`, evaluated at the start of each test.
//! // `Some(reason)` prints "skipped <reason>" and the test returns (passes), e.g. when
//! // ES_POSTGRES_URL is unset. Make that expression panic when ES_REQUIRE_SERVERS=1.
//! conformance_suite!(my_server_backend, make_server, skip = server_skip_reason());
//! ```
//!
//! Every case makes its own application names (`t<uuid>`), so the cases can share one database
//! and run in parallel. The tests use a multi-threaded runtime with 4 workers, so the
//! concurrency cases really run concurrently.
//!
//! The factory is any `Fn(RecordKind, String, i64) -> impl Future<Output = Arc<dyn RecordManager>>`
//! that is `Copy + Send + Sync + 'static` (a plain `async fn` is).

#![allow(dead_code)]

pub mod cases;
pub mod concurrency;

use es_runtime::record::{RecordKind, RecordManager, SequencedItem};
use std::future::Future;
use std::sync::Arc;
use uuid::Uuid;

/// What a backend hands to the suite: a way to make record managers over one shared database.
pub trait Factory: Copy + Send + Sync + 'static {
    /// The future a call returns.
    type Fut: Future<Output = Arc<dyn RecordManager>> + Send;
    /// A manager of `kind` for `application_name` and `pipeline_id`.
    fn make(&self, kind: RecordKind, application_name: String, pipeline_id: i64) -> Self::Fut;
}

impl<F, Fut> Factory for F
where
    F: Fn(RecordKind, String, i64) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Arc<dyn RecordManager>> + Send,
{
    type Fut = Fut;
    fn make(&self, kind: RecordKind, application_name: String, pipeline_id: i64) -> Fut {
        self(kind, application_name, pipeline_id)
    }
}

/// A fresh application name, unique to one test (short enough for any SQL column).
pub fn app_name() -> String {
    format!("t{}", Uuid::new_v4().simple())
}

/// An item whose topic and state say where it is, so reads can be checked byte for byte.
pub fn item(sequence_id: Uuid, position: i64) -> SequencedItem {
    item_tagged(sequence_id, position, "x")
}

/// An item whose state also carries `tag` (e.g. which task wrote it).
pub fn item_tagged(sequence_id: Uuid, position: i64, tag: &str) -> SequencedItem {
    SequencedItem {
        sequence_id,
        position,
        topic: format!("tests::Topic{}", position % 3).into(),
        state: format!("{{\"seq\":\"{sequence_id}\",\"pos\":{position},\"tag\":\"{tag}\"}}")
            .into_bytes()
            .into(),
    }
}

/// With a factory only: defines `mod $name` with one `#[tokio::test]` per conformance case, all
/// using `$factory`. With `harness = BACKEND` (a `harness = false` test target): defines `main`,
/// which runs the cases through `server_support::harness`, reported as ignored when the
/// backend's server does not answer.
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $factory:expr) => {
        $crate::conformance_suite!(@list each_case $name, $factory);
    };
    ($name:ident, $factory:expr, harness = $backend:expr) => {
        $crate::conformance_suite!(@list harness_main $backend, $factory);
    };
    (@list $then:ident $arg:tt, $factory:expr) => {
        $crate::conformance_suite!(@$then $arg, $factory;
            cases::batch_append_is_atomic_and_readable,
            cases::conflict_writes_nothing,
            cases::self_conflicting_batch_writes_nothing,
            cases::empty_batch_is_a_no_op,
            cases::get_item_missing_is_not_found,
            cases::get_items_bounds_limits_and_orders,
            cases::get_items_of_unknown_sequence_is_empty,
            cases::list_sequence_ids,
            cases::delete_item,
            cases::notifications_by_range_and_limit,
            cases::for_each_notification_streams_the_same_notifications,
            cases::max_notification_id,
            cases::causal_dependencies_with_first_item,
            cases::tracking_written_with_events,
            cases::tracking_only_batch,
            cases::tracking_is_per_pipeline_and_upstream,
            cases::snapshots,
            cases::timestamp_sequenced,
            cases::timestamp_sequenced_in_order,
            cases::applications_share_a_database,
            cases::pipelines_have_separate_notification_sequences,
            concurrency::race_for_the_same_positions,
            concurrency::race_for_overlapping_positions,
            concurrency::writers_with_tailing_reader,
        );
    };
    (@each_case $name:ident, $factory:expr; $($module:ident :: $case:ident),* $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    $crate::conformance::$module::$case($factory).await;
                }
            )*
        }
    };
    (@harness_main $backend:expr, $factory:expr; $($module:ident :: $case:ident),* $(,)?) => {
        fn main() -> ::std::process::ExitCode {
            server_support::harness::run($backend, &[
                $((::core::stringify!($case), || ::std::boxed::Box::pin(
                    $crate::conformance::$module::$case($factory)
                )),)*
            ])
        }
    };
}
