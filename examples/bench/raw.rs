//! The raw limit: the same rows written and read with the database driver alone, in the same
//! number of transactions, without es (no hashing, mapping, notification ids or decoding).
//! Each run uses a table of its own.

use crate::clock::Instant;
use crate::world::{world, World};
use es_runtime::mapper::Mapper;
use es_runtime::prelude::*;
use es_runtime::record::SequencedItem;

/// A notification row as the raw readers fetch it: id, originator id, version, topic, state.
type LogRow = (i64, Vec<u8>, i64, String, Vec<u8>);

/// Pre-mapped rows: `n` saves of (Created, SomethingHappened), as es would write them.
pub fn save_new_rows(n: usize) -> Result<Vec<Vec<SequencedItem>>> {
    let m = Mapper::new();
    (0..n)
        .map(|_| {
            let mut w = World::create("gods")?;
            w.make_it_so("dinosaurs".into())?;
            m.to_items(&w.collect_pending())
        })
        .collect()
}

/// Pre-mapped rows: one aggregate, `n` further events, one per save.
pub fn append_rows(n: usize) -> Result<Vec<Vec<SequencedItem>>> {
    let m = Mapper::new();
    let mut w = World::create("gods")?;
    w.collect_pending();
    (0..n)
        .map(|i| {
            w.make_it_so(format!("thing {i}"))?;
            m.to_items(&w.collect_pending())
        })
        .collect()
}

/// The payload JSON of a state as es wrote these rows (compact, no optional fields): the raw
/// side knows the layout it wrote and skips the header without checking it.
fn payload(state: &[u8]) -> Result<&[u8]> {
    let bad = || Error::Operational("raw: a state not in the layout written".into());
    // Tag, flags, schema (one byte), timestamp (8 bytes), then the previous hash's tag.
    let mut at = 11;
    match *state.get(at).ok_or_else(bad)? {
        0 => at += 1 + 32,
        1 => at += 2 + usize::from(*state.get(at + 1).ok_or_else(bad)?),
        _ => return Err(bad()),
    }
    state.get(at + 32..).ok_or_else(bad)
}

/// What the raw side builds from a replay's rows: the aggregate's state, as es builds a `World`.
#[derive(Default)]
pub struct RawWorld {
    ruler: String,
    history: Vec<String>,
}

impl RawWorld {
    /// Decodes one row's payload (a `Created` at version 0, else a `SomethingHappened`) into
    /// the state, as es decodes and applies it.
    fn apply(&mut self, version: i64, state: &[u8]) -> Result<()> {
        let json = payload(state)?;
        if version == 0 {
            let c: world::Created = serde_json::from_slice(json).map_err(op)?;
            self.ruler = c.ruler;
        } else {
            let h: world::SomethingHappened = serde_json::from_slice(json).map_err(op)?;
            self.history.push(h.what);
        }
        Ok(())
    }
}

/// Decodes a replay's rows (version, state) into a [`RawWorld`].
fn replay_rows<S: AsRef<[u8]>>(rows: &[(i64, S)]) -> Result<()> {
    let mut w = RawWorld::default();
    for (version, state) in rows {
        w.apply(*version, state.as_ref())?;
    }
    std::hint::black_box(w);
    Ok(())
}

/// Decodes one log row's payload by its topic into the payload type, as es's log reader
/// decodes each notification into its event.
fn decode_logged(topic: &str, state: &[u8]) -> Result<()> {
    let json = payload(state)?;
    if topic == <world::Created as EventPayload>::TOPIC {
        std::hint::black_box(serde_json::from_slice::<world::Created>(json).map_err(op)?);
    } else {
        std::hint::black_box(serde_json::from_slice::<world::SomethingHappened>(json).map_err(op)?);
    }
    Ok(())
}

use crate::clock::report;

