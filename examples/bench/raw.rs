//! The raw limit: the same rows written and read with the database driver alone.

use es_runtime::prelude::*;

/// Runs a `raw_*` workload for backends that have a driver; others print nothing.
pub async fn run(workload: &str, backend: &str, n: usize, replay_len: usize) -> Result<()> {
    let _ = (workload, n, replay_len);
    eprintln!("no raw limit for backend {backend}");
    Ok(())
}
