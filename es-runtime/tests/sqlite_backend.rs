//! SQLite-specific behaviour: faults, errors, several connections, the caller's own transaction,
//! schema made by the caller's tooling.

#![cfg(feature = "sqlite")]

mod common;

use es_runtime::record::sqlite::{ddl, rusqlite, SqliteDatabase};
use es_runtime::record::{ItemQuery, RecordBatch, RecordKind, RecordManager, SequencedItem};
use es_runtime::Error;
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

fn temp_file() -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("es-sqlite-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    dir.join("es.db")
}

fn item(s: Uuid, p: i64) -> SequencedItem {
    SequencedItem {
        sequence_id: s,
        position: p,
        topic: "tests::Item".into(),
        state: format!("{{\"p\":{p},\"pad\":\"{}\"}}", "x".repeat(100))
            .into_bytes()
            .into(),
    }
}

fn app() -> String {
    format!("t{}", Uuid::new_v4().simple())
}

/// A write interrupted while its statement runs fails with Operational and leaves nothing;
/// the database stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_write_leaves_nothing() {
    let db = SqliteDatabase::open(temp_file()).unwrap();
    db.setup_tables().unwrap();
    let mut interrupted = 0;
    for attempt in 0..20 {
        let rm = db.record_manager(RecordKind::Events, &app(), 0);
        let s = Uuid::new_v4();
        // Big enough that the insert runs for milliseconds.
        let batch =
            RecordBatch::items((0..20_000 + attempt * 10_000).map(|p| item(s, p)).collect());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let interrupter = {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(2));
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    db.interrupt();
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            })
        };
        let r = rm.write(&batch).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        interrupter.join().unwrap();
        let stored = rm.get_items(s, &ItemQuery::all()).await.unwrap().len();
        match r {
            Err(Error::Operational(m)) => {
                assert!(m.contains("interrupt"), "{m}");
                assert_eq!(stored, 0, "an interrupted batch left {stored} items");
                assert_eq!(rm.max_notification_id().await.unwrap(), 0);
                interrupted += 1;
            }
            Ok(()) => assert_eq!(stored, batch.items.len()),
            Err(e) => panic!("unexpected error {e:?}"),
        }
        // Still usable afterwards.
        rm.write(&RecordBatch::items(vec![item(Uuid::new_v4(), 0)]))
            .await
            .unwrap();
        if interrupted >= 2 {
            break;
        }
    }
    assert!(interrupted >= 2, "the interrupts never hit a running write");
}

/// A write on a database opened read-only is Operational, writes nothing, reads still work.
#[tokio::test]
async fn read_only_database_write_is_operational() {
    let path = temp_file();
    let a = app();
    let s = Uuid::new_v4();
    {
        let db = SqliteDatabase::open(&path).unwrap();
        db.setup_tables().unwrap();
        let rm = db.record_manager(RecordKind::Events, &a, 0);
        rm.write(&RecordBatch::items(vec![item(s, 0)]))
            .await
            .unwrap();
    }
    let ro = SqliteDatabase::open_read_only(&path).unwrap();
    let rm = ro.record_manager(RecordKind::Events, &a, 0);
    let r = rm
        .write(&RecordBatch::items(vec![item(s, 1), item(s, 2)]))
        .await;
    assert!(matches!(r, Err(Error::Operational(_))), "{r:?}");
    assert_eq!(
        rm.get_items(s, &ItemQuery::all()).await.unwrap(),
        vec![item(s, 0)]
    );
    assert_eq!(rm.max_notification_id().await.unwrap(), 1);
}

/// Missing tables are a Configuration error that names the table.
#[tokio::test]
async fn missing_table_is_configuration() {
    let db = SqliteDatabase::memory()
        .unwrap()
        .with_table_prefix("nothing_here_")
        .unwrap();
    let rm = db.record_manager(RecordKind::Events, "a", 0);
    match rm
        .write(&RecordBatch::items(vec![item(Uuid::new_v4(), 0)]))
        .await
    {
        Err(Error::Configuration(m)) => assert!(m.contains("nothing_here_stored_events"), "{m}"),
        other => panic!("expected Configuration, got {other:?}"),
    }
    match rm.max_tracking_id("up").await {
        Err(Error::Configuration(m)) => {
            assert!(m.contains("nothing_here_notification_tracking"), "{m}")
        }
        other => panic!("expected Configuration, got {other:?}"),
    }
    let snaps = db.record_manager(RecordKind::Snapshots, "a", 0);
    match snaps.get_item(Uuid::new_v4(), 0).await {
        Err(Error::Configuration(m)) => assert!(m.contains("nothing_here_snapshots"), "{m}"),
        other => panic!("expected Configuration, got {other:?}"),
    }
}

