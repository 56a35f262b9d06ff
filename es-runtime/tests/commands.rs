//! Commands: `Application::update` (load, command, save, retry on conflicts), domain errors of
//! the user's own type, `Error::is_retryable`, and (feature `axum`) errors as HTTP responses.

use es_runtime::application::{Application, Retry};
use es_runtime::prelude::*;
use std::sync::Arc;

#[aggregate]
pub struct Account {
    balance: u64,
}

#[derive(Debug, PartialEq)]
pub struct InsufficientFunds {
    pub short_by: u64,
}

impl std::fmt::Display for InsufficientFunds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "insufficient funds: short by {}", self.short_by)
    }
}

impl std::error::Error for InsufficientFunds {}

/// A service's own error type: its domain refusals, and es's errors.
#[derive(Debug)]
pub enum BankError {
    Insufficient(InsufficientFunds),
    Store(Error),
}

impl From<Error> for BankError {
    fn from(e: Error) -> Self {
        BankError::Store(e)
    }
}

#[aggregate]
impl Account {
    #[event(Opened)]
    pub fn open() -> Self {
        Account { balance: 0 }
    }
    #[event(Deposited)]
    pub fn deposit(&mut self, amount: u64) {
        self.balance += amount;
    }
    #[event(Withdrawn)]
    fn withdrawn(&mut self, amount: u64) {
        self.balance -= amount;
    }
    /// Refuses with the service's own error type.
    pub fn withdraw(&mut self, amount: u64) -> Result<(), BankError> {
        if amount > self.balance {
            return Err(BankError::Insufficient(InsufficientFunds {
                short_by: amount - self.balance,
            }));
        }
        Ok(self.withdrawn(amount)?)
    }
    /// Refuses with the domain error carried inside `es_runtime::Error`.
    pub fn withdraw_or_refuse(&mut self, amount: u64) -> Result<()> {
        if amount > self.balance {
            return Err(Error::domain(InsufficientFunds {
                short_by: amount - self.balance,
            }));
        }
        self.withdrawn(amount)
    }
}

async fn bank() -> (Arc<Application>, Uuid) {
    let app = Application::builder("bank").memory().build().await.unwrap();
    let mut a = Account::open().unwrap();
    a.deposit(10).unwrap();
    app.save(&mut a).await.unwrap();
    (Arc::new(app), a.id())
}

#[tokio::test]
async fn update_loads_runs_and_saves_and_returns_the_commands_value() {
    let (app, id) = bank().await;
    let balance = app
        .update(id, |a: &mut Account| {
            a.deposit(5)?;
            Ok::<_, Error>(a.balance)
        })
        .await
        .unwrap();
    assert_eq!(balance, 15);
    app.repository::<Account>()
        .update(id, |a| a.withdraw(3))
        .await
        .unwrap();
    let a: Account = app.get(id).await.unwrap();
    assert_eq!((a.balance, a.version()), (12, 4));
}

#[tokio::test]
async fn a_refused_command_saves_nothing_and_its_error_comes_back_typed() {
    let (app, id) = bank().await;
    // The service's own error type.
    let e = app
        .repository::<Account>()
        .update(id, |a| a.withdraw(25))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            BankError::Insufficient(InsufficientFunds { short_by: 15 })
        ),
        "{e:?}"
    );
    // A domain error inside es_runtime::Error.
    let e = app
        .repository::<Account>()
        .update(id, |a| a.withdraw_or_refuse(11))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Domain(_)) && !e.is_retryable(), "{e}");
    assert_eq!(e.to_string(), "insufficient funds: short by 1");
    assert_eq!(
        e.into_domain::<InsufficientFunds>().unwrap(),
        InsufficientFunds { short_by: 1 }
    );
    let a: Account = app.get(id).await.unwrap();
    assert_eq!((a.balance, a.version()), (10, 2));
    // A missing aggregate.
    let e = app
        .repository::<Account>()
        .update(Uuid::new_v4(), |a| a.withdraw(1))
        .await
        .unwrap_err();
    assert!(matches!(e, BankError::Store(Error::NotFound(_))), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_all_land_through_retries() {
    let (app, id) = bank().await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.update_with(Retry::attempts(50), id, |a: &mut Account| a.deposit(1))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let a: Account = app.get(id).await.unwrap();
    assert_eq!((a.balance, a.version()), (18, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_beyond_the_attempts_is_a_concurrency_error_and_retryable() {
    let (app, id) = bank().await;
    // Every run of the command is overtaken by another writer before it saves.
    let mut runs = 0;
    let outcome = app
        .update_with(Retry::attempts(3), id, |a: &mut Account| {
            runs += 1;
            let (app, mut other) = (app.clone(), a.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    other.deposit(100).unwrap();
                    app.save(&mut other).await.unwrap();
                });
            })
            .join()
            .unwrap();
            a.deposit(1)
        })
        .await;
    let e = outcome.unwrap_err();
    assert!(
        matches!(e, Error::Concurrency(_)) && e.is_retryable(),
        "{e}"
    );
    assert_eq!(runs, 3);
    let a: Account = app.get(id).await.unwrap();
    assert_eq!(
        a.balance, 310,
        "the other writer's three deposits, none of the command's"
    );
    let e = app
        .update_with(Retry::never(), id, |a: &mut Account| {
            let mut other = a.clone();
            other.deposit(1)?;
            std::thread::scope(|s| {
                s.spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    rt.block_on(app.save(&mut other)).unwrap();
                });
            });
            a.deposit(1)
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Concurrency(_)), "{e}");
}

