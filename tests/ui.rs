//! Compile errors for macro misuse: each case in `tests/ui/<macro>/<case>.rs` must fail to
//! compile with exactly the message in its `.stderr` file (regenerate with
//! `TRYBUILD=overwrite cargo test -p es-examples --test ui`, then review the diff).

#[test]
fn macro_misuse_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/aggregate/*.rs");
    t.compile_fail("tests/ui/event/*.rs");
}