/// Bad configuration is a typed error, not a panic.
#[test]
fn bad_prefix_and_path_are_errors() {
    for bad in ["1abc", "a;drop", "a b", "é", &"x".repeat(41)] {
        assert!(
            matches!(
                SqliteDatabase::memory().unwrap().with_table_prefix(bad),
                Err(Error::Configuration(_))
            ),
            "{bad}"
        );
        assert!(matches!(ddl(bad), Err(Error::Configuration(_))), "{bad}");
    }
    let missing_dir = std::env::temp_dir()
        .join(format!("es-missing-{}", Uuid::new_v4().simple()))
        .join("es.db");
    match SqliteDatabase::open(&missing_dir) {
        Err(Error::Operational(m)) => assert!(m.contains("es.db"), "{m}"),
        other => panic!("expected Operational, got {other:?}"),
    }
    assert!(matches!(
        SqliteDatabase::open_read_only(&missing_dir),
        Err(Error::Operational(_))
    ));
}

/// Two database objects (two connections) on one file: writers wait for each other's lock
/// (busy timeout) instead of failing, and notification ids stay gap-free and unique.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connections_share_one_log() {
    let path = temp_file();
    let db1 = SqliteDatabase::open(&path).unwrap();
    db1.setup_tables().unwrap();
    let db2 = SqliteDatabase::open(&path).unwrap();
    let a = app();
    let per_task = 150;
    let mut handles = Vec::new();
    for t in 0..4 {
        let db = if t % 2 == 0 { db1.clone() } else { db2.clone() };
        let rm = db.record_manager(RecordKind::Events, &a, 0);
        handles.push(tokio::spawn(async move {
            let s = Uuid::new_v4();
            for p in 0..per_task {
                rm.write(&RecordBatch::items(vec![item(s, p)]))
                    .await
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let rm = db2.record_manager(RecordKind::Events, &a, 0);
    let n = rm.get_notifications(1, 10_000, None).await.unwrap();
    assert_eq!(
        n.iter().map(|n| n.id).collect::<Vec<_>>(),
        (1..=4 * per_task).collect::<Vec<_>>()
    );
    // The same position from the other connection is a conflict, not a busy error.
    let s = n[0].item.sequence_id;
    let r = db1
        .record_manager(RecordKind::Events, &a, 0)
        .write(&RecordBatch::items(vec![item(s, 0)]))
        .await;
    assert!(matches!(r, Err(Error::RecordConflict(_))), "{r:?}");
}

/// Events written in the caller's transaction commit with the caller's rows, or not at all.
#[tokio::test]
async fn write_in_callers_transaction() {
    let db = SqliteDatabase::memory().unwrap();
    db.setup_tables().unwrap();
    db.with_connection(|c| {
        c.execute_batch("CREATE TABLE orders_view (id BLOB PRIMARY KEY, total INTEGER)")
            .map_err(|e| Error::Operational(e.to_string()))
    })
    .unwrap();
    let rm = db.record_manager(RecordKind::Events, "shop", 0);
    let s = Uuid::new_v4();
    db.transaction(|tx| {
        rm.write_in_transaction(tx, &RecordBatch::items(vec![item(s, 0), item(s, 1)]))?;
        tx.execute(
            "INSERT INTO orders_view (id, total) VALUES (?1, 10)",
            [&s.as_bytes()[..]],
        )
        .map_err(|e| Error::Operational(e.to_string()))?;
        Ok(())
    })
    .unwrap();
    assert_eq!(rm.max_notification_id().await.unwrap(), 2);
    // The caller's own failure rolls the events back.
    let r: es_runtime::Result<()> = db.transaction(|tx| {
        rm.write_in_transaction(tx, &RecordBatch::items(vec![item(s, 2)]))?;
        Err(Error::Operational("caller gave up".into()))
    });
    assert!(r.is_err());
    // A conflict in the events rolls the caller's rows back.
    let other = Uuid::new_v4();
    let r: es_runtime::Result<()> = db.transaction(|tx| {
        tx.execute(
            "INSERT INTO orders_view (id, total) VALUES (?1, 5)",
            [&other.as_bytes()[..]],
        )
        .map_err(|e| Error::Operational(e.to_string()))?;
        rm.write_in_transaction(tx, &RecordBatch::items(vec![item(s, 1)]))
    });
    assert!(matches!(r, Err(Error::RecordConflict(_))), "{r:?}");
    let rows: i64 = db
        .with_connection(|c| {
            c.query_row("SELECT COUNT(*) FROM orders_view", [], |r| r.get(0))
                .map_err(|e| Error::Operational(e.to_string()))
        })
        .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(
        rm.get_items(s, &ItemQuery::all()).await.unwrap(),
        vec![item(s, 0), item(s, 1)]
    );
    assert_eq!(rm.max_notification_id().await.unwrap(), 2);
}

/// The documented DDL, run by the caller's own tooling, is all es needs; data persists in the
/// file, which is in WAL mode.
#[tokio::test]
async fn schema_from_users_tooling_and_persistence() {
    let path = temp_file();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(&ddl("app1_").unwrap()).unwrap();
    }
    let s = Uuid::new_v4();
    {
        let db = SqliteDatabase::open(&path)
            .unwrap()
            .with_table_prefix("app1_")
            .unwrap();
        assert_eq!(db.table_name("snapshots"), "app1_snapshots");
        assert_eq!(db.ddl(), ddl("app1_").unwrap());
        let rm = db.record_manager(RecordKind::Events, "a", 0);
        rm.write(&RecordBatch::items(vec![item(s, 0), item(s, 1)]))
            .await
            .unwrap();
    }
    let db = SqliteDatabase::open(&path)
        .unwrap()
        .with_table_prefix("app1_")
        .unwrap();
    let mode: String = db
        .with_connection(|c| {
            c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .map_err(|e| Error::Operational(e.to_string()))
        })
        .unwrap();
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    let rm = db.record_manager(RecordKind::Events, "a", 0);
    assert_eq!(
        rm.get_items(s, &ItemQuery::all()).await.unwrap(),
        vec![item(s, 0), item(s, 1)]
    );
    assert_eq!(rm.max_notification_id().await.unwrap(), 2);
    // Another prefix in the same file is another set of tables.
    let other = SqliteDatabase::open(&path)
        .unwrap()
        .with_table_prefix("app2_")
        .unwrap();
    other.setup_tables().unwrap();
    assert_eq!(
        other
            .record_manager(RecordKind::Events, "a", 0)
            .max_notification_id()
            .await
            .unwrap(),
        0
    );
    other.drop_tables().unwrap();
    assert!(matches!(
        other
            .record_manager(RecordKind::Events, "a", 0)
            .max_notification_id()
            .await,
        Err(Error::Configuration(_))
    ));
}

/// A row es did not write (a sequence id that is not 16 bytes) is a DataIntegrity error.
#[tokio::test]
async fn corrupt_row_is_data_integrity() {
    let db = SqliteDatabase::memory().unwrap();
    db.setup_tables().unwrap();
    db.with_connection(|c| {
        c.execute(
            "INSERT INTO es_stored_events (application_name, originator_id, originator_version, pipeline_id, \
             notification_id, topic, state) VALUES ('a', x'0102', 0, 0, 1, 't', x'00')",
            [],
        )
        .map_err(|e| Error::Operational(e.to_string()))
    })
    .unwrap();
    let rm = db.record_manager(RecordKind::Events, "a", 0);
    assert!(matches!(
        rm.get_notifications(1, 10, None).await,
        Err(Error::DataIntegrity(_))
    ));
    assert!(matches!(
        rm.list_sequence_ids().await,
        Err(Error::DataIntegrity(_))
    ));
}

/// ":memory:" is one database shared by every manager of the object and its clones; two
/// `memory()` objects are two databases.
#[tokio::test]
async fn memory_is_shared_per_object() {
    let db = SqliteDatabase::open(":memory:").unwrap();
    db.setup_tables().unwrap();
    assert!(db.path().is_none());
    let s = Uuid::new_v4();
    db.record_manager(RecordKind::Events, "a", 0)
        .write(&RecordBatch::items(vec![item(s, 0)]))
        .await
        .unwrap();
    let clone = db.clone();
    assert_eq!(
        clone
            .record_manager(RecordKind::Events, "a", 0)
            .get_item(s, 0)
            .await
            .unwrap(),
        item(s, 0)
    );
    let other = SqliteDatabase::memory().unwrap();
    other.setup_tables().unwrap();
    assert!(matches!(
        other
            .record_manager(RecordKind::Events, "a", 0)
            .get_item(s, 0)
            .await,
        Err(Error::NotFound(_))
    ));
}

/// Batches larger than one INSERT statement are still atomic and numbered in order.
#[tokio::test]
async fn batch_larger_than_one_statement() {
    let db = SqliteDatabase::memory().unwrap();
    db.setup_tables().unwrap();
    let rm = db.record_manager(RecordKind::Events, "a", 0);
    let s = Uuid::new_v4();
    let items: Vec<_> = (0..1234).map(|p| item(s, p)).collect();
    rm.write(&RecordBatch::items(items.clone())).await.unwrap();
    let n = rm.get_notifications(1, 2000, None).await.unwrap();
    assert_eq!(n.iter().map(|n| n.item.clone()).collect::<Vec<_>>(), items);
    assert_eq!(n.last().map(|n| n.id), Some(1234));
    // A conflict in the last chunk undoes the first chunks too.
    let t = Uuid::new_v4();
    let mut bad: Vec<_> = (0..1100).map(|p| item(t, p)).collect();
    bad.push(item(s, 5));
    assert!(matches!(
        rm.write(&RecordBatch::items(bad)).await,
        Err(Error::RecordConflict(_))
    ));
    assert!(rm.get_items(t, &ItemQuery::all()).await.unwrap().is_empty());
    assert_eq!(rm.max_notification_id().await.unwrap(), 1234);
}

/// Database URLs reach the SQLite backend (tables prefixed `es_`, created by the first
/// application built on it: `connect` itself creates nothing).
#[tokio::test]
async fn connect_by_url() {
    use es_runtime::application::connect;
    let path = temp_file();
    for url in [
        "sqlite::memory:".to_string(),
        "sqlite://:memory:".to_string(),
        format!("sqlite://{}", path.display()),
        format!("sqlite:{}", path.display()),
    ] {
        let db = connect(&url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(db.creates_tables(), "{url}");
        es_runtime::application::Application::builder("a")
            .database(db.clone())
            .build()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let rm = db.record_manager(RecordKind::Events, "a", 0);
        let s = Uuid::new_v4();
        rm.write(&RecordBatch::items(vec![item(s, 0)]))
            .await
            .unwrap();
        assert_eq!(rm.get_item(s, 0).await.unwrap(), item(s, 0), "{url}");
    }
    let c = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM es_stored_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2, "both file URLs name the same file");
    assert!(matches!(
        connect("sqlite://").await.err(),
        Some(Error::Configuration(_))
    ));
}

/// Through the event store: a tampered state is DataIntegrity (hash), bytes that are no event
/// are DataIntegrity, an unregistered topic is TopicResolution.
#[tokio::test]
async fn corrupt_rows_and_unknown_topics_are_typed_errors_on_read() {
    use common::{Added, Counter, Started};
    use es_runtime::domain::aggregate::{create, trigger};
    use es_runtime::mapper::Mapper;
    use es_runtime::prelude::Aggregate;
    use es_runtime::store::{EventQuery, EventStore};
    use es_runtime::IntegrityError;
    let db = SqliteDatabase::open(temp_file()).unwrap();
    db.setup_tables().unwrap();
    let store = EventStore::new(
        Arc::new(db.record_manager(RecordKind::Events, "app", 0)),
        Mapper::new(),
    );
    let mut c: Counter = create(Uuid::new_v4(), Started { count: 1 }).unwrap();
    trigger(&mut c, Added { by: 1 }).unwrap();
    store.store_all(&c.collect_pending()).await.unwrap();
    assert_eq!(
        store
            .get_events(c.id(), &EventQuery::all())
            .await
            .unwrap()
            .len(),
        2
    );
    let tamper = |sql: &str| {
        let id = c.id();
        db.with_connection(|conn| {
            conn.execute(sql, [&id.as_bytes()[..]])
                .map_err(|e| Error::Operational(e.to_string()))
        })
        .unwrap()
    };
    // One changed byte of the stored state: the hash no longer matches.
    assert_eq!(
        tamper(
            "UPDATE es_stored_events SET state = CAST(replace(CAST(state AS TEXT), '\"by\":1', '\"by\":7') AS BLOB) \
             WHERE originator_id = ?1 AND originator_version = 1"
        ),
        1
    );
    let err = store
        .get_events(c.id(), &EventQuery::all())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::DataIntegrity(IntegrityError::EventHash { .. })),
        "{err:?}"
    );
    // Bytes that are not an event at all.
    tamper("UPDATE es_stored_events SET state = x'ff0001' WHERE originator_id = ?1 AND originator_version = 1");
    let err = store
        .get_events(c.id(), &EventQuery::all())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::DataIntegrity(_)), "{err:?}");
    // An event of a type this program does not know (stored correctly, never registered).
    trigger(&mut c, Unregistered { note: 1 }).unwrap();
    store.store_all(&c.collect_pending()).await.unwrap();
    let err = store.get_event(c.id(), 2).await.err().unwrap();
    assert!(matches!(err, Error::TopicResolution(_)), "{err:?}");
}

