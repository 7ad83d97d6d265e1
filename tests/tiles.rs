//! Every go client verifies through the mirror, whatever checksum-database
//! tree head it trusted before: the tree holds every full tile up
//! to its head and every width of the partial tiles at its right edge
//! (`sumdb.tiles = "all"`, the default), filled incrementally, proven against
//! the signed head, carried by bundles and followed by `mirror+` tiers.
//!
//! The fake upstream serves full tiles at every level and partial tiles only
//! at widths one of its signed heads had, as sum.golang.org effectively does
//! for a client at that head; the go command is the real one, through the
//! shipped nginx site and through `file://`, with the upstream switched off.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::*;
use crate::e2e::{GoClient, Nginx};
use crate::support::{Corpus, FakeOptions, Fault, ModuleVersionSpec};

/// Records before the corpus: two levels of full tiles (273 at level 0, one
/// at level 1), so a client needs tiles at both.
const FILLER: usize = 70_000;

/// Adds `keys` to the `[sumdb]` table of the config `m` wrote.
fn sumdb_keys(m: &Mirror, keys: &str) {
    m.write_config();
    let text = std::fs::read_to_string(m.config_path()).unwrap();
    let text = text.replacen("\nskip = [", &format!("\n{keys}\nskip = ["), 1);
    std::fs::write(m.config_path(), text).unwrap();
}

/// The tree head `go` trusts: its size and note.
fn head_of(go: &GoClient, name: &str) -> (u64, String) {
    let note = std::fs::read_to_string(
        go.home
            .path()
            .join(format!("gopath/pkg/sumdb/{name}/latest")),
    )
    .expect("go saved the tree head it trusts");
    (note_size(&note), note)
}

fn note_size(note: &str) -> u64 {
    note.lines().nth(1).unwrap().parse().unwrap()
}

/// The size of the head the tree's `sumdb/<name>/latest` shows.
fn mirror_head(out: &Path, name: &str) -> u64 {
    note_size(&std::fs::read_to_string(out.join(format!("sumdb/{name}/latest"))).unwrap())
}

/// `tile/8/<l>/<n>[.p/<w>]` as the tree names it.
fn tile_path(level: u32, n: u64, width: u64) -> String {
    format!(
        "tile/{}",
        crate::support::server::tile_path(Some(level), n, width)
    )
}

/// Every tile file of the tree, relative to `sumdb/<name>/`.
fn tile_files(out: &Path, name: &str) -> BTreeSet<String> {
    files_under(&out.join(format!("sumdb/{name}/tile")))
        .into_iter()
        .map(|f| format!("tile/{f}"))
        .collect()
}

/// Asserts the tree holds every tile a client with a head ≤ `t` can ask
/// for: every full tile at every level, every width at each right edge.
#[track_caller]
fn assert_every_tile(out: &Path, name: &str, t: u64) {
    let have = tile_files(out, name);
    let mut want = BTreeSet::new();
    let mut level = 0;
    while t >> (8 * level) > 0 {
        let at = t >> (8 * level);
        for n in 0..at >> 8 {
            want.insert(tile_path(level, n, 256));
        }
        for w in 1..=(at & 255) {
            want.insert(tile_path(level, at >> 8, w));
        }
        level += 1;
    }
    let missing: Vec<&String> = want.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "tree {t}: {} tiles missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    // Nothing else: no data tiles, no partial tile beside its full one.
    let extra: Vec<&String> = have.difference(&want).collect();
    assert!(extra.is_empty(), "tree {t}: unexpected tiles {extra:?}");
}

/// A module that imports `example.com/lib`, with `example.com/tool` to be
/// found by `go mod tidy`.
fn app(go: &GoClient, dir: &str) -> PathBuf {
    let app = go.home.path().join(dir);
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("go.mod"), "module example.org/app\n\ngo 1.21\n").unwrap();
    std::fs::write(
        app.join("main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/lib\"\n\t\"example.com/tool\"\n)\n\nfunc main() { fmt.Println(lib.Version(), tool.Version()) }\n",
    )
    .unwrap();
    app
}

/// Empties go's module cache (its tiles too), keeping the head it trusts.
fn forget_modules(go: &GoClient) {
    let (ok, out) = go.run(&["clean", "-modcache"]);
    assert!(ok, "go clean -modcache: {out}");
}

