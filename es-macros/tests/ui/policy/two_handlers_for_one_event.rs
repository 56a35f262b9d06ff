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

#[policy]
impl Orders {
    async fn first(&self, ctx: &mut ProcessContext, e: &Event<order::Created>) -> Result<()> {
        let _ = (ctx, e);
        Ok(())
    }

    async fn second(&self, ctx: &mut ProcessContext, e: &Event<order::Created>) -> Result<()> {
        let _ = (ctx, e);
        Ok(())
    }
}

fn main() {}
