//! A test that cannot run here (a Socket.IO client, the browser, or the right to
//! mount a filesystem is missing) says so where people see it: under CI it fails,
//! and elsewhere it writes a `SKIPPED` line naming itself straight to standard
//! output, past the test runner's capture (which hides a passing test's output).

use std::io::Write;

/// Records that the calling test did not run, and why; fails under CI, where
/// `.ci/run` installs everything the tests drive.
pub fn skip(why: &str) {
    let current = std::thread::current();
    let test = current.name().unwrap_or("a test");
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} did not run: {why}; .ci/run installs what it needs"
    );
    // `println!` is captured for a passing test; a write to the handle is not.
    let _ = writeln!(std::io::stdout(), "SKIPPED {test}: {why}");
}
