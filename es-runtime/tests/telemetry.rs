//! The spans and metrics es emits, caught by a subscriber and a recorder written here.

use es_runtime::application::Application;
use es_runtime::prelude::*;
use es_runtime::process::{Policy, ProcessApplication};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};

#[aggregate]
pub struct Account {
    balance: u64,
}

#[aggregate]
impl Account {
    #[event(Opened)]
    pub fn open() -> Self {
        Account { balance: 0 }
    }
    #[event(Deposited)]
    pub fn deposit(&mut self, amount: u64) {
        self.balance += amount;
    }
}

#[aggregate]
pub struct Statement {
    account: Uuid,
}

#[aggregate]
impl Statement {
    #[event(Started)]
    pub fn start(account: Uuid) -> Self {
        Statement { account }
    }
}

/// One span: its name and fields (as recorded, later records overwriting).
#[derive(Clone, Debug)]
struct SpanData {
    name: &'static str,
    meta: &'static tracing::Metadata<'static>,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Spans {
    spans: Mutex<Vec<SpanData>>,
    /// The spans entered, innermost last (the tests run their futures on one thread).
    entered: Mutex<Vec<u64>>,
}

struct Collector(Arc<Spans>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl tracing::Subscriber for Collector {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self.0.spans.lock().unwrap();
        spans.push(SpanData {
            name: attrs.metadata().name(),
            meta: attrs.metadata(),
            fields,
        });
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, id: &Id, values: &Record<'_>) {
        let mut spans = self.0.spans.lock().unwrap();
        if let Some(s) = spans.get_mut(id.into_u64() as usize - 1) {
            values.record(&mut Fields(&mut s.fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, id: &Id) {
        self.0.entered.lock().unwrap().push(id.into_u64());
    }
    fn exit(&self, id: &Id) {
        let mut entered = self.0.entered.lock().unwrap();
        if let Some(at) = entered.iter().rposition(|e| *e == id.into_u64()) {
            entered.remove(at);
        }
    }
    fn current_span(&self) -> tracing_core::span::Current {
        let entered = self.0.entered.lock().unwrap();
        let spans = self.0.spans.lock().unwrap();
        match entered.last() {
            Some(&id) => {
                tracing_core::span::Current::new(Id::from_u64(id), spans[id as usize - 1].meta)
            }
            None => tracing_core::span::Current::none(),
        }
    }
}

impl Spans {
    fn named(&self, name: &str) -> Vec<SpanData> {
        let spans = self.spans.lock().unwrap();
        spans.iter().filter(|s| s.name == name).cloned().collect()
    }
}

/// Counters and histograms by `name{label=value,...}`.
#[derive(Default)]
struct Metrics {
    counters: Mutex<HashMap<String, Arc<Count>>>,
    histograms: Mutex<HashMap<String, Arc<Values>>>,
}

#[derive(Default)]
struct Count(AtomicU64);
impl metrics::CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Values(Mutex<Vec<f64>>);
impl metrics::HistogramFn for Values {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

fn key_name(key: &metrics::Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

struct Recorder(Arc<Metrics>);

impl metrics::Recorder for Recorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let mut c = self.0.counters.lock().unwrap();
        metrics::Counter::from_arc(c.entry(key_name(key)).or_default().clone())
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        let mut h = self.0.histograms.lock().unwrap();
        metrics::Histogram::from_arc(h.entry(key_name(key)).or_default().clone())
    }
}

impl Metrics {
    fn counter(&self, key: &str) -> u64 {
        let c = self.counters.lock().unwrap();
        c.get(key).map_or(0, |c| c.0.load(Ordering::Relaxed))
    }
    fn histogram(&self, key: &str) -> Vec<f64> {
        let h = self.histograms.lock().unwrap();
        h.get(key)
            .map(|v| v.0.lock().unwrap().clone())
            .unwrap_or_default()
    }
}

/// Runs `f` on a runtime of this thread with the collector and the recorder installed.
fn observed<F: std::future::Future<Output = ()>>(
    f: impl FnOnce() -> F,
) -> (Arc<Spans>, Arc<Metrics>) {
    let spans = Arc::new(Spans::default());
    let metrics = Arc::new(Metrics::default());
    let dispatch = tracing::Dispatch::new(Collector(spans.clone()));
    let recorder = Recorder(metrics.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        metrics::with_local_recorder(&recorder, || rt.block_on(f()))
    });
    (spans, metrics)
}

fn field<'a>(s: &'a SpanData, name: &str) -> &'a str {
    s.fields
        .get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("span {} has no field {name}: {:?}", s.name, s.fields))
}

