//! Manual §12.4: the orders, reservations and payments system, run on every backend with both
//! runners. One system definition; the results (every application's events, in order for the
//! single-threaded runner) are the same everywhere.

mod support;

use es_examples::orders::{self, CreateOrder, Order, Payment, Reservation};
use es_runtime::application::{Application, Database};
use es_runtime::prelude::*;
use es_runtime::process::{Runner, RunnerBuilder};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const IDLE: Duration = Duration::from_secs(30);

/// Each application's events as topics, in notification order, and how far it has tracked
/// each upstream.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    topics: BTreeMap<String, Vec<String>>,
    tracked: BTreeMap<(String, String), i64>,
}

impl Summary {
    /// The same, with each application's topics sorted (concurrent runs interleave
    /// differently).
    fn sorted(mut self) -> Self {
        for t in self.topics.values_mut() {
            t.sort();
        }
        self
    }
}

async fn topics(app: &Application) -> Vec<String> {
    let max = app.records().max_notification_id().await.unwrap();
    let ns = app.records().get_notifications(1, max, None).await.unwrap();
    let ids: Vec<i64> = ns.iter().map(|n| n.id).collect();
    assert_eq!(
        ids,
        (1..=max).collect::<Vec<_>>(),
        "gap-free notification ids"
    );
    ns.iter()
        .map(|n| {
            let e = app.mapper().from_item(&n.item).unwrap();
            e.topic().rsplit("::").next().unwrap().to_string()
        })
        .collect()
}

async fn summary(runner: &Runner, ns: &str) -> Summary {
    let system = orders::system();
    let mut s = Summary {
        topics: BTreeMap::new(),
        tracked: BTreeMap::new(),
    };
    for name in system.names() {
        let app = runner.app(name).unwrap();
        s.topics.insert(name.to_string(), topics(&app).await);
        for u in system.upstreams(name) {
            let t = app
                .records()
                .max_tracking_id(&format!("{ns}{u}"))
                .await
                .unwrap();
            s.tracked.insert((name.to_string(), u.to_string()), t);
        }
    }
    s
}

fn builder(db: &Arc<dyn Database>, ns: &str) -> RunnerBuilder {
    Runner::builder(&orders::system(), db.clone())
        .namespace(ns)
        .poll_interval(Duration::from_millis(20))
}

/// Saves `n` commands and checks each is fully processed; returns the summary.
async fn run(db: &Arc<dyn Database>, concurrent: bool, n: usize) -> Summary {
    let ns = format!("{}_", support::unique("orders"));
    let runner = if concurrent {
        builder(db, &ns).concurrent().await.unwrap()
    } else {
        builder(db, &ns).single_threaded().await.unwrap()
    };
    let commands = runner.app("commands").unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        let mut cmd = CreateOrder::create().unwrap();
        commands.save(&mut cmd).await.unwrap();
        if !concurrent {
            // Synchronous propagation: done by the time the save returns.
            let done: CreateOrder = commands.get(cmd.id()).await.unwrap();
            assert!(done.is_done(), "processed within the save");
        }
        ids.push(cmd.id());
    }
    runner.wait_idle(IDLE).await.unwrap();
    let (orders_app, reservations, payments) = (
        runner.app("orders").unwrap(),
        runner.app("reservations").unwrap(),
        runner.app("payments").unwrap(),
    );
    for id in ids {
        let cmd: CreateOrder = commands.get(id).await.unwrap();
        assert!(cmd.is_done());
        let order: Order = orders_app.get(cmd.order_id().unwrap()).await.unwrap();
        assert_eq!(order.command_id(), Some(id));
        assert!(order.is_reserved() && order.is_paid());
        let r: Reservation = reservations
            .get(order.reservation_id().unwrap())
            .await
            .unwrap();
        assert_eq!(r.order_id(), order.id());
        let p: Payment = payments.get(order.payment_id().unwrap()).await.unwrap();
        assert_eq!(p.order_id(), order.id());
        // Bounded contexts: an order is not in the reservations application.
        assert!(!reservations
            .repository::<Order>()
            .contains(order.id())
            .await
            .unwrap());
    }
    let s = summary(&runner, &ns).await;
    runner.stop().await.unwrap();
    s
}

fn expected_counts(n: usize) -> BTreeMap<String, usize> {
    [
        ("commands", 3 * n),
        ("orders", 3 * n),
        ("reservations", n),
        ("payments", n),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_system_gives_identical_results_on_every_backend_and_runner() {
    let n = 4;
    let mut single: Vec<(&str, Summary)> = Vec::new();
    let mut concurrent: Vec<(&str, Summary)> = Vec::new();
    for (backend, db) in support::databases().await {
        single.push((backend, run(&db, false, n).await));
        concurrent.push((backend, run(&db, true, n).await));
    }
    let (first_backend, reference) = &single[0];
    let counts: BTreeMap<String, usize> = reference
        .topics
        .iter()
        .map(|(k, v)| (k.clone(), v.len()))
        .collect();
    assert_eq!(counts, expected_counts(n));
    // Every application tracked every notification of every upstream.
    for ((app, upstream), t) in &reference.tracked {
        let written = reference.topics[upstream].len() as i64;
        assert_eq!(*t, written, "{app} tracked all of {upstream}");
    }
    // Single-threaded: the very same sequence of events in every application, everywhere.
    let first_order = &reference.topics["orders"][..3];
    assert_eq!(
        first_order,
        ["Order.Created", "Order.Reserved", "Order.Paid"]
    );
    for (backend, s) in &single {
        assert_eq!(
            s, reference,
            "{backend} vs {first_backend}, single-threaded"
        );
    }
    // Concurrent: the same events and tracking, in an order that depends on timing.
    let sorted_reference = Summary {
        topics: reference.topics.clone(),
        tracked: reference.tracked.clone(),
    }
    .sorted();
    for (backend, s) in concurrent {
        assert_eq!(s.sorted(), sorted_reference, "{backend}, concurrent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_pipelines_each_process_their_own_orders() {
    for (backend, db) in support::databases().await {
        for concurrent in [false, true] {
            let ns = format!("{}_", support::unique("pipes"));
            let b = Runner::builder(&orders::orders_system(), db.clone())
                .namespace(&ns)
                .pipelines([0, 1, 2])
                .poll_interval(Duration::from_millis(20));
            let runner = if concurrent {
                b.concurrent().await.unwrap()
            } else {
                b.single_threaded().await.unwrap()
            };
            let mut ids = Vec::new();
            for p in [0, 1, 2, 0, 1, 2] {
                let orders_app = runner.app_in("orders", p).unwrap();
                let mut order = Order::create(None).unwrap();
                orders_app.save(&mut order).await.unwrap();
                ids.push((p, order.id()));
            }
            runner.wait_idle(IDLE).await.unwrap();
            for (p, id) in ids {
                let order: Order = runner.app_in("orders", p).unwrap().get(id).await.unwrap();
                assert!(order.is_paid(), "{backend}: order in pipeline {p} paid");
            }
            for p in [0, 1, 2] {
                // Each pipeline's reservations made two reservations, in its own log.
                let r = runner.app_in("reservations", p).unwrap();
                assert_eq!(r.records().max_notification_id().await.unwrap(), 2);
                assert_eq!(
                    r.records()
                        .max_tracking_id(&format!("{ns}orders"))
                        .await
                        .unwrap(),
                    6,
                    "{backend}: pipeline {p} tracked its orders' six notifications"
                );
            }
            runner.stop().await.unwrap();
        }
    }
}
