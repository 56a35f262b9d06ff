//! Projections into the user's own tables, and policies writing outbox rows, on every backend:
//! a handler error writes nothing and names the notification and the handler; a crash between
//! a handler and the commit leaves nothing and the restart applies the notification once; a
//! rebuild ends equal to the incremental result; two projections of one log stay independent;
//! a started projection retries transient failures with backoff, stops with its error in its
//! health, shares a lease with a standby that takes over, and wakes on prompts from another
//! process (PostgreSQL).

mod support;
// The name `case!` expects (see `support::harness`).
use support as server_support;

use es_examples::bank::{self, account, Account, Balances, Param, Reviews};
use es_runtime::application::{Application, Database};
use es_runtime::prelude::*;
use es_runtime::process::projection::{Projection, Projector};
use es_runtime::process::{PolicyType, ProcessApplication, Runner};
use es_runtime::record::RecordManager;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

async fn accounts(db: &Arc<dyn Database>) -> Arc<Application> {
    Arc::new(support::app_on(db, "accounts").build().await.unwrap())
}

/// A balances projection into a fresh table, tracked under a fresh name.
async fn balances(db: &Arc<dyn Database>, upstream: &Application) -> Projector<Balances> {
    let table = support::unique("bal");
    let p = Projector::new(
        Balances {
            table: table.clone(),
        },
        db.clone(),
    )
    .named(support::unique("balances"))
    .following(upstream)
    .unwrap();
    bank::create_table(p.records(), &table).await.unwrap();
    p
}

async fn rows<P: Projection>(p: &Projector<P>, table: &str) -> Vec<(String, i64)> {
    let sql = format!("SELECT id, value FROM {table} ORDER BY id");
    bank::query_pairs(p.records(), &sql, table).await.unwrap()
}

/// Opens an account and runs `amounts` (positive: deposit, negative: withdrawal).
async fn account_with(app: &Application, amounts: &[i64]) -> Account {
    let mut a = Account::open("ada".into()).unwrap();
    for &x in amounts {
        if x > 0 {
            a.deposit(x).unwrap();
        } else {
            a.withdraw(-x).unwrap();
        }
    }
    app.save(&mut a).await.unwrap();
    a
}

/// Balances, but a deposit of 13 writes the row `dup` twice (a constraint violation on every
/// backend: at once on PostgreSQL and MySQL, at commit in SQLite's and memory's closures),
/// and a deposit of 99 stalls after writing its row while `stall` is set.
struct Flaky {
    inner: Balances,
    fail: AtomicBool,
    stall: AtomicBool,
    stalled: Notify,
}

#[projection(name = "flaky")]
impl Flaky {
    async fn opened(&self, tx: &mut Tx, e: &Event<account::Opened>) -> Result<()> {
        self.inner.apply(tx, e).await
    }

