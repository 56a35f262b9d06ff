//! Measures the MySQL/MariaDB notification-id mechanism against no ids at all.
//!
//! ```text
//! cargo run --release --features mysql --example mysql_notification_ids -- [--n 300]
//! ```
//!
//! 8 writers x N one-event transactions, interleaved in 3 rounds:
//! - `none`: the same rows in a table without notification ids (one `INSERT` per autocommit
//!   transaction), the ceiling;
//! - `es`: the es MySQL record manager (counter row per pipeline locked to commit, then the
//!   event insert), then one reader checks that ids are exactly 1..=8N.
//!
//! URL from `ES_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`).

use es_runtime::record::mysql::MySqlDatabase;
use es_runtime::record::{RecordBatch, RecordKind, RecordManager, SequencedItem};
use es_runtime::sqlx;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

const WRITERS: usize = 8;

fn item(seq: Uuid, position: i64) -> SequencedItem {
    SequencedItem {
        sequence_id: seq,
        position,
        topic: "bench::World.SomethingHappened".into(),
        state: format!(
            "{{\"id\":\"{seq}\",\"v\":{position},\"what\":\"{}\"}}",
            "x".repeat(200)
        )
        .into_bytes()
        .into(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url =
        std::env::var("ES_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .iter()
        .position(|a| a == "--n")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let prefix = format!("es_mbench_{}_", &Uuid::new_v4().simple().to_string()[..8]);
    let db = MySqlDatabase::connect_with(&url, WRITERS as u32 + 2)
        .await?
        .with_table_prefix(&prefix)?;
    db.setup_tables().await?;
    let plain = format!("{prefix}plain");
    sqlx::raw_sql(sqlx::AssertSqlSafe(String::from(&format!(
        "CREATE TABLE {plain} (application_name VARCHAR(255) NOT NULL, originator_id BINARY(16) NOT NULL, \
         originator_version BIGINT NOT NULL, pipeline_id BIGINT NOT NULL, topic TEXT NOT NULL, \
         state LONGBLOB NOT NULL, PRIMARY KEY (application_name, originator_id, originator_version)) ENGINE=InnoDB"
    ))))
    .execute(db.pool())
    .await?;
    let rounds = 3;
    let per_round = n.div_ceil(rounds);
    let (mut none_secs, mut es_secs) = (0f64, 0f64);
    for r in 0..rounds {
        let sql: Arc<str> = format!(
            "INSERT INTO {plain} (application_name, pipeline_id, originator_id, originator_version, topic, state) \
             VALUES ('bench', 0, ?, ?, ?, ?)"
        )
        .into();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..WRITERS {
            let (pool, sql) = (db.pool().clone(), sql.clone());
            tasks.push(tokio::spawn(async move {
                let seq = Uuid::new_v4();
                for i in 0..per_round {
                    let it = item(seq, i as i64);
                    sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(it.sequence_id)
                        .bind(it.position)
                        .bind(it.topic.into_owned())
                        .bind(it.state.to_vec())
                        .execute(&pool)
                        .await?;
                }
                Ok::<(), sqlx::Error>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        none_secs += start.elapsed().as_secs_f64();
        let app = format!("bench{r}");
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..WRITERS {
            let m = db.record_manager(RecordKind::Events, &app, 0);
            tasks.push(tokio::spawn(async move {
                let seq = Uuid::new_v4();
                for i in 0..per_round {
                    m.write(&RecordBatch::items(vec![item(seq, i as i64)]))
                        .await?;
                }
                Ok::<(), es_runtime::Error>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        es_secs += start.elapsed().as_secs_f64();
        let reader = db.record_manager(RecordKind::Events, &app, 0);
        let total = (WRITERS * per_round) as i64;
        let ids: Vec<i64> = reader
            .get_notifications(1, total + 10, None)
            .await?
            .iter()
            .map(|x| x.id)
            .collect();
        if ids != (1..=total).collect::<Vec<_>>() {
            return Err("es ids are not exactly 1..=total".into());
        }
    }
    let total = WRITERS * per_round * rounds;
    println!(
        "MySQL/MariaDB, {WRITERS} writers x {} one-event transactions ({total} in all)",
        per_round * rounds
    );
    println!(
        "none (no notification ids)  {total} tx in {none_secs:.3} s = {:.0} tx/s",
        total as f64 / none_secs
    );
    println!(
        "es (counter row per pipeline) {total} tx in {es_secs:.3} s = {:.0} tx/s",
        total as f64 / es_secs
    );
    println!("ratio es/none = {:.2}", none_secs / es_secs);
    sqlx::raw_sql(sqlx::AssertSqlSafe(String::from(&format!(
        "DROP TABLE {plain}"
    ))))
    .execute(db.pool())
    .await?;
    db.drop_tables().await?;
    Ok(())
}
