//! Benchmark: reading an application's notification log, locally and over HTTP.
//!
//! ```text
//! cargo run --release --features http --example bench_read_log -- --n 10000 [--section-size 20] [--decode] [--backend memory]
//! ```
//!
//! Saves `--n` events (new worlds, 100 per transaction) in an application (in memory, or on a
//! `--backend` of `es_runtime::application::connect_backend`: `sqlite-memory`, `sqlite-file`,
//! `postgres`, `mysql`), then reads every notification once with a [`NotificationLogReader`]:
//! from the local log (reported under the backend's name, `memory` by default), and from the
//! same log served by the HTTP server on 127.0.0.1 through a remote log (`http`).
//! With `--decode`, each notification is also turned back into its domain event. Prints
//! `RESULT read_log <memory|http> <count> <seconds> <per_second>`, the peer script's format.

#[path = "notify_common/mod.rs"]
mod common;

use common::{arg, World};
use es_runtime::application::{Application, Saveable};
use es_runtime::notify::{
    http, to_events, NotificationLog, NotificationLogReader, NotificationLogView,
    RecordNotificationLog, RemoteNotificationLog,
};
use es_runtime::prelude::*;
use std::sync::Arc;
use std::time::Instant;

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

async fn read(
    app: &Application,
    log: Arc<dyn NotificationLog>,
    name: &str,
    decode: bool,
) -> Result<usize> {
    let started = Instant::now();
    let mut reader = NotificationLogReader::new(log);
    let mut count = 0;
    loop {
        let batch = reader.read(1000).await?;
        if batch.is_empty() {
            break;
        }
        if decode {
            count += to_events(app.mapper(), &batch)?.len();
        } else {
            count += batch.len();
        }
    }
    let s = started.elapsed().as_secs_f64();
    println!(
        "RESULT read_log {name} {count} {s:.6} {:.1}",
        count as f64 / s
    );
    eprintln!("  ({} sections fetched)", reader.sections_read());
    Ok(count)
}

async fn run() -> Result<()> {
    let n: usize = arg("--n", "ES_BENCH_N")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let size: usize = arg("--section-size", "ES_BENCH_SECTION_SIZE")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let decode = std::env::args().any(|a| a == "--decode");

    let backend = arg("--backend", "ES_BENCH_BACKEND").unwrap_or_else(|| "memory".into());
    let db = es_runtime::application::connect_backend(&backend).await?;
    let name = format!(
        "bench_read_log_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let app = Application::builder(name).database(db).build().await?;
    let mut left = n;
    while left > 0 {
        let k = left.min(100);
        let mut worlds = (0..k)
            .map(|_| World::create())
            .collect::<Result<Vec<_>>>()?;
        let mut refs: Vec<&mut dyn Saveable> =
            worlds.iter_mut().map(|w| w as &mut dyn Saveable).collect();
        app.save_all(&mut refs).await?;
        left -= k;
    }
    let log = Arc::new(RecordNotificationLog::for_application(&app, size)?);
    let local = read(&app, log.clone(), &backend, decode).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error::Operational(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Operational(e.to_string()))?;
    let server = tokio::spawn(http::serve(
        listener,
        http::router("/notifications", NotificationLogView::new(log)),
    ));
    let remote: RemoteNotificationLog =
        RemoteNotificationLog::new(&format!("http://{addr}/notifications"))?;
    let over_http = read(&app, Arc::new(remote), "http", decode).await?;
    server.abort();
    if local != n || over_http != n {
        return Err(Error::Operational(format!(
            "read {local} locally and {over_http} over HTTP, expected {n}"
        )));
    }
    Ok(())
}
