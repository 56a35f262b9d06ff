//! Measures notification-id mechanisms on PostgreSQL, side by side in one run.
//!
//! ```text
//! cargo run --release --features postgres --example pg_notification_ids -- [--n 500] [--batches 2000]
//! ```
//!
//! Part 1: 8 writers x N one-event transactions, under
//! - `none`: no notification ids at all (plain one-statement insert), the ceiling;
//! - `table_lock`: `LOCK TABLE ... IN EXCLUSIVE MODE` held to commit, id = max + 1 (lock,
//!   insert and implicit commit sent in one round trip, the fastest form of that approach);
//!
//! (`none` and `table_lock` writers each have a connection of their own, as es keeps its
//! connections between statements: no pool check round trips on either side.)
//! - `es`: the es PostgreSQL record manager (one-statement insert with the transaction id, ids
//!   assigned by the sequencer) with a reader tailing the log the whole time; the clock stops
//!   when every event has its id.
//!
//! Part 2: one connection saving `--batches` transactions of 1 and of 10 events, es against the
//! same rows written with plain sqlx on a connection of its own (one `UNNEST` insert per
//! transaction into an equivalent table without notification ids): the raw limit.
//!
//! URL from `ES_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

use es_runtime::record::postgres::PostgresDatabase;
use es_runtime::record::{RecordBatch, RecordKind, RecordManager, SequencedItem};
use es_runtime::sqlx::{self, postgres::PgPoolOptions, Connection, PgConnection, PgPool};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const WRITERS: usize = 8;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn state() -> Vec<u8> {
    // About the size of a small domain event (~270 bytes of JSON).
    format!(
        "{{\"originator_id\":\"{}\",\"originator_version\":1,\"timestamp\":1700000000000000,\
         \"previous_hash\":\"{:064}\",\"hash\":\"{:064}\",\"what\":\"a thing happened to a world\"}}",
        Uuid::new_v4(),
        0,
        1
    )
    .into_bytes()
}

fn item(seq: Uuid, position: i64) -> SequencedItem {
    SequencedItem {
        sequence_id: seq,
        position,
        topic: "bench::World.SomethingHappened".into(),
        state: state().into(),
    }
}

fn report(label: &str, count: usize, secs: f64, unit: &str) -> f64 {
    let rate = count as f64 / secs;
    println!("{label:<44} {count:>7} {unit} in {secs:>7.3} s = {rate:>9.0} {unit}/s");
    rate
}

/// One connection per writer, shared by the rounds.
type Conns = Arc<Vec<tokio::sync::Mutex<PgConnection>>>;

