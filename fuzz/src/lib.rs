//! One function per parser of outside input, shared by the cargo-fuzz targets
//! (`fuzz_targets/*.rs`, nightly) and by the corpus replay in the normal test
//! suite (`tests/fuzz_corpus.rs`, stable), so that what the fuzzer learned is
//! guarded on every `cargo test` run.
//!
//! Each function must not panic on any input. Where a parser has an inverse,
//! the function also checks the round trip: a parser that accepts something
//! it cannot write back has a bug the fuzzer should see.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use gomirror::gomod::{self, pattern, pseudo, semver};
use gomirror::sumdb::{note, tile, tlog};

/// What a target runs on one input.
pub type Target = fn(&[u8]);

/// Every target: its name (the `fuzz_targets/<name>.rs` file and the
/// `corpus/<name>/` directory) and its function.
pub const TARGETS: &[(&str, Target)] = &[
    ("index_page", index_page),
    ("note_open", note_open),
    ("note_keys", note_keys),
    ("tree_note", tree_note),
    ("lookup_record", lookup_record),
    ("tile_path", tile_path),
    ("tile_hashes", tile_hashes),
    ("tlog_proofs", tlog_proofs),
    ("module_zip", module_zip),
    ("info", info),
    ("module_path", module_path),
    ("semver", semver_ops),
    ("pattern", pattern_ops),
    ("config", config),
    ("project_files", project_files),
];

/// Splits at the first newline: many targets take two strings.
fn two_parts(data: &[u8]) -> (&str, &str) {
    let text = std::str::from_utf8(data).unwrap_or("");
    text.split_once('\n').unwrap_or((text, ""))
}

/// Reads a little-endian integer of `N` bytes from the front of `data`.
fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0; N];
    let n = N.min(data.len());
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

fn take_i64(data: &mut &[u8]) -> i64 {
    i64::from_le_bytes(take::<8>(data))
}

fn take_hash(data: &mut &[u8]) -> tlog::Hash {
    tlog::Hash(take::<32>(data))
}

/// `index?since=` pages: JSON lines.
pub fn index_page(data: &[u8]) {
    let page = gomirror::source::index::parse_page(data);
    for entry in &page.entries {
        // What the index accepts becomes file names: it must pass Go's rules.
        assert!(
            gomod::check(&entry.path, &entry.version).is_ok(),
            "accepted {entry:?}"
        );
    }
}

/// The test key every note target signs with.
fn test_signer() -> note::Signer {
    note::Signer::from_seed("fuzz.example", [7; 32])
}

/// Keys whose notes are in the seed corpus (protocols.md §5.2, §5.3).
const VERIFIER_KEYS: &[&str] = &[
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8",
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop",
];

/// Signed notes (tree heads, `/latest`, the note in a `/lookup` body).
pub fn note_open(data: &[u8]) {
    for key in VERIFIER_KEYS {
        let Ok(verifier) = note::Verifier::parse(key) else {
            panic!("{key} does not parse");
        };
        let _ = note::open(data, &verifier);
    }
    // A text we sign ourselves opens to itself, whatever it holds.
    let signer = test_signer();
    let Ok(verifier) = note::Verifier::parse(&signer.verifier_key()) else {
        panic!("the test key does not parse");
    };
    if let Ok(text) = std::str::from_utf8(data)
        && text.ends_with('\n')
    {
        let signed = signer.sign(text);
        if let Ok(opened) = note::open(signed.as_bytes(), &verifier) {
            assert_eq!(opened, text);
        }
    }
}

/// Verifier keys (`[sumdb] key`) and signer keys.
pub fn note_keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(verifier) = note::Verifier::parse(text) {
        // A parsed key prints as a key that parses to the same (the hash may
        // be written in upper case, the base64 with stray low bits).
        let Ok(again) = note::Verifier::parse(&verifier.to_string()) else {
            panic!("{verifier} does not parse back");
        };
        assert_eq!(
            (again.name(), again.key_hash(), again.public_key()),
            (verifier.name(), verifier.key_hash(), verifier.public_key())
        );
    }
    if let Ok(signer) = note::Signer::parse(text) {
        assert!(note::Verifier::parse(&signer.verifier_key()).is_ok());
    }
}

/// The text of a signed tree head.
pub fn tree_note(data: &[u8]) {
    if let Ok(tree) = tlog::parse_tree(data) {
        let text = tlog::format_tree(tree);
        assert_eq!(tlog::parse_tree(text.as_bytes()).ok(), Some(tree));
    }
}

