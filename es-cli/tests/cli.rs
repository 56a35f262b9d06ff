//! The `es` binary end to end: a database written by an application, then read, followed,
//! served, counted and verified by running the built binary; a tampered row is found on SQLite
//! and on PostgreSQL (when a server answers: see the `es: postgres suite:` line; otherwise that
//! case is reported as ignored).

#[path = "../../es-runtime/tests/server_support/mod.rs"]
mod server_support;
use server_support::probe;

use es_runtime::application::{Application, Database};
use es_runtime::mapper::Cipher;
use es_runtime::prelude::*;
use es_runtime::record::postgres::PostgresDatabase;
use es_runtime::record::sqlite::SqliteDatabase;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[aggregate]
pub struct Account {
    owner: String,
    balance: i64,
}

#[aggregate]
impl Account {
    #[event(Opened)]
    pub fn open(owner: String) -> Self {
        Account { owner, balance: 0 }
    }
    #[event(Deposited)]
    pub fn deposit(&mut self, amount: i64) {
        self.balance += amount;
    }
}

fn es(args: &[&str], cipher_key: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_es"));
    cmd.args(args).env_remove("CIPHER_KEY");
    if let Some(k) = cipher_key {
        cmd.env("CIPHER_KEY", k);
    }
    cmd.output().expect("run es")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh SQLite file in the target directory's temp area.
fn sqlite_file(tag: &str) -> (PathBuf, String) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("es-cli-{tag}-{}.db", Uuid::new_v4().simple()));
    let url = format!("sqlite://{}", path.display());
    (path, url)
}

/// Two accounts in application `app` (the first with two deposits); returns their ids.
async fn write_accounts(db: Arc<dyn Database>, app: &str, cipher: Option<Cipher>) -> (Uuid, Uuid) {
    let mut b = Application::builder(app).database(db);
    if let Some(c) = cipher {
        b = b.cipher(c);
    }
    let app = b.build().await.unwrap();
    let mut a = Account::open("ada".into()).unwrap();
    a.deposit(10).unwrap();
    a.deposit(32).unwrap();
    app.save(&mut a).await.unwrap();
    let mut b = Account::open("bob".into()).unwrap();
    app.save(&mut b).await.unwrap();
    (a.id(), b.id())
}

fn sqlite_db(path: &PathBuf) -> SqliteDatabase {
    let db = SqliteDatabase::open(path)
        .unwrap()
        .with_table_prefix(es_runtime::application::config::TABLE_PREFIX)
        .unwrap();
    db.setup_tables().unwrap();
    db
}

/// The stored state of one event with `from` replaced by `to` (its stored hash kept).
fn tampered(state: &[u8], from: &str, to: &str) -> Vec<u8> {
    let (from, to) = (from.as_bytes(), to.as_bytes());
    let at = state
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{from:?} not in {state:?}"));
    [&state[..at], to, &state[at + from.len()..]].concat()
}

