//! Issue 11, causal dependencies (manual §12.3.5): an aggregate changed in pipeline 1 and
//! then in pipeline 0 is processed downstream in causal order, although pipeline 1 is slower,
//! under the concurrent runner; every backend. Without causal dependencies the order breaks,
//! so the test can fail.

mod support;

use es_runtime::application::Database;
use es_runtime::prelude::*;
use es_runtime::process::{Policy, Runner, State, System};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/tickets.rs"]
mod tickets;
use tickets::{item, ticket, Item, Ticket};

type Seen = Arc<Mutex<Vec<(&'static str, i64)>>>;

/// `tickets | items | audit`: the audit of pipeline 1 is slow to see new items.
fn system(seen: Seen) -> System {
    System::new()
        .pipeline("tickets | items | audit")
        .process("tickets", Policy::new)
        .process("items", || {
            Policy::new().on(|ctx, e: Event<ticket::Created>| async move {
                match e.item {
                    None => ctx.save(Item::create()?),
                    Some(id) => {
                        let mut item: Item = ctx.get(id).await?;
                        item.touch()?;
                        ctx.save(item);
                    }
                }
                Ok(())
            })
        })
        .process("audit", move || {
            let (created, touched) = (seen.clone(), seen.clone());
            Policy::new()
                .on(move |ctx, _e: Event<item::Created>| {
                    let seen = created.clone();
                    async move {
                        let p = ctx.app().records().pipeline_id();
                        if p == 1 {
                            tokio::time::sleep(Duration::from_millis(700)).await;
                        }
                        seen.lock().unwrap().push(("created", p));
                        Ok(())
                    }
                })
                .on(move |ctx, _e: Event<item::Touched>| {
                    let seen = touched.clone();
                    async move {
                        let p = ctx.app().records().pipeline_id();
                        seen.lock().unwrap().push(("touched", p));
                        Ok(())
                    }
                })
        })
}

struct Outcome {
    seen: Vec<(&'static str, i64)>,
    dependencies: Option<String>,
    waited: bool,
}

async fn run(db: &Arc<dyn Database>, causal: bool) -> Outcome {
    let seen: Seen = Arc::default();
    let runner = Runner::builder(&system(seen.clone()), db.clone())
        .namespace(support::unique("cd"))
        .pipelines([0, 1])
        .causal_dependencies(causal)
        .poll_interval(Duration::from_millis(10))
        .concurrent()
        .await
        .unwrap();
    // Pipeline 1 makes the item.
    runner
        .app_in("tickets", 1)
        .unwrap()
        .save(&mut Ticket::create(None).unwrap())
        .await
        .unwrap();
    let items1 = runner.app_in("items", 1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while items1.records().max_notification_id().await.unwrap() < 1 {
        assert!(Instant::now() < deadline, "the item is never made");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let item_id = items1
        .records()
        .get_notifications(1, 1, None)
        .await
        .unwrap()[0]
        .item
        .sequence_id;
    // Pipeline 0 changes it, while the audit of pipeline 1 has not seen it made yet.
    runner
        .app_in("tickets", 0)
        .unwrap()
        .save(&mut Ticket::create(Some(item_id)).unwrap())
        .await
        .unwrap();
    let mut waited = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 2 && Instant::now() < deadline {
        for h in runner.health().await.unwrap() {
            waited |= h.application == "audit"
                && h.pipeline_id == 0
                && matches!(
                    h.state,
                    State::WaitingForDependencies {
                        notification_id: 1,
                        ..
                    }
                );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    runner.wait_idle(Duration::from_secs(20)).await.unwrap();
    let items0 = runner.app_in("items", 0).unwrap();
    let dependencies = items0
        .records()
        .get_notifications(1, 1, None)
        .await
        .unwrap()[0]
        .causal_dependencies
        .clone();
    runner.stop().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    Outcome {
        seen,
        dependencies,
        waited,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_in_another_pipeline_waits_for_its_cause() {
    for (backend, db) in support::databases().await {
        let with = run(&db, true).await;
        assert_eq!(
            with.dependencies.as_deref(),
            Some(r#"[{"pipeline_id":1,"notification_id":1}]"#),
            "{backend}: the touch depends on the item's creation in pipeline 1"
        );
        assert_eq!(
            with.seen,
            [("created", 1), ("touched", 0)],
            "{backend}: processed downstream in causal order"
        );
        assert!(with.waited, "{backend}: health said the audit waited");

        let without = run(&db, false).await;
        assert_eq!(without.dependencies, None, "{backend}");
        assert_eq!(
            without.seen,
            [("touched", 0), ("created", 1)],
            "{backend}: without causal dependencies, the slow pipeline comes last"
        );
    }
}
