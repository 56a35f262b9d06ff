//! The HTTP server and the remote notification log, against real servers on 127.0.0.1.

#![cfg(feature = "http")]

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use es_runtime::notify::http::{router, serve, ARCHIVED_CACHE_CONTROL, CURRENT_CACHE_CONTROL};
use es_runtime::notify::{
    NotificationLog, NotificationLogReader, NotificationLogView, RecordNotificationLog,
    RemoteNotificationLog,
};
use es_runtime::record::memory::InMemoryDatabase;
use es_runtime::record::{RecordBatch, RecordKind, RecordManager, SequencedItem};
use es_runtime::Error;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

async fn write_n(records: &Arc<dyn RecordManager>, n: usize) {
    for _ in 0..n {
        let id = Uuid::new_v4();
        let item = SequencedItem {
            sequence_id: id,
            position: 0,
            topic: "tests::Thing.Created".into(),
            state: format!("{{\"id\":\"{id}\"}}").into_bytes().into(),
        };
        records
            .write(&RecordBatch::items(vec![item]))
            .await
            .unwrap();
    }
}

fn records() -> Arc<dyn RecordManager> {
    Arc::new(InMemoryDatabase::new().record_manager(RecordKind::Events, "http", 0))
}

/// Serves `records` under `/log` on an ephemeral port; returns the base URL.
async fn start(
    records: Arc<dyn RecordManager>,
    section_size: usize,
) -> (String, tokio::task::JoinHandle<()>) {
    let view = NotificationLogView::new(Arc::new(
        RecordNotificationLog::new(records, section_size).unwrap(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = serve(listener, router("/log", view)).await;
    });
    (format!("http://{addr}/log"), task)
}

/// A raw HTTP/1.1 GET: (status, headers lower-cased, body).
async fn raw_get(base: &str, path: &str, extra: &str) -> (u16, Vec<(String, String)>, String) {
    let host = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn a_reader_over_http_reads_what_it_reads_locally() {
    let records = records();
    write_n(&records, 12).await;
    let (base, server) = start(records.clone(), 5).await;
    let remote: RemoteNotificationLog = RemoteNotificationLog::new(&base).unwrap();
    let mut over_http = NotificationLogReader::new(Arc::new(remote));
    let mut local = NotificationLogReader::new(Arc::new(
        RecordNotificationLog::new(records.clone(), 5).unwrap(),
    ));
    let got = over_http.read_all().await.unwrap();
    assert_eq!(got, local.read_all().await.unwrap());
    assert_eq!(got.len(), 12);
    assert_eq!(over_http.position(), 12);
    write_n(&records, 3).await;
    let more = over_http.read_all().await.unwrap();
    assert_eq!(
        more.iter().map(|n| n.id).collect::<Vec<_>>(),
        vec![13, 14, 15]
    );
    assert!(over_http.read_all().await.unwrap().is_empty());
    server.abort();
}

#[tokio::test]
async fn archived_sections_are_cacheable_and_the_current_one_is_not() {
    let records = records();
    write_n(&records, 7).await;
    let (base, server) = start(records.clone(), 5).await;

    let (status, headers, body) = raw_get(&base, "/log/1,10/", "").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    assert_eq!(
        header(&headers, "cache-control"),
        Some(ARCHIVED_CACHE_CONTROL)
    );
    let etag = header(&headers, "etag")
        .expect("archived sections have an ETag")
        .to_string();
    assert!(
        body.starts_with("{\"items\":[") && body.ends_with("\"section_id\":\"1,5\"}"),
        "{body}"
    );
    let (status, headers, body) =
        raw_get(&base, "/log/1,5", &format!("If-None-Match: {etag}\r\n")).await;
    assert_eq!(status, 304);
    assert_eq!(header(&headers, "etag"), Some(etag.as_str()));
    assert!(body.is_empty());
    let (status, ..) = raw_get(&base, "/log/1,5/", "If-None-Match: \"other\"\r\n").await;
    assert_eq!(status, 200);

    let (status, headers, body) = raw_get(&base, "/log/current/", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "cache-control"),
        Some(CURRENT_CACHE_CONTROL)
    );
    assert_eq!(header(&headers, "etag"), None);
    assert!(body.contains("\"section_id\":\"6,10\""), "{body}");
    server.abort();
}

#[tokio::test]
async fn bad_section_ids_get_400_and_unknown_paths_404_with_a_message() {
    let (base, server) = start(records(), 5).await;
    for path in ["/log/0,5/", "/log/abc/", "/log/5,1/", "/log/1,x"] {
        let (status, _, body) = raw_get(&base, path, "").await;
        assert_eq!(status, 400, "{path}");
        assert!(body.contains("section id"), "{path}: {body}");
    }
    for path in ["/other/1,5/", "/log/1,5/extra", "/", "/log"] {
        let (status, _, body) = raw_get(&base, path, "").await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("section id"), "{path}: {body}");
    }
    // The remote log reports them as BadSection.
    let remote: RemoteNotificationLog =
        RemoteNotificationLog::new(&format!("{base}/../other")).unwrap();
    assert!(matches!(
        remote.section("1,5").await,
        Err(Error::BadSection(_))
    ));
    server.abort();
}