/// `go get example.com/lib@v1.0.0`, then `go mod tidy` (which looks up
/// `example.com/tool`), in a new module: (success, output).
fn get_and_tidy(go: &GoClient, dir: &str) -> (bool, String) {
    let app = app(go, dir);
    let (ok, out) = go.run_in(&app, &["get", "example.com/lib@v1.0.0"]);
    if !ok {
        return (false, out);
    }
    let (ok, tidy) = go.run_in(&app, &["mod", "tidy"]);
    let gosum = std::fs::read_to_string(app.join("go.sum")).unwrap_or_default();
    let whole = ok
        && gosum.contains("example.com/lib v1.0.0 h1:")
        && gosum.contains("example.com/tool v1.0.0 h1:");
    (whole, format!("{out}{tidy}\ngo.sum:\n{gosum}"))
}

/// The tile requests nginx logged after line `from`: (status, path).
fn tile_requests(nginx: &Nginx, from: usize) -> Vec<(u16, String)> {
    let log = std::fs::read_to_string(nginx.access_log()).unwrap_or_default();
    log.lines()
        .skip(from)
        .filter_map(|l| {
            let mut quoted = l.split('"');
            let request = quoted.nth(1)?;
            let status = quoted.next()?.split_whitespace().next()?.parse().ok()?;
            let path = request.split(' ').nth(1)?;
            path.contains("/tile/").then(|| (status, path.to_string()))
        })
        .collect()
}

fn log_lines(nginx: &Nginx) -> usize {
    std::fs::read_to_string(nginx.access_log())
        .unwrap_or_default()
        .lines()
        .count()
}

fn corpus() -> Corpus {
    Corpus::new()
        .with(ModuleVersionSpec::new("example.com/lib", "v1.0.0"))
        .with(ModuleVersionSpec::new("example.com/tool", "v1.0.0"))
}

/// A client that used the upstream directly, `download`ing one version, and
/// so trusts the upstream's head of that moment.
fn direct_client(m: &Mirror, download: (&str, &str)) -> GoClient {
    let go = GoClient::new(
        &m.upstream.proxy_url(),
        &format!("{} {}", m.upstream.sumdb_key(), m.upstream.sumdb_url()),
    );
    go.download_all(&[(download.0.to_string(), download.1.to_string())]);
    go
}

/// Points `go` at the mirror (`proxy`), the checksum database found through it.
fn through(go: &mut GoClient, proxy: &str, m: &Mirror) {
    go.proxy = proxy.to_string();
    go.sumdb = m.upstream.sumdb_key();
}