/// `/lookup/<module>@<version>` bodies.
pub fn lookup_record(data: &[u8]) {
    if let Ok((id, text, _rest)) = tlog::parse_record(data) {
        let Ok(msg) = tlog::format_record(id, text) else {
            panic!("parsed record text does not format: {text:?}");
        };
        let Ok((id2, text2, rest2)) = tlog::parse_record(&msg) else {
            panic!("formatted record does not parse: {msg:?}");
        };
        assert_eq!((id2, text2, rest2), (id, text, &b""[..]));
    }
}

/// Tile paths (`tile/H/L/NNN[.p/W]`).
pub fn tile_path(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = tile::parse_tile_path(path) {
        let written = t.path();
        assert_eq!(tile::parse_tile_path(&written).ok(), Some(t), "{written}");
    }
}

/// Tile contents: hashes read from fuzzed tiles, and a whole read plan
/// checked against fuzzed tile data.
pub fn tile_hashes(data: &[u8]) {
    let mut data = data;
    let [h, l, w, count] = take::<4>(&mut data);
    let h = i32::from(h % 32);
    let n = take_i64(&mut data);
    let index = take_i64(&mut data);
    let t = tile::Tile {
        h,
        l: i32::from(l as i8),
        n,
        w: i32::from(w),
    };
    let _ = tile::hash_from_tile(t, data, index);

    let tree_n = take_i64(&mut data) & 0xFFFF_FFFF;
    let indexes: Vec<i64> = (0..count % 8)
        .map(|_| take_i64(&mut data) & 0xFFFF_FFFF)
        .collect();
    let tree = tlog::Tree {
        n: tree_n,
        hash: take_hash(&mut data),
    };
    // The height is ours (sum.golang.org uses 8), not the server's: a tall
    // one only makes tiles of 2^H hashes that take seconds to hash.
    let height = (h % 10).max(1);
    if let Ok(plan) = tile::plan_read_hashes(height, tree_n, &indexes) {
        // Tiles of the right size, from the fuzzed bytes (zero-padded).
        let tiles: Vec<Vec<u8>> = plan
            .tiles
            .iter()
            .map(|t| {
                let len = usize::try_from(t.w).unwrap_or(0) * 32;
                let mut bytes = vec![0; len];
                let n = len.min(data.len());
                bytes[..n].copy_from_slice(&data[..n]);
                data = &data[n..];
                bytes
            })
            .collect();
        if let Ok(hashes) = tile::verify_read_hashes(&plan, tree, &tiles) {
            assert_eq!(hashes.len(), indexes.len());
        }
    }
}

/// Inclusion and consistency proofs from a server.
pub fn tlog_proofs(data: &[u8]) {
    let mut data = data;
    let t = take_i64(&mut data);
    let n = take_i64(&mut data);
    let th = take_hash(&mut data);
    let h = take_hash(&mut data);
    let proof: Vec<tlog::Hash> = data
        .chunks(32)
        .map(|c| {
            let mut hash = [0; 32];
            hash[..c.len()].copy_from_slice(c);
            tlog::Hash(hash)
        })
        .collect();
    let _ = tlog::check_record(&proof, t, th, n, h);
    let _ = tlog::check_tree(&proof, t, th, n, h);
    let _ = tlog::check_record(&proof, t & 0xFFFF, th, n & 0xFFFF, h);
    let _ = tlog::check_tree(&proof, t & 0xFFFF, th, n & 0xFFFF, h);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tlog::Hash::parse(text);
    }
}

/// Module zips, checked from a file as the mirror does, with and without
/// what checking them as they downloaded recorded.
pub fn module_zip(data: &[u8]) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "gomirror-fuzz-{}-{}.zip",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let result = gomod::zip::check_and_hash_zip(&path, "example.com/m", "v1.0.0");
    // The same zip checked as it downloads (in pieces whose size the data
    // picks): what the download recorded never changes the answer.
    let mut stream = gomod::zipstream::ZipStream::new();
    let piece = 1 + usize::from(data.first().copied().unwrap_or(0));
    for chunk in data.chunks(piece) {
        stream.feed(chunk);
    }
    let streamed = stream.finish();
    let with_stream = gomod::zip::check_and_hash_downloaded_zip(
        &path,
        "example.com/m",
        "v1.0.0",
        streamed.as_ref(),
    );
    let _ = std::fs::remove_file(&path);
    let show = |r: &Result<gomod::zip::ZipSummary, gomod::zip::ZipError>| match r {
        Ok(s) => format!("{} {} {}", s.h1, s.files, s.uncompressed_size),
        Err(e) => e.to_string(),
    };
    assert_eq!(show(&with_stream), show(&result));
    if let Ok(summary) = result {
        assert!(summary.h1.starts_with("h1:"));
        assert!(summary.uncompressed_size <= gomod::zip::MAX_ZIP_FILE);
    }
}