/// Runs a `raw_*` workload (`raw_save_new`, `raw_append_one`, `raw_replay`, `raw_read_log`).
pub async fn run(workload: &str, backend: &str, n: usize, replay_len: usize) -> Result<()> {
    match backend {
        #[cfg(feature = "postgres")]
        "postgres" => pg::run(workload, backend, n, replay_len).await,
        #[cfg(feature = "mysql")]
        "mysql" => my::run(workload, backend, n, replay_len).await,
        #[cfg(feature = "sqlite")]
        "sqlite-memory" | "sqlite-file" => lite::run(workload, backend, n, replay_len),
        "memory" => mem::run(workload, backend, n, replay_len),
        _ => {
            eprintln!("no raw limit for backend {backend} in this build");
            Ok(())
        }
    }
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub fn report_secs(workload: &str, backend: &str, count: usize, s: f64) {
    println!(
        "RESULT {workload} {backend} {count} {s:.6} {:.1}",
        count as f64 / s
    );
}

fn op(e: impl std::fmt::Display) -> Error {
    Error::Operational(e.to_string())
}

fn table_name() -> String {
    format!(
        "es_bench_raw_{}",
        &Uuid::new_v4().simple().to_string()[..12]
    )
}

#[cfg(feature = "postgres")]
pub use pg::PgSide;

#[cfg(feature = "postgres")]
mod pg {
    use super::*;
    use sqlx::{Connection, PgConnection};

    /// The raw side on PostgreSQL: one connection of its own (no pool, so no check of the
    /// connection before and after each statement), a table of its own, statements prepared
    /// once.
    pub struct PgSide {
        conn: PgConnection,
        table: String,
        insert: String,
    }

    impl PgSide {
        /// Connects to `ES_POSTGRES_URL` (the machine's server by default) and makes the table.
        pub async fn open() -> Result<Self> {
            let url = std::env::var("ES_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let mut conn = PgConnection::connect(&url).await.map_err(op)?;
            let t = table_name();
            sqlx::query(sqlx::AssertSqlSafe(String::from(&format!(
                "CREATE TABLE {t} (originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text NOT NULL, \
                 state bytea NOT NULL, id bigserial, PRIMARY KEY (originator_id, originator_version))"
            ))))
            .execute(&mut conn)
            .await
            .map_err(op)?;
            let insert = format!(
                "INSERT INTO {t} (originator_id, originator_version, topic, state) \
                 SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::text[], $4::bytea[])"
            );
            Ok(PgSide {
                conn,
                table: t,
                insert,
            })
        }

        /// Writes the saves one statement (one transaction) each; returns the seconds taken.
        pub async fn write(&mut self, rows: Vec<Vec<SequencedItem>>) -> Result<f64> {
            let started = Instant::now();
            for save in rows {
                let ids: Vec<Uuid> = save.iter().map(|i| i.sequence_id).collect();
                let pos: Vec<i64> = save.iter().map(|i| i.position).collect();
                let topics: Vec<&str> = save.iter().map(|i| &*i.topic).collect();
                let states: Vec<&[u8]> = save.iter().map(|i| &i.state[..]).collect();
                sqlx::query(sqlx::AssertSqlSafe(String::from(&self.insert)))
                    .bind(ids)
                    .bind(pos)
                    .bind(topics)
                    .bind(states)
                    .execute(&mut self.conn)
                    .await
                    .map_err(op)?;
            }
            Ok(started.elapsed().as_secs_f64())
        }

        /// Reads one sequence's rows and decodes them into a [`RawWorld`]; returns how many.
        pub async fn replay(&mut self, seq: Uuid) -> Result<usize> {
            let sql = format!(
                "SELECT originator_version, state FROM {} WHERE originator_id = $1 ORDER BY originator_version",
                self.table
            );
            let got: Vec<(i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(seq)
                .fetch_all(&mut self.conn)
                .await
                .map_err(op)?;
            replay_rows(&got)?;
            Ok(got.len())
        }

        /// Reads every row in id order, 1,000 a statement, decoding each payload; returns how
        /// many.
        pub async fn read_log(&mut self) -> Result<usize> {
            let sql = format!(
                "SELECT id, originator_id, originator_version, topic, state FROM {} \
                 WHERE id > $1 ORDER BY id LIMIT 1000",
                self.table
            );
            let (mut next, mut count) = (0i64, 0usize);
            loop {
                let got: Vec<(i64, Uuid, i64, String, Vec<u8>)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(String::from(&sql)))
                        .bind(next)
                        .fetch_all(&mut self.conn)
                        .await
                        .map_err(op)?;
                let Some(last) = got.last() else { break };
                next = last.0;
                count += got.len();
                for (_, _, _, topic, state) in &got {
                    decode_logged(topic, state)?;
                }
            }
            Ok(count)
        }

        /// Drops the table.
        pub async fn close(mut self) -> Result<()> {
            sqlx::query(sqlx::AssertSqlSafe(String::from(&format!(
                "DROP TABLE {}",
                self.table
            ))))
            .execute(&mut self.conn)
            .await
            .map_err(op)?;
            Ok(())
        }
    }

    /// Runs one `raw_*` workload on a side of its own.
    pub async fn run(workload: &str, backend: &str, n: usize, replay_len: usize) -> Result<()> {
        let mut side = PgSide::open().await?;
        let result = run_on(&mut side, workload, backend, n, replay_len).await;
        side.close().await?;
        result
    }

    async fn run_on(
        side: &mut PgSide,
        workload: &str,
        backend: &str,
        n: usize,
        replay_len: usize,
    ) -> Result<()> {
        match workload {
            "raw_save_new" => {
                let secs = side.write(save_new_rows(n)?).await?;
                report_secs("raw_save_new", backend, n, secs);
            }
            "raw_append_one" => {
                let secs = side.write(append_rows(n)?).await?;
                report_secs("raw_append_one", backend, n, secs);
            }
            "raw_replay" => {
                let rows = append_rows(replay_len)?;
                let seq = rows[0][0].sequence_id;
                side.write(rows).await?;
                let reps = (20_000 / replay_len).max(1);
                let started = Instant::now();
                for _ in 0..reps {
                    side.replay(seq).await?;
                }
                report("raw_replay", backend, reps * replay_len, started);
            }
            "raw_read_log" => {
                // The rows the es run's log holds: save_new, append_one and replay's.
                let mut rows = save_new_rows(n)?;
                rows.extend(append_rows(n)?);
                rows.extend(append_rows(replay_len)?);
                side.write(rows).await?;
                let started = Instant::now();
                let count = side.read_log().await?;
                report("raw_read_log", backend, count, started);
            }
            other => eprintln!("unknown raw workload {other}"),
        }
        Ok(())
    }
}

#[cfg(feature = "mysql")]
mod my {
    use super::*;
    use sqlx::mysql::MySqlPoolOptions;

    pub async fn run(workload: &str, backend: &str, n: usize, replay_len: usize) -> Result<()> {
        let url = std::env::var("ES_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
        let pool = MySqlPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .map_err(op)?;
        let t = table_name();
        sqlx::query(sqlx::AssertSqlSafe(String::from(&format!(
            "CREATE TABLE {t} (originator_id BINARY(16) NOT NULL, originator_version BIGINT NOT NULL, topic TEXT NOT NULL, \
             state LONGBLOB NOT NULL, id BIGINT AUTO_INCREMENT UNIQUE, PRIMARY KEY (originator_id, originator_version))"
        ))))
        .execute(&pool)
        .await
        .map_err(op)?;
        let write = |rows: Vec<Vec<SequencedItem>>, label: &'static str| {
            let pool = pool.clone();
            let t = t.clone();
            async move {
                let count = rows.len();
                let started = Instant::now();
                for save in rows {
                    let placeholders = vec!["(?, ?, ?, ?)"; save.len()].join(", ");
                    let sql = format!("INSERT INTO {t} (originator_id, originator_version, topic, state) VALUES {placeholders}");
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(String::from(&sql)));
                    for i in &save {
                        q = q
                            .bind(i.sequence_id.as_bytes().to_vec())
                            .bind(i.position)
                            .bind(&*i.topic)
                            .bind(&i.state[..]);
                    }
                    q.execute(&pool).await.map_err(op)?;
                }
                if !label.is_empty() {
                    report(label, backend, count, started);
                }
                Ok::<_, Error>(())
            }
        };
        let result = match workload {
            "raw_save_new" => write(save_new_rows(n)?, "raw_save_new").await,
            "raw_append_one" => write(append_rows(n)?, "raw_append_one").await,
            "raw_replay" => {
                let rows = append_rows(replay_len)?;
                let seq = rows[0][0].sequence_id;
                write(rows, "").await?;
                let reps = (20_000 / replay_len).max(1);
                let started = Instant::now();
                for _ in 0..reps {
                    let got: Vec<(i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(String::from(&format!(
                        "SELECT originator_version, state FROM {t} WHERE originator_id = ? ORDER BY originator_version"
                    ))))
                    .bind(seq.as_bytes().to_vec())
                    .fetch_all(&pool)
                    .await
                    .map_err(op)?;
                    replay_rows(&got)?;
                }
                report("raw_replay", backend, reps * replay_len, started);
                Ok(())
            }
            "raw_read_log" => {
                let mut rows = save_new_rows(n)?;
                rows.extend(append_rows(n)?);
                rows.extend(append_rows(replay_len)?);
                write(rows, "").await?;
                let sql = format!(
                    "SELECT id, originator_id, originator_version, topic, state FROM {t} \
                     WHERE id > ? ORDER BY id LIMIT 1000"
                );
                let started = Instant::now();
                let (mut next, mut count) = (0i64, 0usize);
                loop {
                    let got: Vec<LogRow> = sqlx::query_as(sqlx::AssertSqlSafe(String::from(&sql)))
                        .bind(next)
                        .fetch_all(&pool)
                        .await
                        .map_err(op)?;
                    let Some(last) = got.last() else { break };
                    next = last.0;
                    count += got.len();
                    for (_, _, _, topic, state) in &got {
                        decode_logged(topic, state)?;
                    }
                }
                report("raw_read_log", backend, count, started);
                Ok(())
            }
            other => {
                eprintln!("unknown raw workload {other} for mysql");
                Ok(())
            }
        };
        sqlx::query(sqlx::AssertSqlSafe(String::from(&format!(
            "DROP TABLE {t}"
        ))))
        .execute(&pool)
        .await
        .map_err(op)?;
        result
    }
}

#[cfg(feature = "sqlite")]
mod lite {
    use super::*;

    pub fn run(workload: &str, backend: &str, n: usize, replay_len: usize) -> Result<()> {
        let mut conn = if backend == "sqlite-file" {
            let dir = std::env::temp_dir().join(format!("es-raw-{}", Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).map_err(op)?;
            let c = rusqlite::Connection::open(dir.join("raw.db")).map_err(op)?;
            c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
                .map_err(op)?;
            c
        } else {
            rusqlite::Connection::open_in_memory().map_err(op)?
        };
        let t = table_name();
        conn.execute_batch(&format!(
            "CREATE TABLE {t} (originator_id BLOB NOT NULL, originator_version INTEGER NOT NULL, topic TEXT NOT NULL, \
             state BLOB NOT NULL, PRIMARY KEY (originator_id, originator_version))"
        ))
        .map_err(op)?;
        let mut write = |rows: Vec<Vec<SequencedItem>>, label: &str| -> Result<()> {
            let count = rows.len();
            let started = Instant::now();
            for save in rows {
                let tx = conn.transaction().map_err(op)?;
                {
                    let placeholders = vec!["(?, ?, ?, ?)"; save.len()].join(", ");
                    let mut st = tx
                        .prepare_cached(&format!("INSERT INTO {t} VALUES {placeholders}"))
                        .map_err(op)?;
                    let fields: Vec<(&[u8], i64, &str, &[u8])> = save
                        .iter()
                        .map(|i| {
                            (
                                &i.sequence_id.as_bytes()[..],
                                i.position,
                                &*i.topic,
                                &i.state[..],
                            )
                        })
                        .collect();
                    let mut params: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(save.len() * 4);
                    for f in &fields {
                        params.push(&f.0);
                        params.push(&f.1);
                        params.push(&f.2);
                        params.push(&f.3);
                    }
                    st.execute(rusqlite::params_from_iter(params.iter()))
                        .map_err(op)?;
                }
                tx.commit().map_err(op)?;
            }
            if !label.is_empty() {
                report(label, backend, count, started);
            }
            Ok(())
        };
        match workload {
            "raw_save_new" => write(save_new_rows(n)?, "raw_save_new"),
            "raw_append_one" => write(append_rows(n)?, "raw_append_one"),
            "raw_replay" => {
                let rows = append_rows(replay_len)?;
                let seq = rows[0][0].sequence_id;
                write(rows, "")?;
                let reps = (20_000 / replay_len).max(1);
                let started = Instant::now();
                let mut st = conn
                    .prepare_cached(&format!(
                        "SELECT originator_version, state FROM {t} WHERE originator_id = ? ORDER BY originator_version"
                    ))
                    .map_err(op)?;
                for _ in 0..reps {
                    let got: Vec<(i64, Vec<u8>)> = st
                        .query_map([seq.as_bytes().to_vec()], |r| Ok((r.get(0)?, r.get(1)?)))
                        .map_err(op)?
                        .collect::<std::result::Result<_, _>>()
                        .map_err(op)?;
                    replay_rows(&got)?;
                }
                report("raw_replay", backend, reps * replay_len, started);
                Ok(())
            }
            "raw_read_log" => {
                let mut rows = save_new_rows(n)?;
                rows.extend(append_rows(n)?);
                rows.extend(append_rows(replay_len)?);
                write(rows, "")?;
                let mut st = conn
                    .prepare_cached(&format!(
                        "SELECT rowid, originator_id, originator_version, topic, state FROM {t} \
                         WHERE rowid > ? ORDER BY rowid LIMIT 1000"
                    ))
                    .map_err(op)?;
                let started = Instant::now();
                let (mut next, mut count) = (0i64, 0usize);
                loop {
                    let got: Vec<LogRow> = st
                        .query_map([next], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                        })
                        .map_err(op)?
                        .collect::<std::result::Result<_, _>>()
                        .map_err(op)?;
                    let Some(last) = got.last() else { break };
                    next = last.0;
                    count += got.len();
                    for (_, _, _, topic, state) in &got {
                        decode_logged(topic, state)?;
                    }
                }
                report("raw_read_log", backend, count, started);
                Ok(())
            }
            other => {
                eprintln!("unknown raw workload {other} for sqlite");
                Ok(())
            }
        }
    }
}

/// The in-memory limit: the rows in a map and a log behind a lock, as a store in memory keeps
/// them, read by copying out what is asked for (the states shared, not copied) and decoding.
mod mem {
    use super::*;
    use es_runtime::record::Bytes;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Rows {
        sequences: HashMap<Uuid, Vec<(i64, Bytes)>>,
        log: Vec<SequencedItem>,
    }

    impl Rows {
        fn write(&mut self, rows: Vec<Vec<SequencedItem>>) {
            for save in rows {
                for i in save {
                    self.sequences
                        .entry(i.sequence_id)
                        .or_default()
                        .push((i.position, i.state.clone()));
                    self.log.push(i);
                }
            }
        }
    }

    pub fn run(workload: &str, backend: &str, n: usize, replay_len: usize) -> Result<()> {
        let store = Mutex::new(Rows::default());
        let lock = || store.lock().map_err(|_| op("poisoned"));
        match workload {
            "raw_replay" => {
                let rows = append_rows(replay_len)?;
                let seq = rows[0][0].sequence_id;
                lock()?.write(rows);
                let reps = (20_000 / replay_len).max(1);
                let started = Instant::now();
                for _ in 0..reps {
                    let got: Vec<(i64, Bytes)> = lock()?.sequences[&seq].clone();
                    replay_rows(&got)?;
                }
                report("raw_replay", backend, reps * replay_len, started);
            }
            "raw_read_log" => {
                let mut rows = save_new_rows(n)?;
                rows.extend(append_rows(n)?);
                rows.extend(append_rows(replay_len)?);
                lock()?.write(rows);
                let started = Instant::now();
                let (mut next, mut count) = (0usize, 0usize);
                loop {
                    let got: Vec<SequencedItem> = {
                        let rows = lock()?;
                        let end = (next + 1000).min(rows.log.len());
                        rows.log[next..end].to_vec()
                    };
                    if got.is_empty() {
                        break;
                    }
                    next += got.len();
                    count += got.len();
                    for i in &got {
                        decode_logged(&i.topic, &i.state)?;
                    }
                }
                report("raw_read_log", backend, count, started);
            }
            other => eprintln!("unknown raw workload {other} for memory"),
        }
        Ok(())
    }
}
