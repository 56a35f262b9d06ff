//! Issue 11, one OS process per (application, pipeline): two supervisors (two "hosts") run
//! every part of the orders system, so each part has a holder and a standby. The holders are
//! killed with SIGKILL; the standbys take over within a bounded time and every order is
//! reserved and paid exactly once. Then both supervisors stop their children with SIGTERM,
//! which exit 0. Also: causal order across pipelines with each part in its own process.
//!
//! Each case runs on PostgreSQL (advisory locks, NOTIFY prompts and polling) and on MySQL
//! (`GET_LOCK`, polling only); each skips with one line when its server does not answer
//! (`ES_POSTGRES_URL`, `ES_MYSQL_URL`), and fails instead under `ES_REQUIRE_SERVERS=1`.
//!
//! The children are this test binary again, running the `child` test below with the part and
//! the database in their environment.

mod support;

use es_examples::orders::{self, Order};
use es_runtime::prelude::*;
use es_runtime::process::supervisor::{Part, Supervisor};
use es_runtime::process::{lease, prompt, Policy, Runner, System};
use std::time::{Duration, Instant};

const NS: &str = "ES_TEST_NAMESPACE";
const SYSTEM: &str = "ES_TEST_SYSTEM";
const DB_URL: &str = "ES_TEST_DB_URL";

#[path = "support/tickets.rs"]
mod tickets;
use tickets::{item, ticket, Item, Ticket};

/// The audit of pipeline 1 is slow: `tickets | items | audit`, with audit entries that say
/// when they were made, so the parent can check the order across processes.
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
        let url = std::env::var(DB_URL).unwrap();
        let system = system_named(&std::env::var(SYSTEM).unwrap_or_default());
        let db = es_runtime::application::connect(&url).await.unwrap();
        let mut b = Runner::builder(&system, db)
            .namespace(std::env::var(NS).unwrap())
            .part(&part)
            .leases(lease::for_url(&url).await.unwrap())
            .lease_interval(Duration::from_millis(100))
            .poll_interval(Duration::from_millis(50));
        if let Some(p) = prompt::for_url(&url).await.unwrap() {
            b = b.prompts(p);
        }
        let runner = b.concurrent().await.unwrap();
        runner.run_until_signal().await.unwrap();
    });
    std::process::exit(0);
}

fn supervisor(url: &str, system: &System, name: &str, ns: &str, pipelines: Vec<i64>) -> Supervisor {
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
        .env(DB_URL, url)
        .grace(Duration::from_secs(20))
}

/// A connection to the server that keeps the leases, to ask who holds them.
enum Admin {
    Postgres(sqlx::PgPool),
    /// The pool, and the server's port.
    MySql(sqlx::MySqlPool, u16),
}

impl Admin {
    async fn connect(url: &str) -> Admin {
        if url.starts_with("mysql") {
            // mysql://user@host:port/db
            let port = url
                .rsplit('@')
                .next()
                .and_then(|h| h.split('/').next())
                .and_then(|h| h.rsplit_once(':'))
                .and_then(|(_, p)| p.parse().ok())
                .unwrap_or(3306);
            Admin::MySql(sqlx::MySqlPool::connect(url).await.unwrap(), port)
        } else {
            Admin::Postgres(sqlx::PgPool::connect(url).await.unwrap())
        }
    }

    /// The pids of the processes holding the leases `keys` (`<application>#<pipeline>`) of
    /// namespace `ns`, sorted.
    async fn holders(&self, ns: &str, keys: &[String]) -> Vec<i32> {
        let mut pids = match self {
            Admin::Postgres(pool) => {
                let rows: Vec<String> = sqlx::query_scalar(
                    "SELECT a.application_name FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid \
                     WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE $1",
                )
                .bind(format!("es lease %:% {ns}%"))
                .fetch_all(pool)
                .await
                .unwrap();
                // "es lease host:pid key"
                rows.iter()
                    .filter_map(|n| {
                        n.split_whitespace()
                            .nth(2)?
                            .rsplit(':')
                            .next()?
                            .parse()
                            .ok()
                    })
                    .collect::<Vec<i32>>()
            }
            Admin::MySql(pool, server) => {
                // The holder's connection, by its client address in the process list; the
                // client's port names the socket, and the socket its process (all local).
                let mut pids = Vec::new();
                for key in keys {
                    let name = lease::mysql_lock_name(key);
                    let host: Option<String> = sqlx::query_scalar(
                        "SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK(?)",
                    )
                    .bind(name)
                    .fetch_optional(pool)
                    .await
                    .unwrap();
                    let port = host.and_then(|h| h.rsplit(':').next()?.parse::<u16>().ok());
                    if let Some(pid) = port.and_then(|p| pid_of_connection(p, *server)) {
                        pids.push(pid);
                    }
                }
                pids
            }
        };
        pids.sort();
        pids
    }
}

