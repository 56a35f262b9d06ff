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
    async fn on_created(&self, tx: &mut Tx, e: &Event<order::Created>) -> Result<()> {
        let _ = (tx, e);
        Ok(())
    }

    #[reset]
    fn clear(&self, tx: &mut Tx) -> Result<()> {
        let _ = tx;
        Ok(())
    }
}

fn main() {}
