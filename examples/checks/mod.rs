//! What the checked examples (`quickstart`, `orders`) share: a list of printed checks and the
//! exit code they end with.

use std::process::ExitCode;

/// Prints each check as it is made and counts the failures.
pub struct Checks {
    /// How many checks failed so far.
    pub failed: usize,
}

impl Checks {
    /// No checks yet.
    pub fn new() -> Self {
        Checks { failed: 0 }
    }

    /// Prints `what` as passed or failed.
    pub fn check(&mut self, ok: bool, what: &str) {
        println!("[{}] {what}", if ok { " ok " } else { "FAIL" });
        if !ok {
            self.failed += 1;
        }
    }
}

/// The exit code for a run that returned how many checks failed: success only for none.
pub fn exit_code(run: es_runtime::Result<usize>) -> ExitCode {
    match run {
        Ok(0) => {
            println!("all checks passed");
            ExitCode::SUCCESS
        }
        Ok(n) => {
            println!("{n} check(s) failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