/// An event type that is deliberately not registered: reading it back cannot resolve its topic.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Unregistered {
    note: i64,
}

impl es_runtime::prelude::EventPayload for Unregistered {
    type Aggregate = common::Counter;
    const TOPIC: &'static str = "tests::Counter.Unregistered";
    fn mutate(self, _c: &mut common::Counter) -> es_runtime::Result<()> {
        Ok(())
    }
}

/// A caller that panics inside its own transaction leaves nothing behind and does not break
/// the database for everyone else.
#[tokio::test]
async fn panic_inside_a_transaction_rolls_back() {
    let db = SqliteDatabase::memory().unwrap();
    db.setup_tables().unwrap();
    let rm = db.record_manager(RecordKind::Events, "a", 0);
    let s = Uuid::new_v4();
    let (db2, rm2) = (db.clone(), rm.clone());
    let joined = std::thread::spawn(move || {
        db2.transaction(|tx| {
            rm2.write_in_transaction(tx, &RecordBatch::items(vec![item(s, 0)]))?;
            panic!("the caller's code panicked");
            #[allow(unreachable_code)]
            Ok(())
        })
    })
    .join();
    assert!(joined.is_err(), "the thread should have panicked");
    assert!(matches!(rm.get_item(s, 0).await, Err(Error::NotFound(_))));
    rm.write(&RecordBatch::items(vec![item(s, 0)]))
        .await
        .unwrap();
    assert_eq!(rm.max_notification_id().await.unwrap(), 1);
}

