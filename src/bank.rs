//! A small bank: accounts (an aggregate), a balances read model in a plain SQL table (a
//! `#[projection]`), and a reviews process application (a `#[policy]`) that opens a review
//! case for every large withdrawal and writes an outbox row for it in the same transaction.
//!
//! ```text
//! accounts | reviews            (a system: the policy follows the accounts application)
//! accounts -> balances          (a projection into the user's own table)
//! ```
//!
//! The SQL runs on SQLite, PostgreSQL and MySQL (the same statements, `?` placeholders
//! numbered for PostgreSQL); in memory the rows are kept in the database's row tables.

use es_runtime::prelude::*;
use es_runtime::process::{Policy, PolicyType, System};
use es_runtime::record::tx::Backend;
use es_runtime::record::RecordManager;
use std::sync::{Arc, Mutex};

/// Why a command on an account was refused.
#[derive(Debug)]
pub enum BankError {
    /// A withdrawal of more than the balance.
    InsufficientFunds {
        /// The balance.
        balance: i64,
        /// The amount asked for.
        amount: i64,
    },
    /// Amounts are positive.
    BadAmount(i64),
    /// The account is closed.
    Closed,
    /// Closing an account that still holds money.
    NotEmpty(i64),
    /// es failed.
    Es(Error),
}

