//! Stores written before the compact state format still replay.
//!
//! `tests/fixtures/format1.sqlite` and `tests/fixtures/format1-postgres.sql` were written by es
//! while every state was one JSON object (format 1: topic, id, version, timestamp, hex hashes and
//! payload), with the salt and genesis hash below. Each test opens a copy, replays every
//! aggregate with every hash and the chain verified, reads the whole notification log, and then
//! appends to an old aggregate and replays the mixed history.
//!
//! Regenerate (only with a build that still writes format 1, such as commit 952a797, whose
//! version of this file set the salt process-wide with `integrity::configure`):
//! `ES_WRITE_FORMAT_FIXTURES=1 cargo test --features postgres --test stored_format`.

use es_runtime::application::{Application, Database};
use es_runtime::notify::{NotificationLog, NotificationLogReader, RecordNotificationLog};
use es_runtime::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

mod support;
// The name `case!` expects (see `support::harness`).
use support as server_support;

const SALT: &str = "salt of the format-1 fixtures";
const GENESIS: &str = "genesis of the format-1 fixtures";
const APP: &str = "fixtures";

#[aggregate]
#[derive(PartialEq)]
pub struct Ledger {
    owner: String,
    balance: i64,
    notes: Vec<String>,
    #[attribute]
    label: String,
}

#[aggregate]
impl Ledger {
    #[event(Opened)]
    pub fn open(owner: String) -> Self {
        Ledger {
            owner,
            balance: 0,
            notes: vec![],
            label: String::new(),
        }
    }
    #[event(Credited)]
    pub fn credit(&mut self, amount: i64, note: String) {
        self.balance += amount;
        self.notes.push(note);
    }
}

