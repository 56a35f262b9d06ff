//! The harness's own failures: each assertion panics with both sides shown.

use super::{given, given_command, when_created};
use crate::prelude::*;

#[aggregate(crate = "crate")]
pub struct Counter {
    n: u64,
}

#[aggregate(crate = "crate")]
impl Counter {
    #[event(Started)]
    pub fn start() -> Self {
        Counter { n: 0 }
    }
    #[event(Added)]
    pub fn add(&mut self, by: u64) {
        self.n += by;
    }
    pub fn add_small(&mut self, by: u64) -> Result<()> {
        if by > 10 {
            return Err(Error::NotFound(format!("small number {by}")));
        }
        self.add(by)
    }
}

fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let e = std::panic::catch_unwind(f).expect_err("the assertion should have failed");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn matching_events_pass_and_return_the_state() {
    let c = given((counter::Started {}, counter::Added { by: 2 }))
        .when(|c| c.add(3))
        .then(counter::Added { by: 3 });
    assert_eq!((c.n, c.version()), (5, 3));
    assert!(c.pending_events().is_empty());
    let c = given_command(Counter::start)
        .and_command(|c| c.add(1))
        .when(|c| c.add_small(2).and_then(|()| c.add_small(4)))
        .then(vec![counter::Added { by: 2 }, counter::Added { by: 4 }]);
    assert_eq!(c.n, 7);
    when_created(Counter::start).then([counter::Started {}]);
}

#[test]
fn different_events_fail_showing_expected_and_actual() {
    let m = panic_message(|| {
        given(counter::Started {})
            .when(|c| c.add(3))
            .then(counter::Added { by: 4 });
    });
    assert!(m.contains("then: the events differ"), "{m}");
    assert!(
        m.contains(r#"Added {"by":4}"#) && m.contains(r#"Added {"by":3}"#),
        "{m}"
    );
    let m = panic_message(|| {
        given(counter::Started {}).when(|c| c.add(3)).then(());
    });
    assert!(
        m.contains("expected 0 event(s)") && m.contains("actual 1 event(s)"),
        "{m}"
    );
}

#[test]
fn errors_are_returned_and_unexpected_ones_fail() {
    let e = given(counter::Started {})
        .when(|c| c.add_small(11))
        .then_error();
    assert!(
        matches!(e, Error::NotFound(ref m) if m == "small number 11"),
        "{e}"
    );
    let m = panic_message(|| {
        given(counter::Started {})
            .when(|c| c.add_small(11))
            .then(counter::Added { by: 11 });
    });
    assert!(
        m.contains("expected the command to succeed") && m.contains("small number 11"),
        "{m}"
    );
    let m = panic_message(|| {
        let _ = given(counter::Started {})
            .when(|c| c.add_small(1))
            .then_error();
    });
    assert!(
        m.contains("expected the command to fail") && m.contains(r#"Added {"by":1}"#),
        "{m}"
    );
}

#[test]
fn a_history_that_cannot_happen_fails_in_given() {
    let m = panic_message(|| {
        let _ = given(counter::Added { by: 1 });
    });
    assert!(
        m.contains("given: the events") && m.contains("created event"),
        "{m}"
    );
}
