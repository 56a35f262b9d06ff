//! Follows a remote notification log and prints what it reads (manual §10.5.3, §10.6).
//!
//! ```text
//! cargo run --features http --example notification_follower -- --url http://127.0.0.1:8080/notifications [--max 20] [--poll-ms 500]
//! ```
//!
//! The URL comes from `--url`, else `ES_NOTIFY_URL`, else `http://127.0.0.1:<port>/notifications`
//! with the port from `--port` / `ES_NOTIFY_PORT` (8080). Prints one line per notification: its
//! id, topic, originator id and version, and the event's data when the event type is known to
//! this program (the `notification_server` example's). Stops after `--max` notifications (none:
//! follows forever), polling every `--poll-ms` milliseconds for new ones. Reads logs served by
//! the reference library too (their events are printed as raw notifications).

#[path = "notify_common/mod.rs"]
mod common;

use common::arg;
use es_runtime::mapper::Mapper;
use es_runtime::notify::{NotificationLogReader, RemoteNotificationLog};
use es_runtime::prelude::*;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let url = arg("--url", "ES_NOTIFY_URL").unwrap_or_else(|| {
        let port = arg("--port", "ES_NOTIFY_PORT").unwrap_or_else(|| "8080".into());
        format!("http://127.0.0.1:{port}/notifications")
    });
    let max: Option<usize> = arg("--max", "ES_NOTIFY_MAX").and_then(|v| v.parse().ok());
    let poll = Duration::from_millis(
        arg("--poll-ms", "ES_NOTIFY_POLL_MS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(500),
    );
    let log: RemoteNotificationLog = RemoteNotificationLog::new(&url)?;
    let mut reader = NotificationLogReader::new(Arc::new(log));
    let mapper = Mapper::new();
    let mut seen = 0usize;
    println!("following {url}");
    loop {
        let limit = max.map(|m| m - seen).unwrap_or(usize::MAX);
        let batch = match reader.read(limit).await {
            Ok(b) => b,
            Err(e @ Error::Operational(_)) => {
                // The server may be restarting: the position is kept, try again.
                eprintln!("{e}; retrying");
                tokio::time::sleep(poll).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        for n in &batch {
            let what = match mapper.from_item(&n.item) {
                Ok(event) => format!("{} {}", event.topic(), event.data_json()),
                Err(_) => format!("{} ({} bytes of state)", n.item.topic, n.item.state.len()),
            };
            println!(
                "#{} {} v{} {what}",
                n.id, n.item.sequence_id, n.item.position
            );
        }
        seen += batch.len();
        if max.is_some_and(|m| seen >= m) {
            println!("read {seen} notifications; position {}", reader.position());
            return Ok(());
        }
        if batch.is_empty() {
            tokio::time::sleep(poll).await;
        }
    }
}
