//! Setter names, and the re-exports es's own signatures need: this crate implements
//! `RecordManager` and `NotificationLog` with `es_runtime::async_trait` (it has no dependency
//! on the async-trait crate) and, with feature `http`, names `es_runtime::axum::Router`.

use es_runtime::application::Application;
use es_runtime::notify::{NotificationLog, NotificationLogReader, Section, SectionId};
use es_runtime::prelude::*;
use es_runtime::record::memory::InMemoryDatabase;
use es_runtime::record::{
    ItemQuery, Notification, RecordBatch, RecordKind, RecordManager, SequencedItem,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[aggregate]
pub struct User {
    name: String,
    #[attribute(setter = "set_password_hash")]
    password_hash: String,
}

fn hash(password: &str) -> String {
    password.bytes().rev().map(|b| format!("{b:02x}")).collect()
}

#[aggregate]
impl User {
    #[event(Registered)]
    pub fn register(name: String, password_hash: String) -> Self {
        User {
            name,
            password_hash,
        }
    }

    /// The natural name is the command's own: it hashes, then sets the attribute.
    pub fn set_password(&mut self, password: &str) -> Result<()> {
        if password.len() < 4 {
            return Err(Error::Encoding("password too short".into()));
        }
        self.set_password_hash(hash(password))
    }
}

#[tokio::test]
async fn a_custom_set_password_coexists_with_a_named_attribute_setter() {
    let app = Application::builder("users")
        .memory()
        .build()
        .await
        .unwrap();
    let mut u = User::register("ada".into(), hash("first")).unwrap();
    u.set_password("second").unwrap();
    assert!(u.set_password("x").is_err());
    assert_eq!(
        u.pending_events().len(),
        2,
        "the refused command triggered nothing"
    );
    app.save(&mut u).await.unwrap();
    let got: User = app.get(u.id()).await.unwrap();
    assert_eq!(got.password_hash, hash("second"));
    assert_eq!(got.name, "ada");
    // The event names the field, whatever the setter is called.
    let events = app
        .repository::<User>()
        .events(u.id(), &es_runtime::store::EventQuery::all())
        .await
        .unwrap();
    let changed = events[1]
        .downcast_ref::<es_runtime::domain::aggregate::AttributeChanged<User>>()
        .unwrap();
    assert_eq!(changed.name, "password_hash");
}

/// A record manager of one's own: counts writes, stores in memory.
struct Counting {
    inner: es_runtime::record::memory::InMemoryRecordManager,
    writes: AtomicUsize,
}

#[es_runtime::async_trait]
impl RecordManager for Counting {
    fn kind(&self) -> RecordKind {
        self.inner.kind()
    }
    fn application_name(&self) -> &str {
        self.inner.application_name()
    }
    fn pipeline_id(&self) -> i64 {
        self.inner.pipeline_id()
    }
    async fn write(&self, batch: &RecordBatch) -> Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write(batch).await
    }
    async fn get_item(&self, id: Uuid, position: i64) -> Result<SequencedItem> {
        self.inner.get_item(id, position).await
    }
    async fn get_items(&self, id: Uuid, query: &ItemQuery) -> Result<Vec<SequencedItem>> {
        self.inner.get_items(id, query).await
    }
    async fn list_sequence_ids(&self) -> Result<Vec<Uuid>> {
        self.inner.list_sequence_ids().await
    }
    async fn delete_item(&self, id: Uuid, position: i64) -> Result<()> {
        self.inner.delete_item(id, position).await
    }
    async fn get_notifications(
        &self,
        start: i64,
        end: i64,
        limit: Option<usize>,
    ) -> Result<Vec<Notification>> {
        self.inner.get_notifications(start, end, limit).await
    }
    async fn max_notification_id(&self) -> Result<i64> {
        self.inner.max_notification_id().await
    }
    async fn max_tracking_id(&self, upstream: &str) -> Result<i64> {
        self.inner.max_tracking_id(upstream).await
    }
    async fn has_tracking_record(&self, upstream: &str, id: i64) -> Result<bool> {
        self.inner.has_tracking_record(upstream, id).await
    }
}

