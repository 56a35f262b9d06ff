//! Manual §10.6 (reading an application's notifications) and chapter 11 (replication and the
//! email address index), on every backend this build and machine offer.

mod support;

use es_runtime::application::{Application, Saveable};
use es_runtime::mapper::Cipher;
use es_runtime::notify::{
    to_events, NotificationLog, NotificationLogReader, RecordNotificationLog, RecordReplicator,
};
use es_runtime::prelude::*;
use es_runtime::record::Tracking;
use std::sync::Arc;

#[aggregate]
pub struct Entity {}

#[aggregate]
impl Entity {
    #[event(Created)]
    pub fn create() -> Self {
        Entity {}
    }

    #[event(Touched)]
    pub fn touch(&mut self) {}
}

async fn create(app: &Application) -> Entity {
    let mut e = Entity::create().unwrap();
    app.save(&mut e).await.unwrap();
    e
}

fn log(app: &Application, size: usize) -> Arc<dyn NotificationLog> {
    Arc::new(RecordNotificationLog::for_application(app, size).unwrap())
}

#[tokio::test]
async fn section_10_6_the_reader_follows_the_application() {
    for (backend, db) in support::databases().await {
        for cipher in [
            None,
            Some(Cipher::from_base64(&Cipher::random_key(32).unwrap()).unwrap()),
        ] {
            let mut b = support::app_on(&db, "ch10");
            if let Some(c) = cipher.clone() {
                b = b.cipher(c);
            }
            let app = b.build().await.unwrap();
            let first = create(&app).await;
            for _ in 0..8 {
                create(&app).await;
            }
            let mut reader = NotificationLogReader::new(log(&app, 5));
            assert_eq!(reader.position(), 0);
            reader.seek(10).unwrap();
            assert_eq!(reader.position(), 10);
            reader.seek(0).unwrap();
            let all = reader.read_all().await.unwrap();
            assert_eq!(all.len(), 9, "{backend}");
            if cipher.is_some() {
                assert!(!String::from_utf8_lossy(&all[0].item.state).contains("originator_id"));
            }
            let events = to_events(app.mapper(), &all).unwrap();
            assert!(events[0].is::<entity::Created>(), "{backend}");
            assert_eq!(events[0].originator_id(), first.id());
            assert_eq!(reader.position(), 9);
            assert!(reader.read_all().await.unwrap().is_empty());

            create(&app).await;
            create(&app).await;
            assert_eq!(reader.read_all().await.unwrap().len(), 2, "{backend}");
            assert_eq!(reader.position(), 11);
            assert!(reader.read_all().await.unwrap().is_empty());

            create(&app).await;
            create(&app).await;
            let last = create(&app).await;
            let three = reader.read_all().await.unwrap();
            assert_eq!(three.len(), 3, "{backend}");
            assert_eq!(reader.position(), 14);
            let events = to_events(app.mapper(), &three).unwrap();
            assert!(events[2].is::<entity::Created>());
            assert_eq!(events[2].originator_id(), last.id());
            assert!(reader.read_all().await.unwrap().is_empty());
            assert_eq!(reader.position(), 14);
        }
    }
}