    async fn deposited(&self, tx: &mut Tx, e: &Event<account::Deposited>) -> Result<()> {
        if e.amount == 13 && self.fail.load(Ordering::SeqCst) {
            let sql = format!("INSERT INTO {} (id, value) VALUES (?, ?)", self.inner.table);
            for _ in 0..2 {
                insert_dup(tx, &sql, &self.inner.table).await?;
            }
        }
        self.inner.apply(tx, e).await?;
        if e.amount == 99 && self.stall.load(Ordering::SeqCst) {
            self.stalled.notify_one();
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

async fn insert_dup(tx: &mut Tx, sql: &str, table: &str) -> Result<()> {
    if tx.backend() == es_runtime::record::tx::Backend::Memory {
        let table = table.to_string();
        return tx.memory(move |rows| match rows.put(&table, "dup", 1.into()) {
            Some(_) => Err(Error::RecordConflict("row dup exists".into())),
            None => Ok(()),
        });
    }
    bank::execute(tx, sql, vec![Param::Text("dup".into()), Param::Int(1)]).await
}

async fn flaky(
    db: &Arc<dyn Database>,
    upstream: &Application,
    name: &str,
    table: &str,
) -> Projector<Flaky> {
    let p = Projector::new(
        Flaky {
            inner: Balances {
                table: table.into(),
            },
            fail: AtomicBool::new(true),
            stall: AtomicBool::new(false),
            stalled: Notify::new(),
        },
        db.clone(),
    )
    .named(name)
    .following(upstream)
    .unwrap();
    bank::create_table(p.records(), table).await.unwrap();
    p
}

async fn a_handler_error_writes_nothing_and_names_the_notification_and_the_handler() {
    for (backend, db) in support::databases().await {
        let app = accounts(&db).await;
        // Notifications 1 (opened), 2 (+5), 3 (+13: fails), 4 (+7).
        let a = account_with(&app, &[5, 13, 7]).await;
        let (name, table) = (support::unique("flaky"), support::unique("fl"));
        let p = flaky(&db, &app, &name, &table).await.batch_size(10);
        let err = p.catch_up().await.unwrap_err();
        match &err {
            Error::Processing {
                notification_id,
                upstream,
                source,
                ..
            } => {
                assert_eq!(*notification_id, 3, "{backend}: {err}");
                assert_eq!(upstream, app.name(), "{backend}");
                assert!(
                    matches!(&**source, Error::Handler { handler, .. } if handler == "Flaky::deposited"),
                    "{backend}: {err}"
                );
            }
            other => panic!("{backend}: {other}"),
        }
        // The notifications before the failing one are applied; nothing of it is written.
        assert_eq!(
            rows(&p, &table).await,
            [(a.id().to_string(), 5)],
            "{backend}"
        );
        assert_eq!(
            p.positions().await.unwrap(),
            [(app.name().to_string(), 2)],
            "{backend}"
        );
        assert_eq!(p.lag().await.unwrap(), 2, "{backend}");
        // Failing again changes nothing; once fixed, it resumes with notification 3.
        assert!(p.catch_up().await.is_err(), "{backend}");
        p.projection().fail.store(false, Ordering::SeqCst);
        let progress = p.catch_up().await.unwrap();
        assert_eq!(progress.notifications, 2, "{backend}");
        assert_eq!(
            rows(&p, &table).await,
            [(a.id().to_string(), 25)],
            "{backend}"
        );
        assert_eq!(p.lag().await.unwrap(), 0, "{backend}");
    }
}

async fn a_crash_between_handler_and_commit_leaves_nothing_and_the_restart_applies_it_once() {
    for (backend, db) in support::databases().await {
        let app = accounts(&db).await;
        let a = account_with(&app, &[10, 99, 1]).await;
        let (name, table) = (support::unique("crash"), support::unique("cr"));
        let p = Arc::new(flaky(&db, &app, &name, &table).await.batch_size(2));
        p.projection().stall.store(true, Ordering::SeqCst);
        let running = {
            let p = p.clone();
            tokio::spawn(async move { p.catch_up().await })
        };
        // The handler of notification 3 (+99) has written its row and waits: kill the task.
        tokio::time::timeout(Duration::from_secs(20), p.projection().stalled.notified())
            .await
            .unwrap_or_else(|_| panic!("{backend}: the handler never ran"));
        running.abort();
        assert!(running.await.unwrap_err().is_cancelled(), "{backend}");
        // Batch 1-2 committed; batch 3-4 was open when the task died: nothing of it.
        assert_eq!(
            rows(&p, &table).await,
            [(a.id().to_string(), 10)],
            "{backend}"
        );
        assert_eq!(p.positions().await.unwrap()[0].1, 2, "{backend}");

        // Restart: a new projector of the same name resumes from tracking, applies 3 and 4 once.
        let restarted = flaky(&db, &app, &name, &table).await;
        let progress = restarted.catch_up().await.unwrap();
        assert_eq!(progress.notifications, 2, "{backend}");
        assert_eq!(
            rows(&restarted, &table).await,
            [(a.id().to_string(), 110)],
            "{backend}"
        );
        assert_eq!(
            restarted.catch_up().await.unwrap().notifications,
            0,
            "{backend}"
        );
        assert_eq!(
            rows(&restarted, &table).await,
            [(a.id().to_string(), 110)],
            "{backend}"
        );
    }
}

async fn a_rebuild_ends_equal_to_the_incremental_result() {
    for (backend, db) in support::databases().await {
        let app = accounts(&db).await;
        let p = balances(&db, &app).await.batch_size(3);
        let mut ids = Vec::new();
        for round in 0..4i64 {
            let a = account_with(&app, &[round + 1, 20, -(round + 2)]).await;
            ids.push(a.id());
            p.catch_up().await.unwrap();
        }
        let mut gone = account_with(&app, &[3, -3]).await;
        gone.close().unwrap();
        app.save(&mut gone).await.unwrap();
        p.catch_up().await.unwrap();
        let table = &p.projection().table;
        let incremental = rows(&p, table).await;
        assert_eq!(
            incremental.len(),
            4,
            "{backend}: the closed account has no row"
        );

        let mut reports = Vec::new();
        let progress = p.rebuild(|r| reports.push(r.clone())).await.unwrap();
        let last = app.records().max_notification_id().await.unwrap();
        assert_eq!(
            progress.notifications as i64, last,
            "{backend}: replayed from 1"
        );
        assert_eq!(rows(&p, table).await, incremental, "{backend}");
        assert!(
            reports.len() >= 2,
            "{backend}: progress is reported per commit"
        );
        assert!(
            reports.windows(2).all(|w| w[0].position < w[1].position),
            "{backend}"
        );
        let end = reports.last().unwrap();
        assert_eq!((end.position, end.target), (last, last), "{backend}");
        assert_eq!(p.lag().await.unwrap(), 0, "{backend}");
    }
}

async fn two_projections_of_one_log_stay_independent() {
    for (backend, db) in support::databases().await {
        let app = accounts(&db).await;
        let a = account_with(&app, &[4, 6]).await;
        let first = balances(&db, &app).await;
        let second = balances(&db, &app).await;
        assert_eq!(
            first.catch_up().await.unwrap().notifications,
            3,
            "{backend}"
        );
        assert_eq!(first.lag().await.unwrap(), 0, "{backend}");
        assert_eq!(
            second.lag().await.unwrap(),
            3,
            "{backend}: untouched by the first"
        );
        assert!(
            rows(&second, &second.projection().table).await.is_empty(),
            "{backend}"
        );

        let b = account_with(&app, &[1]).await;
        assert_eq!(
            second.catch_up().await.unwrap().notifications,
            5,
            "{backend}"
        );
        // Rebuilding the first resets only its own tracking and table.
        first.rebuild(|_| {}).await.unwrap();
        assert_eq!(second.positions().await.unwrap()[0].1, 5, "{backend}");
        assert_eq!(
            second.catch_up().await.unwrap().notifications,
            0,
            "{backend}"
        );
        let mut want = vec![(a.id().to_string(), 10), (b.id().to_string(), 1)];
        want.sort();
        assert_eq!(
            rows(&first, &first.projection().table).await,
            want,
            "{backend}"
        );
        assert_eq!(
            rows(&second, &second.projection().table).await,
            want,
            "{backend}"
        );
    }
}

async fn a_started_projection_follows_saves_and_stops() {
    for (backend, db) in support::databases().await {
        let app = accounts(&db).await;
        let p = balances(&db, &app)
            .await
            .poll_interval(Duration::from_secs(60));
        let table = p.projection().table.clone();
        let handle = p.start();
        // Woken by the save (the poll interval is a minute).
        let a = account_with(&app, &[8]).await;
        handle
            .wait_caught_up(Duration::from_secs(20))
            .await
            .unwrap();
        let records = handle.projector().records().clone();
        let sql = format!("SELECT id, value FROM {table} ORDER BY id");
        assert_eq!(
            bank::query_pairs(&records, &sql, &table).await.unwrap(),
            [(a.id().to_string(), 8)],
            "{backend}"
        );
        assert_eq!(handle.lag().await.unwrap(), 0);
        handle.stop().await.unwrap();
    }
}

async fn a_policy_outbox_row_commits_with_its_events_and_tracking_or_not_at_all() {
    for (backend, db) in support::databases().await {
        let outbox = support::unique("outbox");
        let reviews = Reviews {
            threshold: 100,
            outbox: outbox.clone(),
        };
        let runner = Runner::builder(&bank::system(reviews), db.clone())
            .namespace(format!("{}_", support::unique("bank")))
            .single_threaded()
            .await
            .unwrap();
        let accounts = runner.app("accounts").unwrap();
        let reviews = runner.app("reviews").unwrap();
        let records: Arc<dyn RecordManager> = reviews.records().clone();
        bank::create_table(&records, &outbox).await.unwrap();
        let sql = format!("SELECT id, value FROM {outbox} ORDER BY id");

        let mut a = Account::open("bo".into()).unwrap();
        a.deposit(500).unwrap();
        a.withdraw(50).unwrap();
        a.withdraw(300).unwrap();
        accounts.save(&mut a).await.unwrap();
        let cases = bank::query_pairs(&records, &sql, &outbox).await.unwrap();
        assert_eq!(cases.len(), 1, "{backend}: one large withdrawal");
        assert_eq!(cases[0].1, 300, "{backend}");
        let review: bank::Review = reviews.get(cases[0].0.parse().unwrap()).await.unwrap();
        assert_eq!(review.account_id(), a.id(), "{backend}");
        let tracked = reviews
            .records()
            .max_tracking_id(accounts.name())
            .await
            .unwrap();
        assert_eq!(tracked, 4, "{backend}");

        runner.stop().await.unwrap();

        // A policy whose outbox row cannot be written fails the whole process event: no
        // review event, no tracking record, no row.
        let app = Arc::new(support::app_on(&db, "failing").build().await.unwrap());
        let pa = ProcessApplication::new(
            app.clone(),
            Failing {
                outbox: outbox.clone(),
            }
            .into_policy(),
        )
        .following(accounts.app())
        .unwrap();
        let err = pa.pull().await.unwrap_err();
        match &err {
            Error::Processing {
                notification_id,
                source,
                ..
            } => {
                assert_eq!(*notification_id, 3, "{backend}: the first withdrawal");
                assert!(
                    matches!(&**source, Error::Handler { handler, .. } if handler == "Failing::on_withdrawal"),
                    "{backend}: {err}"
                );
            }
            other => panic!("{backend}: {other}"),
        }
        assert_eq!(
            app.records().max_notification_id().await.unwrap(),
            0,
            "{backend}"
        );
        assert_eq!(
            app.records()
                .max_tracking_id(accounts.name())
                .await
                .unwrap(),
            2,
            "{backend}"
        );
        assert_eq!(
            bank::query_pairs(&records, &sql, &outbox).await.unwrap(),
            cases,
            "{backend}"
        );
    }
}

/// Saves a review and writes the outbox row `dup` twice: the second write conflicts.
#[derive(Default)]
struct Failing {
    outbox: String,
}

#[policy(name = "failing_reviews")]
impl Failing {
    async fn on_withdrawal(
        &self,
        ctx: &mut ProcessContext,
        e: &Event<account::Withdrawn>,
    ) -> Result<()> {
        ctx.save(bank::Review::open(e.originator_id(), e.amount)?);
        let mut tx = ctx.tx().await?;
        let sql = format!("INSERT INTO {} (id, value) VALUES (?, ?)", self.outbox);
        for _ in 0..2 {
            insert_dup(&mut tx, &sql, &self.outbox).await?;
        }
        Ok(())
    }
}

/// Balances whose deposit handler meets a lost connection while `failures` is above 0 (each
/// failure takes one off), as a handler's own database call would.
struct Shaky {
    inner: Balances,
    failures: std::sync::atomic::AtomicUsize,
    calls: std::sync::atomic::AtomicUsize,
}

#[projection(name = "shaky")]
impl Shaky {
    async fn opened(&self, tx: &mut Tx, e: &Event<account::Opened>) -> Result<()> {
        self.inner.apply(tx, e).await
    }

    async fn deposited(&self, tx: &mut Tx, e: &Event<account::Deposited>) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::Operational("connection reset by peer".into()));
        }
        self.inner.apply(tx, e).await
    }
}