/// A fresh client through `proxy` that trusts `note` (a head it saw elsewhere).
fn client_trusting(proxy: &str, m: &Mirror, note: &str) -> GoClient {
    let go = GoClient::new(proxy, &m.upstream.sumdb_key());
    let dir = go
        .home
        .path()
        .join(format!("gopath/pkg/sumdb/{}", m.upstream.sumdb_name()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("latest"), note).unwrap();
    go
}

#[test]
fn clients_that_trusted_the_upstream_before_the_mirror_existed_verify_through_it() {
    let opts = FakeOptions {
        filler_records: FILLER,
        ..FakeOptions::default()
    };
    let cfg = Cfg {
        // Developers fetched these directly; the mirror never looks them up.
        exclude: vec!["example.com/direct".into()],
        ..Cfg::default()
    };
    let m = Mirror::with(corpus(), opts, cfg);
    let name = m.upstream.sumdb_name();

    // Two developer machines used the upstream before the mirror existed.
    // The log grows between them (other people's modules): the older one's
    // level-0 edge has filled since; the newer one's is still the edge, at a
    // width no head of the mirror will have.
    m.upstream
        .add(ModuleVersionSpec::new("example.com/direct", "v1.0.0"));
    let mut old = direct_client(&m, ("example.com/direct", "v1.0.0"));
    m.upstream.append_records(300);
    m.upstream
        .add(ModuleVersionSpec::new("example.com/direct", "v1.1.0"));
    let mut recent = direct_client(&m, ("example.com/direct", "v1.1.0"));
    m.upstream.append_records(5);
    let (old_n, old_note) = head_of(&old, &name);
    let (recent_n, recent_note) = head_of(&recent, &name);
    assert!(old_n >> 8 < recent_n >> 8, "{old_n} {recent_n}");

    // With only the tiles its own lookups need, the mirror fails them: the
    // issue's "reading …/tile/8/1/001.p/17: 404".
    sumdb_keys(&m, "tiles = \"needed\"");
    m.sync().expect(0);
    let t = mirror_head(&m.out(), &name);
    assert_eq!(
        t >> 8,
        recent_n >> 8,
        "the newer client's edge is the mirror's"
    );
    assert!(t > recent_n);
    let nginx = Nginx::serve(&m.out());
    switch_off(&m);
    for go in [&mut old, &mut recent] {
        through(go, &nginx.url(), &m);
        forget_modules(go);
        let (ok, out) = get_and_tidy(go, "needed");
        assert!(
            !ok && out.contains("404") && out.contains("/tile/8/"),
            "a client with an upstream head verified through a mirror without its tiles:\n{out}"
        );
    }

    // The default fills every tile: both verify, through nginx.
    m.upstream.clear_faults();
    m.write_config();
    let r = m.sync();
    r.expect(0).contains("full tiles held");
    assert_eq!(mirror_head(&m.out(), &name), t, "the log did not move");
    assert_every_tile(&m.out(), &name, t);
    switch_off(&m);
    for (go, n) in [(&old, old_n), (&recent, recent_n)] {
        forget_modules(go);
        let from = log_lines(&nginx);
        let (ok, out) = get_and_tidy(go, "all");
        assert!(ok, "a client trusting tree {n} through nginx:\n{out}");
        // It moved to the mirror's head after proving its own a prefix of it.
        assert_eq!(head_of(go, &name).0, t);
        let requests = tile_requests(&nginx, from);
        let missing: Vec<_> = requests.iter().filter(|(s, _)| *s != 200).collect();
        eprintln!(
            "client at tree {n}, mirror at {t}: {} tile requests, {} not found {missing:?}",
            requests.len(),
            missing.len()
        );
        // Only tiles that filled since the client's head are asked for
        // first at its width (then the full tile): one level here at most.
        assert!(missing.len() <= 1, "{missing:?}");
    }
    // Through file://, clients that trust the same upstream heads.
    for note in [&old_note, &recent_note] {
        let go = client_trusting(&format!("file://{}", m.out().display()), &m, note);
        let (ok, out) = get_and_tidy(&go, "file");
        assert!(ok, "through file:// trusting {}:\n{out}", note_size(note));
    }
    assert_upstream_untouched(&m);

    // The mirror advances (other people's modules fill a level-0 tile, a new
    // version); the same clients, now at the mirror's older head, verify
    // the new version and the old ones from a clean cache.
    m.upstream.clear_faults();
    m.upstream.append_records(400);
    m.upstream
        .add(ModuleVersionSpec::new("example.com/lib", "v1.1.0"));
    m.sync().expect(0).contains("published 1 new version");
    let t2 = mirror_head(&m.out(), &name);
    assert!(t2 >> 8 > t >> 8);
    assert_every_tile(&m.out(), &name, t2);
    switch_off(&m);
    for go in [&old, &recent] {
        forget_modules(go);
        let from = log_lines(&nginx);
        let app = app(go, "later");
        let (ok, out) = go.run_in(&app, &["get", "example.com/lib@v1.1.0"]);
        assert!(ok, "after the mirror advanced:\n{out}");
        let (ok, out) = go.run_in(&app, &["mod", "tidy"]);
        assert!(ok, "{out}");
        assert_eq!(head_of(go, &name).0, t2);
        let requests = tile_requests(&nginx, from);
        let missing = requests.iter().filter(|(s, _)| *s != 200).count();
        eprintln!(
            "client at tree {t}, mirror at {t2}: {} tile requests, {missing} not found",
            requests.len()
        );
        assert!(missing <= 1, "{requests:?}");
    }
    assert_upstream_untouched(&m);
}

#[test]
fn a_sync_with_nothing_to_publish_still_moves_the_served_head_and_its_tiles() {
    let opts = FakeOptions {
        filler_records: 600,
        ..FakeOptions::default()
    };
    let m = Mirror::with(corpus(), opts, Cfg::default());
    let name = m.upstream.sumdb_name();
    m.sync().expect(0);
    let t = mirror_head(&m.out(), &name);
    assert_every_tile(&m.out(), &name, t);
    let fetched = m.upstream.requests("/sumdb/");

    // Other people's records only: nothing to publish, a new head.
    m.upstream.append_records(230);
    m.sync()
        .expect(0)
        .contains("published 0 new versions")
        .contains("checksum database: tree of 832 records accepted; all 3 full tiles held\n");
    let t2 = mirror_head(&m.out(), &name);
    assert_eq!(t2, m.upstream.tree_size());
    assert_every_tile(&m.out(), &name, t2);
    // `latest`, the new head's edge tiles and the tile completed since (read
    // once, to prove the new head, then kept): not the whole log again.
    let more = m.upstream.requests("/sumdb/") - fetched;
    assert!(more <= 4, "{more} requests: {:?}", m.upstream.request_log());
    // A sync every 5 minutes at 100 k records a day: 347 records a sync.
    m.upstream.clear_request_log();
    m.upstream.append_records(347);
    let r = m.sync();
    r.expect(0);
    let log = m.upstream.request_log();
    eprintln!(
        "a sync after 347 new records: {} checksum-database requests {log:?}\n{}",
        m.upstream.requests("/sumdb/"),
        r.stdout
    );
    assert_every_tile(&m.out(), &name, mirror_head(&m.out(), &name));

    // And a client whose head was the old one verifies against the new.
    let nginx = Nginx::serve(&m.out());
    switch_off(&m);
    let note = std::fs::read_to_string(m.out().join(format!("sumdb/{name}/latest"))).unwrap();
    let go = client_trusting(&nginx.url(), &m, &note);
    let (ok, out) = get_and_tidy(&go, "app");
    assert!(ok, "{out}");
    assert_upstream_untouched(&m);
    assert_ne!(t, t2);
}

#[test]
fn a_bounded_first_fill_takes_the_newest_tiles_first_and_completes_over_runs() {
    let opts = FakeOptions {
        filler_records: FILLER,
        ..FakeOptions::default()
    };
    let m = Mirror::with(corpus(), opts, Cfg::default());
    let name = m.upstream.sumdb_name();
    sumdb_keys(&m, "max_tiles_per_run = 100");
    let r = m.sync();
    r.expect(0)
        .contains("of 274 full tiles held")
        .contains("older ones left for later runs");
    let t = mirror_head(&m.out(), &name);
    let have = tile_files(&m.out(), &name);
    // Newest first: the level-1 tile and the last level-0 tiles.
    assert!(have.contains(&tile_path(1, 0, 256)));
    assert!(have.contains(&tile_path(0, 272, 256)));
    assert!(!have.contains(&tile_path(0, 0, 256)), "oldest first");
    let held = have.iter().filter(|p| !p.contains(".p/")).count();
    assert!(
        (100..=110).contains(&held),
        "{held} full tiles after one run"
    );

    // A far side fed by a bundle of it holds the same slice, and says the
    // older tiles have yet to come.
    let media = tempfile::tempdir().unwrap();
    let bundle = crate::airgap::export(&m, media.path(), &[]);
    let far = crate::airgap::Far::new(&m.upstream.sumdb_key());
    far.import(&bundle)
        .expect(0)
        .contains("does not serve older tile")
        .contains("a later bundle carries them");
    assert_eq!(tile_files(&far.out(), &name), have);

    // A client whose head is recent is served already.
    let nginx = Nginx::serve(&m.out());
    switch_off(&m);
    let note = std::fs::read_to_string(m.out().join(format!("sumdb/{name}/latest"))).unwrap();
    let go = client_trusting(&nginx.url(), &m, &note);
    let (ok, out) = get_and_tidy(&go, "app");
    assert!(ok, "{out}");
    m.upstream.clear_faults();

    // Each run goes on where the last stopped, 100 at a time.
    for _ in 0..3 {
        m.sync().expect(0);
    }
    m.sync().expect(0).contains("all 274 full tiles held");
    assert_every_tile(&m.out(), &name, t);
    let status = m.status();
    assert_eq!(status["counts"]["published"], 2, "{status}");
}

#[test]
fn a_tile_that_does_not_match_the_signed_head_stops_the_run_and_is_not_written() {
    let m = Mirror::new(corpus());
    let name = m.upstream.sumdb_name();
    // Tile 1 of level 0: full in the fake's default log of 1000 fillers.
    m.upstream.inject(Fault::TamperTile {
        tile: "8/0/001".into(),
    });
    let r = m.sync();
    r.expect(2).contains("SECURITY").contains("tile/8/0/001");
    assert!(
        !tile_files(&m.out(), &name).contains(&tile_path(0, 1, 256)),
        "a tile that does not prove was written"
    );
    // Once the database serves the right tile, the next run fills it.
    m.upstream.clear_faults();
    m.sync().expect(0);
    let t = mirror_head(&m.out(), &name);
    assert_every_tile(&m.out(), &name, t);
    m.run(&["verify"]).expect(0);
}

#[test]
fn an_unreachable_tile_fails_the_run_softly_and_the_next_run_fills_it() {
    let m = Mirror::new(corpus());
    let name = m.upstream.sumdb_name();
    m.upstream.inject(Fault::Status {
        path_prefix: "/sumdb/tile/8/0/000".into(),
        status: 503,
    });
    let r = m.sync();
    // The versions are published (their own proofs do not need tile 0);
    // the fill reports what it could not fetch, and the run exits 1.
    r.expect(1)
        .contains("published 2 new versions")
        .contains("tiles: error:")
        .contains("tile/8/0/000");
    assert!(!tile_files(&m.out(), &name).contains(&tile_path(0, 0, 256)));
    m.upstream.clear_faults();
    m.sync().expect(0).contains("all 3 full tiles held");
    let t = mirror_head(&m.out(), &name);
    assert_every_tile(&m.out(), &name, t);
}

#[test]
fn bundles_carry_the_tiles_and_the_far_side_serves_a_client_of_the_connected_side() {
    let opts = FakeOptions {
        filler_records: FILLER,
        ..FakeOptions::default()
    };
    let m = Mirror::with(corpus(), opts, Cfg::default());
    let name = m.upstream.sumdb_name();
    m.sync().expect(0);
    let t1 = mirror_head(&m.out(), &name);
    // A laptop verified something against the connected mirror, at t1.
    let t1_note = std::fs::read_to_string(m.out().join(format!("sumdb/{name}/latest"))).unwrap();

    // The log moves on (a level-0 tile fills); the connected side syncs and exports.
    m.upstream.append_records(300);
    m.upstream
        .add(ModuleVersionSpec::new("example.com/lib", "v1.1.0"));
    m.sync().expect(0);
    let t2 = mirror_head(&m.out(), &name);
    let media = tempfile::tempdir().unwrap();
    let first = crate::airgap::export(&m, media.path(), &[]);
    let far = crate::airgap::Far::new(&m.upstream.sumdb_key());
    let r = far.import(&first);
    r.expect(0).contains("all 275 full tiles held");
    assert_eq!(mirror_head(&far.out(), &name), t2);
    assert_every_tile(&far.out(), &name, t2);
    assert_eq!(
        tile_files(&far.out(), &name),
        tile_files(&m.out(), &name),
        "the far side holds other tiles than the connected one"
    );

    // The laptop, carried across with the head it trusted, verifies there.
    let nginx = Nginx::serve(&far.out());
    switch_off(&m);
    let go = client_trusting(&nginx.url(), &m, &t1_note);
    let (ok, out) = get_and_tidy(&go, "far");
    assert!(
        ok,
        "a client trusting tree {t1} through the far side:\n{out}"
    );

    // A delta carries only the new tiles (and the edges' new widths).
    m.upstream.clear_faults();
    m.upstream.append_records(600);
    m.upstream
        .add(ModuleVersionSpec::new("example.com/tool", "v1.1.0"));
    m.sync().expect(0);
    let t3 = mirror_head(&m.out(), &name);
    let second = crate::airgap::export(&m, media.path(), &[]);
    let carried: Vec<String> = crate::airgap::manifest(&second)["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str())
        .filter(|p| p.contains("/tile/"))
        .map(str::to_string)
        .collect();
    let full_carried = carried.iter().filter(|p| !p.contains(".p/")).count();
    assert_eq!(
        full_carried as u64,
        (t3 >> 8) - (t2 >> 8) + (t3 >> 16) - (t2 >> 16),
        "a delta carries the full tiles completed since the last one: {carried:?}"
    );
    far.import(&second).expect(0);
    assert_every_tile(&far.out(), &name, t3);
    switch_off(&m);
    forget_modules(&go);
    let app = app(&go, "far2");
    let (ok, out) = go.run_in(&app, &["get", "example.com/tool@v1.1.0"]);
    assert!(ok, "after a delta import:\n{out}");
    assert_upstream_untouched(&m);

    // The log moves on with nothing for this mirror: a newer head is a
    // change, its bundle carries the head and its tiles.
    m.upstream.clear_faults();
    m.sync().expect(0);
    let again = m.run(&["export", media.path().to_str().unwrap()]);
    again.expect(0).contains("nothing changed since bundle 2");
    m.upstream.append_records(260);
    m.sync().expect(0).contains("published 0 new versions");
    let t4 = mirror_head(&m.out(), &name);
    let third = crate::airgap::export(&m, media.path(), &[]);
    assert_eq!(
        crate::airgap::manifest(&third)["versions"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    far.import(&third).expect(0);
    assert_eq!(mirror_head(&far.out(), &name), t4);
    assert_every_tile(&far.out(), &name, t4);
}

#[test]
fn a_follower_holds_every_tile_of_its_upstream_mirror() {
    let opts = FakeOptions {
        filler_records: 3_000,
        ..FakeOptions::default()
    };
    let m = Mirror::with(corpus(), opts, Cfg::default());
    let name = m.upstream.sumdb_name();
    m.sync().expect(0);
    let t = mirror_head(&m.out(), &name);
    let nginx = Nginx::serve(&m.out());

    let dir = tempfile::tempdir().unwrap();
    let base = nginx.url();
    std::fs::write(
        dir.path().join("sync.toml"),
        format!(
            "[upstream]\nproxy = \"{base}\"\nindex = \"mirror+{base}/\"\ntimeout = \"20s\"\n\n[sumdb]\nkey = \"{key}\"\nurl = \"{base}/sumdb/{name}\"\n\n[mirror]\noutput = \"mirror\"\nstate = \"state.db\"\nworkers = 4\n\n[filter]\ninclude = [\"*\"]\n",
            key = m.upstream.sumdb_key()
        ),
    )
    .unwrap();
    switch_off(&m);
    let follower = dir.path().join("sync.toml");
    gomirror(&follower, &["sync"])
        .expect(0)
        .contains("all 11 full tiles held");
    let out = dir.path().join("mirror");
    assert_every_tile(&out, &name, t);
    assert_eq!(tile_files(&out, &name), tile_files(&m.out(), &name));
    // Nothing new upstream: the follower asks for no tile again.
    let from = log_lines(&nginx);
    gomirror(&follower, &["sync"]).expect(0);
    assert!(tile_requests(&nginx, from).is_empty());
    assert_upstream_untouched(&m);
}

#[test]
fn verify_finds_every_damaged_or_missing_tile_and_repair_restores_it() {
    let m = Mirror::new(corpus());
    let name = m.upstream.sumdb_name();
    m.sync().expect(0);
    let t = mirror_head(&m.out(), &name);
    m.run(&["verify"]).expect(0);
    let dir = m.out().join(format!("sumdb/{name}"));
    // A full tile no lookup's proof reads, a narrow width of the edge tile
    // (only a client whose head ended there reads it), and a missing one.
    let full = dir.join(tile_path(0, 0, 256));
    let good = std::fs::read(&full).unwrap();
    let mut bad = good.clone();
    bad[100] ^= 1;
    std::fs::write(&full, &bad).unwrap();
    let narrow = dir.join(tile_path(0, t >> 8, 7));
    let narrow_good = std::fs::read(&narrow).unwrap();
    std::fs::write(&narrow, &narrow_good[..6 * 32]).unwrap();
    std::fs::remove_file(dir.join(tile_path(0, 1, 256))).unwrap();
    m.run(&["verify"])
        .expect(1)
        .contains("tile/8/0/000: does not match the served head's tree")
        .contains("would reject it")
        .contains(&format!("{}: differs", tile_path(0, t >> 8, 7)))
        .contains("tile/8/0/001: missing")
        .contains("3 problems");
    // `--quick` does not read tiles.
    m.run(&["verify", "--quick"]).expect(0);
    m.run(&["verify", "--repair"])
        .expect(0)
        .contains("0 problems remain");
    assert_eq!(std::fs::read(&full).unwrap(), good);
    assert_eq!(std::fs::read(&narrow).unwrap(), narrow_good);
    assert_every_tile(&m.out(), &name, t);
}

#[test]
fn a_first_sync_asks_for_each_tile_once() {
    // Many versions proven at once share their proofs' tiles: each tile
    // is asked for once, whichever lookup needs it first.
    // The versions' records deep in the log (records of others after them),
    // so that their proofs read tiles the head's own proof does not.
    let m = Mirror::new(Corpus::generated(12, 4, 2));
    m.upstream.append_records(3000);
    m.sync().expect(0);
    let tiles: Vec<String> = m
        .upstream
        .request_log()
        .into_iter()
        .filter(|p| p.contains("/tile/"))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let twice: Vec<&String> = tiles.iter().filter(|p| !seen.insert(*p)).collect();
    assert!(tiles.len() > 8, "{tiles:?}");
    assert!(
        twice.is_empty(),
        "asked for again: {twice:?} (of {tiles:?})"
    );
}