/// A process application on a record manager without transactions of its own (the default
/// `begin_tx`): the notifications its policy ignores are tracked one write each.
#[tokio::test]
async fn a_process_application_on_a_record_manager_without_transactions() {
    use es_examples::orders::{self, Order};
    let orders_app = Application::builder("orders").build().await.unwrap();
    let mut o = Order::create(None).unwrap();
    o.set_is_reserved(Uuid::new_v4()).unwrap();
    o.set_is_paid(Uuid::new_v4()).unwrap();
    orders_app.save(&mut o).await.unwrap();
    let records = Arc::new(Counting {
        inner: InMemoryDatabase::new().record_manager(RecordKind::Events, "reservations", 0),
        writes: AtomicUsize::new(0),
    });
    let reservations = Application::builder("reservations")
        .records(records.clone())
        .build()
        .await
        .unwrap();
    let pa = es_runtime::process::ProcessApplication::new(
        Arc::new(reservations),
        orders::reservations_policy(),
    )
    .following(&orders_app)
    .unwrap();
    let p = pa.pull().await.unwrap();
    assert_eq!((p.processed, p.events), (3, 1));
    for id in 1..=3 {
        assert!(records.has_tracking_record("orders", id).await.unwrap());
    }
    // The created order's reservation with its tracking record, then one write for each of
    // the two notifications the policy has no handler for.
    assert_eq!(records.writes.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_record_manager_implemented_with_the_re_exported_async_trait() {
    let records = Arc::new(Counting {
        inner: InMemoryDatabase::new().record_manager(RecordKind::Events, "users", 0),
        writes: AtomicUsize::new(0),
    });
    let app = Application::builder("users")
        .records(records.clone())
        .build()
        .await
        .unwrap();
    for k in 0..3 {
        let mut u = User::register(format!("u{k}"), hash("pass")).unwrap();
        app.save(&mut u).await.unwrap();
    }
    assert_eq!(records.writes.load(Ordering::SeqCst), 3);
    // Reading the whole log needs no bounds.
    let all = app.records().all_notifications().await.unwrap();
    assert_eq!(all.iter().map(|n| n.id).collect::<Vec<_>>(), vec![1, 2, 3]);
    let tail = app.records().notifications(2.., None).await.unwrap();
    // A range that ends before it starts holds nothing.
    let empty = std::ops::RangeInclusive::new(3, 2);
    assert_eq!(tail.iter().map(|n| n.id).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(
        app.records().notifications(..=1, None).await.unwrap().len(),
        1
    );
    assert_eq!(
        app.records().notifications(..1, None).await.unwrap().len(),
        0
    );
    assert_eq!(
        app.records()
            .notifications(empty, None)
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        app.records()
            .notifications(.., Some(2))
            .await
            .unwrap()
            .len(),
        2
    );
}

/// A notification log of one's own: the words of a sentence, in sections of three.
struct Words(Vec<String>);

#[es_runtime::async_trait]
impl NotificationLog<String> for Words {
    async fn section(&self, section_id: &str) -> Result<Section<String>> {
        let size = 3i64;
        let len = self.0.len() as i64;
        let first = match SectionId::parse(section_id)? {
            SectionId::Current => (len.max(1) - 1) / size * size + 1,
            SectionId::Range { first, .. } => (first - 1) / size * size + 1,
        };
        let last = first + size - 1;
        let items = self
            .0
            .iter()
            .skip((first - 1) as usize)
            .take(size as usize)
            .cloned()
            .collect();
        Ok(Section {
            section_id: SectionId::format(first, last),
            items,
            previous_id: (first > 1).then(|| SectionId::format(first - size, first - 1)),
            next_id: (last < len).then(|| SectionId::format(last + 1, last + size)),
        })
    }
}

#[tokio::test]
async fn a_notification_log_implemented_with_the_re_exported_async_trait() {
    let words: Vec<String> = "the quick brown fox jumps over the dog"
        .split(' ')
        .map(String::from)
        .collect();
    let mut reader = NotificationLogReader::new(Arc::new(Words(words.clone())));
    assert_eq!(reader.read_all().await.unwrap(), words);
    assert_eq!(reader.position(), 8);
}

/// `notify::http::router` returns the re-exported axum's `Router`: merged with a route of
/// one's own without a dependency on axum.
#[cfg(feature = "http")]
#[tokio::test]
async fn the_http_router_is_the_re_exported_axum_router() {
    use es_runtime::axum::routing::get;
    use es_runtime::notify::{http, NotificationLogView, RecordNotificationLog};
    let app = Application::builder("web").memory().build().await.unwrap();
    let view = NotificationLogView::new(Arc::new(
        RecordNotificationLog::for_application(&app, 20).unwrap(),
    ));
    let router: es_runtime::axum::Router = http::router("/notifications", view)
        .merge(es_runtime::axum::Router::new().route("/health", get(|| async { "ok" })));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(http::serve(listener, router));
    for (path, expect) in [("/health", "ok"), ("/notifications/current/", "section_id")] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: es\r\nConnection: close\r\n\r\n");
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{path}: {response}");
        assert!(response.contains(expect), "{path}: {response}");
    }
    server.abort();
}
