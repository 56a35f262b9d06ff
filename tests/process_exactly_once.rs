//! Manual §12.2: a process application processes each notification exactly once, on every
//! backend. Re-running a step, a tracking conflict between two instances, a restart, a crash
//! in the middle of a policy, and a failing policy under both runners.

mod support;

use es_examples::orders::{self, Order, Reservation};
use es_runtime::application::{Application, Database, Saveable};
use es_runtime::prelude::*;
use es_runtime::process::{Backoff, Policy, ProcessApplication, ProcessContext, Runner, System};
use es_runtime::record::Tracking;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const IDLE: Duration = Duration::from_secs(30);

async fn app(db: &Arc<dyn Database>, name: &str) -> Arc<Application> {
    Arc::new(
        Application::builder(name)
            .database(db.clone())
            .build()
            .await
            .unwrap(),
    )
}

async fn max_id(app: &Application) -> i64 {
    app.records().max_notification_id().await.unwrap()
}

/// Orders saved straight into an application (a write from elsewhere: nobody is prompted).
async fn save_orders(app: &Application, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let mut o = Order::create(None).unwrap();
        app.save(&mut o).await.unwrap();
        ids.push(o.id());
    }
    ids
}

#[tokio::test]
async fn re_running_a_step_writes_nothing_and_a_tracking_conflict_is_skipped() {
    for (backend, db) in support::databases().await {
        let orders = app(&db, &support::unique("orders")).await;
        let reservations = app(&db, &support::unique("reservations")).await;
        save_orders(&orders, 3).await;

        let first = ProcessApplication::new(reservations.clone(), orders::reservations_policy())
            .following(&orders)
            .unwrap();
        // A second instance of the same application, positioned before the first one works.
        let second = ProcessApplication::new(reservations.clone(), orders::reservations_policy())
            .following(&orders)
            .unwrap()
            .with_page_size(1);
        assert_eq!(
            second.positions().await.unwrap(),
            [(orders.name().to_string(), 0)]
        );

        let p = first.pull().await.unwrap();
        assert_eq!((p.processed, p.skipped, p.events), (3, 0, 3), "{backend}");
        assert_eq!(max_id(&reservations).await, 3);

        // Re-running the same step: every notification is found tracked, nothing is written.
        first.rewind(orders.name(), 0).await.unwrap();
        let p = first.pull().await.unwrap();
        assert_eq!(p.processed, 0, "{backend}");
        assert!(p.skipped >= 1, "{backend}");
        assert_eq!(max_id(&reservations).await, 3, "{backend}: nothing new");

        // The second instance runs the policy for notification 1, but its write conflicts on
        // the tracking record: skipped, then it jumps to what is tracked.
        let p = second.pull().await.unwrap();
        assert_eq!((p.processed, p.skipped), (0, 1), "{backend}");
        assert_eq!(
            second.positions().await.unwrap(),
            [(orders.name().to_string(), 3)]
        );
        assert_eq!(max_id(&reservations).await, 3, "{backend}: nothing new");

        // New work is shared: whoever pulls first processes it, once.
        save_orders(&orders, 1).await;
        assert_eq!(second.pull().await.unwrap().processed, 1);
        let p = first.pull().await.unwrap();
        assert_eq!((p.processed, p.skipped), (0, 1), "{backend}");
        assert_eq!(max_id(&reservations).await, 4, "{backend}");
        assert_eq!(
            reservations
                .records()
                .max_tracking_id(orders.name())
                .await
                .unwrap(),
            4
        );
    }
}

#[tokio::test]
async fn a_tracked_notification_cannot_be_recorded_again() {
    for (backend, db) in support::databases().await {
        let a = app(&db, &support::unique("tracked")).await;
        let tracking = Tracking {
            upstream_application: "upstream".into(),
            notification_id: 1,
        };
        let mut r1 = Reservation::create(Uuid::new_v4()).unwrap();
        a.save_tracked(
            &mut [&mut r1 as &mut dyn Saveable],
            Some(tracking.clone()),
            None,
        )
        .await
        .unwrap();
        let mut r2 = Reservation::create(Uuid::new_v4()).unwrap();
        let err = a
            .save_tracked(&mut [&mut r2 as &mut dyn Saveable], Some(tracking), None)
            .await
            .unwrap_err();
        assert!(err.is_conflict(), "{backend}: {err}");
        assert_eq!(max_id(&a).await, 1, "{backend}: nothing written");
        assert!(matches!(
            a.get::<Reservation>(r2.id()).await,
            Err(Error::NotFound(_))
        ));
        assert_eq!(
            r2.pending_events().len(),
            1,
            "still pending after the failure"
        );
    }
}