async fn reads_counts_and_verifies_an_sqlite_database() {
    let (path, url) = sqlite_file("read");
    let db = sqlite_db(&path);
    let (a, b) = write_accounts(Arc::new(db), "bank", None).await;

    let out = es(&["events", &url, &a.to_string()], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with(&format!("{a} v0 ")), "{}", lines[0]);
    assert!(
        lines[0].contains("Account.Opened {\"owner\":\"ada\"}"),
        "{}",
        lines[0]
    );
    assert!(
        lines[2].contains("Account.Deposited {\"amount\":32}"),
        "{}",
        lines[2]
    );

    let out = es(&["log", &url, "--from", "3"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let log: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log[0].starts_with(&format!("3 {a} v2 ")), "{}", log[0]);
    assert!(log[1].starts_with(&format!("4 {b} v0 ")), "{}", log[1]);

    let out = es(&["stats", &url], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let row = stdout(&out).lines().nth(1).unwrap_or_default().to_string();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols, ["bank", "2", "4", "4"], "{}", stdout(&out));

    let out = es(&["verify", &url], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("verified 2 aggregates, 4 events"),
        "{}",
        stdout(&out)
    );

    // An unknown aggregate and a missing file are errors (exit 2), not empty output.
    let out = es(&["events", &url, &Uuid::new_v4().to_string()], None);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let out = es(&["verify", "sqlite:///nonexistent/es.db"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no SQLite database"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_file(&path);
}

async fn verify_names_a_tampered_sqlite_event() {
    let (path, url) = sqlite_file("tamper");
    let db = sqlite_db(&path);
    let (a, _) = write_accounts(Arc::new(db.clone()), "bank", None).await;
    db.with_connection(|c| {
        let state: Vec<u8> = c
            .query_row(
                "SELECT state FROM es_stored_events WHERE originator_id = ?1 AND originator_version = 1",
                [a.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .unwrap();
        let changed = tampered(&state, "\"amount\":10", "\"amount\":99");
        c.execute(
            "UPDATE es_stored_events SET state = ?1 WHERE originator_id = ?2 AND originator_version = 1",
            rusqlite::params![changed, a.as_bytes().as_slice()],
        )
        .unwrap();
        Ok(())
    })
    .unwrap();
    let out = es(&["verify", &url], None);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("BROKEN") && err.contains(&format!("{a} v1")),
        "{err}"
    );
    // Reading the aggregate fails the same way.
    let out = es(&["events", &url, &a.to_string()], None);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_file(&path);
}

async fn encrypted_events_need_the_cipher_key() {
    let (path, url) = sqlite_file("cipher");
    let key = Cipher::random_key(32).unwrap();
    let cipher = Cipher::from_base64(&key).unwrap();
    let (a, _) = write_accounts(Arc::new(sqlite_db(&path)), "vault", Some(cipher)).await;

    let out = es(&["events", &url, &a.to_string()], None);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("encrypted"), "{}", stderr(&out));

    let out = es(&["events", &url, &a.to_string()], Some(&key));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("{\"owner\":\"ada\"}"),
        "{}",
        stdout(&out)
    );
    let out = es(&["verify", &url], Some(&key));
    assert!(out.status.success(), "{}", stderr(&out));
    let wrong = Cipher::random_key(32).unwrap();
    let out = es(&["verify", &url], Some(&wrong));
    assert_eq!(out.status.code(), Some(1), "a wrong key fails verification");
    let _ = std::fs::remove_file(&path);
}

async fn several_applications_need_app_and_stats_lists_each() {
    let (path, url) = sqlite_file("apps");
    let db: Arc<dyn Database> = Arc::new(sqlite_db(&path));
    write_accounts(db.clone(), "east", None).await;
    write_accounts(db, "west", None).await;
    let out = es(&["verify", &url], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("east, west"), "{}", stderr(&out));
    let out = es(&["verify", &url, "--app", "west"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = es(&["stats", &url], None);
    let names: Vec<String> = stdout(&out)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    assert_eq!(names, ["east", "west"]);
    let _ = std::fs::remove_file(&path);
}

/// Reads lines from a child's stdout until `n` have arrived (or 30 s pass).
fn lines_of(out: &mut impl BufRead, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    while lines.len() < n && Instant::now() < deadline {
        let mut l = String::new();
        if out.read_line(&mut l).unwrap_or(0) == 0 {
            break;
        }
        lines.push(l.trim_end().to_string());
    }
    lines
}

async fn log_follow_prints_new_notifications_and_serve_answers_http() {
    let (path, url) = sqlite_file("follow");
    let db = sqlite_db(&path);
    write_accounts(Arc::new(db.clone()), "bank", None).await;

    let mut follow = Command::new(env!("CARGO_BIN_EXE_es"))
        .args(["log", &url, "--follow", "--poll-ms", "50"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(follow.stdout.take().unwrap());
    assert_eq!(lines_of(&mut out, 4).len(), 4);
    let app = Application::builder("bank")
        .database(Arc::new(db))
        .build()
        .await
        .unwrap();
    let mut c = Account::open("cy".into()).unwrap();
    app.save(&mut c).await.unwrap();
    let more = lines_of(&mut out, 1);
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(
        more[0].starts_with(&format!("5 {} v0 ", c.id())),
        "{more:?}"
    );

    let mut serve = Command::new(env!("CARGO_BIN_EXE_es"))
        .args(["serve", &url, "--port", "0", "--section-size", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(serve.stdout.take().unwrap());
    let banner = lines_of(&mut out, 1).pop().unwrap_or_default();
    let addr = banner
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {banner:?}"))
        .to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /notifications/current/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"section_id\":\"5,6\""), "{response}");
    let _ = std::fs::remove_file(&path);
}

async fn verify_names_a_tampered_postgres_event() {
    let url = probe::probe(probe::POSTGRES).expect("the harness found the server");
    let prefix = format!("es_cli_{}_", &Uuid::new_v4().simple().to_string()[..10]);
    let db = PostgresDatabase::connect_with(&url, 3)
        .await
        .unwrap()
        .with_table_prefix(&prefix)
        .unwrap();
    db.setup_tables().await.unwrap();
    let (a, _) = write_accounts(Arc::new(db.clone()), "bank", None).await;
    let out = es(&["verify", &url, "--prefix", &prefix], None);
    assert!(out.status.success(), "{}", stderr(&out));

    let table = db.table_name("stored_events");
    let state: Vec<u8> = es_runtime::sqlx::query_scalar(es_runtime::sqlx::AssertSqlSafe(format!(
        "SELECT state FROM {table} WHERE originator_id = $1 AND originator_version = 2"
    )))
    .bind(a)
    .fetch_one(db.pool())
    .await
    .unwrap();
    let changed = tampered(&state, "\"amount\":32", "\"amount\":33");
    es_runtime::sqlx::query(es_runtime::sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET state = $1 WHERE originator_id = $2 AND originator_version = 2"
    )))
    .bind(changed)
    .bind(a)
    .execute(db.pool())
    .await
    .unwrap();
    let out = es(&["verify", &url, "--prefix", &prefix], None);
    db.drop_tables().await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("BROKEN") && err.contains(&format!("{a} v2")),
        "{err}"
    );
}

/// Runs every case; those whose server does not answer are reported as ignored (see
/// `server_support::harness`).
fn main() -> std::process::ExitCode {
    server_support::harness::run_cases(&[
        case!(local reads_counts_and_verifies_an_sqlite_database),
        case!(local verify_names_a_tampered_sqlite_event),
        case!(local encrypted_events_need_the_cipher_key),
        case!(local several_applications_need_app_and_stats_lists_each),
        case!(local log_follow_prints_new_notifications_and_serve_answers_http),
        case!(POSTGRES verify_names_a_tampered_postgres_event),
    ])
}
