//! PostgreSQL: a kept connection cut while idle (the server ended its session) does not fail
//! the next call (issue 12, defect 5). Reads are retried on a fresh connection; a write is
//! retried when the connection was found broken before the statement could have run.
#![cfg(feature = "postgres")]

mod server_support;

use es_runtime::record::postgres::PostgresDatabase;
use es_runtime::record::{ItemQuery, RecordBatch, RecordKind, RecordManager};
use es_runtime::sqlx;
use server_support::{item, server_url, unique_name};
use std::time::Duration;
use uuid::Uuid;

/// Ends every session of `application_name` from a connection of its own; returns how many.
async fn cut(url: &str, application_name: &str) -> i64 {
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(application_name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    // Let the backends go (pg_terminate_backend only signals them).
    for _ in 0..100 {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
                .bind(application_name)
                .fetch_one(&mut admin)
                .await
                .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    n
}

async fn pg_calls_after_the_kept_connections_are_cut_succeed() {
    let Some(url) = server_url("ES_POSTGRES_URL", "postgres") else {
        return;
    };
    // Its sessions carry a name of their own, so the test cuts only them.
    let name = unique_name("cut");
    let sep = if url.contains('?') { '&' } else { '?' };
    let tagged = format!("{url}{sep}application_name={name}");
    let db = PostgresDatabase::connect_with(&tagged, 6)
        .await
        .unwrap()
        .with_schema(&name)
        .unwrap();
    db.setup_tables().await.unwrap();
    let m = db.record_manager(RecordKind::Events, "app", 0);
    let s = Uuid::new_v4();
    m.write(&RecordBatch::items(vec![item(s, 0, "a")]))
        .await
        .unwrap();
    assert_eq!(m.get_items(s, &ItemQuery::all()).await.unwrap().len(), 1);

    for round in 0..3 {
        // Cut while idle, then read: no error.
        assert!(cut(&url, &name).await > 0, "round {round}: nothing to cut");
        assert_eq!(
            m.get_items(s, &ItemQuery::all()).await.unwrap().len(),
            round + 1,
            "round {round}: read after the cut"
        );
        // Cut again, then write: no error, and written once.
        assert!(cut(&url, &name).await > 0, "round {round}: nothing to cut");
        m.write(&RecordBatch::items(vec![item(s, round as i64 + 1, "b")]))
            .await
            .unwrap_or_else(|e| panic!("round {round}: write after the cut: {e}"));
        // And the other kinds of read.
        assert!(cut(&url, &name).await > 0);
        m.get_item(s, 0).await.unwrap();
        assert!(cut(&url, &name).await > 0);
        assert_eq!(m.max_notification_id().await.unwrap(), round as i64 + 2);
        assert!(cut(&url, &name).await > 0);
        assert_eq!(
            m.get_notifications(1, 100, None).await.unwrap().len(),
            round + 2
        );
    }
    let items = m.get_items(s, &ItemQuery::all()).await.unwrap();
    assert_eq!(items.len(), 4, "each write stored once");
}

fn main() -> std::process::ExitCode {
    server_support::harness::run_cases(&[
        case!(POSTGRES pg_calls_after_the_kept_connections_are_cut_succeed),
    ])
}
