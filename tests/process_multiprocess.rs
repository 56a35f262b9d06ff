//! Issue 11, one OS process per (application, pipeline): two supervisors (two "hosts") run
//! every part of the orders system, so each part has a holder and a standby. The holders are
//! killed with SIGKILL; the standbys take over within a bounded time and every order is
//! reserved and paid exactly once. Then both supervisors stop their children with SIGTERM,
//! which exit 0. Also: causal order across pipelines with each part in its own process.
//! PostgreSQL (advisory locks, NOTIFY); skipped without `ES_POSTGRES_URL`.
//!
//! The children are this test binary again, running the `child` test below with the part in
//! their environment.

mod support;

use es_examples::orders::{self, Order};
use es_runtime::prelude::*;
use es_runtime::process::supervisor::{Part, Supervisor};
use es_runtime::process::{lease, prompt, Policy, Runner, System};
use std::time::{Duration, Instant};

const NS: &str = "ES_TEST_NAMESPACE";
const SYSTEM: &str = "ES_TEST_SYSTEM";

/// The audit of pipeline 1 is slow: `tickets | items | audit`, with audit entries that say
/// when they were made, so the parent can check the order across processes.
#[aggregate]
pub struct Ticket {
    item: Option<Uuid>,
}

#[aggregate]
impl Ticket {
    #[event(Created)]
    pub fn create(item: Option<Uuid>) -> Self {
        Ticket { item }
    }
}

#[aggregate]
pub struct Item {
    touches: u32,
}

#[aggregate]
impl Item {
    #[event(Created)]
    pub fn create() -> Self {
        Item { touches: 0 }
    }
    #[event(Touched)]
    pub fn touch(&mut self) {
        self.touches += 1;
    }
}

#[aggregate]
pub struct Entry {
    what: String,
    micros: i64,
}

#[aggregate]
impl Entry {
    #[event(Created)]
    pub fn create(what: String, micros: i64) -> Self {
        Entry { what, micros }
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn causal_system() -> System {
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
        .process("audit", || {
            Policy::new()
                .on(|ctx, _e: Event<item::Created>| async move {
                    if ctx.app().records().pipeline_id() == 1 {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                    }
                    ctx.save(Entry::create("created".into(), now_micros())?);
                    Ok(())
                })
                .on(|ctx, _e: Event<item::Touched>| async move {
                    ctx.save(Entry::create("touched".into(), now_micros())?);
                    Ok(())
                })
        })
}

fn system_named(name: &str) -> System {
    match name {
        "causal" => causal_system(),
        _ => orders::orders_system(),
    }
}

/// A child process: runs its part until SIGTERM. A no-op in the test run itself.
#[test]
fn child() {
    let Some(part) = Part::from_env().unwrap() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = std::env::var("ES_POSTGRES_URL").unwrap();
        let system = system_named(&std::env::var(SYSTEM).unwrap_or_default());
        let db = es_runtime::application::connect(&url).await.unwrap();
        let runner = Runner::builder(&system, db)
            .namespace(std::env::var(NS).unwrap())
            .part(&part)
            .leases(lease::for_url(&url).await.unwrap())
            .lease_interval(Duration::from_millis(100))
            .prompts(prompt::for_url(&url).await.unwrap().unwrap())
            .poll_interval(Duration::from_millis(50))
            .concurrent()
            .await
            .unwrap();
        runner.run_until_signal().await.unwrap();
    });
    std::process::exit(0);
}

fn supervisor(system: &System, name: &str, ns: &str, pipelines: Vec<i64>) -> Supervisor {
    let exe = std::env::current_exe().unwrap();
    Supervisor::new(system)
        .pipelines(pipelines)
        .program(
            exe,
            vec![
                "--exact".into(),
                "child".into(),
                "--quiet".into(),
                "--nocapture".into(),
                "--test-threads=1".into(),
            ],
        )
        .env(NS, ns)
        .env(SYSTEM, name)
        .grace(Duration::from_secs(20))
}