/// A reservations policy that fails while `broken` is set, after saving a reservation (which
/// must then not be written).
fn breakable_reservations(broken: Arc<AtomicBool>) -> Policy {
    Policy::new().on(
        move |ctx: ProcessContext, e: Event<orders::order::Created>| {
            let broken = broken.load(Ordering::SeqCst);
            async move {
                ctx.save(Reservation::create(e.originator_id())?);
                if broken {
                    return Err(Error::Operational("reservations are down".into()));
                }
                Ok(())
            }
        },
    )
}

fn breakable_system(broken: Arc<AtomicBool>) -> System {
    System::new()
        .pipeline("orders | reservations")
        .process("orders", Policy::new)
        .process("reservations", move || {
            breakable_reservations(broken.clone())
        })
}

#[tokio::test]
async fn a_failing_policy_writes_nothing_and_the_single_threaded_runner_reports_it() {
    for (backend, db) in support::databases().await {
        let broken = Arc::new(AtomicBool::new(false));
        let ns = format!("{}_", support::unique("fail"));
        let runner = Runner::builder(&breakable_system(broken.clone()), db.clone())
            .namespace(&ns)
            .single_threaded()
            .await
            .unwrap();
        let (orders_app, reservations) = (
            runner.app("orders").unwrap(),
            runner.app("reservations").unwrap(),
        );
        let mut good = Order::create(None).unwrap();
        orders_app.save(&mut good).await.unwrap();

        broken.store(true, Ordering::SeqCst);
        let mut bad = Order::create(None).unwrap();
        match orders_app.save(&mut bad).await {
            Err(Error::Processing {
                application,
                upstream,
                notification_id,
                source,
            }) => {
                assert_eq!(application, format!("{ns}reservations"));
                assert_eq!(upstream, format!("{ns}orders"));
                assert_eq!(notification_id, 2);
                assert!(matches!(*source, Error::Operational(_)), "{backend}");
            }
            other => panic!("{backend}: expected a processing error, got {other:?}"),
        }
        // The order itself is committed; nothing of its processing is.
        assert!(orders_app.get::<Order>(bad.id()).await.is_ok());
        assert_eq!(max_id(&reservations).await, 1, "{backend}");
        let upstream = format!("{ns}orders");
        let tracked = reservations.records().max_tracking_id(&upstream).await;
        assert_eq!(tracked.unwrap(), 1, "{backend}");
        // Still failing: still reported, still nothing written.
        assert!(runner.wait_idle(IDLE).await.is_err());
        assert_eq!(max_id(&reservations).await, 1, "{backend}");

        // Repaired: the notification is processed, once.
        broken.store(false, Ordering::SeqCst);
        runner.wait_idle(IDLE).await.unwrap();
        assert_eq!(max_id(&reservations).await, 2, "{backend}");
        let tracked = reservations.records().max_tracking_id(&upstream).await;
        assert_eq!(tracked.unwrap(), 2, "{backend}");
        runner.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_policy_stops_its_task_and_a_restart_resumes_from_tracking() {
    for (backend, db) in support::databases().await {
        let broken = Arc::new(AtomicBool::new(false));
        let ns = format!("{}_", support::unique("restart"));
        let start = |broken: Arc<AtomicBool>| {
            Runner::builder(&breakable_system(broken), db.clone())
                .namespace(&ns)
                .poll_interval(Duration::from_millis(20))
                // The failure is operational: no retries, so that the task stops at once.
                .backoff(Backoff::new(Duration::ZERO, Duration::ZERO, 0))
                .concurrent()
        };
        let runner = start(broken.clone()).await.unwrap();
        let orders_app = runner.app("orders").unwrap();
        for _ in 0..3 {
            orders_app
                .save(&mut Order::create(None).unwrap())
                .await
                .unwrap();
        }
        runner.wait_idle(IDLE).await.unwrap();
        let reservations = runner.app("reservations").unwrap();
        assert_eq!(max_id(&reservations).await, 3, "{backend}");

        broken.store(true, Ordering::SeqCst);
        orders_app
            .save(&mut Order::create(None).unwrap())
            .await
            .unwrap();
        match runner.wait_idle(IDLE).await {
            Err(Error::Processing {
                notification_id, ..
            }) => assert_eq!(notification_id, 4, "{backend}"),
            other => panic!("{backend}: expected a processing error, got {other:?}"),
        }
        assert_eq!(max_id(&reservations).await, 3, "{backend}: nothing written");
        // Reported once; then the runner says which application stopped.
        match runner.wait_idle(IDLE).await {
            Err(Error::Operational(m)) => assert!(m.contains("reservations"), "{m}"),
            other => panic!("{backend}: expected the stopped application, got {other:?}"),
        }
        runner.stop().await.unwrap();

        // Meanwhile, more orders arrive from elsewhere.
        let plain = app(&db, &format!("{ns}orders")).await;
        save_orders(&plain, 2).await;

        // A new runner, repaired: resumes after the last tracked notification.
        broken.store(false, Ordering::SeqCst);
        let runner = start(broken.clone()).await.unwrap();
        runner.wait_idle(IDLE).await.unwrap();
        let reservations = runner.app("reservations").unwrap();
        assert_eq!(max_id(&reservations).await, 6, "{backend}: each order once");
        let upstream = format!("{ns}orders");
        let tracked = reservations.records().max_tracking_id(&upstream).await;
        assert_eq!(tracked.unwrap(), 6, "{backend}");
        // One reservation per order, none twice.
        let log = reservations
            .records()
            .get_notifications(1, 6, None)
            .await
            .unwrap();
        let mut reserved: Vec<Uuid> = Vec::new();
        for n in &log {
            let e = reservations.mapper().from_item(&n.item).unwrap();
            let created = e
                .downcast_ref::<orders::reservation::Created>()
                .expect("reservations only");
            reserved.push(created.order_id);
        }
        reserved.sort();
        reserved.dedup();
        assert_eq!(reserved.len(), 6, "{backend}");
        runner.stop().await.unwrap();
    }
}

#[tokio::test]
async fn policies_are_tested_without_a_runner() {
    // The manual's policy tests: call the policy with an event and look at what it saved.
    let orders_app = Arc::new(Application::builder("orders").build().await.unwrap());
    let mut order = Order::create(None).unwrap();
    orders_app.save(&mut order).await.unwrap();

    let mut reservation = Reservation::create(order.id()).unwrap();
    let created = reservation.collect_pending().remove(0);
    let ctx = ProcessContext::new(orders_app.clone());
    orders::orders_policy()
        .handle(ctx.clone(), created)
        .await
        .unwrap();
    let saved: Vec<Order> = ctx.saved();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].reservation_id(), Some(reservation.id()));
    assert_eq!(ctx.pending_events().len(), 1);

    // Getting a saved aggregate again returns the saved copy, unsaved events included.
    let again: Order = ctx.get(order.id()).await.unwrap();
    assert!(again.is_reserved());
    assert_eq!(again.pending_events().len(), 1);

    let mut reserved = order.clone();
    reserved.set_is_reserved(reservation.id()).unwrap();
    let event = reserved.collect_pending().remove(0);
    let ctx = ProcessContext::new(orders_app.clone());
    orders::payments_policy()
        .handle(ctx.clone(), event)
        .await
        .unwrap();
    let payments: Vec<orders::Payment> = ctx.saved();
    assert_eq!(payments[0].order_id(), order.id());
    // Nothing was written: the policy only saves into its context.
    assert_eq!(max_id(&orders_app).await, 1);
}

