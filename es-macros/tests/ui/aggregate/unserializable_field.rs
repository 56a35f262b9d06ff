use es_runtime::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub struct Secret(u64);

#[aggregate]
pub struct Vault {
    count: u64,
}

#[aggregate]
impl Vault {
    #[event(Created)]
    pub fn create() -> Self {
        Vault { count: 0 }
    }
    #[event(Stored)]
    pub fn store(&mut self, secret: Secret) {
        self.count += secret.0;
    }
}

fn main() {}
