//! The orders, reservations and payments system of the manual's §12.4, run twice on one
//! database: with the single-threaded runner, then with the concurrent runner. The system is
//! defined once (`es_examples::orders::system`); only the runner differs.
//!
//! Runs on an embedded SQLite database in memory, or on the database named by `DB_URI` /
//! `ES_DATABASE_URL` (`sqlite:…`, `postgres://…`, `mysql://…`, `memory:`). Prints each check
//! and exits non-zero if any fails.
//!
//! ```text
//! cargo run --example orders
//! ```
//!
//! With `--runner processes` (and `DB_URI` naming a database processes share), the system
//! runs with one operating-system process per application and pipeline instead, started by a
//! supervisor (see `multiprocess/mod.rs`):
//!
//! ```text
//! DB_URI=postgres://… cargo run --features postgres --example orders -- --runner processes
//! ```

#[path = "checks/mod.rs"]
mod checks;
#[path = "multiprocess/mod.rs"]
mod multiprocess;

use checks::Checks;
use es_examples::orders::{self, CreateOrder, Order, Payment, Reservation};
use es_runtime::application::{connect, Database};
use es_runtime::prelude::*;
use es_runtime::process::Runner;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> ExitCode {
    checks::exit_code(run().await)
}

async fn run() -> Result<usize> {
    use es_runtime::application::config::env_var;
    let url = env_var("DB_URI")
        .or_else(|| env_var("ES_DATABASE_URL"))
        .unwrap_or_else(|| {
            if cfg!(feature = "sqlite") {
                "sqlite::memory:".into()
            } else {
                "memory:".into()
            }
        });
    let mut c = Checks::new();
    let args: Vec<String> = std::env::args().collect();
    if args
        .windows(2)
        .any(|w| w[0] == "--runner" && w[1] == "processes")
    {
        if es_runtime::process::supervisor::Part::from_env()?.is_none() {
            println!("database {url}");
            println!("-- one process per application and pipeline");
        }
        multiprocess::run(&url, &mut c).await?;
        return Ok(c.failed);
    }
    println!("database {url}");
    let db = connect(&url).await?;

    println!("-- single-threaded runner");
    single_threaded(&db, &mut c).await?;
    println!("-- concurrent runner");
    concurrent(&db, &mut c).await?;
    Ok(c.failed)
}

/// A namespace of one's own, so that runs never share applications.
fn namespace(tag: &str) -> String {
    format!("{tag}{}_", &Uuid::new_v4().simple().to_string()[..6])
}

async fn single_threaded(db: &Arc<dyn Database>, c: &mut Checks) -> Result<()> {
    let runner = Runner::builder(&orders::system(), db.clone())
        .namespace(namespace("st"))
        .single_threaded()
        .await?;
    let commands = runner.app("commands")?;

    // A user's command; the save returns once the whole system has processed it.
    let mut cmd = CreateOrder::create()?;
    commands.save(&mut cmd).await?;

    let cmd: CreateOrder = commands.get(cmd.id()).await?;
    c.check(cmd.is_done(), "the command is done when the save returns");
    let Some(order_id) = cmd.order_id() else {
        c.check(false, "the command has an order");
        return Ok(());
    };
    let order: Order = runner.app("orders")?.get(order_id).await?;
    c.check(
        order.is_reserved() && order.is_paid(),
        "the order is reserved and paid",
    );
    let reservation: Option<Reservation> = match order.reservation_id() {
        Some(id) => Some(runner.app("reservations")?.get(id).await?),
        None => None,
    };
    c.check(
        reservation.is_some_and(|r| r.order_id() == order_id),
        "the reservation exists, for the order",
    );
    let payment: Option<Payment> = match order.payment_id() {
        Some(id) => Some(runner.app("payments")?.get(id).await?),
        None => None,
    };
    c.check(
        payment.is_some_and(|p| p.order_id() == order_id),
        "the payment exists, for the order",
    );
    c.check(
        !runner
            .app("reservations")?
            .repository::<Order>()
            .contains(order_id)
            .await?,
        "orders are not in the reservations application (bounded contexts)",
    );

    // Re-running the orders' processing of reservations from the start writes nothing.
    let orders_app = runner.app("orders")?;
    let before = orders_app.records().max_notification_id().await?;
    let reservations_name = runner.app("reservations")?.name().to_string();
    orders_app.rewind(&reservations_name, 0).await?;
    let progress = orders_app.pull().await?;
    c.check(
        progress.processed == 0 && orders_app.records().max_notification_id().await? == before,
        "processing a notification again is skipped: it is tracked (exactly once)",
    );
    runner.stop().await
}

async fn concurrent(db: &Arc<dyn Database>, c: &mut Checks) -> Result<()> {
    let n = 15;
    let runner = Runner::builder(&orders::system(), db.clone())
        .namespace(namespace("mt"))
        .concurrent()
        .await?;
    let commands = runner.app("commands")?;
    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..n {
        let mut cmd = CreateOrder::create()?;
        commands.save(&mut cmd).await?;
        ids.push(cmd.id());
    }
    runner.wait_idle(Duration::from_secs(60)).await?;
    println!(
        "{n} commands processed by 4 concurrent applications in {:?}",
        started.elapsed()
    );
    let mut done = 0;
    for id in &ids {
        let cmd: CreateOrder = commands.get(*id).await?;
        if let (true, Some(order_id)) = (cmd.is_done(), cmd.order_id()) {
            let order: Order = runner.app("orders")?.get(order_id).await?;
            done += usize::from(order.is_paid());
        }
    }
    c.check(done == n, "every command is done and its order paid");
    let reservations = runner.app("reservations")?;
    c.check(
        reservations.records().max_notification_id().await? == n as i64,
        "one reservation per order, none twice",
    );
    let payments = runner.app("payments")?;
    c.check(
        payments.records().max_notification_id().await? == n as i64,
        "one payment per order, none twice",
    );
    runner.stop().await
}