#[tokio::test]
async fn section_11_3_1_records_are_replicated_and_restart_resumes() {
    for (backend, db) in support::databases().await {
        let original = support::app_on(&db, "original").build().await.unwrap();
        let replica = support::app_on(&db, "replica").build().await.unwrap();
        let new_replicator = || async {
            RecordReplicator::new(
                log(&original, 5),
                original.name(),
                replica.records().clone(),
            )
            .await
            .unwrap()
        };
        let mut replicator = new_replicator().await;
        let a1 = create(&original).await;
        let a2 = create(&original).await;
        let a3 = create(&original).await;
        let entities = replica.repository::<Entity>();
        for a in [&a1, &a2, &a3] {
            assert!(!entities.contains(a.id()).await.unwrap(), "{backend}");
        }
        assert_eq!(replicator.pull().await.unwrap(), 3);
        for a in [&a1, &a2, &a3] {
            let copy: Entity = replica.get(a.id()).await.unwrap();
            assert_eq!(copy.created_on(), a.created_on(), "{backend}");
            assert_eq!(copy.head(), a.head());
        }
        let a4 = create(&original).await;
        assert!(!entities.contains(a4.id()).await.unwrap());
        assert_eq!(replicator.pull().await.unwrap(), 1);
        assert!(entities.contains(a4.id()).await.unwrap(), "{backend}");

        // A new replicator (position lost) resumes after what the replica holds.
        drop(replicator);
        let mut replicator = new_replicator().await;
        assert_eq!(replicator.position(), 4);
        assert_eq!(
            replicator.position(),
            replica.records().max_notification_id().await.unwrap()
        );
        let mut a5 = create(&original).await;
        a5.touch().unwrap();
        original.save(&mut a5).await.unwrap();
        assert_eq!(replicator.pull().await.unwrap(), 2);
        let copy: Entity = replica.get(a5.id()).await.unwrap();
        assert_eq!(copy.version(), 2, "{backend}");
        assert_eq!(
            replica.records().max_notification_id().await.unwrap(),
            original.records().max_notification_id().await.unwrap()
        );
        assert_eq!(replicator.pull().await.unwrap(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn section_11_3_1_concurrent_replicators_never_corrupt_the_replica() {
    for (backend, db) in support::databases().await {
        let original = support::app_on(&db, "original").build().await.unwrap();
        let replica = support::app_on(&db, "replica").build().await.unwrap();
        for _ in 0..20 {
            let mut batch: Vec<Entity> = (0..6).map(|_| Entity::create().unwrap()).collect();
            for e in &mut batch {
                e.touch().unwrap();
            }
            let mut refs: Vec<&mut dyn Saveable> =
                batch.iter_mut().map(|e| e as &mut dyn Saveable).collect();
            original.save_all(&mut refs).await.unwrap();
        }
        let total = original.records().max_notification_id().await.unwrap();
        assert_eq!(total, 240);
        let mut tasks = Vec::new();
        for page in [7usize, 11, 13, 50] {
            let mut r = RecordReplicator::new(
                log(&original, 10),
                original.name(),
                replica.records().clone(),
            )
            .await
            .unwrap()
            .with_page_size(page);
            tasks.push(tokio::spawn(async move { r.pull().await.unwrap() }));
        }
        let mut copied = 0;
        for t in tasks {
            copied += t.await.unwrap();
        }
        assert_eq!(
            copied, total as usize,
            "{backend}: every notification copied exactly once"
        );
        let theirs = original
            .records()
            .get_notifications(1, total, None)
            .await
            .unwrap();
        let ours = replica
            .records()
            .get_notifications(1, total + 10, None)
            .await
            .unwrap();
        assert_eq!(ours.len(), theirs.len(), "{backend}");
        for (o, t) in ours.iter().zip(&theirs) {
            assert_eq!((o.id, &o.item), (t.id, &t.item), "{backend}");
        }
        assert_eq!(
            replica
                .records()
                .max_tracking_id(original.name())
                .await
                .unwrap(),
            total
        );
    }
}

#[cfg(feature = "http")]
#[tokio::test]
async fn replication_over_http() {
    use es_runtime::notify::{http, NotificationLogView, RemoteNotificationLog};
    let (_, db) = support::databases().await.remove(0);
    let original = support::app_on(&db, "original").build().await.unwrap();
    let replica = support::app_on(&db, "replica").build().await.unwrap();
    for _ in 0..23 {
        create(&original).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(http::serve(
        listener,
        http::router("/log", NotificationLogView::new(log(&original, 5))),
    ));
    let remote: RemoteNotificationLog =
        RemoteNotificationLog::new(&format!("http://{addr}/log")).unwrap();
    let mut replicator =
        RecordReplicator::new(Arc::new(remote), original.name(), replica.records().clone())
            .await
            .unwrap();
    assert_eq!(replicator.pull().await.unwrap(), 23);
    assert_eq!(replica.records().max_notification_id().await.unwrap(), 23);
    server.abort();
}

#[aggregate]
pub struct User {
    email_addresses: Vec<(String, bool)>,
}

#[aggregate]
impl User {
    #[event(Created)]
    pub fn create() -> Self {
        User {
            email_addresses: vec![],
        }
    }

    #[event(EmailAddressAdded)]
    pub fn add_email_address(&mut self, email_address: String) {
        self.email_addresses.retain(|(e, _)| *e != email_address);
        self.email_addresses.push((email_address, false));
    }

    #[event(EmailAddressVerified)]
    pub fn verify_email_address(&mut self, email_address: String) {
        for (e, verified) in &mut self.email_addresses {
            if *e == email_address {
                *verified = true;
            }
        }
    }

    pub fn is_verified(&self, email_address: &str) -> bool {
        self.email_addresses
            .iter()
            .any(|(e, v)| e == email_address && *v)
    }
}

#[aggregate]
pub struct IndexItem {
    #[attribute]
    index_value: Uuid,
}

#[aggregate]
impl IndexItem {
    #[event(Created)]
    pub fn create(index_value: Uuid) -> Self {
        IndexItem { index_value }
    }
}

fn uuid_from_url(url: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, url.as_bytes())
}

/// Projects verified email addresses of the original application's users into an index
/// application; every notification is tracked in the same transaction as its index change.
struct Indexer<'a> {
    reader: NotificationLogReader,
    original: &'a Application,
    index: &'a Application,
}

impl<'a> Indexer<'a> {
    async fn new(original: &'a Application, index: &'a Application) -> Indexer<'a> {
        let mut reader = NotificationLogReader::new(log(original, 10));
        reader
            .seek(
                index
                    .records()
                    .max_tracking_id(original.name())
                    .await
                    .unwrap(),
            )
            .unwrap();
        Indexer {
            reader,
            original,
            index,
        }
    }

    async fn pull(&mut self) -> Result<usize> {
        let mut indexed = 0;
        while let Some(n) = self.reader.next_item().await? {
            let tracking = Some(Tracking {
                upstream_application: self.original.name().to_string(),
                notification_id: n.id,
            });
            let event = self.original.mapper().from_item(&n.item)?;
            match event.downcast_ref::<user::EmailAddressVerified>() {
                Some(verified) => {
                    let key = uuid_from_url(&verified.email_address);
                    let mut item = match self.index.get::<IndexItem>(key).await {
                        Ok(mut item) => {
                            item.set_index_value(event.originator_id())?;
                            item
                        }
                        Err(Error::NotFound(_)) => {
                            IndexItem::create_with_id(key, event.originator_id())?
                        }
                        Err(e) => return Err(e),
                    };
                    self.index
                        .save_tracked(&mut [&mut item], tracking, None)
                        .await?;
                    indexed += 1;
                }
                None => self.index.save_tracked(&mut [], tracking, None).await?,
            }
        }
        Ok(indexed)
    }
}

#[tokio::test]
async fn section_11_3_2_index_of_email_addresses() {
    for (backend, db) in support::databases().await {
        let original = support::app_on(&db, "users").build().await.unwrap();
        let index = support::app_on(&db, "index").build().await.unwrap();
        let mut indexer = Indexer::new(&original, &index).await;
        let items = index.repository::<IndexItem>();

        let mut user1 = User::create().unwrap();
        original.save(&mut user1).await.unwrap();
        indexer.pull().await.unwrap();
        user1.add_email_address("me@example.com".into()).unwrap();
        original.save(&mut user1).await.unwrap();
        indexer.pull().await.unwrap();
        assert!(!user1.is_verified("me@example.com"));
        let key = uuid_from_url("me@example.com");
        assert!(!items.contains(key).await.unwrap(), "{backend}");

        user1.verify_email_address("me@example.com".into()).unwrap();
        original.save(&mut user1).await.unwrap();
        assert_eq!(indexer.pull().await.unwrap(), 1);
        assert!(user1.is_verified("me@example.com"));
        assert_eq!(
            index.get::<IndexItem>(key).await.unwrap().index_value,
            user1.id(),
            "{backend}"
        );

        // Verified again, by another user: the index follows, nothing is processed twice.
        let mut user2 = User::create().unwrap();
        user2.add_email_address("me@example.com".into()).unwrap();
        user2.verify_email_address("me@example.com".into()).unwrap();
        original.save(&mut user2).await.unwrap();
        user1.add_email_address("mycat@example.com".into()).unwrap();
        user1
            .verify_email_address("mycat@example.com".into())
            .unwrap();
        original.save(&mut user1).await.unwrap();
        assert!(!items
            .contains(uuid_from_url("mycat@example.com"))
            .await
            .unwrap());

        // A new indexer resumes from the tracking records.
        drop(indexer);
        let mut indexer = Indexer::new(&original, &index).await;
        assert_eq!(indexer.reader.position(), 3);
        assert_eq!(indexer.pull().await.unwrap(), 2);
        assert_eq!(
            index.get::<IndexItem>(key).await.unwrap().index_value,
            user2.id(),
            "{backend}"
        );
        let cat: IndexItem = index.get(uuid_from_url("mycat@example.com")).await.unwrap();
        assert_eq!(cat.index_value, user1.id());
        assert_eq!(indexer.pull().await.unwrap(), 0);
        assert_eq!(
            index
                .records()
                .max_tracking_id(original.name())
                .await
                .unwrap(),
            original.records().max_notification_id().await.unwrap()
        );
        // The user is not in the index and the index items are not in the original.
        assert!(!items.contains(user1.id()).await.unwrap());
        assert!(!original
            .repository::<IndexItem>()
            .contains(key)
            .await
            .unwrap());
    }
}
