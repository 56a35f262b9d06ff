//! A small bank (`es_examples::bank`): accounts opened, paid into, drawn from and closed; a
//! balances read model kept in a plain SQL table by a `#[projection]`; a `#[policy]` in
//! another application that opens a review case for each large withdrawal and writes an
//! outbox row for it in the same transaction. Then the balances are rebuilt from notification
//! 1 and compared.
//!
//! Runs on the embedded default (an SQLite file in a new temporary directory), or on the
//! database named by `DB_URI` / `ES_DATABASE_URL` (`sqlite:…`, `postgres://…`, `mysql://…`).
//! Prints each check and exits non-zero if any fails.
//!
//! ```text
//! cargo run --example bank
//! DB_URI=postgres://postgres@127.0.0.1:5432/test cargo run --features postgres --example bank
//! ```

#[path = "checks/mod.rs"]
mod checks;

use checks::Checks;
use es_examples::bank::{self, Account, Balances, BankError, Review, Reviews};
use es_runtime::application::connect;
use es_runtime::prelude::*;
use es_runtime::process::projection::Projector;
use es_runtime::process::Runner;
use es_runtime::record::RecordManager;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> ExitCode {
    checks::exit_code(run().await)
}

async fn run() -> Result<usize> {
    let url = match std::env::var("DB_URI").or_else(|_| std::env::var("ES_DATABASE_URL")) {
        Ok(u) => u,
        Err(_) => {
            let dir = std::env::temp_dir().join(format!("es-bank-{}", Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Operational(format!("cannot create {dir:?}: {e}")))?;
            format!("sqlite://{}", dir.join("bank.db").display())
        }
    };
    println!("database {}", es_runtime::application::config::redact(&url));
    let db = connect(&url).await?;
    let mut c = Checks::new();
    // Names of one's own, so that runs never share applications or tables.
    let tag = &Uuid::new_v4().simple().to_string()[..8];
    let reviews = Reviews {
        threshold: 1000,
        outbox: format!("bank_outbox_{tag}"),
    };
    let runner = Runner::builder(&bank::system(reviews.clone()), db.clone())
        .namespace(format!("bank{tag}_"))
        .concurrent()
        .await?;
    let accounts = runner.app("accounts")?;
    let review_app = runner.app("reviews")?;

    // The balances projection: its own table, kept up to date by a task.
    let balances = Balances {
        table: format!("bank_balances_{tag}"),
    };
    let projector = Projector::new(balances.clone(), db.clone())
        .named(format!("balances_{tag}"))
        .following(accounts.app())?;
    let records: Arc<dyn RecordManager> = projector.records().clone();
    bank::create_table(&records, &balances.table).await?;
    bank::create_table(&records, &reviews.outbox).await?;
    let running = projector.start();

    // Commands.
    let mut ada = Account::open("ada".into())?;
    ada.deposit(5000).map_err(es)?;
    ada.withdraw(1200).map_err(es)?;
    let refused = ada.withdraw(10_000);
    c.check(
        matches!(
            refused,
            Err(BankError::InsufficientFunds {
                balance: 3800,
                amount: 10_000
            })
        ),
        "a withdrawal of more than the balance is refused: insufficient funds",
    );
    accounts.save(&mut ada).await?;
    let mut bob = Account::open("bob".into())?;
    bob.deposit(300).map_err(es)?;
    bob.withdraw(300).map_err(es)?;
    bob.close().map_err(es)?;
    accounts.save(&mut bob).await?;
    c.check(
        matches!(bob.deposit(1), Err(BankError::Closed)),
        "a closed account takes no deposits",
    );
    let mut cy = Account::open("cy".into())?;
    cy.deposit(700).map_err(es)?;
    accounts.save(&mut cy).await?;

    running.wait_caught_up(Duration::from_secs(30)).await?;
    runner.wait_idle(Duration::from_secs(30)).await?;

    let rows = balances.read(&records).await?;
    let mut want = vec![(ada.id().to_string(), 3800), (cy.id().to_string(), 700)];
    want.sort();
    c.check(
        rows == want,
        "the balances table holds one row per open account",
    );
    c.check(running.lag().await? == 0, "the projection's lag is 0");

    let sql = format!("SELECT id, value FROM {} ORDER BY id", reviews.outbox);
    let outbox = bank::query_pairs(&records, &sql, &reviews.outbox).await?;
    c.check(
        outbox.len() == 1 && outbox[0].1 == 1200,
        "one review case for the one large withdrawal, in the outbox",
    );
    if let Some((id, _)) = outbox.first() {
        let id: Uuid = id
            .parse()
            .map_err(|_| Error::Encoding(format!("review id {id}")))?;
        let review: Review = review_app.get(id).await?;
        c.check(
            review.account_id() == ada.id() && review.amount() == 1200,
            "the review case (an aggregate of the reviews application) names the account",
        );
    }

    // A rebuild replays from notification 1 into the emptied table.
    running.stop().await?;
    let projector = Projector::new(balances.clone(), db.clone())
        .named(format!("balances_{tag}"))
        .following(accounts.app())?
        .batch_size(4);
    let progress = projector
        .rebuild(|p| {
            println!(
                "  rebuild: {} at {} of {}",
                p.upstream, p.position, p.target
            )
        })
        .await?;
    c.check(
        progress.notifications as i64 == accounts.records().max_notification_id().await?,
        "the rebuild replayed every notification",
    );
    c.check(
        balances.read(&records).await? == want,
        "the rebuilt balances equal the incremental ones",
    );
    runner.stop().await?;
    Ok(c.failed)
}

/// A refused command where none was expected.
fn es(e: BankError) -> Error {
    match e {
        BankError::Es(e) => e,
        other => Error::Operational(format!("unexpected refusal: {other}")),
    }
}
