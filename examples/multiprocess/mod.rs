//! `cargo run --example orders -- --runner processes`: the orders system with one operating
//! system process per application and pipeline, started by a supervisor; this process is a
//! client that saves commands and checks they are done, then measures throughput and
//! (with `--latency N`) propagation latency.
//!
//! Options: `--pipelines N` (2), `--orders N` (15), `--latency N` (0: none), `--no-notify`
//! (followers only poll), `--poll-ms N` (100), `--system orders` (the reference benchmark's
//! system: orders saved straight into `orders`), `--in-process` (every application in this
//! process, on the concurrent runner: any database, memory included).
//!
//! Split across hosts (`scripts/multihost-test.sh`), with `ORDERS_NAMESPACE` naming the
//! system's applications in the database: `--role supervisor [--run-pipelines 0,1]` runs
//! only the children (of those pipelines) until SIGTERM; `--role client --orders N
//! [--expect-total T]` saves N commands, waits until the system is idle, and checks them (and
//! that T orders were reserved and paid in all, none twice).

use crate::checks::Checks;
use es_examples::orders::{self, CreateOrder, Order};
use es_runtime::application::connect;
use es_runtime::prelude::*;
use es_runtime::process::supervisor::{Part, Supervisor};
use es_runtime::process::{lease, prompt, Runner, RunnerBuilder};
use std::time::{Duration, Instant};

/// The command-line options of this mode.
pub struct Options {
    pipelines: i64,
    orders: usize,
    latency: usize,
    notify: bool,
    poll: Duration,
    role: Option<String>,
    run_pipelines: Option<Vec<i64>>,
    expect_total: Option<i64>,
    /// `orders` for the reference benchmark's system (orders saved straight into `orders`,
    /// no commands); the manual's whole system otherwise.
    bare: bool,
    /// Run every application in this process (the concurrent runner) instead of children.
    in_process: bool,
    /// The database's kind, for `RESULT` lines: the URL's scheme.
    backend: String,
}

impl Options {
    /// From the command line, for the database at `url`.
    pub fn from_args(url: &str) -> Result<Options> {
        let args: Vec<String> = std::env::args().collect();
        let text = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1).cloned())
        };
        let run_pipelines = match text("--run-pipelines") {
            Some(list) => Some(
                list.split(',')
                    .map(|s| s.trim().parse::<i64>())
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|_| {
                        Error::Configuration("--run-pipelines needs ids like 0,1".into())
                    })?,
            ),
            None => None,
        };
        let value = |flag: &str, default: u64| -> Result<u64> {
            match args.iter().position(|a| a == flag) {
                Some(i) => args
                    .get(i + 1)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| Error::Configuration(format!("{flag} needs a number"))),
                None => Ok(default),
            }
        };
        Ok(Options {
            pipelines: value("--pipelines", 2)?.max(1) as i64,
            orders: value("--orders", 15)? as usize,
            latency: value("--latency", 0)? as usize,
            notify: !args.iter().any(|a| a == "--no-notify"),
            poll: Duration::from_millis(value("--poll-ms", 100)?),
            role: text("--role"),
            bare: text("--system").as_deref() == Some("orders"),
            in_process: args.iter().any(|a| a == "--in-process"),
            backend: url.split(':').next().unwrap_or_default().to_string(),
            run_pipelines,
            expect_total: match text("--expect-total") {
                Some(_) => Some(value("--expect-total", 0)? as i64),
                None => None,
            },
        })
    }
}

const ENV_NAMESPACE: &str = "ORDERS_NAMESPACE";

async fn builder(url: &str, opts: &Options, ns: &str) -> Result<RunnerBuilder> {
    let db = connect(url).await?;
    let mut b = Runner::builder(&opts.system(), db)
        .namespace(ns)
        .poll_interval(opts.poll)
        .leases(lease::for_url(url).await?);
    if opts.notify {
        if let Some(p) = prompt::for_url(url).await? {
            b = b.prompts(p);
        }
    }
    Ok(b)
}

