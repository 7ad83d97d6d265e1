//! Failures of gomirror itself: a crash inside the state database's thread
//! is exit 2 with the run recorded, never Rust's exit 101.

use crate::common::*;
use crate::support::Corpus;

#[test]
fn state_thread_panic_is_exit_2_and_the_run_is_recorded() {
    let m = Mirror::new(Corpus::generated(2, 2, 11));
    // Job 1 records the run's start, 2 applies the filter, 3 reads the cursor.
    let r = m.run_env(&["sync"], &[("GOMIRROR_TEST_STATE_PANIC_AT", "3")]);
    r.expect(2).contains("a state database operation crashed");
    let status = m.status();
    let runs = status["runs"].as_array().expect("status lists runs");
    let last = runs.first().expect("the crashed run is recorded");
    assert_eq!(last["command"], "sync", "{status}");
    assert_eq!(last["exit_code"], 2, "{status}");
    // Nothing was left half-done: the next run completes the mirror.
    m.sync().expect(0);
    for (p, v) in m.upstream.versions() {
        m.assert_mirrored(&p, &v);
    }
}
