//! What a hostile or broken index feed does (a stalled, looping, malformed
//! or far-future feed): the walk never stalls silently, never
//! moves the cursor backwards or into the future, a page that is not a feed
//! is fatal, and a 404 for a version the index names is "not yet", not "gone".

use crate::common::*;
use crate::support::{Corpus, FakeOptions, Fault, ModuleVersionSpec};

const M: &str = "example.com/gen/m0";

fn small() -> Corpus {
    Corpus::generated(2, 2, 11)
}

fn first_version(m: &Mirror) -> String {
    m.upstream
        .versions()
        .into_iter()
        .find(|(p, _)| p == M)
        .map(|(_, v)| v)
        .unwrap()
}

fn cursor(m: &Mirror) -> String {
    let s = m.status();
    s["cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("status has a cursor: {s}"))
        .to_string()
}

/// A mirror of `example.com` only: the fake's injected burst and noise
/// entries are seen in the index but not wanted.
fn example_only(options: FakeOptions) -> Mirror {
    let cfg = Cfg {
        include: vec!["example.com".into()],
        ..Cfg::default()
    };
    Mirror::with(small(), options, cfg)
}

fn assert_all_mirrored(m: &Mirror) {
    for (p, v) in m.upstream.versions() {
        m.assert_mirrored(&p, &v);
    }
}

#[test]
fn index_page_of_one_timestamp_does_not_stall() {
    let m = example_only(FakeOptions::default());
    m.upstream.inject(Fault::IndexSameTimestamp { count: 2500 });
    let r = m.sync();
    // Entries beyond the full page at that instant may have been skipped:
    // said, and exit 1, never a silent exit 0.
    r.expect(1)
        .contains("index gap")
        .contains("may have been skipped");
    // The walk went on past the burst: every real version was reached.
    assert_all_mirrored(&m);
    // The gap is behind the cursor now: the next run is clean.
    m.sync().expect(0);
}

#[test]
fn index_page_of_duplicates_does_not_stall() {
    let m = example_only(FakeOptions::default());
    m.upstream.inject(Fault::IndexDuplicates { count: 2100 });
    m.sync().expect(1).contains("index gap");
    assert_all_mirrored(&m);
    m.sync().expect(0);
}

#[test]
fn index_going_back_in_time_is_refused() {
    let options = FakeOptions {
        extra_index_entries: 5000,
        ..FakeOptions::default()
    };
    let m = example_only(options);
    m.sync().expect(0);
    let before = cursor(&m);
    m.upstream
        .add(ModuleVersionSpec::new("example.com/late/mod", "v1.0.0"));
    m.upstream.inject(Fault::IndexIgnoresSince);
    m.sync()
        .expect(2)
        .contains("went back in time")
        .contains(&before);
    assert_eq!(cursor(&m), before, "the cursor did not move");
    m.assert_absent("example.com/late/mod", "v1.0.0");
    // Once the feed behaves, the walk resumes from where it was.
    m.upstream.clear_faults();
    m.sync().expect(0);
    m.assert_mirrored("example.com/late/mod", "v1.0.0");
}

#[test]
fn html_page_from_the_index_is_fatal() {
    let m = Mirror::new(small());
    m.upstream.inject(Fault::IndexHtml);
    m.sync()
        .expect(2)
        .contains("none of them an index entry")
        .contains("an index feed?");
    assert!(m.tree_files().is_empty(), "{:?}", m.tree_files());
    assert!(m.status()["cursor"].is_null(), "no cursor was recorded");
}

#[test]
fn far_future_index_entry_does_not_become_the_cursor() {
    let m = Mirror::new(small());
    m.upstream.inject(Fault::MalformedIndexLines(vec![
        r#"{"Path":"example.com/future","Version":"v1.0.0","Timestamp":"2999-01-01T00:00:00Z"}"#
            .into(),
    ]));
    m.sync()
        .expect(0)
        .contains("1 invalid lines skipped")
        .contains("in the future");
    assert!(!cursor(&m).starts_with("2999"), "{}", cursor(&m));
    // A version published later is still found.
    m.upstream
        .add(ModuleVersionSpec::new("example.com/late/mod", "v1.0.0"));
    m.sync().expect(0);
    m.assert_mirrored("example.com/late/mod", "v1.0.0");
    assert_all_mirrored(&m);
}

#[test]
fn one_run_of_404s_does_not_lose_a_version() {
    let m = Mirror::new(small());
    let v = first_version(&m);
    let zip = format!("/proxy/{}", version_file(M, &v, "zip"));
    m.upstream.inject(Fault::Status {
        path_prefix: zip.clone(),
        status: 404,
    });
    m.sync()
        .expect(0)
        .contains(&format!("{M}@{v}: not on the upstream yet"))
        .contains("not on the upstream yet: 1 this run");
    m.assert_absent(M, &v);
    assert_eq!(m.status()["counts"]["missing"], 1);
    // The proxy catches up. Within the backoff nothing is asked...
    m.upstream.clear_faults();
    let asked = m.upstream.requests(&zip);
    m.sync().expect(0).contains("1 waiting from earlier runs");
    assert_eq!(
        m.upstream.requests(&zip),
        asked,
        "asked again within the backoff"
    );
    // ...and --retry-failed asks now: the version is published.
    m.run(&["sync", "--retry-failed"]).expect(0);
    m.assert_mirrored(M, &v);
    assert_eq!(m.status()["counts"]["missing"], 0);
}

#[test]
fn a_version_missing_past_the_grace_period_is_gone_and_can_be_retried() {
    let m = Mirror::new(small());
    let v = first_version(&m);
    m.upstream.inject(Fault::Status {
        path_prefix: format!("/proxy/{}", version_file(M, &v, "zip")),
        status: 410,
    });
    let grace = [("GOMIRROR_TEST_MISSING_GRACE_SECS", "0")];
    m.run_env(&["sync"], &grace)
        .expect(0)
        .contains("given up")
        .contains("1 not on the upstream");
    m.assert_absent(M, &v);
    m.upstream.clear_faults();
    m.run_env(&["sync"], &grace).expect(0);
    m.assert_absent(M, &v);
    // --retry-failed brings a gone version back.
    m.run_env(&["sync", "--retry-failed"], &grace).expect(0);
    m.assert_mirrored(M, &v);
}

#[test]
fn recheck_failures_are_reported_not_dropped() {
    let mut m = Mirror::new(small());
    m.sync().expect(0);
    m.cfg.recheck_interval = "0s".into();
    m.write_config();
    let v = first_version(&m);
    m.upstream.inject(Fault::Status {
        path_prefix: format!("/proxy/{}", version_file(M, &v, "info")),
        status: 403,
    });
    m.sync()
        .expect(0)
        .contains("could not be checked")
        .contains(&format!("recheck failed: {M}@{v}"));
    m.upstream.clear_faults();
    m.assert_mirrored(M, &v);
}

#[test]
fn a_recheck_404_deletes_nothing_within_the_grace_period() {
    let mut m = Mirror::new(small());
    m.sync().expect(0);
    m.cfg.recheck_interval = "0s".into();
    m.write_config();
    let v = first_version(&m);
    m.upstream.inject(Fault::Status {
        path_prefix: format!("/proxy/{}", version_file(M, &v, "info")),
        status: 404,
    });
    m.sync()
        .expect(0)
        .contains("kept, and asked again next run");
    m.upstream.clear_faults();
    m.assert_mirrored(M, &v);
}