/// A started-to-be Shaky projector into a fresh table, failing `failures` times, retrying
/// `attempts` times in a row.
async fn shaky(
    db: &Arc<dyn Database>,
    app: &Application,
    failures: usize,
    attempts: u32,
) -> (Projector<Shaky>, String) {
    let table = support::unique("shk");
    let p = Projector::new(
        Shaky {
            inner: Balances {
                table: table.clone(),
            },
            failures: failures.into(),
            calls: 0.into(),
        },
        db.clone(),
    )
    .named(support::unique("shaky"))
    .following(app)
    .unwrap()
    .backoff(quick_backoff(attempts));
    bank::create_table(p.records(), &table).await.unwrap();
    (p, table)
}

fn quick_backoff(attempts: u32) -> es_runtime::process::Backoff {
    es_runtime::process::Backoff::new(
        Duration::from_millis(2),
        Duration::from_millis(20),
        attempts,
    )
}

/// Polls `health` until `ok` holds for its state, or 20 s pass.
async fn await_state<P: Projection>(
    h: &es_runtime::process::projection::ProjectionHandle<P>,
    what: &str,
    ok: impl Fn(&es_runtime::process::State) -> bool,
) -> es_runtime::process::Health {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let health = h.health().await.unwrap();
        if ok(&health.state) {
            return health;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: still {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn a_started_projection_retries_a_lost_connection_with_backoff_and_applies_each_event_once() {
    for (backend, db) in support::databases().await {
        let app = accounts(&db).await;
        let (p, table) = shaky(&db, &app, 3, 5).await;
        let a = account_with(&app, &[4, 6]).await;
        let handle = p.start();
        handle
            .wait_caught_up(Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        // Three failed tries, then the two deposits once each.
        let shaky = handle.projector().projection();
        assert_eq!(shaky.calls.load(Ordering::SeqCst), 5, "{backend}");
        let records = handle.projector().records().clone();
        let sql = format!("SELECT id, value FROM {table} ORDER BY id");
        assert_eq!(
            bank::query_pairs(&records, &sql, &table).await.unwrap(),
            [(a.id().to_string(), 10)],
            "{backend}"
        );
        let health = handle.health().await.unwrap();
        assert_eq!(health.lag, 0, "{backend}");
        assert_eq!(health.positions, [(app.name().to_string(), 3)], "{backend}");
        handle.stop().await.unwrap();
    }
}

async fn a_started_projection_stops_when_retries_run_out_or_a_handler_fails_and_says_why() {
    for (backend, db) in support::databases().await {
        let app = accounts(&db).await;
        let (p, _) = shaky(&db, &app, 100, 2).await;
        account_with(&app, &[4]).await;
        let handle = p.start();
        let health = await_state(&handle, backend, |s| {
            matches!(s, es_runtime::process::State::Stopped { .. })
        })
        .await;
        match &health.state {
            es_runtime::process::State::Stopped { error } => {
                assert!(error.contains("connection reset"), "{backend}: {error}")
            }
            other => panic!("{backend}: {other:?}"),
        }
        // The first try and two retries; the opening is applied, the deposit is not.
        assert_eq!(
            handle.projector().projection().calls.load(Ordering::SeqCst),
            3,
            "{backend}"
        );
        assert_eq!(health.lag, 1, "{backend}");
        let err = handle.stop().await.unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Processing {
                    notification_id: 2,
                    ..
                }
            ),
            "{backend}: {err}"
        );

        // A handler's own error (a constraint violation) is not retried.
        let (name, table) = (support::unique("flaky"), support::unique("fl"));
        account_with(&app, &[13]).await;
        let p = flaky(&db, &app, &name, &table)
            .await
            .backoff(quick_backoff(5));
        let handle = p.start();
        let err = handle
            .wait_caught_up(Duration::from_secs(20))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Processing { source, .. } if matches!(&**source, Error::Handler { .. })),
            "{backend}: {err}"
        );
        assert!(
            matches!(
                handle.health().await.unwrap().state,
                es_runtime::process::State::Stopped { .. }
            ),
            "{backend}"
        );
    }
}

