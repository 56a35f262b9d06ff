//! `es`: look into an es database from the command line.
//!
//! ```text
//! es events <url> <id>                 one aggregate's events (topic and state JSON)
//! es log <url> [--from N] [--follow]   the notification log
//! es verify <url>                      every aggregate's hash chain
//! es serve <url> --port P              the notification log over HTTP
//! es stats <url>                       aggregates, events and notifications per application
//! ```
//!
//! URLs are those of the library (`sqlite://file.db`, `postgres://...`, `mysql://...`);
//! `CIPHER_KEY` decrypts encrypted events, `SALT_FOR_DATA_INTEGRITY` and `GENESIS_HASH` are the
//! hash settings. The tool knows no domain types: it prints each event's topic and its state as
//! stored JSON, and checks hashes over the stored bytes.
//!
//! Exit status: 0 on success, 1 when `verify` finds a broken event, 2 on any other error.

mod store;

use clap::{Args, Parser, Subcommand};
use es_runtime::mapper::{Cipher, Mapper, RawEvent};
use es_runtime::model::timebucketed::BucketSize;
use es_runtime::notify::{http, NotificationLogView, RecordNotificationLog};
use es_runtime::record::{ItemQuery, RecordManager};
use es_runtime::{Error, Result};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "es",
    version,
    about = "Read, follow, verify and serve the events of an es database"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the events are.
#[derive(Args)]
struct Target {
    /// Database URL: sqlite://FILE, postgres://USER@HOST/DB or mysql://USER@HOST/DB.
    url: String,
    /// The application whose events to read (needed when the database holds several).
    #[arg(long = "app", value_name = "NAME")]
    app: Option<String>,
    /// Prefix of the table names.
    #[arg(long, value_name = "PREFIX", default_value = es_runtime::application::config::TABLE_PREFIX)]
    prefix: String,
}

#[derive(Subcommand)]
enum Command {
    /// Print one aggregate's events, oldest first, each checked against its hash.
    Events {
        #[command(flatten)]
        target: Target,
        /// The aggregate id.
        id: Uuid,
    },
    /// Print the notification log.
    Log {
        #[command(flatten)]
        target: Target,
        /// The first notification id to print.
        #[arg(long, default_value_t = 1)]
        from: i64,
        /// Keep printing new notifications as they are stored (until interrupted).
        #[arg(long)]
        follow: bool,
        /// How often --follow looks for new notifications, in milliseconds.
        #[arg(long, default_value_t = 500, value_name = "MS")]
        poll_ms: u64,
    },
    /// Check every aggregate's hash chain; exit 1 naming the first broken event.
    Verify {
        #[command(flatten)]
        target: Target,
    },
    /// Serve the notification log over HTTP at /notifications/SECTION_ID/.
    Serve {
        #[command(flatten)]
        target: Target,
        /// The port to listen on (0: any free port, printed on start).
        #[arg(long)]
        port: u16,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Notifications per section.
        #[arg(long, default_value_t = 20)]
        section_size: usize,
    },
    /// Count aggregates, events and notifications per application.
    Stats {
        #[command(flatten)]
        target: Target,
    },
}