/// Notification ids of all notifications of `rm`, in order.
async fn ids(rm: &impl RecordManager) -> Vec<i64> {
    rm.all_notifications()
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect()
}

/// On a private in-memory database a record manager remembers the last notification id it
/// wrote instead of asking for the maximum; every other write, a rolled-back write, and the
/// caller's own use of the connection (even dropping the tables) must make it ask again.
#[tokio::test]
async fn remembered_notification_ids_follow_every_other_write() {
    let db = SqliteDatabase::memory().unwrap();
    db.setup_tables().unwrap();
    let name = app();
    let a = db.record_manager(RecordKind::Events, &name, 0);
    let b = db.record_manager(RecordKind::Events, &name, 0);
    let s = Uuid::new_v4();
    // Two managers of one log, alternating: neither may reuse the other's ids.
    for p in 0..6 {
        let rm = if p % 2 == 0 { &a } else { &b };
        rm.write(&RecordBatch::items(vec![item(s, p)]))
            .await
            .unwrap();
    }
    assert_eq!(ids(&a).await, (1..=6).collect::<Vec<_>>());
    // A conflicting batch writes nothing and leaves the next id where it was.
    let conflict = RecordBatch::items(vec![item(s, 6), item(s, 5)]);
    assert!(matches!(
        a.write(&conflict).await,
        Err(Error::RecordConflict(_))
    ));
    a.write(&RecordBatch::items(vec![item(s, 6)]))
        .await
        .unwrap();
    assert_eq!(ids(&a).await, (1..=7).collect::<Vec<_>>());
    // Rows written by the caller's own SQL on the connection.
    let t = db.table_prefix().to_string() + "stored_events";
    db.with_connection(|c| {
        c.execute(
            &format!(
                "INSERT INTO {t} (application_name, originator_id, originator_version, pipeline_id, \
                 notification_id, topic, state) VALUES (?1, ?2, 0, 0, 8, 'tests::Item', x'7b7d')"
            ),
            rusqlite::params![name, &Uuid::new_v4().as_bytes()[..]],
        )
        .map(|_| ())
        .map_err(|e| Error::Operational(e.to_string()))
    })
    .unwrap();
    a.write(&RecordBatch::items(vec![item(s, 7)]))
        .await
        .unwrap();
    assert_eq!(ids(&a).await, (1..=9).collect::<Vec<_>>());
    // Tables dropped and made again: the log starts from 1.
    db.drop_tables().unwrap();
    db.setup_tables().unwrap();
    a.write(&RecordBatch::items(vec![item(s, 0), item(s, 1)]))
        .await
        .unwrap();
    assert_eq!(ids(&a).await, vec![1, 2]);
    // A deletion by another manager changes the count of changes too.
    b.delete_item(s, 1).await.unwrap();
    a.write(&RecordBatch::items(vec![item(s, 1)]))
        .await
        .unwrap();
    assert_eq!(ids(&a).await, vec![1, 2]);
}