async fn of_two_started_instances_one_holds_the_lease_and_the_other_takes_over_when_it_stops() {
    for (backend, db) in support::databases().await {
        let app = accounts(&db).await;
        let (name, table) = (support::unique("balances"), support::unique("bal"));
        let leases: Arc<dyn es_runtime::process::lease::Leases> =
            Arc::new(es_runtime::process::lease::LocalLeases::new());
        let instance = || {
            Projector::new(
                Balances {
                    table: table.clone(),
                },
                db.clone(),
            )
            .named(&name)
            .following(&app)
            .unwrap()
            .leases(leases.clone())
            .lease_interval(Duration::from_millis(10))
        };
        bank::create_table(instance().records(), &table)
            .await
            .unwrap();
        let first = instance().start();
        await_state(&first, backend, |s| {
            *s == es_runtime::process::State::Running
        })
        .await;
        let second = instance().start();
        await_state(&second, backend, |s| {
            *s == es_runtime::process::State::WaitingForLease
        })
        .await;
        let a = account_with(&app, &[3, 4]).await;
        first.wait_caught_up(Duration::from_secs(20)).await.unwrap();
        first.stop().await.unwrap();
        // The standby takes over and applies what comes next.
        await_state(&second, backend, |s| {
            *s == es_runtime::process::State::Running
        })
        .await;
        let b = account_with(&app, &[5]).await;
        second
            .wait_caught_up(Duration::from_secs(20))
            .await
            .unwrap();
        let records = second.projector().records().clone();
        let sql = format!("SELECT id, value FROM {table} ORDER BY id");
        let mut want = vec![(a.id().to_string(), 7), (b.id().to_string(), 5)];
        want.sort();
        assert_eq!(
            bank::query_pairs(&records, &sql, &table).await.unwrap(),
            want,
            "{backend}"
        );
        second.stop().await.unwrap();
    }
}

