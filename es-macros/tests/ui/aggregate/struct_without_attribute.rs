use es_runtime::prelude::*;

// `#[aggregate]` is on the impl block but was forgotten on the struct.
pub struct Account {
    balance: i64,
}

#[aggregate]
impl Account {
    #[event(Opened)]
    pub fn open() -> Self {
        Account { balance: 0 }
    }
    #[event(Deposited)]
    pub fn deposit(&mut self, amount: i64) {
        self.balance += amount;
    }
}

fn main() {}
