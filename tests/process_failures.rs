//! Issue 11, failures: transient errors are retried with backoff; a policy's own error stops
//! its follower (reported) or parks the notification in the dead letters, which can be listed,
//! retried and discarded; health says what each follower is doing. Every backend.

mod support;

use es_examples::orders::{Order, Reservation};
use es_runtime::prelude::*;
use es_runtime::process::{Backoff, OnPolicyError, Policy, Runner, State, System};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const IDLE: Duration = Duration::from_secs(30);

fn fast_backoff(attempts: u32) -> Backoff {
    Backoff::new(
        Duration::from_millis(5),
        Duration::from_millis(20),
        attempts,
    )
}

/// Reservations whose policy fails with a lost connection the first `flaky` times.
fn flaky_system(flaky: Arc<AtomicUsize>) -> System {
    System::new()
        .pipeline("orders | reservations")
        .process("orders", Policy::new)
        .process("reservations", move || {
            let flaky = flaky.clone();
            Policy::new().on(move |ctx, e: Event<es_examples::orders::order::Created>| {
                let flaky = flaky.clone();
                async move {
                    if flaky
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return Err(Error::Operational("connection reset by peer".into()));
                    }
                    ctx.save(Reservation::create(e.originator_id())?);
                    Ok(())
                }
            })
        })
}

/// Reservations whose policy refuses the orders in `refused`.
fn refusing_system(refused: Arc<Mutex<HashSet<Uuid>>>) -> System {
    System::new()
        .pipeline("orders | reservations")
        .process("orders", Policy::new)
        .process("reservations", move || {
            let refused = refused.clone();
            Policy::new().on(move |ctx, e: Event<es_examples::orders::order::Created>| {
                let refused = refused.clone();
                async move {
                    if refused.lock().unwrap().contains(&e.originator_id()) {
                        return Err(Error::NotFound(format!(
                            "no stock for {}",
                            e.originator_id()
                        )));
                    }
                    ctx.save(Reservation::create(e.originator_id())?);
                    Ok(())
                }
            })
        })
}

async fn state_of(runner: &Runner, name: &str) -> State {
    let h = runner.health().await.unwrap();
    h.into_iter()
        .find(|h| h.application == name)
        .map(|h| h.state)
        .unwrap()
}

#[tokio::test]
async fn transient_failures_are_retried_and_health_says_so() {
    for (backend, db) in support::databases().await {
        let flaky = Arc::new(AtomicUsize::new(3));
        let runner = Runner::builder(&flaky_system(flaky.clone()), db.clone())
            .namespace(support::unique("tr"))
            .backoff(fast_backoff(5))
            .concurrent()
            .await
            .unwrap();
        let orders = runner.app("orders").unwrap();
        for _ in 0..4 {
            orders
                .save(&mut Order::create(None).unwrap())
                .await
                .unwrap();
        }
        runner.wait_idle(IDLE).await.unwrap();
        assert_eq!(flaky.load(Ordering::SeqCst), 0, "{backend}: three failures");
        let reservations = runner.app("reservations").unwrap();
        assert_eq!(
            reservations.records().max_notification_id().await.unwrap(),
            4,
            "{backend}: every order reserved once, after the retries"
        );
        let health = runner.health().await.unwrap();
        let r = health
            .iter()
            .find(|h| h.application == "reservations")
            .unwrap();
        assert_eq!(r.state, State::Running, "{backend}");
        assert_eq!(r.positions, [("orders".to_string(), 4)], "{backend}");
        assert_eq!(r.lag, 0, "{backend}");
        runner.stop().await.unwrap();
    }
}

#[tokio::test]
async fn too_many_transient_failures_stop_the_follower_with_its_error() {
    for (backend, db) in support::databases().await {
        let flaky = Arc::new(AtomicUsize::new(usize::MAX));
        let runner = Runner::builder(&flaky_system(flaky), db.clone())
            .namespace(support::unique("tx"))
            .backoff(fast_backoff(2))
            .concurrent()
            .await
            .unwrap();
        runner
            .app("orders")
            .unwrap()
            .save(&mut Order::create(None).unwrap())
            .await
            .unwrap();
        let e = runner.wait_idle(IDLE).await.unwrap_err();
        assert!(e.to_string().contains("connection reset"), "{backend}: {e}");
        match state_of(&runner, "reservations").await {
            State::Stopped { error } => assert!(error.contains("connection reset"), "{backend}"),
            other => panic!("{backend}: {other:?}"),
        }
        let h = runner.health().await.unwrap();
        let r = h.iter().find(|h| h.application == "reservations").unwrap();
        assert_eq!(r.lag, 1, "{backend}: the notification waits");
        let _ = runner.stop().await;
    }
}