/// On PostgreSQL: a save through an application object built with prompts wakes a started
/// projection that follows another object of the same application (as a process elsewhere
/// would), long before its poll interval.
#[cfg(feature = "postgres")]
async fn a_prompt_from_another_application_object_wakes_a_started_projection_on_postgres() {
    use es_runtime::process::prompt::PostgresPrompts;
    let url =
        support::server_url("ES_POSTGRES_URL", "postgres").expect("the harness found the server");
    let db: Arc<dyn Database> = es_runtime::application::connect(&url).await.unwrap();
    let prompts: Arc<dyn es_runtime::process::prompt::Prompts> =
        Arc::new(PostgresPrompts::connect(&url).await.unwrap());
    let name = support::unique("accounts");
    let writer = Application::builder(&name)
        .database(db.clone())
        .prompts(prompts.clone())
        .build()
        .await
        .unwrap();
    let reader = Application::builder(&name)
        .database(db.clone())
        .build()
        .await
        .unwrap();
    let p = balances(&db, &reader)
        .await
        .poll_interval(Duration::from_secs(60))
        .prompts(prompts);
    let table = p.projection().table.clone();
    let handle = p.start();
    // Caught up (nothing to do), then listening; the first poll is a minute away.
    handle
        .wait_caught_up(Duration::from_secs(20))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let a = account_with(&writer, &[9]).await;
    let records = handle.projector().records().clone();
    let sql = format!("SELECT id, value FROM {table} ORDER BY id");
    loop {
        let rows = bank::query_pairs(&records, &sql, &table).await.unwrap();
        if rows == [(a.id().to_string(), 9)] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not woken by the prompt: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "prompted projection applied the save in {:?}",
        started.elapsed()
    );
    handle.stop().await.unwrap();
}

/// Runs every case; those whose server does not answer are reported as ignored (see
/// `server_support::harness`).
fn main() -> std::process::ExitCode {
    support::harness::run_cases(&[
        case!(local a_handler_error_writes_nothing_and_names_the_notification_and_the_handler),
        case!(local a_crash_between_handler_and_commit_leaves_nothing_and_the_restart_applies_it_once),
        case!(local a_rebuild_ends_equal_to_the_incremental_result),
        case!(local two_projections_of_one_log_stay_independent),
        case!(local a_started_projection_follows_saves_and_stops),
        case!(local a_policy_outbox_row_commits_with_its_events_and_tracking_or_not_at_all),
        case!(local a_started_projection_retries_a_lost_connection_with_backoff_and_applies_each_event_once),
        case!(local a_started_projection_stops_when_retries_run_out_or_a_handler_fails_and_says_why),
        case!(local of_two_started_instances_one_holds_the_lease_and_the_other_takes_over_when_it_stops),
        #[cfg(feature = "postgres")]
        case!(POSTGRES a_prompt_from_another_application_object_wakes_a_started_projection_on_postgres),
    ])
}
