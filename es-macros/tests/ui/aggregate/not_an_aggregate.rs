use es_runtime::prelude::*;

// A plain struct used where an aggregate is expected.
#[derive(Clone, Debug)]
pub struct Account {
    balance: i64,
}

fn version_of<A: Aggregate>(a: &A) -> u64 {
    a.version()
}

fn main() {
    let account = Account { balance: 0 };
    let _ = account.balance;
    version_of(&account);
}