#[tokio::test]
async fn policies_given_when_then() {
    use es_runtime::testing::{upstream_events, PolicyTest};
    // A reservation for each new order.
    let order_id = Uuid::new_v4();
    let then = PolicyTest::new(orders::reservations_policy())
        .await
        .when(upstream_events::<Order>(
            order_id,
            orders::order::Created { command_id: None },
        ))
        .await;
    then.then_events::<Reservation>(orders::reservation::Created { order_id });
    let reservations: Vec<Reservation> = then.then_saved().await;
    assert_eq!(reservations[0].order_id(), order_id);

    // The orders policy records a reservation on its own order, once.
    let app = Arc::new(Application::builder("orders").build().await.unwrap());
    let mut order = Order::create(None).unwrap();
    app.save(&mut order).await.unwrap();
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let reserved = |id| {
        upstream_events::<Reservation>(
            id,
            orders::reservation::Created {
                order_id: order.id(),
            },
        )
    };
    let then = PolicyTest::on(app.clone(), orders::orders_policy())
        .when(reserved(first))
        .await;
    then.then_events::<Order>(orders::order::Reserved {
        reservation_id: first,
    });
    let again = PolicyTest::on(app, orders::orders_policy())
        .when(reserved(second))
        .await
        .then_error();
    assert!(again.to_string().contains("already reserved"), "{again}");
}

