//! The **site** scenario of `benches/mirror.rs`: the mirror's pages after an
//! incremental sync. A state database of 1,000,000 published versions
//! (200,000 modules of five; `--small`: 20,000) and its tree of pages are
//! built in this process through gomirror's own state and site code (the
//! module files themselves are not needed by the pages); the first write of
//! every page is timed, then 100 versions are published (half to existing
//! modules, half to new ones) and the next write is timed, with the number
//! of files under `site/` it wrote or deleted (by inode and mtime), against
//! the modules that changed. Then a write with nothing changed.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use gomirror::settings::Settings;
use gomirror::site::{RunFacts, write_site};
use gomirror::state::db::Db;
use gomirror::state::{IndexEntry, Published, State};
use gomirror::store::{LocalStore, Store};

use crate::Report;

const PER_MODULE: usize = 5;

fn path(i: usize) -> String {
    // Varied last elements, as real paths have: the search shards split.
    const WORDS: [&str; 8] = ["go-", "lib", "api", "utils", "x", "kit", "sdk", "yaml"];
    format!("github.com/owner{}/{}{i}", i % 997, WORDS[i % WORDS.len()])
}

fn version(k: usize) -> String {
    format!("v1.{k}.0")
}

/// Publishes `versions` in the state database, as a sync records them.
fn publish(st: &mut State, versions: &[(String, String)]) {
    for chunk in versions.chunks(20_000) {
        let entries: Vec<IndexEntry> = chunk
            .iter()
            .map(|(p, v)| IndexEntry::new(p.clone(), v.clone()))
            .collect();
        st.record_entries(&entries, &|_| true, None).unwrap();
        let published: Vec<Published> = chunk
            .iter()
            .map(|(p, v)| Published {
                module_id: st.module(p).unwrap().unwrap().0,
                version: v.clone(),
                info_time: Some("2024-01-01T00:00:00Z".into()),
                zip_h1: "h1:z".into(),
                mod_h1: "h1:m".into(),
                info_size: 60,
                mod_size: 40,
                zip_size: 4000,
                info_mtime: 0,
                mod_mtime: 0,
                zip_mtime: 0,
                record_id: None,
                zip_sha256: None,
                info_sha256: None,
                zip: true,
            })
            .collect();
        st.mark_published(&published, &[], 1).unwrap();
    }
}

/// (inode, mtime) of every file under `site/`.
fn snapshot(out: &Path) -> BTreeMap<String, (u64, i64)> {
    walkdir::WalkDir::new(out.join("site"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let m = e.metadata().unwrap();
            (
                e.path().display().to_string(),
                (m.ino(), m.mtime_nsec() + m.mtime() * 1_000_000_000),
            )
        })
        .collect()
}

fn touched(a: &BTreeMap<String, (u64, i64)>, b: &BTreeMap<String, (u64, i64)>) -> usize {
    let changed = b.iter().filter(|(k, v)| a.get(*k) != Some(v)).count();
    let deleted = a.keys().filter(|k| !b.contains_key(*k)).count();
    changed + deleted
}

pub fn scenario_site(small: bool, rep: &mut Report) {
    let modules = if small { 4_000 } else { 200_000 };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mirror");
    let config = format!(
        "[upstream]\nproxy = \"https://proxy.golang.org\"\nindex = \"https://index.golang.org/index\"\n\
         [sumdb]\nkey = \"sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8\"\n\
         [mirror]\noutput = \"{}\"\nstate = \"{}\"\nname = \"bench.test\"\n[filter]\ninclude = [\"*\"]\n",
        out.display(),
        dir.path().join("state.db").display()
    );
    let settings = Settings::parse(&config, &dir.path().join("sync.toml"), dir.path()).unwrap();
    let mut st = State::open(&settings.state).unwrap();
    let t = Instant::now();
    let all: Vec<(String, String)> = (0..modules)
        .flat_map(|i| (0..PER_MODULE).map(move |k| (path(i), version(k))))
        .collect();
    publish(&mut st, &all);
    let build = t.elapsed().as_secs_f64();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tree: Arc<dyn Store> = Arc::new(LocalStore::open(&out).unwrap());

    let (db, handle) = Db::spawn(st);
    let write = |published: u64| {
        let t = Instant::now();
        runtime
            .block_on(write_site(
                &settings,
                &db,
                &tree,
                RunFacts {
                    command: "sync",
                    published,
                    upstream_as_of: None,
                },
            ))
            .unwrap()
            .unwrap();
        t.elapsed().as_secs_f64()
    };
    let first = write(all.len() as u64);
    let before = snapshot(&out);

    // An incremental sync: 100 versions, 50 in existing modules, 50 new modules.
    let mut new: Vec<(String, String)> = (0..50)
        .map(|i| (path(i * (modules / 50)), version(PER_MODULE + 1)))
        .collect();
    new.extend((0..50).map(|i| (path(modules + i), version(0))));
    let changed_modules = new.len();
    runtime
        .block_on(db.call(move |s| {
            publish(s, &new);
            Ok(())
        }))
        .unwrap();
    let incremental = write(100);
    let after = snapshot(&out);
    let files = touched(&before, &after);
    let idle = write(0);
    let idle_files = touched(&after, &snapshot(&out));
    drop(db);
    handle.join().unwrap();

    rep.line(format!(
        "site: {} versions in {} modules (built in {build:.0} s); first write of every page {first:.1} s ({} files); after 100 new versions in {changed_modules} modules: {incremental:.3} s, {files} files written; nothing new: {idle:.3} s, {idle_files} files",
        all.len(),
        modules,
        before.len(),
    ));
    rep.value(
        "site",
        serde_json::json!({
            "versions": all.len(), "modules": modules, "first_s": first, "pages": before.len(),
            "incremental_s": incremental, "incremental_files": files,
            "changed_modules": changed_modules, "idle_s": idle, "idle_files": idle_files,
        }),
    );
}