impl std::fmt::Display for BankError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BankError::InsufficientFunds { balance, amount } => {
                write!(
                    f,
                    "insufficient funds: balance {balance}, withdrawal {amount}"
                )
            }
            BankError::BadAmount(a) => write!(f, "amounts are positive, not {a}"),
            BankError::Closed => write!(f, "the account is closed"),
            BankError::NotEmpty(b) => write!(f, "the account still holds {b}"),
            BankError::Es(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BankError {}

impl From<Error> for BankError {
    fn from(e: Error) -> Self {
        BankError::Es(e)
    }
}

/// A bank account.
#[aggregate]
pub struct Account {
    owner: String,
    balance: i64,
    closed: bool,
}

#[aggregate]
impl Account {
    /// Opens an account for `owner`, empty.
    #[event(Opened)]
    pub fn open(owner: String) -> Self {
        Account {
            owner,
            balance: 0,
            closed: false,
        }
    }

    #[event(Deposited)]
    fn deposited(&mut self, amount: i64) {
        self.balance += amount;
    }

    #[event(Withdrawn)]
    fn withdrawn(&mut self, amount: i64) {
        self.balance -= amount;
    }

    #[event(Closed)]
    fn closed(&mut self) {
        self.closed = true;
    }

    fn open_for(&self, amount: i64) -> Result<(), BankError> {
        if self.closed {
            return Err(BankError::Closed);
        }
        if amount <= 0 {
            return Err(BankError::BadAmount(amount));
        }
        Ok(())
    }

    /// Puts `amount` in.
    pub fn deposit(&mut self, amount: i64) -> Result<(), BankError> {
        self.open_for(amount)?;
        Ok(self.deposited(amount)?)
    }

    /// Takes `amount` out; more than the balance is [`BankError::InsufficientFunds`].
    pub fn withdraw(&mut self, amount: i64) -> Result<(), BankError> {
        self.open_for(amount)?;
        if amount > self.balance {
            return Err(BankError::InsufficientFunds {
                balance: self.balance,
                amount,
            });
        }
        Ok(self.withdrawn(amount)?)
    }

    /// Closes the account, which must be empty.
    pub fn close(&mut self) -> Result<(), BankError> {
        if self.closed {
            return Err(BankError::Closed);
        }
        if self.balance != 0 {
            return Err(BankError::NotEmpty(self.balance));
        }
        Ok(self.closed()?)
    }

    /// The owner.
    pub fn owner(&self) -> &str {
        &self.owner
    }
    /// The balance.
    pub fn balance(&self) -> i64 {
        self.balance
    }
    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

/// A review case, opened for a large withdrawal.
#[aggregate]
pub struct Review {
    account_id: Uuid,
    amount: i64,
}

#[aggregate]
impl Review {
    /// A case about a withdrawal of `amount` from `account_id`.
    #[event(Opened)]
    pub fn open(account_id: Uuid, amount: i64) -> Self {
        Review { account_id, amount }
    }
    /// The account.
    pub fn account_id(&self) -> Uuid {
        self.account_id
    }
    /// The amount withdrawn.
    pub fn amount(&self) -> i64 {
        self.amount
    }
}

/// One SQL parameter.
#[derive(Clone, Debug)]
pub enum Param {
    /// An integer.
    Int(i64),
    /// A string.
    Text(String),
}

/// Runs `sql` (with `?` placeholders) in the transaction on any SQL backend; on SQLite at
/// commit, as [`Tx::sqlite`] does.
pub async fn execute(tx: &mut Tx, sql: &str, params: Vec<Param>) -> Result<()> {
    match tx.backend() {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => {
            let sql = sql.to_string();
            tx.sqlite(move |t| {
                let values: Vec<Box<dyn es_runtime::record::sqlite::rusqlite::ToSql>> = params
                    .into_iter()
                    .map(
                        |p| -> Box<dyn es_runtime::record::sqlite::rusqlite::ToSql> {
                            match p {
                                Param::Int(i) => Box::new(i),
                                Param::Text(s) => Box::new(s),
                            }
                        },
                    )
                    .collect();
                t.prepare_cached(&sql)?.execute(
                    es_runtime::record::sqlite::rusqlite::params_from_iter(values.iter()),
                )?;
                Ok(())
            })
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            // The statements are built here from table names of our own, not from input.
            let mut q = es_runtime::sqlx::query(es_runtime::sqlx::AssertSqlSafe(numbered(sql)));
            for p in params {
                q = match p {
                    Param::Int(i) => q.bind(i),
                    Param::Text(s) => q.bind(s),
                };
            }
            q.execute(&mut **tx.postgres()?).await?;
            Ok(())
        }
        #[cfg(feature = "mysql")]
        Backend::MySql => {
            let mut q = es_runtime::sqlx::query(es_runtime::sqlx::AssertSqlSafe(sql.to_string()));
            for p in params {
                q = match p {
                    Param::Int(i) => q.bind(i),
                    Param::Text(s) => q.bind(s),
                };
            }
            q.execute(&mut **tx.mysql()?).await?;
            Ok(())
        }
        other => Err(Error::Configuration(format!(
            "no SQL on the {other:?} backend"
        ))),
    }
}

/// `?` placeholders as PostgreSQL's `$1, $2, ...`.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads `(text, integer)` rows with `sql` in a transaction of `records`' backend (rolled
/// back; committed empty on SQLite), or the row table `table` in memory.
pub async fn query_pairs(
    records: &Arc<dyn RecordManager>,
    sql: &str,
    table: &str,
) -> Result<Vec<(String, i64)>> {
    let mut tx = records.begin_tx().await?;
    let out = Arc::new(Mutex::new(Vec::new()));
    match tx.backend() {
        Backend::Memory => {
            let (out2, table) = (out.clone(), table.to_string());
            tx.memory(move |rows| {
                let mut o = out2.lock().unwrap_or_else(|p| p.into_inner());
                for (k, v) in rows.rows(&table) {
                    o.push((k.clone(), v.as_i64().unwrap_or_default()));
                }
                Ok(())
            })?;
            tx.commit_tracked(None, &[]).await?;
        }
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => {
            let (out2, sql) = (out.clone(), sql.to_string());
            tx.sqlite(move |t| {
                let mut st = t.prepare(&sql)?;
                let rows =
                    st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
                let mut o = out2.lock().unwrap_or_else(|p| p.into_inner());
                for r in rows {
                    o.push(r?);
                }
                Ok(())
            })?;
            tx.commit_tracked(None, &[]).await?;
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let rows: Vec<(String, i64)> =
                es_runtime::sqlx::query_as(es_runtime::sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_all(&mut **tx.postgres()?)
                    .await?;
            *out.lock().unwrap_or_else(|p| p.into_inner()) = rows;
        }
        #[cfg(feature = "mysql")]
        Backend::MySql => {
            let rows: Vec<(String, i64)> =
                es_runtime::sqlx::query_as(es_runtime::sqlx::AssertSqlSafe(sql.to_string()))
                    .fetch_all(&mut **tx.mysql()?)
                    .await?;
            *out.lock().unwrap_or_else(|p| p.into_inner()) = rows;
        }
        other => {
            return Err(Error::Configuration(format!(
                "no SQL on the {other:?} backend"
            )))
        }
    }
    let mut rows = std::mem::take(&mut *out.lock().unwrap_or_else(|p| p.into_inner()));
    rows.sort();
    Ok(rows)
}

/// Creates table `name (id VARCHAR(64) PRIMARY KEY, value BIGINT)` if it is missing (nothing
/// in memory).
pub async fn create_table(records: &Arc<dyn RecordManager>, name: &str) -> Result<()> {
    let mut tx = records.begin_tx().await?;
    if tx.backend() != Backend::Memory {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {name} (id VARCHAR(64) PRIMARY KEY, value BIGINT NOT NULL)"
        );
        execute(&mut tx, &sql, vec![]).await?;
    }
    tx.commit_tracked(None, &[]).await
}

/// Adds `delta` to row `id` of table `table` (creating it at `delta`).
async fn add(tx: &mut Tx, table: &str, id: String, delta: i64, create: bool) -> Result<()> {
    if tx.backend() == Backend::Memory {
        let table = table.to_string();
        return tx.memory(move |rows| {
            let now = rows.get(&table, &id).and_then(|v| v.as_i64());
            match (now, create) {
                (None, true) => rows.put(&table, id, delta.into()),
                (Some(v), false) => rows.put(&table, id, (v + delta).into()),
                (Some(_), true) => return Err(Error::RecordConflict(format!("row {id} exists"))),
                (None, false) => return Err(Error::NotFound(format!("row {id}"))),
            };
            Ok(())
        });
    }
    if create {
        let sql = format!("INSERT INTO {table} (id, value) VALUES (?, ?)");
        execute(tx, &sql, vec![Param::Text(id), Param::Int(delta)]).await
    } else {
        let sql = format!("UPDATE {table} SET value = value + ? WHERE id = ?");
        execute(tx, &sql, vec![Param::Int(delta), Param::Text(id)]).await
    }
}

/// The balances read model: one row per open account, `(id, balance)`, in a plain table.
#[derive(Clone, Debug)]
pub struct Balances {
    /// The table.
    pub table: String,
}

impl Default for Balances {
    fn default() -> Self {
        Balances {
            table: "bank_balances".into(),
        }
    }
}

#[projection(name = "balances")]
impl Balances {
    async fn opened(&self, tx: &mut Tx, e: &Event<account::Opened>) -> Result<()> {
        add(tx, &self.table, e.originator_id().to_string(), 0, true).await
    }

    async fn deposited(&self, tx: &mut Tx, e: &Event<account::Deposited>) -> Result<()> {
        add(
            tx,
            &self.table,
            e.originator_id().to_string(),
            e.amount,
            false,
        )
        .await
    }

    async fn withdrawn(&self, tx: &mut Tx, e: &Event<account::Withdrawn>) -> Result<()> {
        add(
            tx,
            &self.table,
            e.originator_id().to_string(),
            -e.amount,
            false,
        )
        .await
    }

    async fn closed(&self, tx: &mut Tx, e: &Event<account::Closed>) -> Result<()> {
        let id = e.originator_id().to_string();
        if tx.backend() == Backend::Memory {
            let table = self.table.clone();
            return tx.memory(move |rows| {
                rows.remove(&table, &id);
                Ok(())
            });
        }
        let sql = format!("DELETE FROM {} WHERE id = ?", self.table);
        execute(tx, &sql, vec![Param::Text(id)]).await
    }

    #[reset]
    async fn clear(&self, tx: &mut Tx) -> Result<()> {
        if tx.backend() == Backend::Memory {
            let table = self.table.clone();
            return tx.memory(move |rows| {
                rows.clear(&table);
                Ok(())
            });
        }
        execute(tx, &format!("DELETE FROM {}", self.table), vec![]).await
    }
}

impl Balances {
    /// The rows, by account id.
    pub async fn read(&self, records: &Arc<dyn RecordManager>) -> Result<Vec<(String, i64)>> {
        let sql = format!("SELECT id, value FROM {} ORDER BY id", self.table);
        query_pairs(records, &sql, &self.table).await
    }
}

/// The reviews policy: a withdrawal of at least `threshold` opens a review case, and an
/// outbox row `(review id, amount)` for the case-management system commits with it.
#[derive(Clone, Debug)]
pub struct Reviews {
    /// The smallest withdrawal reviewed.
    pub threshold: i64,
    /// The outbox table.
    pub outbox: String,
}

impl Default for Reviews {
    fn default() -> Self {
        Reviews {
            threshold: 1000,
            outbox: "bank_outbox".into(),
        }
    }
}

#[policy(name = "reviews")]
impl Reviews {
    async fn on_withdrawal(
        &self,
        ctx: &mut ProcessContext,
        e: &Event<account::Withdrawn>,
    ) -> Result<()> {
        if e.amount < self.threshold {
            return Ok(());
        }
        let review = Review::open(e.originator_id(), e.amount)?;
        let id = review.id().to_string();
        ctx.save(review);
        let mut tx = ctx.tx().await?;
        add(&mut tx, &self.outbox, id, e.amount, true).await
    }
}

/// The bank's system: the reviews process application follows the accounts application.
pub fn system(reviews: Reviews) -> System {
    System::new()
        .pipeline("accounts | reviews")
        .process("accounts", Policy::new)
        .policy_from(reviews)
}

/// The reviews policy with default settings, as a value.
pub fn reviews_policy() -> Policy {
    Reviews::default().into_policy()
}