#[tokio::test]
async fn systems_are_checked_before_they_run() {
    let db: Arc<dyn Database> = Arc::new(es_runtime::record::memory::InMemoryDatabase::new());
    // "refunds" is neither defined nor registered by a #[policy] (reservations is: by
    // es_examples::orders, so a pipeline may name it without defining it).
    let missing = System::new()
        .pipeline("orders | refunds")
        .process("orders", Policy::new);
    let err = Runner::builder(&missing, db.clone())
        .single_threaded()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"refunds\""), "{err}");
    assert!(err.to_string().contains("no #[policy] registered"), "{err}");
    let registered = System::new().pipeline("orders | reservations");
    registered.validate().unwrap();
    let bad = System::new()
        .pipeline("orders || reservations")
        .process("orders", Policy::new)
        .process("reservations", Policy::new);
    assert!(matches!(bad.validate(), Err(Error::Configuration(_))));
    assert!(es_runtime::process::Pipeline::parse("a | b c").is_err());
    let same = orders::system();
    assert_eq!(
        same.names(),
        ["commands", "orders", "reservations", "payments"]
    );
    assert_eq!(
        same.upstreams("orders"),
        ["commands", "reservations", "payments"]
    );
    assert_eq!(
        same.followers("orders"),
        ["commands", "reservations", "payments"]
    );
    // One expression or three: the same system.
    let one = System::new()
        .pipeline("commands | orders | reservations | orders | payments | orders | commands");
    for name in same.names() {
        assert_eq!(one.upstreams(name), same.upstreams(name), "{name}");
    }
    let runner = Runner::builder(&same, db).single_threaded().await.unwrap();
    assert!(runner.app("nobody").is_err());
    assert!(runner
        .app("orders")
        .unwrap()
        .pull_from("nobody")
        .await
        .is_err());
    runner.stop().await.unwrap();
}

