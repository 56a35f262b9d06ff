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

pub struct Generic<T>(T);

#[policy]
impl<T: Send + Sync + 'static> Generic<T> {
    async fn on_created(&self, ctx: &mut ProcessContext, e: &Event<order::Created>) -> Result<()> {
        let _ = (ctx, e);
        Ok(())
    }
}

fn main() {}
