//! The attributes' compile errors, checked against the messages in ui/fail/*.stderr,
//! and tokio-style attributes that must compile (ui/pass/).
//!
//! A few files, each with several misuses, so trybuild builds few crates. Regenerate
//! the .stderr files after changing a message with `TRYBUILD=overwrite`.

#[test]
fn attributes() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
