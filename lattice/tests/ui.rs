//! Compile-time behaviour of `#[lattice::contract]`: contracts that must
//! compile, and mistakes that must be reported with a clear, spanned error.
//! Snapshots are `.stderr` files next to the cases; the toolchain is pinned,
//! so they are stable. Regenerate with `TRYBUILD=overwrite`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
