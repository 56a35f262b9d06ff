use es_runtime::prelude::*;

#[aggregate]
pub struct Order {
    open: bool,
}

#[aggregate]
impl Order {
    #[event(Created)]
    pub fn create() -> Self {
        Order { open: true }
    }
}

#[derive(Default)]
pub struct Orders;

#[projection]
impl Orders {
    async fn on_text(&self, tx: &mut Tx, e: &String) -> Result<()> {
        let _ = (tx, e);
        Ok(())
    }
}

fn main() {}