#[test]
fn saves_gets_and_replays_are_spans_with_their_fields_and_counted() {
    let mut id = Uuid::nil();
    let (spans, metrics) = observed(|| async {
        let app = Application::builder("bank").memory().build().await.unwrap();
        let mut a = Account::open().unwrap();
        a.deposit(5).unwrap();
        app.save(&mut a).await.unwrap();
        id = a.id();
        let got: Account = app.get(id).await.unwrap();
        assert_eq!(got.balance, 5);
        // A stale copy: a conflict, counted.
        let mut stale = got.clone();
        let mut fresh = got;
        fresh.deposit(1).unwrap();
        app.save(&mut fresh).await.unwrap();
        stale.deposit(2).unwrap();
        assert!(matches!(
            app.save(&mut stale).await,
            Err(Error::Concurrency(_))
        ));
    });

    let saves = spans.named("es.save");
    assert_eq!(saves.len(), 3, "{saves:?}");
    let first = &saves[0];
    assert_eq!(field(first, "application"), "bank");
    assert_eq!(field(first, "aggregate_id"), id.to_string());
    assert_eq!(
        (field(first, "version"), field(first, "events")),
        ("0", "2")
    );
    assert!(field(first, "duration_us").parse::<u64>().is_ok());
    assert!(!first.fields.contains_key("error"), "{first:?}");
    assert!(
        field(&saves[2], "error").contains("concurrency"),
        "{:?}",
        saves[2]
    );

    let gets = spans.named("es.get");
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(field(&gets[0], "aggregate_id"), id.to_string());
    assert_eq!(field(&gets[0], "version"), "2");
    assert!(field(&gets[0], "aggregate").ends_with("Account"));
    let replays = spans.named("es.replay");
    assert_eq!(field(&replays[0], "events"), "2");
    assert_eq!(field(&replays[0], "from"), "0");

    assert_eq!(
        metrics.counter("es_events_saved_total{application=bank}"),
        3
    );
    assert_eq!(metrics.counter("es_conflicts_total{application=bank}"), 1);
    assert_eq!(
        metrics.histogram("es_replay_events{application=bank}"),
        vec![2.0]
    );
}

#[test]
fn commands_retried_after_a_conflict_are_counted() {
    let (spans, metrics) = observed(|| async {
        let app = Application::builder("retries")
            .memory()
            .build()
            .await
            .unwrap();
        let mut a = Account::open().unwrap();
        app.save(&mut a).await.unwrap();
        let mut first = true;
        let balance = app
            .update(a.id(), |acc: &mut Account| {
                if first {
                    first = false;
                    // Another writer saves in between (the command's copy goes stale).
                    let mut other = acc.clone();
                    other.deposit(100)?;
                    futures_block(&app, other);
                }
                acc.deposit(1)?;
                Ok::<_, Error>(acc.balance)
            })
            .await
            .unwrap();
        assert_eq!(balance, 101);
    });
    assert_eq!(
        metrics.counter("es_command_retries_total{application=retries}"),
        1
    );
    assert_eq!(
        metrics.counter("es_conflicts_total{application=retries}"),
        1
    );
    assert_eq!(spans.named("es.get").len(), 2);
}

