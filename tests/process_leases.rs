//! Issue 11, leases: one active instance per (application, pipeline). A second runner of the
//! same system stands by while the first holds the leases, and takes over when the first
//! stops or loses its lease; every order is reserved exactly once. On memory (in-process
//! locks), a SQLite file (file locks), PostgreSQL (advisory locks) and MySQL (GET_LOCK).

mod support;

use es_examples::orders::{self, Order};
use es_runtime::application::Database;
use es_runtime::process::lease::{self, Leases, LocalLeases};
use es_runtime::process::{Runner, State};
use std::sync::Arc;
use std::time::{Duration, Instant};

const IDLE: Duration = Duration::from_secs(30);

/// A backend: its name, database, leases, and its URL when it is PostgreSQL.
type Backend = (
    &'static str,
    Arc<dyn Database>,
    Arc<dyn Leases>,
    Option<String>,
);

async fn backends() -> Vec<Backend> {
    let mut v: Vec<Backend> = vec![(
        "memory",
        Arc::new(es_runtime::record::memory::InMemoryDatabase::new()),
        Arc::new(LocalLeases::new()),
        None,
    )];
    let dir = std::env::temp_dir().join(support::unique("es-leases"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("es.db").display());
    v.push((
        "sqlite-file",
        es_runtime::application::connect(&url).await.unwrap(),
        lease::for_url(&url).await.unwrap(),
        None,
    ));
    #[cfg(feature = "postgres")]
    if let Some(url) = support::server_url("ES_POSTGRES_URL", "postgres") {
        v.push((
            "postgres",
            es_runtime::application::connect(&url).await.unwrap(),
            lease::for_url(&url).await.unwrap(),
            Some(url),
        ));
    }
    #[cfg(feature = "mysql")]
    if let Some(url) = support::server_url("ES_MYSQL_URL", "mysql") {
        v.push((
            "mysql",
            es_runtime::application::connect(&url).await.unwrap(),
            lease::for_url(&url).await.unwrap(),
            None,
        ));
    }
    v
}

async fn start(db: &Arc<dyn Database>, leases: &Arc<dyn Leases>, ns: &str) -> Runner {
    Runner::builder(&orders::orders_system(), db.clone())
        .namespace(ns)
        .leases(leases.clone())
        .lease_interval(Duration::from_millis(50))
        .poll_interval(Duration::from_millis(20))
        .concurrent()
        .await
        .unwrap()
}

async fn states(runner: &Runner) -> Vec<State> {
    runner
        .health()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.state)
        .collect()
}

async fn eventually(runner: &Runner, what: &str, ok: impl Fn(&[State]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = states(runner).await;
        if ok(&s) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {s:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn save_orders(runner: &Runner, n: usize) {
    let orders = runner.app("orders").unwrap();
    for _ in 0..n {
        orders
            .save(&mut Order::create(None).unwrap())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_holder_stops() {
    for (backend, db, leases, _) in backends().await {
        let ns = support::unique("ls");
        let first = start(&db, &leases, &ns).await;
        eventually(&first, backend, |s| s.iter().all(|s| *s == State::Running)).await;
        let second = start(&db, &leases, &ns).await;
        eventually(&second, backend, |s| {
            s.iter().all(|s| *s == State::WaitingForLease)
        })
        .await;

        save_orders(&first, 3).await;
        first.wait_idle(IDLE).await.unwrap();
        assert!(
            states(&second)
                .await
                .iter()
                .all(|s| *s == State::WaitingForLease),
            "{backend}: the standby still waits"
        );
        first.stop().await.unwrap();

        // The standby takes every lease, and goes on where the first stopped.
        let took = Instant::now();
        eventually(&second, backend, |s| s.iter().all(|s| *s == State::Running)).await;
        assert!(
            took.elapsed() < Duration::from_secs(5),
            "{backend}: {:?}",
            took.elapsed()
        );
        save_orders(&second, 2).await;
        second.wait_idle(IDLE).await.unwrap();
        let reservations = second.app("reservations").unwrap();
        let payments = second.app("payments").unwrap();
        assert_eq!(
            reservations.records().max_notification_id().await.unwrap(),
            5,
            "{backend}"
        );
        assert_eq!(
            payments.records().max_notification_id().await.unwrap(),
            5,
            "{backend}"
        );
        second.stop().await.unwrap();
    }
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lease_connection_dies_stops_and_a_standby_takes_over() {
    for (backend, db, leases, url) in backends().await {
        let Some(url) = url else { continue };
        let ns = support::unique("lk");
        let first = start(&db, &leases, &ns).await;
        eventually(&first, backend, |s| s.iter().all(|s| *s == State::Running)).await;
        let second = start(&db, &leases, &ns).await;
        eventually(&second, backend, |s| {
            s.iter().all(|s| *s == State::WaitingForLease)
        })
        .await;

        // The server ends the first runner's lease sessions (as when its host vanishes).
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        let me = es_runtime::process::lease::holder_name();
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name LIKE $1 AND backend_type = 'client backend' \
             AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)",
        )
        .bind(format!("es lease {me} {ns}%"))
        .fetch_all(&admin)
        .await
        .unwrap();
        assert_eq!(
            killed.len(),
            3,
            "three leases (orders, reservations, payments)"
        );

        // One of the two runners holds each lease again; orders are processed exactly once.
        save_orders(&first, 4).await;
        let deadline = Instant::now() + IDLE;
        let reservations = first.app("reservations").unwrap();
        let payments = first.app("payments").unwrap();
        while payments.records().max_notification_id().await.unwrap() < 4 {
            assert!(Instant::now() < deadline, "{backend}: orders not processed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            reservations.records().max_notification_id().await.unwrap(),
            4
        );
        assert_eq!(payments.records().max_notification_id().await.unwrap(), 4);
        let mut all = states(&first).await;
        all.extend(states(&second).await);
        assert_eq!(
            all.iter().filter(|s| **s == State::Running).count(),
            3,
            "{backend}: one holder per lease: {all:?}"
        );
        first.stop().await.unwrap();
        second.stop().await.unwrap();
    }
}
