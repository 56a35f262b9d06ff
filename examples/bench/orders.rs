//! The `orders` workload of the peer script: the system `orders | reservations | orders |
//! payments | orders` on the single-threaded runner; N orders saved one after another, each
//! fully processed (reserved and paid) before the next.

use crate::clock::Instant;
use es_examples::orders::{self, Order};
use es_runtime::application::Database;
use es_runtime::prelude::*;
use es_runtime::process::Runner;
use std::sync::Arc;

/// Runs the workload and prints its `RESULT` line.
pub async fn run(db: &Arc<dyn Database>, backend: &str, n: usize) -> Result<()> {
    let namespace = format!("bo{}_", &Uuid::new_v4().simple().to_string()[..8]);
    let runner = Runner::builder(&orders::orders_system(), db.clone())
        .namespace(namespace)
        .single_threaded()
        .await?;
    let orders_app = runner.app("orders")?;
    let t = Instant::now();
    let mut last = None;
    for _ in 0..n {
        let mut order = Order::create(None)?;
        orders_app.save(&mut order).await?;
        last = Some(order.id());
    }
    super::report("orders", backend, n, t);
    if let Some(id) = last {
        let order: Order = orders_app.get(id).await?;
        if !order.is_paid() {
            return Err(Error::Operational(
                "the system did not process the last order".into(),
            ));
        }
    }
    runner.stop().await
}
