//! Micro-benchmarks of the mapper's parts, one event at a time (`--workloads micro`): making an
//! event (JSON + SHA-256), mapping it to an item, reading an item back (hash check + decode),
//! the SHA-256 of a state alone, and AES-256-GCM sealing and opening of a state.

use crate::clock::{report, Instant};
use crate::world::World;
use es_runtime::domain::integrity;
use es_runtime::mapper::{Cipher, Mapper};
use es_runtime::prelude::*;
use std::hint::black_box;

/// Runs each micro workload `n` times and prints a `RESULT micro_<part>` line for each.
pub fn run(n: usize) -> Result<()> {
    let plain = Mapper::new();
    let sealed = Mapper::new().with_cipher(Cipher::from_base64(&Cipher::random_key(32)?)?);
    let mut w = World::create("gods")?;

    let t = Instant::now();
    for i in 0..n {
        w.make_it_so(format!("thing {i}"))?;
        if w.pending_events().len() >= 1000 {
            black_box(w.collect_pending());
        }
    }
    report("micro_trigger", "memory", n, t);

    let events = {
        black_box(w.collect_pending());
        for i in 0..1000 {
            w.make_it_so(format!("thing {i}"))?;
        }
        w.collect_pending()
    };
    let reps = n.div_ceil(events.len());
    for (label, mapper) in [("", &plain), ("_enc", &sealed)] {
        let t = Instant::now();
        for _ in 0..reps {
            for e in &events {
                black_box(mapper.to_item(e.as_ref())?);
            }
        }
        report(
            &format!("micro_to_item{label}"),
            "memory",
            reps * events.len(),
            t,
        );
        let items = mapper.to_items(&events)?;
        let t = Instant::now();
        for _ in 0..reps {
            for item in &items {
                black_box(mapper.from_item(item)?);
            }
        }
        report(
            &format!("micro_from_item{label}"),
            "memory",
            reps * events.len(),
            t,
        );
    }

    let state = events[0].state_bytes();
    let t = Instant::now();
    for _ in 0..n {
        black_box(integrity::hash_canonical(&state));
    }
    report("micro_sha256", "memory", n, t);

    let cipher = Cipher::from_base64(&Cipher::random_key(32)?)?;
    let t = Instant::now();
    let mut sealed_state = Vec::new();
    for _ in 0..n {
        sealed_state = black_box(cipher.encrypt(&state)?);
    }
    report("micro_aes_gcm_seal", "memory", n, t);
    let t = Instant::now();
    for _ in 0..n {
        black_box(cipher.decrypt(&sealed_state)?);
    }
    report("micro_aes_gcm_open", "memory", n, t);
    Ok(())
}
