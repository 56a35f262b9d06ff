//! es benchmarks: the same workloads as the reference library's peer script
//! (`../shared/peers/python_eventsourcing_7_1_1.py`), printing the same `RESULT` lines.
//!
//! ```text
//! cargo run --release --all-features --example bench -- --backend <memory|sqlite-memory|sqlite-file|postgres|mysql> \
//!     --n 2000 [--replay-len 1000] [--workloads save_new,append_one,replay,read_log,...] \
//!     [--runtime current|multi]
//! ```
//!
//! The workloads run on tokio's multi-threaded runtime (what `#[tokio::main]` gives) by
//! default; `--runtime current` runs them on the single-threaded one, as the peer runs on one
//! Python thread. On this project's 2-core machines the single-threaded runtime reads a log a
//! little faster (fewer wake-ups between threads) and saves a little slower (the background
//! sequencer shares the one thread with the saves).
//!
//! Workloads: `save_new` (N new aggregates, create + one event, one transaction each),
//! `append_one` (one aggregate, N further events, one transaction each), `replay` (get an
//! aggregate of R events, repeated to about 20k events), `read_log` (read every notification
//! once, decoded; `read_log_sections` the same section by section), and application variants: `save_new_enc` / `replay_enc` (AES-256-GCM),
//! `replay_snap` (snapshot every 100 events), `replay_big` (one replay of R events, reporting
//! peak resident memory), `micro` (the mapper's parts one event at a time: trigger, to and
//! from item, plain and encrypted, SHA-256, AES-GCM), `orders` (N/10 orders through the
//! orders, reservations and payments system, single-threaded, as the peer's), `projection` (a
//! projection's catch-up into a SQL table, with the driver's same inserts beside it: SQLite and
//! PostgreSQL). `raw_*` workloads write or read the same rows with the driver alone,
//! in the same number of transactions: the limit es is measured against.

mod clock;
mod micro;
mod orders;
mod projection;
mod raw;
mod world;

use clock::Instant;
use es_runtime::application::{Application, Database};
use es_runtime::mapper::Cipher;
use es_runtime::notify::{NotificationLogReader, RecordNotificationLog};
use es_runtime::prelude::*;
use es_runtime::record::memory::InMemoryDatabase;
use std::sync::Arc;
use world::World;

struct Args {
    backend: String,
    n: usize,
    replay_len: usize,
    workloads: Vec<String>,
    multi_thread: bool,
}

fn args() -> Args {
    let mut a = Args {
        backend: "memory".into(),
        n: 2000,
        replay_len: 1000,
        workloads: "save_new,append_one,replay,read_log,save_new_enc,replay_enc,replay_snap"
            .split(',')
            .map(String::from)
            .collect(),
        multi_thread: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--backend" => a.backend = v,
            "--n" => a.n = v.parse().unwrap_or(a.n),
            "--replay-len" => a.replay_len = v.parse().unwrap_or(a.replay_len),
            "--workloads" => a.workloads = v.split(',').map(String::from).collect(),
            "--runtime" => a.multi_thread = v != "current",
            other => eprintln!("ignoring unknown argument {other}"),
        }
    }
    a
}

use clock::report;