#[tokio::test]
async fn a_policy_error_stops_by_default_and_parks_when_configured() {
    for (backend, db) in support::databases().await {
        let refused = Arc::new(Mutex::new(HashSet::new()));
        let ns = support::unique("pk");

        // Default: the follower stops at the refused order, and says why.
        let runner = Runner::builder(&refusing_system(refused.clone()), db.clone())
            .namespace(ns.clone())
            .concurrent()
            .await
            .unwrap();
        let orders = runner.app("orders").unwrap();
        let mut ids = Vec::new();
        for i in 0..5 {
            let mut o = Order::create(None).unwrap();
            if i == 1 || i == 3 {
                refused.lock().unwrap().insert(o.id());
            }
            ids.push(o.id());
            orders.save(&mut o).await.unwrap();
        }
        let e = runner.wait_idle(IDLE).await.unwrap_err();
        assert!(e.to_string().contains("no stock"), "{backend}: {e}");
        assert!(
            matches!(
                state_of(&runner, "reservations").await,
                State::Stopped { .. }
            ),
            "{backend}"
        );
        let reservations = runner.app("reservations").unwrap();
        assert_eq!(
            reservations.records().max_notification_id().await.unwrap(),
            1
        );
        let _ = runner.stop().await;

        // Parking: a new runner resumes, parks the refused orders and goes on.
        let runner = Runner::builder(&refusing_system(refused.clone()), db.clone())
            .namespace(ns.clone())
            .on_policy_error("reservations", OnPolicyError::Park)
            .concurrent()
            .await
            .unwrap();
        runner.wait_idle(IDLE).await.unwrap();
        let reservations = runner.app("reservations").unwrap();
        assert_eq!(reservations.on_policy_error(), OnPolicyError::Park);
        assert_eq!(
            reservations.records().max_notification_id().await.unwrap(),
            3,
            "{backend}: the other orders are reserved"
        );
        let parked = reservations.parked().await.unwrap();
        let orders_name = orders.name().to_string();
        assert_eq!(
            parked
                .iter()
                .map(|p| (p.upstream.clone(), p.notification_id))
                .collect::<Vec<_>>(),
            [(orders_name.clone(), 2), (orders_name.clone(), 4)],
            "{backend}"
        );
        assert!(parked[0].error.contains("no stock"), "{backend}");
        assert_eq!(state_of(&runner, "reservations").await, State::Running);
        let _ = runner.stop().await;

        // A restart does not process parked notifications by itself.
        let runner = Runner::builder(&refusing_system(refused.clone()), db.clone())
            .namespace(ns.clone())
            .on_policy_error("reservations", OnPolicyError::Park)
            .concurrent()
            .await
            .unwrap();
        runner.wait_idle(IDLE).await.unwrap();
        let reservations = runner.app("reservations").unwrap();
        assert_eq!(
            reservations.records().max_notification_id().await.unwrap(),
            3
        );
        assert_eq!(reservations.parked().await.unwrap().len(), 2);

        // Retrying while the cause is still there keeps it parked, with the new error.
        let e = reservations
            .retry_parked(&orders_name, 2)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no stock"), "{backend}: {e}");
        assert_eq!(reservations.parked().await.unwrap().len(), 2);

        // Fixed: retrying processes it exactly once.
        refused.lock().unwrap().clear();
        let p = reservations.retry_parked(&orders_name, 2).await.unwrap();
        assert_eq!((p.processed, p.events), (1, 1), "{backend}");
        assert!(reservations
            .records()
            .has_tracking_record(&orders_name, 2)
            .await
            .unwrap());
        // Discarding the other: tracked, nothing written.
        reservations.discard_parked(&orders_name, 4).await.unwrap();
        assert!(reservations
            .records()
            .has_tracking_record(&orders_name, 4)
            .await
            .unwrap());
        assert_eq!(
            reservations.records().max_notification_id().await.unwrap(),
            4
        );
        assert!(reservations.parked().await.unwrap().is_empty(), "{backend}");
        // Neither is parked any more.
        assert!(matches!(
            reservations.retry_parked(&orders_name, 4).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            reservations.discard_parked(&orders_name, 2).await,
            Err(Error::NotFound(_))
        ));
        let h = runner.health().await.unwrap();
        let r = h.iter().find(|h| h.application == "reservations").unwrap();
        assert_eq!((r.lag, r.positions[0].1), (0, 5), "{backend}");
        runner.stop().await.unwrap();

        // Without parking configured, the calls say so.
        let runner = Runner::builder(&refusing_system(refused.clone()), db.clone())
            .namespace(ns)
            .single_threaded()
            .await
            .unwrap();
        assert!(matches!(
            runner.app("reservations").unwrap().parked().await,
            Err(Error::Configuration(_))
        ));
        runner.stop().await.unwrap();
    }
}

#[tokio::test]
async fn unknown_process_names_are_refused() {
    let db: Arc<dyn es_runtime::application::Database> =
        Arc::new(es_runtime::record::memory::InMemoryDatabase::new());
    let system = refusing_system(Arc::default());
    let e = Runner::builder(&system, db.clone())
        .only(["nope"])
        .concurrent()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Configuration(_)), "{e}");
    let e = Runner::builder(&system, db)
        .on_policy_error("nope", OnPolicyError::Park)
        .concurrent()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Configuration(_)), "{e}");
}