/// `.info` files: the version wanted, a newline, the body.
pub fn info(data: &[u8]) {
    let (version, _) = two_parts(data);
    let body = data.get(version.len() + 1..).unwrap_or(b"");
    let _ = gomirror::check::check_info(body, version);
    let _ = gomirror::check::check_info(data, "v1.0.0");
}

/// Module paths and versions: checks, escaping and its inverse.
pub fn module_path(data: &[u8]) {
    let (path, version) = two_parts(data);
    let valid = gomod::check(path, version).is_ok();
    let _ = gomod::check_path(path);
    let _ = gomod::path::check_import_path(path);
    let _ = gomod::check_file_path(path);
    let _ = gomod::path::split_path_version(path);
    let _ = gomod::path::check_path_major(version, path);
    let _ = gomod::path::match_path_major(version, path);
    let _ = gomod::canonical_version(version);
    if let Ok(escaped) = gomod::escape_path(path) {
        assert_eq!(gomod::unescape_path(&escaped).ok().as_deref(), Some(path));
    }
    if let Ok(escaped) = gomod::escape_version(version) {
        assert_eq!(
            gomod::unescape_version(&escaped).ok().as_deref(),
            Some(version)
        );
    }
    if valid {
        // A valid module@version always has a file name.
        assert!(gomod::escape_path(path).is_ok() && gomod::escape_version(version).is_ok());
    }
    if let Ok(unescaped) = gomod::unescape_path(path) {
        assert_eq!(gomod::escape_path(&unescaped).ok().as_deref(), Some(path));
    }
}

/// Semantic versions and pseudo-versions.
pub fn semver_ops(data: &[u8]) {
    let (a, b) = two_parts(data);
    for v in [a, b] {
        let canonical = semver::canonical(v);
        assert_eq!(semver::canonical(&canonical), canonical, "{v:?}");
        assert_eq!(semver::is_valid(v), !canonical.is_empty(), "{v:?}");
        let _ = (semver::major(v), semver::major_minor(v));
        let _ = (semver::prerelease(v), semver::build(v));
        let _ = pseudo::is_pseudo_version(v);
        let _ = pseudo::pseudo_version_time(v);
        let _ = pseudo::pseudo_version_rev(v);
        let _ = pseudo::pseudo_version_base(v);
    }
    assert_eq!(semver::compare(a, b), semver::compare(b, a).reverse());
    assert_eq!(semver::sort_cmp(a, b), semver::sort_cmp(b, a).reverse());
}

/// GOPRIVATE-style patterns (`[filter]`): the patterns, a newline, a path.
pub fn pattern_ops(data: &[u8]) {
    let (globs, target) = two_parts(data);
    let _ = pattern::check_patterns(globs);
    let _ = pattern::match_prefix_patterns(globs, target);
    let _ = pattern::path_match(globs, target);
}

/// `sync.toml`.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ =
        gomirror::settings::Settings::parse(text, Path::new("/fuzz/sync.toml"), Path::new("/fuzz"));
}

/// `from_files`: go.mod (strict and lax), go.sum and module lists. Whatever a
/// parser accepts must name valid module versions.
pub fn project_files(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    use gomirror::gomod::modfile;
    for strict in [true, false] {
        if let Ok(f) = modfile::parse_go_mod(&text, strict) {
            for r in &f.require {
                assert!(gomod::check(&r.path, &r.version).is_ok(), "{r:?}");
                assert!(r.line >= 1);
            }
            let _ = f.is_pruned();
        }
    }
    if let Ok(lines) = modfile::parse_go_sum(&text) {
        for l in &lines {
            assert!(gomod::check(&l.path, &l.version).is_ok(), "{l:?}");
        }
    }
    if let Ok(entries) = modfile::parse_module_list(&text) {
        for e in &entries {
            assert!(gomod::check(&e.path, &e.version).is_ok(), "{e:?}");
        }
    }
    let _ = modfile::go_at_least(&text, 1, 17);
}