/// Runs the orders system with a process per application and pipeline.
pub async fn run(url: &str, c: &mut Checks) -> Result<()> {
    let opts = Options::from_args(url)?;
    if let Some(part) = Part::from_env()? {
        return child(url, &opts, &part).await;
    }
    if !opts.in_process && (url.starts_with("memory") || url.contains(":memory:")) {
        return Err(Error::Configuration(format!(
            "--runner processes needs a database its processes share (DB_URI=postgres://…, \
             mysql://… or sqlite://file), not {url} (or --in-process)"
        )));
    }
    let pipelines: Vec<i64> = (0..opts.pipelines).collect();
    match opts.role.as_deref() {
        None => {}
        Some("supervisor") => {
            let ns = std::env::var(ENV_NAMESPACE).map_err(|_| {
                Error::Configuration(format!("--role supervisor needs {ENV_NAMESPACE}"))
            })?;
            let mut s = Supervisor::new(&opts.system())
                .pipelines(pipelines)
                .env(ENV_NAMESPACE, &ns)
                .env("DB_URI", url)
                .grace(Duration::from_secs(20));
            if let Some(only) = &opts.run_pipelines {
                s = s.only_pipelines(only.clone());
            }
            println!(
                "supervisor {}: {} children",
                std::process::id(),
                s.parts().len()
            );
            return s.run().await;
        }
        Some("client") => {
            let ns = std::env::var(ENV_NAMESPACE).map_err(|_| {
                Error::Configuration(format!("--role client needs {ENV_NAMESPACE}"))
            })?;
            let client = builder(url, &opts, &ns)
                .await?
                .pipelines(pipelines.clone())
                .only(Vec::<String>::new())
                .concurrent()
                .await?;
            let result = client_work(&client, &opts, &pipelines, c).await;
            client.stop().await?;
            return result;
        }
        Some(other) => {
            return Err(Error::Configuration(format!(
                "--role {other:?}: use supervisor or client"
            )))
        }
    }
    let ns = format!("mp{}_", &Uuid::new_v4().simple().to_string()[..6]);
    if opts.in_process {
        // One process: any database, memory included.
        let runner = builder(url, &opts, &ns)
            .await?
            .pipelines(pipelines.clone())
            .concurrent()
            .await?;
        println!(
            "one process, {} pipeline(s), the concurrent runner",
            pipelines.len()
        );
        client_work(&runner, &opts, &pipelines, c).await?;
        runner.stop().await?;
        report_cpu(&opts, "in-process");
        return Ok(());
    }
    let supervisor = Supervisor::new(&opts.system())
        .pipelines(pipelines.clone())
        .env(ENV_NAMESPACE, &ns)
        .env("DB_URI", url)
        .grace(Duration::from_secs(20));
    let children = supervisor.parts().len();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let supervised = tokio::spawn(supervisor.run_until(async {
        let _ = stopped.await;
    }));
    // This process runs no application: it saves commands and reads results.
    let client = builder(url, &opts, &ns)
        .await?
        .pipelines(pipelines.clone())
        .only(Vec::<String>::new())
        .concurrent()
        .await?;
    println!(
        "{children} child processes, {} pipeline(s), prompts: {}",
        pipelines.len(),
        if opts.notify && prompt::for_url(url).await?.is_some() {
            "NOTIFY + polling"
        } else {
            "polling only"
        }
    );

    client_work(&client, &opts, &pipelines, c).await?;

    if opts.latency > 0 {
        latency(&client, &opts, pipelines[0]).await?;
    }

    client.stop().await?;
    let _ = stop.send(());
    let stopped = supervised
        .await
        .map_err(|e| Error::Operational(format!("the supervisor failed: {e}")))?;
    c.check(
        stopped.is_ok(),
        "every child finished its work and exited 0 on SIGTERM",
    );
    if let Err(e) = stopped {
        println!("{e}");
    }
    report_cpu(&opts, &format!("{children} processes"));
    Ok(())
}

