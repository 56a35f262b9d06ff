//! Compile errors for macro misuse: each case in `tests/ui/<macro>/<case>.rs` must fail to
//! compile with exactly the message in its `.stderr` file (regenerate with
//! `TRYBUILD=overwrite cargo test -p es-macros --test ui`, then review the diff).
//!
//! The expected output does not depend on the features built: es's own diagnostics
//! (`#[diagnostic::on_unimplemented]` on `Aggregate` and on event fields, with their blanket and
//! generated impls marked `#[diagnostic::do_not_recommend]`) name the missing piece instead of
//! listing the types that implement a trait, a list that grows with every backend compiled in.
//!
//! The cases live here, in the macros' crate, because trybuild builds their dependencies again
//! in a project of its own (checked only, under `target/tests/trybuild`): this crate's
//! dev-dependencies give that project the runtime without a backend, not the whole workspace.

#[test]
fn macro_misuse_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/aggregate/*.rs");
    t.compile_fail("tests/ui/event/*.rs");
    t.compile_fail("tests/ui/policy/*.rs");
}
