//! The shapes of the real services the fake now copies (docs/real-upstream.md):
//! the proxy caches lookups, so a lookup carries the tree head of when it was
//! first answered, older than `/latest`; and partial tiles exist only at the
//! widths of published heads. A mirror synced under both must still satisfy
//! the go command.

use crate::common::*;
use crate::e2e::{GoClient, Nginx};
use crate::support::{Corpus, FakeOptions, Fault, ModuleVersionSpec, http};

#[test]
fn lookups_with_heads_older_than_latest_still_verify_through_the_mirror() {
    let opts = FakeOptions {
        filler_records: 600,
        ..FakeOptions::default()
    };
    let m = Mirror::with(Corpus::generated(3, 2, 21), opts, Cfg::default());
    let name = m.upstream.sumdb_name();
    // Someone looked these versions up long ago: the proxy's cached answers
    // carry that head (size 606), while the log grows past a tile boundary.
    let early = m.upstream.tree_size();
    for (p, v) in m.upstream.versions() {
        let url = format!(
            "{}/lookup/{}@{}",
            m.upstream.sumdb_url(),
            escape(&p),
            escape(&v)
        );
        assert_eq!(http::get(&url).unwrap().status, 200);
    }
    for i in 0..300 {
        m.upstream.add(ModuleVersionSpec::new(
            &format!("example.com/later/l{}", i % 3),
            &format!("v1.{i}.0"),
        ));
    }
    let late = m.upstream.tree_size();
    assert!(late / 256 > early / 256, "the log crossed a tile boundary");
    // The early head's partial tile is gone from the level it filled.
    let early_tile = format!(
        "{}/tile/{}",
        m.upstream.sumdb_url(),
        crate::support::server::tile_path(Some(0), early / 256, early % 256 + 1)
    );
    assert_eq!(http::get(&early_tile).unwrap().status, 404);

    m.sync().expect(0);
    let (p, v) = m.upstream.versions()[0].clone();
    let lookup = m
        .text(&format!(
            "sumdb/{name}/lookup/{}@{}",
            escape(&p),
            escape(&v)
        ))
        .expect("lookup mirrored");
    assert!(
        lookup.contains(&format!("\ngo.sum database tree\n{early}\n")),
        "the cached lookup's older head is what the mirror serves:\n{lookup}"
    );
    m.run(&["verify"]).expect(0);

    // go trusts the newest head and checks every older one against it.
    let nginx = Nginx::serve(&m.out());
    m.upstream.inject(Fault::Status {
        path_prefix: "/".into(),
        status: 503,
    });
    let go = GoClient::new(&nginx.url(), &m.upstream.sumdb_key());
    go.download_all(&m.upstream.versions());
}