#[test]
fn retryable_errors_are_the_transient_ones() {
    assert!(Error::Concurrency("x".into()).is_retryable());
    assert!(Error::Operational("connection reset".into()).is_retryable());
    assert!(Error::CausalDependencyFailed("x".into()).is_retryable());
    let processing = |source: Error| Error::Processing {
        application: "a".into(),
        upstream: "b".into(),
        notification_id: 1,
        source: Box::new(source),
    };
    assert!(processing(Error::Operational("x".into())).is_retryable());
    assert!(!processing(Error::NotFound("x".into())).is_retryable());
    for e in [
        Error::NotFound("x".into()),
        Error::RecordConflict("tracking".into()),
        Error::Configuration("x".into()),
        Error::Encoding("x".into()),
        Error::domain(InsufficientFunds { short_by: 1 }),
    ] {
        assert!(!e.is_retryable(), "{e}");
    }
}

#[cfg(feature = "axum")]
mod http {
    use super::*;
    use axum::body::Body;
    use axum::extract::{Path, State};
    use axum::http::{Request, StatusCode};
    use axum::routing::post;
    use axum::Router;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn withdraw(
        State(app): State<Arc<Application>>,
        Path((id, amount)): Path<(Uuid, u64)>,
    ) -> es_runtime::Result<String> {
        let balance = app
            .update(id, |a: &mut Account| {
                a.withdraw_or_refuse(amount)?;
                Ok::<_, Error>(a.balance)
            })
            .await?;
        Ok(balance.to_string())
    }

    async fn fail(Path(kind): Path<String>) -> es_runtime::Result<String> {
        Err(match kind.as_str() {
            "conflict" => Error::Concurrency("account 1 at version 3".into()),
            "tracking" => Error::RecordConflict("tracking".into()),
            "discarded" => Error::EntityIsDiscarded(Uuid::nil()),
            _ => Error::Operational("postgres: connection refused at 10.0.0.7:5432".into()),
        })
    }

    async fn call(router: &Router, uri: &str) -> (StatusCode, String) {
        let request = Request::post(uri).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn errors_answer_with_404_409_422_and_500() {
        let (app, id) = bank().await;
        let router = Router::new()
            .route("/accounts/{id}/withdraw/{amount}", post(withdraw))
            .route("/fail/{kind}", post(fail))
            .with_state(app);
        assert_eq!(
            call(&router, &format!("/accounts/{id}/withdraw/4")).await,
            (StatusCode::OK, "6".into())
        );
        let (status, body) = call(&router, &format!("/accounts/{id}/withdraw/7")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], "domain");
        assert_eq!(json["message"], "insufficient funds: short by 1");
        let (status, body) =
            call(&router, &format!("/accounts/{}/withdraw/1", Uuid::new_v4())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(body.contains("not_found"), "{body}");
        for (kind, expected) in [
            ("conflict", StatusCode::CONFLICT),
            ("tracking", StatusCode::CONFLICT),
            ("discarded", StatusCode::NOT_FOUND),
            ("database", StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            let (status, body) = call(&router, &format!("/fail/{kind}")).await;
            assert_eq!(status, expected, "{kind}: {body}");
        }
        // A server error keeps its details (addresses, SQL) on the server.
        let (_, body) = call(&router, "/fail/database").await;
        assert!(
            body.contains("internal server error") && !body.contains("10.0.0.7"),
            "{body}"
        );
    }
}