/// The process with a TCP connection from local port `port` to remote port `server` (Linux:
/// `/proc/net/tcp*` give the socket's inode, `/proc/<pid>/fd` the process that has it open).
fn pid_of_connection(port: u16, server: u16) -> Option<i32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port_of = |i: usize| {
                f.get(i)
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            if port_of(1) == Some(port) && port_of(2) == Some(server) {
                if let Some(inode) = f.get(9) {
                    inodes.push(format!("socket:[{inode}]"));
                }
            }
        }
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// The runner's client side: no application of its own, prompted where the database can.
async fn client(url: &str, system: &System, ns: &str, pipelines: &[i64]) -> Runner {
    let db = es_runtime::application::connect(url).await.unwrap();
    let mut b = Runner::builder(system, db)
        .namespace(ns)
        .pipelines(pipelines.to_vec())
        .only(Vec::<String>::new())
        .poll_interval(Duration::from_millis(50));
    if let Some(p) = prompt::for_url(url).await.unwrap() {
        b = b.prompts(p);
    }
    b.concurrent().await.unwrap()
}

async fn wait_for(what: &str, limit: Duration, mut ok: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ok().await {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Two "hosts" (supervisors) each run every part of the orders system; the holders are
/// killed with SIGKILL while orders keep coming; the standbys take over, every order is
/// reserved and paid exactly once, and SIGTERM stops every child with exit 0.
async fn standbys_take_over_after_sigkill(url: &str) {
    let admin = Admin::connect(url).await;
    let ns = format!("{}_", support::unique("mp"));
    let keys: Vec<String> = ["orders", "reservations", "payments"]
        .iter()
        .map(|a| format!("{ns}{a}#0"))
        .collect();
    let system = orders::orders_system();
    let (stop_a, a) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, b) = tokio::sync::oneshot::channel::<()>();
    let host_a = tokio::spawn(
        supervisor(url, &system, "orders", &ns, vec![0]).run_until(async {
            let _ = a.await;
        }),
    );
    let host_b = tokio::spawn(
        supervisor(url, &system, "orders", &ns, vec![0]).run_until(async {
            let _ = b.await;
        }),
    );
    let client = client(url, &system, &ns, &[0]).await;
    wait_for("three leases held", Duration::from_secs(120), async || {
        admin.holders(&ns, &keys).await.len() == 3
    })
    .await;

    let orders_app = client.app("orders").unwrap();
    let mut ids = Vec::new();
    for _ in 0..10 {
        let mut o = Order::create(None).unwrap();
        orders_app.save(&mut o).await.unwrap();
        ids.push(o.id());
    }
    client.wait_idle(Duration::from_secs(120)).await.unwrap();

    // SIGKILL every holder, and keep saving orders meanwhile.
    let killed = admin.holders(&ns, &keys).await;
    assert_eq!(killed.len(), 3, "one holder per part: {killed:?}");
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
    // The bound is generous for a loaded machine; the time taken is printed.
    let took = wait_for(
        "standbys hold every lease",
        Duration::from_secs(30),
        async || {
            let now = admin.holders(&ns, &keys).await;
            now.len() == 3 && now.iter().all(|p| !killed.contains(p))
        },
    )
    .await;
    println!("standbys took over {took:?} after SIGKILL");
    client.wait_idle(Duration::from_secs(120)).await.unwrap();

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
        admin.holders(&ns, &keys).await.is_empty(),
        "every lease released"
    );
}

/// An item made in pipeline 1 (whose audit is slow) and then touched in pipeline 0 is
/// audited in that order, each part in its own process.
async fn causal_order_holds_across_processes(url: &str) {
    let ns = format!("{}_", support::unique("mc"));
    let system = causal_system();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let host = tokio::spawn(
        supervisor(url, &system, "causal", &ns, vec![0, 1]).run_until(async {
            let _ = stopped.await;
        }),
    );
    let client = client(url, &system, &ns, &[0, 1]).await;
    client
        .app_in("tickets", 1)
        .unwrap()
        .save(&mut Ticket::create(None).unwrap())
        .await
        .unwrap();
    let items1 = client.app_in("items", 1).unwrap();
    wait_for("the item is made", Duration::from_secs(120), async || {
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
    client.wait_idle(Duration::from_secs(120)).await.unwrap();

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

/// The server's URL when this build has its backend and the server answers; one line says
/// why not otherwise (a failure under `ES_REQUIRE_SERVERS=1` when the server does not answer).
fn url_of(var: &str, backend: &str) -> Option<String> {
    let built = match backend {
        "postgres" => cfg!(feature = "postgres"),
        _ => cfg!(feature = "mysql"),
    };
    if !built {
        eprintln!("skipped {backend}: built without the {backend} feature");
        return None;
    }
    support::server_url(var, backend)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_standbys_on_another_host_take_over_after_sigkill() {
    if let Some(url) = url_of("ES_POSTGRES_URL", "postgres") {
        standbys_take_over_after_sigkill(&url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_causal_order_holds_across_processes() {
    if let Some(url) = url_of("ES_POSTGRES_URL", "postgres") {
        causal_order_holds_across_processes(&url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_standbys_on_another_host_take_over_after_sigkill() {
    if let Some(url) = url_of("ES_MYSQL_URL", "mysql") {
        standbys_take_over_after_sigkill(&url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_causal_order_holds_across_processes() {
    if let Some(url) = url_of("ES_MYSQL_URL", "mysql") {
        causal_order_holds_across_processes(&url).await;
    }
}