/// Rows whose columns hold another type than es wrote (a state as text, a topic as a blob, a
/// sequence id of the wrong length) are typed integrity errors when read, item by item and as
/// notifications, never a panic or a wrong item.
#[tokio::test]
async fn columns_of_the_wrong_type_are_integrity_errors() {
    let db = SqliteDatabase::memory().unwrap();
    db.setup_tables().unwrap();
    let name = app();
    let rm = db.record_manager(RecordKind::Events, &name, 0);
    let s = Uuid::new_v4();
    rm.write(&RecordBatch::items(vec![item(s, 0), item(s, 1)]))
        .await
        .unwrap();
    let got = rm.get_items(s, &ItemQuery::all()).await.unwrap();
    assert_eq!(got, vec![item(s, 0), item(s, 1)]);
    let change = |sql: &str| {
        db.with_connection(|c| {
            c.execute(sql, [&s.as_bytes()[..]])
                .map_err(|e| Error::Operational(e.to_string()))
        })
        .unwrap()
    };
    let corrupt = |e: &Error| {
        matches!(
            e,
            Error::DataIntegrity(es_runtime::IntegrityError::Corrupt(_))
        )
    };
    for (sql, undo) in [
        (
            "UPDATE es_stored_events SET state = CAST(state AS TEXT) WHERE originator_id = ?1 AND originator_version = 1",
            "UPDATE es_stored_events SET state = CAST(state AS BLOB) WHERE originator_id = ?1 AND originator_version = 1",
        ),
        (
            "UPDATE es_stored_events SET topic = CAST(topic AS BLOB) WHERE originator_id = ?1 AND originator_version = 1",
            "UPDATE es_stored_events SET topic = CAST(topic AS TEXT) WHERE originator_id = ?1 AND originator_version = 1",
        ),
        (
            "UPDATE es_stored_events SET topic = x'ff00' WHERE originator_id = ?1 AND originator_version = 1",
            "UPDATE es_stored_events SET topic = 'tests::Item' WHERE originator_id = ?1 AND originator_version = 1",
        ),
    ] {
        assert_eq!(change(sql), 1, "{sql}");
        let err = rm.get_items(s, &ItemQuery::all()).await.unwrap_err();
        assert!(corrupt(&err), "{sql}: {err:?}");
        let err = rm.get_notifications(1, 10, None).await.unwrap_err();
        assert!(corrupt(&err), "{sql}: {err:?}");
        assert_eq!(change(undo), 1, "{undo}");
        assert_eq!(rm.get_items(s, &ItemQuery::all()).await.unwrap().len(), 2);
    }
    // A sequence id that is not 16 bytes, read as a notification.
    assert_eq!(
        change("UPDATE es_stored_events SET originator_id = x'0102' WHERE originator_id = ?1 AND originator_version = 1"),
        1
    );
    let err = rm.get_notifications(1, 10, None).await.unwrap_err();
    assert!(corrupt(&err), "{err:?}");
}
