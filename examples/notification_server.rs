//! An application that serves its notification log over HTTP (manual §10.5).
//!
//! ```text
//! cargo run --features http --example notification_server -- --port 8080 [--events 10] [--every-ms 1000]
//! ```
//!
//! The port comes from `--port`, else `ES_NOTIFY_PORT`, else 8080 (0 picks a free port). The
//! application (in memory) starts with `--events` new worlds, then one world has something
//! happen every `--every-ms` milliseconds (0: never), so followers see the log grow. Sections
//! are `GET http://127.0.0.1:<port>/notifications/<section id>/`, `--section-size` items each
//! (20 by default). Reference library clients can read it (`RemoteNotificationLog`).

#[path = "notify_common/mod.rs"]
mod common;

use common::{arg, World};
use es_runtime::application::Application;
use es_runtime::notify::{http, NotificationLogView, RecordNotificationLog};
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

fn number(name: &str, var: &str, default: u64) -> Result<u64> {
    match arg(name, var) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| Error::Configuration(format!("{name} must be a whole number, not {v:?}"))),
    }
}

async fn run() -> Result<()> {
    let port = number("--port", "ES_NOTIFY_PORT", 8080)?;
    let events = number("--events", "ES_NOTIFY_EVENTS", 10)?.max(1);
    let every_ms = number("--every-ms", "ES_NOTIFY_EVERY_MS", 1000)?;
    let section_size = number("--section-size", "ES_NOTIFY_SECTION_SIZE", 20)? as usize;
    let host = arg("--host", "ES_NOTIFY_HOST").unwrap_or_else(|| "127.0.0.1".into());

    let app = Application::builder("notification_server")
        .memory()
        .build()
        .await?;
    let mut world = World::create()?;
    for i in 1..events {
        world.make_it_so(format!("thing {i}"))?;
    }
    app.save(&mut world).await?;

    let listener = tokio::net::TcpListener::bind((host.as_str(), port as u16))
        .await
        .map_err(|e| Error::Operational(format!("cannot listen on {host}:{port}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Operational(e.to_string()))?;
    let log = RecordNotificationLog::for_application(&app, section_size)?;
    let view = NotificationLogView::new(Arc::new(log));
    println!("serving http://{addr}/notifications/ ({events} events, sections of {section_size})");

    let server = tokio::spawn(http::serve(listener, http::router("/notifications", view)));
    if every_ms == 0 {
        return server
            .await
            .map_err(|e| Error::Operational(format!("server task: {e}")))?;
    }
    // The application's futures are not Send: tick here while the server runs in its task.
    let mut n = 0u64;
    while !server.is_finished() {
        tokio::time::sleep(Duration::from_millis(every_ms)).await;
        n += 1;
        let mut w: World = app.get(world.id()).await?;
        w.make_it_so(format!("tick {n}"))?;
        if let Err(e) = app.save(&mut w).await {
            eprintln!("could not save: {e}");
        }
    }
    server
        .await
        .map_err(|e| Error::Operational(format!("server task: {e}")))?
}