/// 8 tasks, each running `n` times the transaction `f(writer, i)` makes.
async fn concurrent<F, Fut>(n: usize, f: F) -> Result<f64, Box<dyn std::error::Error>>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let f = Arc::new(f);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                f(w, i).await?;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// One round of the three modes: seconds for none, table lock, es writers, es until all ids
/// are given, and the number of reads the tailing reader made.
async fn round(
    pool: &PgPool,
    conns: &Conns,
    db: &PostgresDatabase,
    schema: &str,
    n: usize,
    r: usize,
) -> Result<[f64; 5], Box<dyn std::error::Error>> {
    let total = WRITERS * n;
    let app = format!("bench{r}");
    // 1. No ordering.
    let seqs: Arc<Vec<Uuid>> = Arc::new((0..WRITERS).map(|_| Uuid::new_v4()).collect());
    let sql: Arc<str> = format!(
        "INSERT INTO {schema}.plain (application_name, pipeline_id, originator_id, originator_version, topic, state) \
         VALUES ($5, 0, $1, $2, $3, $4)"
    )
    .into();
    let (c, s, q, a) = (conns.clone(), seqs.clone(), sql.clone(), app.clone());
    let none = concurrent(n, move |w, i| {
        let (c, seq, q, a) = (c.clone(), s[w], q.clone(), a.clone());
        async move {
            let it = item(seq, i as i64);
            let mut conn = c[w].lock().await;
            sqlx::query(sqlx::AssertSqlSafe(q.clone()))
                .bind(it.sequence_id)
                .bind(it.position)
                .bind(it.topic.into_owned())
                .bind(it.state.to_vec())
                .bind(a)
                .execute(&mut *conn)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await?;

    // 2. Table lock held to commit; lock, insert and commit in one round trip.
    let (c, s, a) = (conns.clone(), seqs.clone(), app.clone());
    let sch = schema.to_string();
    let locked = concurrent(n, move |w, i| {
        let (c, seq, sch, a) = (c.clone(), s[w], sch.clone(), a.clone());
        async move {
            let it = item(seq, i as i64);
            // Values are generated here (uuid, integers, ASCII names, hex): safe as literals.
            let hex: String = it.state.iter().map(|b| format!("{b:02x}")).collect();
            let sql = format!(
                "LOCK TABLE {sch}.locked IN EXCLUSIVE MODE; \
                 INSERT INTO {sch}.locked (notification_id, application_name, pipeline_id, originator_id, \
                 originator_version, topic, state) \
                 SELECT COALESCE(MAX(notification_id), 0) + 1, '{a}', 0, '{}', {}, '{}', '\\x{hex}'::bytea \
                 FROM {sch}.locked WHERE application_name = '{a}' AND pipeline_id = 0",
                it.sequence_id, it.position, it.topic
            );
            let mut conn = c[w].lock().await;
            // Executor methods return boxed futures, which keeps this one `Send`.
            let done = sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(sqlx::AssertSqlSafe(String::from(&sql)))).await;
            done.map(|_| ()).map_err(|e| e.to_string())
        }
    })
    .await?;
    let max: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(String::from(&format!(
        "SELECT COALESCE(MAX(notification_id), 0) FROM {schema}.locked WHERE application_name = $1"
    ))))
    .bind(&app)
    .fetch_one(pool)
    .await?;
    if max as usize != total {
        return Err(format!("table lock: max id {max}, expected {total}").into());
    }

    // 3. es: writers plus a tailing reader; done when all ids are assigned.
    let reader = db.record_manager(RecordKind::Events, &app, 0);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tail = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut next = 1i64;
            let mut reads = 0usize;
            if std::env::args().any(|a| a == "--no-tail") {
                // Variant: no reader while writing; one read assigns all ids at the end.
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            while next <= total as i64 {
                let page = reader.get_notifications(next, next + 999, None).await?;
                reads += 1;
                for (k, note) in page.iter().enumerate() {
                    if note.id != next + k as i64 {
                        return Err(es_runtime::Error::Operational(format!(
                            "gap before {}",
                            note.id
                        )));
                    }
                }
                next += page.len() as i64;
                if page.is_empty()
                    || (page.len() < 100 && !stop.load(std::sync::atomic::Ordering::SeqCst))
                {
                    // Poll like a real follower would: wait a moment when there is little new.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            Ok::<usize, es_runtime::Error>(reads)
        })
    };
    let managers: Arc<Vec<_>> = Arc::new(
        (0..WRITERS)
            .map(|_| db.record_manager(RecordKind::Events, &app, 0))
            .collect(),
    );
    let seqs: Arc<Vec<Uuid>> = Arc::new((0..WRITERS).map(|_| Uuid::new_v4()).collect());
    let start = Instant::now();
    let m = managers.clone();
    let writers = concurrent(n, move |w, i| {
        let (m, seq) = (m.clone(), seqs[w]);
        async move {
            m[w].write(&RecordBatch::items(vec![item(seq, i as i64)]))
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await?;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = tail.await??;
    let all = start.elapsed().as_secs_f64();
    Ok([none, locked, writers, all, reads as f64])
}

async fn exec(pool: &PgPool, sql: &str) -> Result<(), Box<dyn std::error::Error>> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("ES_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let n = arg("--n", 500);
    let batches = arg("--batches", 2000);
    let schema = format!("es_bench_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let pool = PgPoolOptions::new()
        .max_connections(WRITERS as u32 + 2)
        .connect(&url)
        .await?;
    exec(&pool, &format!("CREATE SCHEMA {schema}")).await?;
    let cols = "application_name TEXT NOT NULL, originator_id UUID NOT NULL, originator_version BIGINT NOT NULL, \
                pipeline_id BIGINT NOT NULL, topic TEXT NOT NULL, state BYTEA NOT NULL, causal_dependencies TEXT, \
                PRIMARY KEY (application_name, originator_id, originator_version)";
    exec(&pool, &format!("CREATE TABLE {schema}.plain ({cols})")).await?;
    exec(
        &pool,
        &format!(
            "CREATE TABLE {schema}.locked (notification_id BIGINT NOT NULL, {cols}); \
             CREATE UNIQUE INDEX ON {schema}.locked (application_name, pipeline_id, notification_id)"
        ),
    )
    .await?;
    let background = !std::env::args().any(|a| a == "--no-background");
    let db = PostgresDatabase::from_pool(pool.clone())
        .with_schema(&schema)?
        .with_background_sequencing(background);
    db.setup_tables().await?;
    let rounds = arg("--rounds", 3).max(1);
    let per_round = n.div_ceil(rounds);
    let total = WRITERS * per_round * rounds;
    println!(
        "PostgreSQL, {WRITERS} writers x {} one-event transactions ({total} in all), \
         modes interleaved in {rounds} rounds",
        per_round * rounds
    );
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        writers.push(tokio::sync::Mutex::new(PgConnection::connect(&url).await?));
    }
    let conns: Conns = Arc::new(writers);
    let mut secs = [0f64; 4];
    let mut reads = 0;
    for r in 0..rounds {
        let t = round(&pool, &conns, &db, &schema, per_round, r).await?;
        for k in 0..4 {
            secs[k] += t[k];
        }
        reads += t[4] as usize;
    }
    let none = report("none (no notification ids)", total, secs[0], "tx");
    let locked = report(
        "table_lock (EXCLUSIVE held to commit)",
        total,
        secs[1],
        "tx",
    );
    report("es writers alone (ids pending)", total, secs[2], "tx");
    let es = report(
        "es (writers + tailing reader, all ids given)",
        total,
        secs[3],
        "tx",
    );
    println!("  tailing readers made {reads} reads; ids 1..=n in each round, no gap observed");
    println!(
        "  (es background sequencer: {})",
        if background { "on" } else { "off" }
    );
    println!(
        "ratios: es/table_lock = {:.2}x, es/none = {:.2}",
        es / locked,
        es / none
    );

    // Part 2: single connection, es against plain sqlx, same rows and transactions. (A pool of
    // two, of which es keeps one: a pool of one es leaves to the application.)
    let mut one = PgConnection::connect(&url).await?;
    let db1 = PostgresDatabase::from_pool(
        PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await?,
    )
    .with_schema(&schema)?
    .with_background_sequencing(false);
    // The same with the background sequencer, which needs a second connection.
    let two = PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await?;
    let db2 = PostgresDatabase::from_pool(two).with_schema(&schema)?;
    let raw_sql = format!(
        "INSERT INTO {schema}.plain (application_name, pipeline_id, originator_id, originator_version, topic, state) \
         SELECT 'raw', 0, i.id, i.pos, i.topic, i.state \
         FROM UNNEST($1::UUID[], $2::BIGINT[], $3::TEXT[], $4::BYTEA[]) AS i(id, pos, topic, state)"
    );
    println!("\nOne connection, {batches} transactions per row (es vs the raw limit)");
    for per_tx in [1usize, 10] {
        let rows: Vec<Vec<SequencedItem>> = (0..batches)
            .map(|b| {
                let seq = Uuid::new_v4();
                (0..per_tx)
                    .map(|k| item(seq, (b * per_tx + k) as i64))
                    .collect()
            })
            .collect();
        let m = db1.record_manager(RecordKind::Events, &format!("single{per_tx}"), 0);
        let m2 = db2.record_manager(RecordKind::Events, &format!("bg{per_tx}"), 0);
        let es_batches: Vec<RecordBatch> =
            rows.iter().map(|r| RecordBatch::items(r.clone())).collect();
        // Alternate blocks of 100 transactions so both sides see the same load on the machine.
        let bg_batches: Vec<RecordBatch> = rows
            .iter()
            .map(|r| {
                let seq = Uuid::new_v4();
                let items = r.iter().map(|i| SequencedItem {
                    sequence_id: seq,
                    ..i.clone()
                });
                RecordBatch::items(items.collect())
            })
            .collect();
        let (mut es_secs, mut bg_secs, mut raw_secs) = (0f64, 0f64, 0f64);
        for ((block, bblock), rblock) in es_batches
            .chunks(100)
            .zip(bg_batches.chunks(100))
            .zip(rows.chunks(100))
        {
            let start = Instant::now();
            for b in block {
                m.write(b).await?;
            }
            es_secs += start.elapsed().as_secs_f64();
            let start = Instant::now();
            for b in bblock {
                m2.write(b).await?;
            }
            bg_secs += start.elapsed().as_secs_f64();
            let start = Instant::now();
            for r in rblock {
                sqlx::query(sqlx::AssertSqlSafe(String::from(&raw_sql)))
                    .bind(r.iter().map(|i| i.sequence_id).collect::<Vec<_>>())
                    .bind(r.iter().map(|i| i.position).collect::<Vec<_>>())
                    .bind(r.iter().map(|i| &*i.topic).collect::<Vec<_>>())
                    .bind(r.iter().map(|i| &i.state[..]).collect::<Vec<_>>())
                    .execute(&mut one)
                    .await?;
            }
            raw_secs += start.elapsed().as_secs_f64();
        }
        let events = batches * per_tx;
        let e = report(
            &format!("es save, {per_tx} event(s)/tx"),
            events,
            es_secs,
            "events",
        );
        let b = report(
            &format!("es save + background sequencer, {per_tx}/tx"),
            events,
            bg_secs,
            "events",
        );
        let r = report(
            &format!("raw sqlx, {per_tx} event(s)/tx"),
            events,
            raw_secs,
            "events",
        );
        println!(
            "  es/raw = {:.0}%, es with background sequencer/raw = {:.0}%",
            100.0 * e / r,
            100.0 * b / r
        );
        let max = m.max_notification_id().await?;
        assert_eq!(max as usize, events);
    }
    exec(&pool, &format!("DROP SCHEMA {schema} CASCADE")).await?;
    Ok(())
}