/// A server that can be told to misbehave.
#[derive(Clone)]
struct Flaky {
    mode: Arc<AtomicU8>,
    view: NotificationLogView,
}

const OK: u8 = 0;
const MALFORMED: u8 = 1;
const FAILING: u8 = 2;
const HANGING: u8 = 3;
const WRONG_ITEMS: u8 = 4;

async fn flaky(State(f): State<Flaky>, Path(id): Path<String>) -> Response {
    match f.mode.load(Ordering::SeqCst) {
        MALFORMED => (StatusCode::OK, "{\"items\": [").into_response(),
        FAILING => (StatusCode::INTERNAL_SERVER_ERROR, "database is down").into_response(),
        HANGING => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, "").into_response()
        }
        WRONG_ITEMS => (
            StatusCode::OK,
            "{\"section_id\":\"1,5\",\"items\":[{\"id\":1}],\"previous_id\":null,\"next_id\":null}",
        )
            .into_response(),
        _ => match f.view.present_section(&id).await {
            Ok((json, _)) => json.into_response(),
            Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        },
    }
}

#[tokio::test]
async fn network_errors_and_malformed_sections_are_typed_and_leave_the_position_unchanged() {
    let records = records();
    write_n(&records, 12).await;
    let mode = Arc::new(AtomicU8::new(OK));
    let state = Flaky {
        mode: mode.clone(),
        view: NotificationLogView::new(Arc::new(
            RecordNotificationLog::new(records.clone(), 5).unwrap(),
        )),
    };
    let app = axum::Router::new()
        .route("/log/{id}/", get(flaky))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let remote: RemoteNotificationLog = RemoteNotificationLog::new(&format!("http://{addr}/log"))
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let mut reader = NotificationLogReader::new(Arc::new(remote));
    assert_eq!(reader.read(3).await.unwrap().len(), 3);
    assert_eq!(reader.position(), 3);

    for (m, expect_bad_section) in [
        (MALFORMED, true),
        (WRONG_ITEMS, true),
        (FAILING, false),
        (HANGING, false),
    ] {
        mode.store(m, Ordering::SeqCst);
        let err = reader.read_all().await.unwrap_err();
        match (&err, expect_bad_section) {
            (Error::BadSection(_), true) | (Error::Operational(_), false) => {}
            _ => panic!("mode {m}: unexpected {err:?}"),
        }
        assert_eq!(reader.position(), 3, "mode {m}: position moved after {err}");
    }
    mode.store(OK, Ordering::SeqCst);
    let rest = reader.read_all().await.unwrap();
    assert_eq!(
        rest.iter().map(|n| n.id).collect::<Vec<_>>(),
        (4..=12).collect::<Vec<_>>()
    );
    server.abort();

    // Nobody listening: a connection error, position unchanged.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let remote: RemoteNotificationLog =
        RemoteNotificationLog::new(&format!("http://{dead_addr}/log")).unwrap();
    let mut reader = NotificationLogReader::new(Arc::new(remote));
    reader.seek(4).unwrap();
    assert!(matches!(
        reader.read_all().await,
        Err(Error::Operational(_))
    ));
    assert!(matches!(
        reader.next_item().await,
        Err(Error::Operational(_))
    ));
    assert_eq!(reader.position(), 4);
}

#[test]
fn remote_logs_need_plain_http_urls() {
    for bad in ["ftp://host/log", "not a url", "https://host/log", "http://"] {
        assert!(
            matches!(
                RemoteNotificationLog::<es_runtime::record::Notification>::new(bad),
                Err(Error::Configuration(_))
            ),
            "{bad}"
        );
    }
    let ok: RemoteNotificationLog = RemoteNotificationLog::new("http://127.0.0.1:1/a/b/").unwrap();
    assert_eq!(ok.section_url("1,5"), "http://127.0.0.1:1/a/b/1,5/");
}