/// Saves `a` from inside a synchronous command closure (the in-memory store never waits).
fn futures_block(app: &Application, mut a: Account) {
    let fut = app.save(&mut a);
    let mut fut = std::pin::pin!(fut);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => r.unwrap(),
        std::task::Poll::Pending => panic!("the in-memory save waited"),
    }
}

use std::future::Future as _;

#[test]
fn processing_a_notification_is_a_span_with_its_ids_and_the_lag_is_measured() {
    let (spans, metrics) = observed(|| async {
        let db: Arc<dyn es_runtime::application::Database> =
            Arc::new(es_runtime::record::memory::InMemoryDatabase::new());
        let accounts = Arc::new(
            Application::builder("accounts")
                .database(db.clone())
                .build()
                .await
                .unwrap(),
        );
        let statements = Arc::new(
            Application::builder("statements")
                .database(db)
                .build()
                .await
                .unwrap(),
        );
        let policy = Policy::new().on(|ctx, e: Event<account::Opened>| async move {
            ctx.save(Statement::start(e.originator_id())?);
            Ok(())
        });
        let process = ProcessApplication::new(statements, policy)
            .following(&accounts)
            .unwrap();
        for _ in 0..2 {
            accounts.save(&mut Account::open().unwrap()).await.unwrap();
        }
        assert_eq!(process.pull().await.unwrap().processed, 2);
    });
    let processed = spans.named("es.process");
    assert_eq!(processed.len(), 2, "{processed:?}");
    assert_eq!(field(&processed[1], "application"), "statements");
    assert_eq!(field(&processed[1], "upstream"), "accounts");
    assert_eq!(field(&processed[1], "notification_id"), "2");
    assert_eq!(
        (
            field(&processed[1], "events"),
            field(&processed[1], "attempts")
        ),
        ("1", "1")
    );
    let tracked: Vec<_> = spans
        .named("es.save")
        .into_iter()
        .filter(|s| s.fields.get("upstream").map(String::as_str) == Some("accounts"))
        .collect();
    assert_eq!(tracked.len(), 2);
    assert_eq!(field(&tracked[0], "notification_id"), "1");
    let key = "{application=statements,upstream=accounts}";
    assert_eq!(
        metrics.counter(&format!("es_notifications_processed_total{key}")),
        2
    );
    let lags = metrics.histogram(&format!("es_process_lag_seconds{key}"));
    assert!(
        lags.len() == 2 && lags.iter().all(|l| (0.0..60.0).contains(l)),
        "{lags:?}"
    );
}

#[cfg(feature = "http")]
#[test]
fn serving_and_reading_sections_over_http_are_spans() {
    use es_runtime::notify::{
        http, NotificationLog, NotificationLogView, RecordNotificationLog, RemoteNotificationLog,
    };
    let (spans, _) = observed(|| async {
        let app = Application::builder("served")
            .memory()
            .build()
            .await
            .unwrap();
        for _ in 0..3 {
            app.save(&mut Account::open().unwrap()).await.unwrap();
        }
        let view = NotificationLogView::new(Arc::new(
            RecordNotificationLog::for_application(&app, 10).unwrap(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(http::serve(listener, http::router("/log", view)));
        let remote: RemoteNotificationLog =
            RemoteNotificationLog::new(&format!("http://{addr}/log")).unwrap();
        assert_eq!(remote.section("1,10").await.unwrap().items.len(), 3);
        assert!(remote.section("2,1").await.is_err());
        server.abort();
    });
    let reads = spans.named("es.http.read");
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert_eq!(
        (
            field(&reads[0], "section_id"),
            field(&reads[0], "notifications")
        ),
        ("1,10", "3")
    );
    assert!(field(&reads[0], "url").ends_with("/log"));
    assert!(reads[1].fields.contains_key("error"), "{:?}", reads[1]);
    let served = spans.named("es.http.serve");
    assert!(
        served
            .iter()
            .any(|s| s.fields.get("section_id").map(String::as_str) == Some("1,10")),
        "{served:?}"
    );
}