/// CPU time of this process and its children (once they have exited), per order.
fn report_cpu(opts: &Options, what: &str) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // After the command name in parentheses: utime, stime, cutime, cstime are fields 14-17.
    let Some(rest) = stat.rsplit(')').next() else {
        return;
    };
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|x| x.parse().ok())
        .collect();
    if f.len() == 4 && opts.orders > 0 {
        // Clock ticks of 10 ms (USER_HZ on Linux).
        let ms = f.iter().sum::<u64>() * 10;
        println!(
            "cpu ({what}, client included, database server not): {ms} ms, {:.0} µs per order",
            ms as f64 * 1000.0 / opts.orders as f64
        );
    }
}

impl Options {
    fn system(&self) -> es_runtime::process::System {
        if self.bare {
            orders::orders_system()
        } else {
            orders::system()
        }
    }
}

/// Saves the commands, waits until the system is idle, checks the results.
async fn client_work(
    client: &Runner,
    opts: &Options,
    pipelines: &[i64],
    c: &mut Checks,
) -> Result<()> {
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..opts.orders {
        let p = pipelines[i % pipelines.len()];
        if opts.bare {
            let mut order = Order::create(None)?;
            client.app_in("orders", p)?.save(&mut order).await?;
            ids.push((p, order.id()));
        } else {
            let mut cmd = CreateOrder::create()?;
            client.app_in("commands", p)?.save(&mut cmd).await?;
            ids.push((p, cmd.id()));
        }
    }
    client.wait_idle(Duration::from_secs(600)).await?;
    let took = started.elapsed();
    println!(
        "{} orders in {took:?}: {:.0} orders/s",
        opts.orders,
        opts.orders as f64 / took.as_secs_f64()
    );
    println!(
        "RESULT orders_{}p{} {} {} {:.3} {:.1}",
        if opts.in_process {
            "threads"
        } else {
            "processes"
        },
        pipelines.len(),
        opts.backend,
        opts.orders,
        took.as_secs_f64(),
        opts.orders as f64 / took.as_secs_f64()
    );
    let mut done = 0;
    for (p, id) in &ids {
        if opts.bare {
            let order: Order = client.app_in("orders", *p)?.get(*id).await?;
            done += usize::from(order.is_reserved() && order.is_paid());
            continue;
        }
        let cmd: CreateOrder = client.app_in("commands", *p)?.get(*id).await?;
        if let (true, Some(order_id)) = (cmd.is_done(), cmd.order_id()) {
            let order: Order = client.app_in("orders", *p)?.get(order_id).await?;
            done += usize::from(order.is_reserved() && order.is_paid());
        }
    }
    c.check(
        done == opts.orders,
        "every command is done, its order reserved and paid",
    );
    let mut reservations = 0;
    let mut payments = 0;
    for &p in pipelines {
        reservations += client
            .app_in("reservations", p)?
            .records()
            .max_notification_id()
            .await?;
        payments += client
            .app_in("payments", p)?
            .records()
            .max_notification_id()
            .await?;
    }
    let total = opts.expect_total.unwrap_or(opts.orders as i64);
    c.check(
        reservations == total && payments == total,
        &format!("{total} orders reserved and paid in all, none twice ({reservations} reservations, {payments} payments)"),
    );
    Ok(())
}

/// Propagation latency of single commands, one after the other.
async fn latency(client: &Runner, opts: &Options, pipeline: i64) -> Result<()> {
    {
        let mut times = Vec::new();
        let commands = client.app_in("commands", pipeline)?;
        for _ in 0..opts.latency {
            let mut cmd = CreateOrder::create()?;
            let t0 = Instant::now();
            commands.save(&mut cmd).await?;
            loop {
                let now: CreateOrder = commands.get(cmd.id()).await?;
                if now.is_done() {
                    break;
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            times.push(t0.elapsed());
        }
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "propagation latency (command saved -> done, 6 hops) over {} orders: p50 {:?}, p99 {:?}",
            times.len(),
            at(0.50),
            at(0.99)
        );
    }
    Ok(())
}

/// A child: one application of one pipeline, until SIGTERM.
async fn child(url: &str, opts: &Options, part: &Part) -> Result<()> {
    let ns = std::env::var(ENV_NAMESPACE).unwrap_or_default();
    let runner = builder(url, opts, &ns)
        .await?
        .part(part)
        .concurrent()
        .await?;
    runner.run_until_signal().await
}