/// One ledger of the script: owner, credits (amount, note), label, discarded.
type LedgerScript = (
    &'static str,
    Vec<(i64, &'static str)>,
    Option<&'static str>,
    bool,
);

/// The owners and what each ledger receives: notes with escapes and non-ASCII text, so that
/// both of format 1's parsers (the fast one and the general one) are exercised.
fn script() -> Vec<LedgerScript> {
    vec![
        (
            "ada",
            vec![(10, "first"), (-3, "a \"quoted\" note"), (7, "zürich ☃")],
            Some("savings"),
            false,
        ),
        (
            "bob",
            vec![(1, "tab\there"), (2, "line\nbreak")],
            None,
            true,
        ),
        ("cy", vec![], Some("empty"), false),
    ]
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn writing() -> bool {
    std::env::var("ES_WRITE_FORMAT_FIXTURES").as_deref() == Ok("1")
}

/// An application over `db` that hashes with the fixtures' salt and genesis hash (its own
/// settings: the process's default stays as it is).
async fn app(db: Arc<dyn Database>) -> Application {
    Application::builder(APP)
        .database(db)
        .hashing(es_runtime::domain::integrity::HashConfig::new(
            SALT, GENESIS,
        ))
        .build()
        .await
        .expect("application")
}

async fn write_script(app: &Application) {
    for (owner, credits, label, discard) in script() {
        let mut l = Ledger::open(owner.to_string()).unwrap();
        app.save(&mut l).await.unwrap();
        for (amount, note) in credits {
            l.credit(amount, note.to_string()).unwrap();
        }
        if let Some(label) = label {
            l.set_label(label.to_string()).unwrap();
        }
        if discard {
            l.discard().unwrap();
        }
        app.save(&mut l).await.unwrap();
    }
}

/// Replays everything in `app` and checks it against the script; returns the ledgers.
async fn check_replay(app: &Application) -> Vec<Ledger> {
    let log: Arc<dyn NotificationLog> =
        Arc::new(RecordNotificationLog::for_application(app, 10).unwrap());
    let mut ids = Vec::new();
    let mut seen = Vec::new();
    let mut reader = NotificationLogReader::new(log);
    reader
        .for_each(|n| {
            seen.push(n.id);
            if !ids.contains(&n.item.sequence_id) {
                ids.push(n.item.sequence_id);
            }
            app.mapper().from_item(&n.item).map(|_| ())
        })
        .await
        .unwrap();
    let expected_events: usize = script()
        .iter()
        .map(|(_, c, l, d)| 1 + c.len() + usize::from(l.is_some()) + usize::from(*d))
        .sum();
    assert_eq!(seen, (1..=expected_events as i64).collect::<Vec<_>>());
    assert_eq!(ids.len(), script().len());
    let mut ledgers = Vec::new();
    for (id, (owner, credits, label, discard)) in ids.iter().zip(script()) {
        let events = app
            .event_store()
            .get_events(*id, &Default::default())
            .await
            .unwrap();
        let l: Ledger = es_runtime::domain::aggregate::replay(events.clone())
            .unwrap()
            .unwrap();
        match app.get::<Ledger>(*id).await {
            Ok(got) => assert_eq!(got, l),
            Err(Error::NotFound(_)) => assert!(discard, "only the discarded one is not found"),
            Err(e) => panic!("{e}"),
        }
        assert_eq!(l.owner, owner);
        assert_eq!(l.balance, credits.iter().map(|c| c.0).sum::<i64>());
        assert_eq!(
            l.notes,
            credits.iter().map(|c| c.1.to_string()).collect::<Vec<_>>()
        );
        assert_eq!(l.label, label.unwrap_or(""));
        assert_eq!(l.is_discarded(), discard);
        assert_eq!(l.head(), events.last().unwrap().hash());
        assert_eq!(events[0].meta().previous_hash, GENESIS);
        ledgers.push(l);
    }
    ledgers
}

/// Appends to the first ledger (in whatever format this build writes) and replays the mixed
/// history.
async fn check_append(app: &Application, mut ledger: Ledger) {
    let id = ledger.id();
    let before = ledger.version();
    ledger
        .credit(100, "after the format change".into())
        .unwrap();
    app.save(&mut ledger).await.unwrap();
    let again: Ledger = app.get(id).await.unwrap();
    assert_eq!(again.version(), before + 1);
    assert_eq!(again.balance, ledger.balance);
    assert_eq!(again.head(), ledger.head());
}

#[cfg(feature = "sqlite")]
async fn a_format_1_sqlite_store_replays() {
    let dir = std::env::temp_dir().join(support::unique("es_format1"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("es.db");
    if writing() {
        let db = es_runtime::application::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let writer = app(db).await;
        write_script(&writer).await;
        drop(writer);
        std::fs::copy(&path, fixture("format1.sqlite")).unwrap();
    }
    std::fs::copy(fixture("format1.sqlite"), &path).unwrap();
    let db = es_runtime::application::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let app = app(db).await;
    let ledgers = check_replay(&app).await;
    check_append(&app, ledgers.into_iter().next().unwrap()).await;
    std::fs::remove_dir_all(&dir).ok();
}

/// A stored event row as the fixture script inserts it.
#[cfg(feature = "postgres")]
type Row = (
    String,
    uuid::Uuid,
    i64,
    i64,
    i64,
    String,
    Vec<u8>,
    Option<String>,
);

#[cfg(feature = "postgres")]
async fn a_format_1_postgres_store_replays() {
    use es_runtime::record::postgres::PostgresDatabase;
    let url =
        support::server_url("ES_POSTGRES_URL", "postgres").expect("the harness found the server");
    const PLACEHOLDER: &str = "es_format1_fixture";
    let schema = support::unique("es_format1");
    if writing() {
        let db = PostgresDatabase::connect(&url)
            .await
            .unwrap()
            .with_schema(&schema)
            .unwrap();
        db.setup_tables().await.unwrap();
        write_script(&app(Arc::new(db.clone())).await).await;
        db.record_manager(es_runtime::record::RecordKind::Events, APP, 0)
            .sequence_notifications()
            .await
            .unwrap();
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT application_name, originator_id, originator_version, pipeline_id, \
                 notification_id, topic, state, causal_dependencies \
                 FROM {schema}.es_stored_events ORDER BY notification_id"
        )))
        .fetch_all(db.pool())
        .await
        .unwrap();
        let mut sql = String::from(
            "-- es stored events in format 1 (JSON states), written by tests/stored_format.rs.\n\
             -- The schema name es_format1_fixture is replaced by each test run.\n",
        );
        sql.push_str(&db.ddl().replace(&schema, PLACEHOLDER));
        for (app, id, v, pipe, n, topic, state, deps) in rows {
            let hex: String = state.iter().map(|b| format!("{b:02x}")).collect();
            sql.push_str(&format!(
                "INSERT INTO {PLACEHOLDER}.es_stored_events (application_name, originator_id, \
                 originator_version, pipeline_id, notification_id, topic, state, \
                 causal_dependencies) VALUES ('{app}', '{id}', {v}, {pipe}, {n}, '{topic}', \
                 '\\x{hex}'::bytea, {});\n",
                deps.map(|d| format!("'{}'", d.replace('\'', "''")))
                    .unwrap_or_else(|| "NULL".into())
            ));
        }
        std::fs::write(fixture("format1-postgres.sql"), sql).unwrap();
        db.drop_tables().await.unwrap();
    }
    let script = std::fs::read_to_string(fixture("format1-postgres.sql"))
        .unwrap()
        .replace(PLACEHOLDER, &schema);
    let db = PostgresDatabase::connect(&url)
        .await
        .unwrap()
        .with_schema(&schema)
        .unwrap();
    // The fixture is this repository's own file, with a schema name of this test's.
    sqlx::raw_sql(sqlx::AssertSqlSafe(script))
        .execute(db.pool())
        .await
        .unwrap();
    db.setup_tables().await.unwrap();
    let app = app(Arc::new(db.clone())).await;
    let ledgers = check_replay(&app).await;
    check_append(&app, ledgers.into_iter().next().unwrap()).await;
    db.drop_tables().await.unwrap();
}

/// Runs every case; those whose server does not answer are reported as ignored (see
/// `server_support::harness`).
fn main() -> std::process::ExitCode {
    support::harness::run_cases(&[
        #[cfg(feature = "sqlite")]
        case!(local a_format_1_sqlite_store_replays),
        #[cfg(feature = "postgres")]
        case!(POSTGRES a_format_1_postgres_store_replays),
    ])
}
