//! The guide: one chapter per chapter of the reference library's manual, each with examples
//! that run as doctests (`cargo test --doc` at the workspace root runs them all).
//!
//! 1. [`domain`]: aggregates, events, attributes, the hash chain (manual §7);
//! 2. [`infrastructure`]: stored items, the mapper, record managers, the event store (§8);
//! 3. [`application`]: applications, repositories, configuration (§9);
//! 4. [`notifications`]: the application sequence, notification logs and readers (§10);
//! 5. [`projections`]: read models in your own tables, written exactly once, run as
//!    followers (§11);
//! 6. [`processes`]: process applications, policies, systems and runners (§12);
//! 7. [`snapshots`]: snapshotting aggregates (§13);
//! 8. [`deployment`]: configuration, tables and migrations, one process per application and
//!    pipeline (supervisor, leases, prompts, health), serving logs over HTTP, the `es` tool
//!    (§14).

#[doc = include_str!("domain.md")]
pub mod domain {}
#[doc = include_str!("infrastructure.md")]
pub mod infrastructure {}
#[doc = include_str!("application.md")]
pub mod application {}
#[doc = include_str!("notifications.md")]
pub mod notifications {}
#[doc = include_str!("projections.md")]
pub mod projections {}
#[doc = include_str!("processes.md")]
pub mod processes {}
#[doc = include_str!("snapshots.md")]
pub mod snapshots {}
#[doc = include_str!("deployment.md")]
pub mod deployment {}