/// The pids of the processes holding the leases of namespace `ns`.
async fn holders(admin: &sqlx::PgPool, ns: &str) -> Vec<i32> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT a.application_name FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE $1",
    )
    .bind(format!("es lease %:% {ns}%"))
    .fetch_all(admin)
    .await
    .unwrap();
    // "es lease host:pid key"
    let mut pids: Vec<i32> = rows
        .iter()
        .filter_map(|n| {
            n.split_whitespace()
                .nth(2)?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    pids.sort();
    pids
}

async fn wait_for(what: &str, limit: Duration, mut ok: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ok().await {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standbys_on_another_host_take_over_after_sigkill() {
    let Some(url) = support::server_url("ES_POSTGRES_URL", "postgres") else {
        return;
    };
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let ns = format!("{}_", support::unique("mp"));
    let system = orders::orders_system();
    let (stop_a, a) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, b) = tokio::sync::oneshot::channel::<()>();
    let host_a = tokio::spawn(
        supervisor(&system, "orders", &ns, vec![0]).run_until(async {
            let _ = a.await;
        }),
    );
    let host_b = tokio::spawn(
        supervisor(&system, "orders", &ns, vec![0]).run_until(async {
            let _ = b.await;
        }),
    );
    let db = es_runtime::application::connect(&url).await.unwrap();
    let client = Runner::builder(&system, db)
        .namespace(&ns)
        .only(Vec::<String>::new())
        .prompts(prompt::for_url(&url).await.unwrap().unwrap())
        .concurrent()
        .await
        .unwrap();
    wait_for("three leases held", Duration::from_secs(60), async || {
        holders(&admin, &ns).await.len() == 3
    })
    .await;

    let orders_app = client.app("orders").unwrap();
    let mut ids = Vec::new();
    for _ in 0..10 {
        let mut o = Order::create(None).unwrap();
        orders_app.save(&mut o).await.unwrap();
        ids.push(o.id());
    }
    client.wait_idle(Duration::from_secs(60)).await.unwrap();

    // SIGKILL every holder, and keep saving orders meanwhile.
    let killed = holders(&admin, &ns).await;
    for pid in &killed {
        let ok = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    for _ in 0..10 {
        let mut o = Order::create(None).unwrap();
        orders_app.save(&mut o).await.unwrap();
        ids.push(o.id());
    }
    let took = wait_for(
        "standbys hold every lease",
        Duration::from_secs(10),
        async || {
            let now = holders(&admin, &ns).await;
            now.len() == 3 && now.iter().all(|p| !killed.contains(p))
        },
    )
    .await;
    println!("standbys took over {took:?} after SIGKILL");
    client.wait_idle(Duration::from_secs(60)).await.unwrap();

    for id in &ids {
        let o: Order = orders_app.get(*id).await.unwrap();
        assert!(o.is_reserved() && o.is_paid(), "order {id}");
    }
    let reservations = client.app("reservations").unwrap();
    let payments = client.app("payments").unwrap();
    assert_eq!(
        reservations.records().max_notification_id().await.unwrap(),
        20
    );
    assert_eq!(payments.records().max_notification_id().await.unwrap(), 20);
    // Orders: 20 created, 20 reserved, 20 paid; nothing twice.
    assert_eq!(
        orders_app.records().max_notification_id().await.unwrap(),
        60
    );

    client.stop().await.unwrap();
    let _ = stop_a.send(());
    let _ = stop_b.send(());
    host_a
        .await
        .unwrap()
        .expect("host a's children exit 0 on SIGTERM");
    host_b
        .await
        .unwrap()
        .expect("host b's children exit 0 on SIGTERM");
    assert!(
        holders(&admin, &ns).await.is_empty(),
        "every lease released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn causal_order_holds_across_processes() {
    let Some(url) = support::server_url("ES_POSTGRES_URL", "postgres") else {
        return;
    };
    let ns = format!("{}_", support::unique("mc"));
    let system = causal_system();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let host = tokio::spawn(
        supervisor(&system, "causal", &ns, vec![0, 1]).run_until(async {
            let _ = stopped.await;
        }),
    );
    let db = es_runtime::application::connect(&url).await.unwrap();
    let client = Runner::builder(&system, db)
        .namespace(&ns)
        .pipelines([0, 1])
        .only(Vec::<String>::new())
        .prompts(prompt::for_url(&url).await.unwrap().unwrap())
        .concurrent()
        .await
        .unwrap();
    client
        .app_in("tickets", 1)
        .unwrap()
        .save(&mut Ticket::create(None).unwrap())
        .await
        .unwrap();
    let items1 = client.app_in("items", 1).unwrap();
    wait_for("the item is made", Duration::from_secs(60), async || {
        items1.records().max_notification_id().await.unwrap() == 1
    })
    .await;
    let item = items1
        .records()
        .get_notifications(1, 1, None)
        .await
        .unwrap()[0]
        .item
        .sequence_id;
    client
        .app_in("tickets", 0)
        .unwrap()
        .save(&mut Ticket::create(Some(item)).unwrap())
        .await
        .unwrap();
    client.wait_idle(Duration::from_secs(60)).await.unwrap();

    let entry = async |p: i64| -> Entry {
        let audit = client.app_in("audit", p).unwrap();
        let n = audit.records().get_notifications(1, 1, None).await.unwrap();
        audit.get(n[0].item.sequence_id).await.unwrap()
    };
    let (created, touched) = (entry(1).await, entry(0).await);
    assert_eq!(
        (created.what.as_str(), touched.what.as_str()),
        ("created", "touched")
    );
    assert!(
        created.micros < touched.micros,
        "the touch (pipeline 0) was processed after the creation (pipeline 1, slow)"
    );
    client.stop().await.unwrap();
    let _ = stop.send(());
    host.await.unwrap().expect("children exit 0 on SIGTERM");
}