/// The run's database. On a server the run gets tables of its own (a fresh prefix, dropped at
/// the end), as the peer script drops and makes its tables before measuring and the raw
/// workloads write to a new table: tables shared with every earlier run (and their dead rows)
/// would measure the history of the machine rather than es. The closure drops them.
async fn database(backend: &str) -> Result<(Arc<dyn Database>, Cleanup)> {
    let prefix = format!("b{}_", &Uuid::new_v4().simple().to_string()[..10]);
    let _ = &prefix;
    match backend {
        "memory" | "popo" => Ok((Arc::new(InMemoryDatabase::new()), Cleanup::None)),
        #[cfg(feature = "postgres")]
        "postgres" => {
            let url = std::env::var("ES_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let db = es_runtime::record::postgres::PostgresDatabase::connect(&url)
                .await?
                .with_table_prefix(&prefix)?;
            db.setup_tables().await?;
            Ok((Arc::new(db.clone()), Cleanup::Postgres(db)))
        }
        #[cfg(feature = "mysql")]
        "mysql" => {
            let url = std::env::var("ES_MYSQL_URL")
                .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
            let db = es_runtime::record::mysql::MySqlDatabase::connect(&url)
                .await?
                .with_table_prefix(&prefix)?;
            db.setup_tables().await?;
            Ok((Arc::new(db.clone()), Cleanup::MySql(db)))
        }
        other => Ok((
            es_runtime::application::connect_backend(other).await?,
            Cleanup::None,
        )),
    }
}

/// Tables to drop when the run ends.
enum Cleanup {
    None,
    #[cfg(feature = "postgres")]
    Postgres(es_runtime::record::postgres::PostgresDatabase),
    #[cfg(feature = "mysql")]
    MySql(es_runtime::record::mysql::MySqlDatabase),
}

impl Cleanup {
    async fn run(self) -> Result<()> {
        match self {
            Cleanup::None => Ok(()),
            #[cfg(feature = "postgres")]
            Cleanup::Postgres(db) => db.drop_tables().await,
            #[cfg(feature = "mysql")]
            Cleanup::MySql(db) => db.drop_tables().await,
        }
    }
}

async fn app(
    db: &Arc<dyn Database>,
    name: &str,
    cipher: bool,
    snapshots: bool,
) -> Result<Application> {
    let mut b = Application::builder(name).database(db.clone());
    if cipher {
        b = b.cipher(Cipher::from_base64(&Cipher::random_key(32)?)?);
    }
    if snapshots {
        b = b.snapshot_period(100);
    }
    b.build().await
}

async fn save_new(app: &Application, backend: &str, label: &str, n: usize) -> Result<()> {
    let t = Instant::now();
    for _ in 0..n {
        save_new_world(app).await?;
    }
    report(label, backend, n, t);
    Ok(())
}

/// One save of `save_new`: a new world and one further event.
async fn save_new_world(app: &Application) -> Result<()> {
    let mut w = World::create("gods")?;
    w.make_it_so("dinosaurs".into())?;
    app.save(&mut w).await
}

async fn append_one(app: &Application, backend: &str, n: usize) -> Result<()> {
    let mut w = World::create("gods")?;
    app.save(&mut w).await?;
    let t = Instant::now();
    for i in 0..n {
        w.make_it_so(format!("thing {i}"))?;
        app.save(&mut w).await?;
    }
    report("append_one", backend, n, t);
    Ok(())
}

async fn replay(
    app: &Application,
    backend: &str,
    label: &str,
    len: usize,
    reps: Option<usize>,
) -> Result<()> {
    let mut r = World::create("gods")?;
    // Save in chunks so very long histories do not make one giant transaction.
    for i in 0..len.saturating_sub(1) {
        r.make_it_so(format!("thing {i}"))?;
        if r.pending_events().len() >= 10_000 {
            app.save(&mut r).await?;
        }
    }
    app.save(&mut r).await?;
    let id = r.id();
    drop(r);
    if reps == Some(1) {
        // Measure the replay alone: reset the peak resident size (Linux; ignored elsewhere).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
    let reps = reps.unwrap_or_else(|| (20_000 / len).max(1));
    let t = Instant::now();
    for _ in 0..reps {
        let copy: World = app.get(id).await?;
        if copy.history.len() != len - 1 {
            return Err(Error::Operational(format!(
                "replayed {} events, expected {}",
                copy.history.len() + 1,
                len
            )));
        }
    }
    report(label, backend, reps * len, t);
    Ok(())
}

/// Reads every notification of the application's log once, decoded into its event, the way a
/// user follows a whole log: [`NotificationLogReader::for_each`], which reads a local log
/// straight from its records (on PostgreSQL one statement for the whole log, each row decoded
/// as it arrives).
///
/// On PostgreSQL, rows written in the last 50 ms may still wait for their notification ids
/// (the background sequencer numbers them after the writes). The first read of the log would
/// number them itself, and that is write work, so it is timed apart, before the read, and
/// reported as `read_log_settle` (the highest id, and how long it took to be sure every row
/// had one).
async fn read_log(app: &Application, backend: &str) -> Result<()> {
    let t = Instant::now();
    let top = app.records().max_notification_id().await?;
    report("read_log_settle", backend, top as usize, t);
    let t = Instant::now();
    let log = RecordNotificationLog::for_application(app, READ_LOG_SECTION)?;
    let mut reader = NotificationLogReader::new(Arc::new(log));
    let mapper = app.mapper();
    let count = reader
        .for_each(|n| {
            let e = mapper.from_item(&n.item)?;
            std::hint::black_box(e);
            Ok(())
        })
        .await?;
    report("read_log", backend, count, t);
    Ok(())
}

/// `read_log` section by section: [`NotificationLogReader::next_item`], with the next section
/// fetched while the current one is decoded (how a remote log is read).
async fn read_log_sections(app: &Application, backend: &str) -> Result<()> {
    app.records().max_notification_id().await?;
    let t = Instant::now();
    let log = RecordNotificationLog::for_application(app, READ_LOG_SECTION)?;
    let mut reader = NotificationLogReader::new(Arc::new(log)).with_prefetch(READ_LOG_PREFETCH);
    let mapper = app.mapper();
    let mut count = 0;
    while let Some(n) = reader.next_item().await? {
        let e = mapper.from_item(&n.item)?;
        std::hint::black_box(e);
        count += 1;
    }
    report("read_log_sections", backend, count, t);
    Ok(())
}

/// `save_new` and `append_one` on PostgreSQL with the raw side interleaved: blocks of
/// [`PAIRED_BLOCK`] saves by es, then the same number by the driver alone, and so on, each
/// side's time summed. Commits wait for the disk, whose speed drifts over seconds on a shared
/// machine; blocks a few tens of milliseconds apart see the same disk, so the ratio is steadier
/// than that of two runs a second apart. Each es block ends by waiting until every row it wrote
/// has its notification id (`max_notification_id`), so that the background sequencer's work
/// never falls in the raw side's blocks. Prints `save_new_paired` (es's saves alone: the save
/// path), `save_new_numbered` (the saves and the wait for their ids: everything es writes),
/// `raw_save_new_paired`, and the same three for `append_one`.
#[cfg(feature = "postgres")]
async fn paired(app: &Application, backend: &str, n: usize) -> Result<()> {
    let mut raw = raw::PgSide::open().await?;
    let result = async {
        let blocks = n.div_ceil(PAIRED_BLOCK);
        let count = blocks * PAIRED_BLOCK;
        let mut times = PairedTimes::default();
        for _ in 0..blocks {
            let rows = raw::save_new_rows(PAIRED_BLOCK)?;
            let t = Instant::now();
            for _ in 0..PAIRED_BLOCK {
                save_new_world(app).await?;
            }
            times.es_block_done(app, t).await?;
            times.raw += raw.write(rows).await?;
        }
        times.report("save_new", backend, count);

        let mut w = World::create("gods")?;
        app.save(&mut w).await?;
        let mut rows = raw::append_rows(count)?.into_iter();
        let mut times = PairedTimes::default();
        for _ in 0..blocks {
            let t = Instant::now();
            for i in 0..PAIRED_BLOCK {
                w.make_it_so(format!("thing {i}"))?;
                app.save(&mut w).await?;
            }
            times.es_block_done(app, t).await?;
            times.raw += raw
                .write(rows.by_ref().take(PAIRED_BLOCK).collect())
                .await?;
        }
        times.report("append_one", backend, count);
        Ok::<_, Error>(())
    }
    .await;
    raw.close().await?;
    result
}

/// The summed seconds of one `paired` workload.
#[cfg(feature = "postgres")]
#[derive(Default)]
struct PairedTimes {
    /// es's saves.
    es: f64,
    /// es's saves and the wait for their notification ids.
    numbered: f64,
    /// The driver alone.
    raw: f64,
}

#[cfg(feature = "postgres")]
impl PairedTimes {
    /// Ends an es block started at `t`: counts its saves, then waits until every row it wrote
    /// has its notification id and counts that too.
    async fn es_block_done(&mut self, app: &Application, t: Instant) -> Result<()> {
        self.es += t.elapsed().as_secs_f64();
        app.records().max_notification_id().await?;
        self.numbered += t.elapsed().as_secs_f64();
        Ok(())
    }

    /// Prints `{workload}_paired`, `{workload}_numbered` and `raw_{workload}_paired`.
    fn report(&self, workload: &str, backend: &str, count: usize) {
        raw::report_secs(&format!("{workload}_paired"), backend, count, self.es);
        raw::report_secs(
            &format!("{workload}_numbered"),
            backend,
            count,
            self.numbered,
        );
        raw::report_secs(&format!("raw_{workload}_paired"), backend, count, self.raw);
    }
}

/// Saves per block in `paired`.
#[cfg(feature = "postgres")]
const PAIRED_BLOCK: usize = 100;

/// Replays and whole-log reads on PostgreSQL with the raw side interleaved: each of 10 rounds
/// replays an aggregate of `len` events with es, then reads the same rows with the driver alone
/// (decoding the same payloads), then reads es's whole log (every event decoded), then the raw
/// side's copy of the same rows, each side's time summed. The raw table holds exactly the rows
/// of es's log (copied from it). Runs seconds apart see different loads on a shared machine;
/// rounds interleaved tens of milliseconds apart see the same. Prints `replay_paired`,
/// `raw_replay_paired`, `read_log_paired` and `raw_read_log_paired`.
#[cfg(feature = "postgres")]
async fn paired_reads(app: &Application, backend: &str, len: usize) -> Result<()> {
    let mut r = World::create("gods")?;
    for i in 0..len.saturating_sub(1) {
        r.make_it_so(format!("thing {i}"))?;
    }
    app.save(&mut r).await?;
    let id = r.id();
    app.records().max_notification_id().await?;
    let rows: Vec<_> = app
        .records()
        .get_notifications(1, i64::MAX, None)
        .await?
        .into_iter()
        .map(|n| n.item)
        .collect();
    let log_len = rows.len();
    let mut side = raw::PgSide::open().await?;
    side.write(rows.chunks(500).map(<[_]>::to_vec).collect())
        .await?;
    let mapper = app.mapper();
    let (mut es_r, mut raw_r, mut es_l, mut raw_l) = (0f64, 0f64, 0f64, 0f64);
    const ROUNDS: usize = 10;
    let result = async {
        for _ in 0..ROUNDS {
            let t = std::time::Instant::now();
            let w: World = app.get(id).await?;
            es_r += t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let n = side.replay(id).await?;
            raw_r += t.elapsed().as_secs_f64();
            if w.history.len() + 1 != len || n != len {
                return Err(Error::Operational(format!(
                    "replayed {} and {n} events, expected {len}",
                    w.history.len() + 1
                )));
            }
            let t = std::time::Instant::now();
            let log = RecordNotificationLog::for_application(app, READ_LOG_SECTION)?;
            let count = NotificationLogReader::new(Arc::new(log))
                .for_each(|n| {
                    std::hint::black_box(mapper.from_item(&n.item)?);
                    Ok(())
                })
                .await?;
            es_l += t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let raw_count = side.read_log().await?;
            raw_l += t.elapsed().as_secs_f64();
            if count != log_len || raw_count != log_len {
                return Err(Error::Operational(format!(
                    "read {count} and {raw_count} notifications, expected {log_len}"
                )));
            }
        }
        Ok(())
    }
    .await;
    side.close().await?;
    result?;
    raw::report_secs("replay_paired", backend, ROUNDS * len, es_r);
    raw::report_secs("raw_replay_paired", backend, ROUNDS * len, raw_r);
    raw::report_secs("read_log_paired", backend, ROUNDS * log_len, es_l);
    raw::report_secs("raw_read_log_paired", backend, ROUNDS * log_len, raw_l);
    Ok(())
}

/// Section size and sections fetched ahead for `read_log_sections`. One section ahead keeps
/// the database busy while a section is decoded, on the connections the saves left open; more
/// would open new ones, which costs more than it saves on a log of a few thousand events.
const READ_LOG_SECTION: usize = 1000;
const READ_LOG_PREFETCH: usize = 1;

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() -> Result<()> {
    let a = args();
    let runtime = if a.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build()
    .map_err(|e| Error::Operational(format!("cannot start the tokio runtime: {e}")))?;
    runtime.block_on(run(a))
}

async fn run(a: Args) -> Result<()> {
    if a.workloads.iter().all(|w| w.starts_with("raw_")) {
        for w in &a.workloads {
            raw::run(w, &a.backend, a.n, a.replay_len).await?;
        }
        return Ok(());
    }
    let (db, cleanup) = database(&a.backend).await?;
    let name = format!("bench{}", &Uuid::new_v4().simple().to_string()[..8]);
    let plain = app(&db, &name, false, false).await?;
    let b = a.backend.as_str();
    let result = async {
        for w in &a.workloads {
            match w.as_str() {
                "save_new" => save_new(&plain, b, "save_new", a.n).await?,
                "append_one" => append_one(&plain, b, a.n).await?,
                "replay" => replay(&plain, b, "replay", a.replay_len, None).await?,
                "read_log" => read_log(&plain, b).await?,
                "read_log_sections" => read_log_sections(&plain, b).await?,
                #[cfg(feature = "postgres")]
                "paired" if b == "postgres" => paired(&plain, b, a.n).await?,
                #[cfg(feature = "postgres")]
                "paired_reads" if b == "postgres" => paired_reads(&plain, b, a.replay_len).await?,
                // As the peer script: a tenth as many orders as --n.
                "orders" => orders::run(&db, b, (a.n / 10).max(1)).await?,
                "projection" => projection::run(&db, b, a.n).await?,
                "save_new_enc" => {
                    let enc = app(&db, &format!("{name}e"), true, false).await?;
                    save_new(&enc, b, "save_new_enc", a.n).await?
                }
                "replay_enc" => {
                    let enc = app(&db, &format!("{name}e"), true, false).await?;
                    replay(&enc, b, "replay_enc", a.replay_len, None).await?
                }
                "replay_snap" => {
                    let snap = app(&db, &format!("{name}s"), false, true).await?;
                    replay(&snap, b, "replay_snap", a.replay_len, None).await?
                }
                "replay_big" => {
                    let big = app(&db, &format!("{name}b"), false, false).await?;
                    replay(&big, b, "replay_big", a.replay_len, Some(1)).await?;
                    // The peak was reset after writing: this is the replay's own peak.
                    println!("PEAK_RSS_KB replay_big {b} {}", peak_rss_kb());
                }
                raw if raw.starts_with("raw_") => raw::run(raw, b, a.n, a.replay_len).await?,
                "micro" => micro::run(a.n)?,
                other => eprintln!("unknown workload {other}"),
            }
        }
        Ok::<(), Error>(())
    }
    .await;
    cleanup.run().await?;
    result
}