#[tokio::test]
async fn re_running_a_policy_that_refuses_repeats_skips_the_tracked_notifications() {
    for (backend, db) in support::databases().await {
        let ns = format!("{}_", support::unique("rerun"));
        let runner = Runner::builder(&orders::orders_system(), db.clone())
            .namespace(&ns)
            .single_threaded()
            .await
            .unwrap();
        let orders_app = runner.app("orders").unwrap();
        for _ in 0..2 {
            orders_app
                .save(&mut Order::create(None).unwrap())
                .await
                .unwrap();
        }
        let before = max_id(&orders_app).await;
        assert_eq!(before, 6, "{backend}");
        // Setting an order reserved twice is refused by the order itself; as the
        // notifications are tracked, that is not a failure but a skip.
        for upstream in ["reservations", "payments"] {
            orders_app
                .rewind(&format!("{ns}{upstream}"), 0)
                .await
                .unwrap();
        }
        let p = orders_app.pull().await.unwrap();
        assert_eq!(p.processed, 0, "{backend}");
        assert!(p.skipped >= 2, "{backend}");
        assert_eq!(max_id(&orders_app).await, before, "{backend}");
        runner.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrent_runner_polls_for_writes_made_elsewhere() {
    for (backend, db) in support::databases().await {
        let ns = format!("{}_", support::unique("poll"));
        let runner = Runner::builder(&orders::orders_system(), db.clone())
            .namespace(&ns)
            .poll_interval(Duration::from_millis(10))
            .concurrent()
            .await
            .unwrap();
        // Saved by a plain application of the same name: nobody is prompted.
        let elsewhere = app(&db, &format!("{ns}orders")).await;
        let ids = save_orders(&elsewhere, 3).await;
        let deadline = std::time::Instant::now() + IDLE;
        for id in ids {
            loop {
                let order: Order = elsewhere.get(id).await.unwrap();
                if order.is_paid() {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "{backend}: not paid");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        runner.wait_idle(IDLE).await.unwrap();
        runner.stop().await.unwrap();
    }
}

/// A number that makes the next one, up to five: an application following itself.
#[aggregate]
pub struct Number {
    n: u32,
}

#[aggregate]
impl Number {
    #[event(Created)]
    pub fn create(n: u32) -> Self {
        Number { n }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_can_follow_itself() {
    let system = System::new()
        .pipeline("numbers | numbers")
        .process("numbers", || {
            Policy::new().on(|ctx, e: Event<number::Created>| async move {
                if e.n < 5 {
                    ctx.save(Number::create(e.n + 1)?);
                }
                Ok(())
            })
        });
    for (backend, db) in support::databases().await {
        for concurrent in [false, true] {
            let b = Runner::builder(&system, db.clone())
                .namespace(format!("{}_", support::unique("self")))
                .poll_interval(Duration::from_millis(10));
            let runner = if concurrent {
                b.concurrent().await.unwrap()
            } else {
                b.single_threaded().await.unwrap()
            };
            let numbers = runner.app("numbers").unwrap();
            numbers.save(&mut Number::create(0).unwrap()).await.unwrap();
            runner.wait_idle(IDLE).await.unwrap();
            assert_eq!(max_id(&numbers).await, 6, "{backend}");
            let tracked = numbers.records().max_tracking_id(numbers.name()).await;
            assert_eq!(tracked.unwrap(), 6, "{backend}");
            runner.stop().await.unwrap();
        }
    }
}

/// Notifications the policy has no handler for cost no transaction of their own: their
/// tracking records go with the next write (in its transaction), or, when a pull ends with
/// them, all in one. Every notification is still tracked, and a restart resumes after them.
#[tokio::test]
async fn ignored_notifications_are_tracked_with_the_next_write() {
    for (backend, db) in support::databases().await {
        let orders = app(&db, &support::unique("orders")).await;
        let reservations = app(&db, &support::unique("reservations")).await;
        // 1 Created (handled), 2 Reserved and 3 Paid (ignored), 4 Created, 5 and 6 ignored.
        for _ in 0..2 {
            let mut o = Order::create(None).unwrap();
            orders.save(&mut o).await.unwrap();
            o.set_is_reserved(Uuid::new_v4()).unwrap();
            o.set_is_paid(Uuid::new_v4()).unwrap();
            orders.save(&mut o).await.unwrap();
        }
        assert_eq!(max_id(&orders).await, 6);
        let pa = ProcessApplication::new(reservations.clone(), orders::reservations_policy())
            .following(&orders)
            .unwrap();
        let p = pa.pull().await.unwrap();
        assert_eq!((p.processed, p.skipped, p.events), (6, 0, 2), "{backend}");
        for id in 1..=6 {
            assert!(
                reservations
                    .records()
                    .has_tracking_record(orders.name(), id)
                    .await
                    .unwrap(),
                "{backend}: notification {id} tracked"
            );
        }
        // A new instance (a restart) resumes after the last one, ignored as it was.
        let again = ProcessApplication::new(reservations.clone(), orders::reservations_policy())
            .following(&orders)
            .unwrap();
        assert_eq!(
            again.positions().await.unwrap(),
            [(orders.name().to_string(), 6)],
            "{backend}"
        );
        assert_eq!(again.pull().await.unwrap(), Default::default(), "{backend}");
        assert_eq!(max_id(&reservations).await, 2, "{backend}");

        // On PostgreSQL the rows say which transaction wrote them: 2 and 3 went with 4, the
        // two at the end of the pull went together.
        #[cfg(feature = "postgres")]
        if backend == "postgres" {
            let url = support::server_url("ES_POSTGRES_URL", "postgres").unwrap();
            let admin = sqlx::PgPool::connect(&url).await.unwrap();
            let xids: Vec<String> = sqlx::query_scalar(
                "SELECT xmin::text FROM es_notification_tracking \
                 WHERE application_name = $1 AND upstream_application_name = $2 \
                 ORDER BY notification_id",
            )
            .bind(reservations.name())
            .bind(orders.name())
            .fetch_all(&admin)
            .await
            .unwrap();
            assert_eq!(xids.len(), 6);
            assert_ne!(xids[0], xids[1]);
            assert_eq!(
                (&xids[1], &xids[2]),
                (&xids[3], &xids[3]),
                "with the next write"
            );
            assert_eq!(xids[4], xids[5], "together at the end of the pull");
            assert_ne!(xids[3], xids[4]);
        }
    }
}
