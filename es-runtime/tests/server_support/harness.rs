//! A test runner for suites that need a server (`harness = false` test targets): when the
//! server does not answer, every case is reported as ignored, not passed, in the format cargo's
//! own runner uses:
//!
//! ```text
//! es: postgres suite: SKIPPED (no server at 127.0.0.1:5432; set ES_POSTGRES_URL)
//! test conflict_writes_nothing ... ignored, no postgres server
//! test result: ok. 0 passed; 0 failed; 24 ignored; 0 measured; 0 filtered out; finished in 0.00s
//! ```
//!
//! It understands what `cargo test -- ...` passes on: name filters (substrings, or whole names
//! with `--exact`), `--skip`, `--list`, `--ignored`/`--include-ignored` (no case here is ignored
//! by itself); other flags are accepted and ignored. Cases run one after another, each in its
//! own multi-threaded tokio runtime.

use super::probe::{self, Backend};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Instant;

/// One case: its name and its body (which finds the server through [`probe::probe`]).
pub type Case = (&'static str, fn() -> Pin<Box<dyn Future<Output = ()>>>);

/// What a case of [`run_cases`] runs: an async body (in its own tokio runtime) or a plain one.
#[derive(Clone, Copy)]
pub enum Body {
    /// Runs in a fresh multi-threaded runtime.
    Async(fn() -> Pin<Box<dyn Future<Output = ()>>>),
    /// Runs as it is (it makes its own runtimes, if any).
    Blocking(fn()),
}

/// One case of a mixed suite: its name, the server it needs (if any), and its body.
pub type Entry = (&'static str, Option<Backend>, Body);

/// An [`Entry`] for `async fn $f()` that needs a server (`case!(POSTGRES f)`), runs without
/// one (`case!(local f)`), or is a plain `fn` that needs one (`case!(blocking POSTGRES f)`).
#[macro_export]
macro_rules! case {
    (local $f:ident) => {
        (
            stringify!($f),
            None,
            $crate::server_support::harness::Body::Async(|| Box::pin($f())),
        )
    };
    (blocking $backend:ident $f:ident) => {
        (
            stringify!($f),
            Some($crate::server_support::probe::$backend),
            $crate::server_support::harness::Body::Blocking($f),
        )
    };
    ($backend:ident $f:ident) => {
        (
            stringify!($f),
            Some($crate::server_support::probe::$backend),
            $crate::server_support::harness::Body::Async(|| Box::pin($f())),
        )
    };
}

/// Runs `cases` against the server of `backend` and prints cargo's summary line.
pub fn run(backend: Backend, cases: &[Case]) -> ExitCode {
    let entries: Vec<Entry> = cases
        .iter()
        .map(|(name, f)| (*name, Some(backend), Body::Async(*f)))
        .collect();
    run_cases(&entries)
}

/// Runs a suite whose cases may or may not need a server: those whose server does not answer
/// are reported as ignored (one line per backend says why), the others run.
pub fn run_cases(cases: &[Entry]) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = Vec::new();
    let mut skips = Vec::new();
    let (mut exact, mut list) = (false, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--exact" => exact = true,
            "--list" => list = true,
            "--skip" => skips.extend(it.next().cloned()),
            "--ignored" => return summary(0, 0, 0, cases.len(), Instant::now()),
            // Options with a value that this runner has no use for.
            "--test-threads" | "--format" | "--logfile" | "--color" | "-Z" => {
                it.next();
            }
            flag if flag.starts_with('-') => {}
            name => filters.push(name.to_string()),
        }
    }
    let matches = |name: &str| {
        let hit = |f: &String| {
            if exact {
                name == f
            } else {
                name.contains(f.as_str())
            }
        };
        (filters.is_empty() || filters.iter().any(hit)) && !skips.iter().any(hit)
    };
    let selected: Vec<&Entry> = cases.iter().filter(|c| matches(c.0)).collect();
    let filtered_out = cases.len() - selected.len();
    if list {
        for (name, ..) in &selected {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let started = Instant::now();
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    let mut ignored = 0;
    for (name, needs, body) in &selected {
        if let Some(backend) = needs.filter(|b| probe::probe(*b).is_err()) {
            println!("test {name} ... ignored, no {} server", backend.name);
            ignored += 1;
            continue;
        }
        let outcome = match body {
            Body::Async(case) => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(4)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                let outcome =
                    std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(case())));
                drop(runtime);
                outcome
            }
            Body::Blocking(case) => std::panic::catch_unwind(case),
        };
        match outcome {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    summary(
        selected.len() - failed.len() - ignored,
        failed.len(),
        ignored,
        filtered_out,
        started,
    )
}

fn summary(passed: usize, failed: usize, ignored: usize, filtered: usize, t: Instant) -> ExitCode {
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; {ignored} ignored; 0 measured; \
         {filtered} filtered out; finished in {:.2}s\n",
        t.elapsed().as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
