//! The remote notification log against hostile servers on 127.0.0.1 (issue 12, defects 1
//! and 2): sections with gaps or looping links are refused with the position unchanged, and a
//! body over the size limit is refused early, without reading the rest of it.

#![cfg(feature = "http")]

use axum::extract::{Path, State};
use axum::routing::get;
use es_runtime::notify::{
    encode_section, NotificationLog, NotificationLogReader, RemoteNotificationLog, Section,
    DEFAULT_MAX_BODY,
};
use es_runtime::record::{Notification, SequencedItem};
use es_runtime::Error;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

fn n(id: i64) -> Notification {
    Notification {
        id,
        item: SequencedItem {
            sequence_id: Uuid::from_u128(id as u128),
            position: 0,
            topic: "tests::Thing.Created".into(),
            state: b"{}".to_vec().into(),
        },
        causal_dependencies: None,
    }
}

type Script = Arc<dyn Fn(&str) -> Section + Send + Sync>;

/// Serves `script(section_id)` as JSON under `/log`, counting requests; returns the base URL.
async fn hostile(script: Script, requests: Arc<AtomicUsize>) -> String {
    async fn answer(
        State((script, requests)): State<(Script, Arc<AtomicUsize>)>,
        Path(id): Path<String>,
    ) -> String {
        requests.fetch_add(1, Ordering::SeqCst);
        encode_section(&script(&id)).unwrap()
    }
    let app = axum::Router::new()
        .route("/log/{id}/", get(answer))
        .with_state((script, requests));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/log")
}

fn remote(url: &str) -> Arc<RemoteNotificationLog> {
    Arc::new(
        RemoteNotificationLog::new(url)
            .unwrap()
            .with_timeout(Duration::from_secs(5)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_section_with_a_gap_is_refused() {
    let requests = Arc::new(AtomicUsize::new(0));
    let url = hostile(
        Arc::new(|_| Section {
            section_id: "1,10".into(),
            items: [1, 2, 4, 5, 6].into_iter().map(n).collect(),
            previous_id: None,
            next_id: None,
        }),
        requests.clone(),
    )
    .await;
    let mut reader = NotificationLogReader::new(remote(&url));
    let err = reader.read_all().await.unwrap_err();
    assert!(
        matches!(&err, Error::BadSection(m) if m.contains("gap")),
        "{err:?}"
    );
    assert_eq!(reader.position(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_log_whose_links_loop_is_refused_within_a_few_requests() {
    // Every answer is "6,10", full, linked back and forth to "1,5", whatever was asked.
    let requests = Arc::new(AtomicUsize::new(0));
    let url = hostile(
        Arc::new(|_| Section {
            section_id: "6,10".into(),
            items: (6..=10).map(n).collect(),
            previous_id: Some("1,5".into()),
            next_id: Some("1,5".into()),
        }),
        requests.clone(),
    )
    .await;
    let mut reader = NotificationLogReader::new(remote(&url));
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(5), reader.read_all())
        .await
        .expect("the reader looped")
        .unwrap_err();
    assert!(matches!(err, Error::BadSection(_)), "{err:?}");
    assert_eq!(reader.position(), 0);
    assert!(
        requests.load(Ordering::SeqCst) < 10,
        "{} requests",
        requests.load(Ordering::SeqCst)
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A raw HTTP server that answers every request with `head` and then zeros, as fast as the
/// client takes them (chunked when `chunked`), until the client goes away; returns the URL and
/// the number of body bytes it managed to send.
async fn flooding(head: &'static str, chunked: bool) -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut req = [0u8; 4096];
                let _ = s.read(&mut req).await;
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let zeros = vec![b'0'; 64 * 1024];
                let chunk_head = format!("{:x}\r\n", zeros.len());
                loop {
                    let ok = if chunked {
                        s.write_all(chunk_head.as_bytes()).await.is_ok()
                            && s.write_all(&zeros).await.is_ok()
                            && s.write_all(b"\r\n").await.is_ok()
                    } else {
                        s.write_all(&zeros).await.is_ok()
                    };
                    if !ok {
                        return;
                    }
                    counter.fetch_add(zeros.len() as u64, Ordering::SeqCst);
                }
            });
        }
    });
    (format!("http://{addr}/log"), sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_over_the_limit_is_refused_before_it_is_read() {
    let (url, sent) = flooding(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 268435456\r\n\r\n",
        false,
    )
    .await;
    let log: RemoteNotificationLog = RemoteNotificationLog::new(&url).unwrap();
    let started = Instant::now();
    let err = log.section("1,10").await.unwrap_err();
    assert!(
        matches!(&err, Error::BadSection(m) if m.contains("limit of 16777216 bytes")),
        "{err:?}"
    );
    assert_eq!(DEFAULT_MAX_BODY, 16 << 20);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The client hung up long before the 256 MiB were through.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        sent.load(Ordering::SeqCst) < 64 << 20,
        "{} bytes sent",
        sent.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_chunked_body_is_cut_at_the_limit() {
    let (url, sent) = flooding(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        true,
    )
    .await;
    let log: RemoteNotificationLog = RemoteNotificationLog::new(&url)
        .unwrap()
        .with_max_body(1 << 20)
        .with_timeout(Duration::from_secs(20));
    let started = Instant::now();
    let err = log.section("1,10").await.unwrap_err();
    assert!(
        matches!(&err, Error::BadSection(m) if m.contains("limit of 1048576 bytes")),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // What was sent is the limit plus what the sockets buffer, not an endless stream.
    assert!(
        sent.load(Ordering::SeqCst) < 32 << 20,
        "{} bytes sent",
        sent.load(Ordering::SeqCst)
    );
    // Through a reader, the same error, and the position holds.
    let mut reader = NotificationLogReader::new(Arc::new(log));
    assert!(matches!(reader.read_all().await, Err(Error::BadSection(_))));
    assert_eq!(reader.position(), 0);
}