/// What went wrong: a broken chain (exit 1) or anything else (exit 2).
enum Failure {
    Broken(String),
    Error(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Broken(what)) => {
            eprintln!("es: BROKEN: {what}");
            ExitCode::from(1)
        }
        Err(Failure::Error(e)) => {
            eprintln!("es: error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> std::result::Result<(), Failure> {
    let mapper = mapper()?;
    match cli.command {
        Command::Events { target, id } => {
            let (_, records) = open(&target).await?;
            let items = records.get_items(id, &ItemQuery::all()).await?;
            if items.is_empty() {
                return Err(Error::NotFound(format!("no events of aggregate {id}")).into());
            }
            for item in &items {
                println!("{}", line(&mapper.inspect_item(item)?));
            }
        }
        Command::Log {
            target,
            from,
            follow,
            poll_ms,
        } => {
            let (_, records) = open(&target).await?;
            let mut next = from.max(1);
            loop {
                let page = records.get_notifications(next, i64::MAX, Some(500)).await?;
                for n in &page {
                    let e = mapper.inspect_item(&n.item)?;
                    println!("{} {}", n.id, line(&e));
                    next = n.id + 1;
                }
                if page.is_empty() {
                    if !follow {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(poll_ms)).await;
                }
            }
        }
        Command::Verify { target } => {
            let (_, records) = open(&target).await?;
            let mut ids = records.list_sequence_ids().await?;
            ids.sort();
            let mut events = 0usize;
            for id in &ids {
                let items = records.get_items(*id, &ItemQuery::all()).await?;
                match mapper.verify_chain(&items) {
                    Ok(chain) => events += chain.len(),
                    Err(Error::DataIntegrity(e)) => return Err(Failure::Broken(e.to_string())),
                    Err(e) => return Err(e.into()),
                }
            }
            println!(
                "es: verified {} aggregates, {events} events of {:?}: every hash chain is intact",
                ids.len(),
                records.application_name()
            );
        }
        Command::Serve {
            target,
            port,
            host,
            section_size,
        } => {
            let (_, records) = open(&target).await?;
            let app = records.application_name().to_string();
            let log = RecordNotificationLog::new(records, section_size)?;
            let view = NotificationLogView::new(Arc::new(log));
            let listener = tokio::net::TcpListener::bind((host.as_str(), port))
                .await
                .map_err(|e| Error::Operational(format!("cannot listen on {host}:{port}: {e}")))?;
            let addr = listener
                .local_addr()
                .map_err(|e| Error::Operational(e.to_string()))?;
            println!("es: serving the notification log of {app:?} at http://{addr}/notifications/");
            http::serve(listener, http::router("/notifications", view)).await?;
        }
        Command::Stats { target } => {
            let store = Store::open(&target.url, &target.prefix).await?;
            println!(
                "{:<32} {:>10} {:>10} {:>13}",
                "application", "aggregates", "events", "notifications"
            );
            for c in store.counts().await? {
                if target.app.as_ref().is_none_or(|a| *a == c.name) {
                    println!(
                        "{:<32} {:>10} {:>10} {:>13}",
                        c.name, c.aggregates, c.events, c.notifications
                    );
                }
            }
        }
    }
    Ok(())
}

/// The mapper for reading: with the `CIPHER_KEY` cipher if it is set.
fn mapper() -> Result<Mapper> {
    Ok(match std::env::var("CIPHER_KEY") {
        Ok(key) if !key.is_empty() => Mapper::new().with_cipher(
            Cipher::from_base64(&key)
                .map_err(|e| Error::Configuration(format!("CIPHER_KEY: {e}")))?,
        ),
        _ => Mapper::new(),
    })
}

/// The database and the events of the application `--app` names, or of the only one there is.
async fn open(target: &Target) -> Result<(Store, Arc<dyn RecordManager>)> {
    let store = Store::open(&target.url, &target.prefix).await?;
    let app = match &target.app {
        Some(app) => app.clone(),
        None => {
            let names: Vec<String> = store.counts().await?.into_iter().map(|c| c.name).collect();
            match names.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(Error::NotFound(format!(
                        "no events in {}",
                        es_runtime::application::config::redact(&target.url)
                    )))
                }
                many => {
                    return Err(Error::Configuration(format!(
                        "the database holds several applications ({}): choose one with --app NAME",
                        many.join(", ")
                    )))
                }
            }
        }
    };
    let records = store.events(&app);
    Ok((store, records))
}

/// `v<version> <UTC time> <topic> <state JSON>`.
fn line(e: &RawEvent) -> String {
    let m = &e.meta;
    let t = m.timestamp.as_micros();
    format!(
        "{} v{} {}.{:06}Z {} {}",
        m.originator_id,
        m.originator_version,
        BucketSize::Second.label(m.timestamp),
        t.rem_euclid(1_000_000),
        e.topic,
        e.data
    )
}
