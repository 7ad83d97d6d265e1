//! Every name in the tree, made and read in one place: [`Key`] names each
//! kind of file the mirror writes ([`Key::path`]) and reads a tree-relative
//! path back into one ([`Key::parse`], strict: only the exact form `path`
//! makes is accepted, so a parsed key always round-trips). Module paths and
//! versions are escaped with Go's rules (`!`-escaping) and validated first.
//!
//! Prune classifies what it finds in the tree with [`Key::parse`] and
//! [`is_layout_dir`], matching on every kind: a new kind of file is added
//! here, and the compiler then asks prune whether it belongs — it cannot be
//! born a stray.

use crate::gomod::{self, ModuleError};
use crate::relpath;
use crate::sumdb::tile::{Tile, parse_tile_path};

/// The checksum database's directory (`sumdb/<name>/…`).
pub const SUMDB_DIR: &str = "sumdb";
/// The change feed's directory: no module path can start with it (a module
/// path's first element has a dot).
pub const FEED_DIR: &str = "feed";
/// Trace files (`trace/<mirror.name>.json`).
pub const TRACE_DIR: &str = "trace";
/// The Go vulnerability database, in vuln.go.dev's layout (`vuln/…`).
pub const VULN_DIR: &str = "vuln";
/// The index files of the vulnerability database (`vuln/index/<name>.json`).
pub const VULN_INDEXES: [&str; 3] = ["vulns", "modules", "db"];
/// The mirror's pages (`site/…`, [`SiteFile`]): no module path starts with
/// it (a module path's first element has a dot).
pub const SITE_DIR: &str = "site";
/// The pages' files with fixed names, under [`SITE_DIR`].
pub const SITE_FIXED: [&str; 4] = ["index.html", "style.css", "search.js", "search/shards.json"];
/// The longest vulnerability id taken.
pub const VULN_ID_MAX: usize = 128;

/// A file of a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VersionExt {
    Info,
    Mod,
    Zip,
}

impl VersionExt {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionExt::Info => "info",
            VersionExt::Mod => "mod",
            VersionExt::Zip => "zip",
        }
    }

    fn parse(s: &str) -> Option<VersionExt> {
        match s {
            "info" => Some(VersionExt::Info),
            "mod" => Some(VersionExt::Mod),
            "zip" => Some(VersionExt::Zip),
            _ => None,
        }
    }
}

/// A file of the change feed (`docs/feed.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedFile {
    /// `feed/latest`: the feed's head.
    Latest,
    /// `feed/tail.jsonl`: the entries after the last complete segment.
    Tail,
    /// `feed/<k, 12 digits>.jsonl`: complete segment `k`.
    Segment(u64),
    /// `feed/snapshot/<seq, 12 digits>.jsonl`: the state after entries `..seq`.
    Snapshot(u64),
}

/// A file of the vulnerability database, as `.json` or (`gz`) `.json.gz`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VulnFile {
    /// `vuln/index/<name>.json[.gz]`, `name` one of [`VULN_INDEXES`].
    Index { name: &'static str, gz: bool },
    /// `vuln/ID/<id>.json[.gz]`.
    Entry { id: String, gz: bool },
}

/// A file of the mirror's pages (`docs/site.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteFile {
    /// `site/<name>`, `name` one of [`SITE_FIXED`]: the front page, its
    /// stylesheet and script, the list of search shards.
    Fixed(&'static str),
    /// `site/m/<module>/@.html`: a module's page (`@` is in no module path,
    /// so no module's page is on another's way).
    Module { module: String },
    /// `site/search/index.html` for the root shard (`""`), else
    /// `site/search/t-<prefix encoded>.html`: the modules whose search term
    /// starts with `prefix` ([`encode_shard`]).
    Shard { prefix: String },
}

/// A shard's prefix as a file name: `a`–`z` and `0`–`9` as they are, every
/// other byte as `_` and two lowercase hex digits.
pub fn encode_shard(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for b in prefix.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// The prefix [`encode_shard`] encoded, if `name` is one it makes.
pub fn decode_shard(name: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(name.len());
    let mut it = name.bytes();
    while let Some(b) = it.next() {
        if b == b'_' {
            let hex = [it.next()?, it.next()?];
            bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    let prefix = String::from_utf8(bytes).ok()?;
    (encode_shard(&prefix) == name).then_some(prefix)
}

/// One file of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// `<module>/@v/<version>.info|.mod|.zip`
    Version {
        module: String,
        version: String,
        ext: VersionExt,
    },
    /// `<module>/@v/list`
    List { module: String },
    /// `<module>/@latest`
    Latest { module: String },
    /// `sumdb/<db>/supported`
    SumdbSupported { db: String },
    /// `sumdb/<db>/latest`: the signed tree head the mirror serves.
    SumdbLatest { db: String },
    /// `sumdb/<db>/lookup/<module>@<version>`
    Lookup {
        db: String,
        module: String,
        version: String,
    },
    /// `sumdb/<db>/tile/H/L/NNN[.p/W]`
    Tile { db: String, tile: Tile },
    /// `feed/…`
    Feed(FeedFile),
    /// `trace/<mirror>.json`
    Trace { mirror: String },
    /// `vuln/…`
    Vuln(VulnFile),
    /// `site/…`: the mirror's pages.
    Site(SiteFile),
}

impl Key {
    /// The key's tree-relative path. Fails only for a module path or version
    /// Go's escaping refuses.
    pub fn path(&self) -> Result<String, ModuleError> {
        Ok(match self {
            Key::Version {
                module,
                version,
                ext,
            } => format!(
                "{}/@v/{}.{}",
                gomod::escape_path(module)?,
                gomod::escape_version(version)?,
                ext.as_str()
            ),
            Key::List { module } => format!("{}/@v/list", gomod::escape_path(module)?),
            Key::Latest { module } => format!("{}/@latest", gomod::escape_path(module)?),
            Key::SumdbSupported { db } => format!("{SUMDB_DIR}/{db}/supported"),
            Key::SumdbLatest { db } => format!("{SUMDB_DIR}/{db}/latest"),
            Key::Lookup {
                db,
                module,
                version,
            } => format!(
                "{SUMDB_DIR}/{db}/lookup/{}@{}",
                gomod::escape_path(module)?,
                gomod::escape_version(version)?
            ),
            Key::Tile { db, tile } => format!("{SUMDB_DIR}/{db}/{}", tile.path()),
            Key::Feed(f) => match f {
                FeedFile::Latest => format!("{FEED_DIR}/latest"),
                FeedFile::Tail => format!("{FEED_DIR}/tail.jsonl"),
                FeedFile::Segment(k) => format!("{FEED_DIR}/{k:012}.jsonl"),
                FeedFile::Snapshot(seq) => format!("{FEED_DIR}/snapshot/{seq:012}.jsonl"),
            },
            Key::Trace { mirror } => format!("{TRACE_DIR}/{mirror}.json"),
            Key::Vuln(v) => {
                let (dir, stem, gz) = match v {
                    VulnFile::Index { name, gz } => ("index", *name, *gz),
                    VulnFile::Entry { id, gz } => ("ID", id.as_str(), *gz),
                };
                format!(
                    "{VULN_DIR}/{dir}/{stem}.json{}",
                    if gz { ".gz" } else { "" }
                )
            }
            Key::Site(f) => match f {
                SiteFile::Fixed(name) => format!("{SITE_DIR}/{name}"),
                SiteFile::Module { module } => {
                    format!("{SITE_DIR}/m/{}/@.html", gomod::escape_path(module)?)
                }
                SiteFile::Shard { prefix } if prefix.is_empty() => {
                    format!("{SITE_DIR}/search/index.html")
                }
                SiteFile::Shard { prefix } => {
                    format!("{SITE_DIR}/search/t-{}.html", encode_shard(prefix))
                }
            },
        })
    }

    /// The key `path` names, if it is one the mirror writes, spelt exactly as
    /// [`Key::path`] spells it (canonical escaping, canonical numbers).
    pub fn parse(path: &str) -> Option<Key> {
        let key = Key::parse_loose(path)?;
        (key.path().ok()? == path).then_some(key)
    }

    fn parse_loose(path: &str) -> Option<Key> {
        if let Some(rest) = path.strip_prefix("sumdb/") {
            // A database's name may have several elements: it ends where the
            // file's own part begins.
            let db = |d: &str| relpath::is_db_name(d).then(|| d.to_string());
            if let Some(d) = rest.strip_suffix("/supported") {
                return Some(Key::SumdbSupported { db: db(d)? });
            }
            if let Some(d) = rest.strip_suffix("/latest") {
                return Some(Key::SumdbLatest { db: db(d)? });
            }
            if let Some((d, lookup)) = rest.split_once("/lookup/") {
                let (m, v) = lookup.rsplit_once('@')?;
                let (module, version) = unescape_module_version(m, v)?;
                return Some(Key::Lookup {
                    db: db(d)?,
                    module,
                    version,
                });
            }
            let i = rest.find("/tile/")?;
            return Some(Key::Tile {
                db: db(&rest[..i])?,
                tile: parse_tile_path(&rest[i + 1..]).ok()?,
            });
        }
        if let Some(name) = path.strip_prefix("feed/") {
            let numbered = |n: &str| {
                n.strip_suffix(".jsonl")
                    .filter(|d| d.len() == 12 && d.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|d| d.parse::<u64>().ok())
            };
            return match name {
                "latest" => Some(Key::Feed(FeedFile::Latest)),
                "tail.jsonl" => Some(Key::Feed(FeedFile::Tail)),
                _ => match name.strip_prefix("snapshot/") {
                    Some(s) => numbered(s).map(|seq| Key::Feed(FeedFile::Snapshot(seq))),
                    None => numbered(name).map(|k| Key::Feed(FeedFile::Segment(k))),
                },
            };
        }
        if let Some(rest) = path.strip_prefix("vuln/") {
            let json = |n: &str| match n.strip_suffix(".gz") {
                Some(j) => j.strip_suffix(".json").map(|s| (s.to_string(), true)),
                None => n.strip_suffix(".json").map(|s| (s.to_string(), false)),
            };
            if let Some(name) = rest.strip_prefix("index/") {
                let (stem, gz) = json(name)?;
                let name = VULN_INDEXES.into_iter().find(|i| *i == stem)?;
                return Some(Key::Vuln(VulnFile::Index { name, gz }));
            }
            let (id, gz) = json(rest.strip_prefix("ID/")?)?;
            return is_vuln_id(&id).then_some(Key::Vuln(VulnFile::Entry { id, gz }));
        }
        if let Some(rest) = path.strip_prefix("site/") {
            if let Some(name) = SITE_FIXED.into_iter().find(|n| *n == rest) {
                return Some(Key::Site(SiteFile::Fixed(name)));
            }
            if rest == "search/index.html" {
                return Some(Key::Site(SiteFile::Shard {
                    prefix: String::new(),
                }));
            }
            if let Some(name) = rest.strip_prefix("search/t-") {
                let prefix = decode_shard(name.strip_suffix(".html")?)?;
                return (!prefix.is_empty()).then_some(Key::Site(SiteFile::Shard { prefix }));
            }
            let m = rest.strip_prefix("m/")?.strip_suffix("/@.html")?;
            let module = gomod::unescape_path(m).ok()?;
            return Some(Key::Site(SiteFile::Module { module }));
        }
        if let Some(name) = path.strip_prefix("trace/") {
            let mirror = name.strip_suffix(".json")?;
            return relpath::is_mirror_name(mirror).then(|| Key::Trace {
                mirror: mirror.to_string(),
            });
        }
        if let Some(m) = path.strip_suffix("/@latest") {
            let module = gomod::unescape_path(m).ok()?;
            return Some(Key::Latest { module });
        }
        let (m, file) = path.split_once("/@v/")?;
        if file == "list" {
            let module = gomod::unescape_path(m).ok()?;
            return Some(Key::List { module });
        }
        let (v, ext) = file.rsplit_once('.')?;
        let ext = VersionExt::parse(ext)?;
        let (module, version) = unescape_module_version(m, v)?;
        Some(Key::Version {
            module,
            version,
            ext,
        })
    }
}

/// A module path and version from their escaped forms, both valid.
fn unescape_module_version(m: &str, v: &str) -> Option<(String, String)> {
    let module = gomod::unescape_path(m).ok()?;
    let version = gomod::unescape_version(v).ok()?;
    gomod::check(&module, &version).ok()?;
    Some((module, version))
}

/// A vulnerability id as the tree names a file after it (`GO-2024-1234`):
/// letters, digits, `-`, `_` and `.`, a dash, no `..`, at most
/// [`VULN_ID_MAX`] bytes, starting with a letter or digit.
pub fn is_vuln_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= VULN_ID_MAX
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id.contains('-')
        && !id.contains("..")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether a directory of the tree can hold files the mirror writes: the
/// directories on the way to some [`Key`]'s path. `db` is the configured
/// checksum database's name (another database's directory does not belong).
pub fn is_layout_dir(rel: &str, db: &str) -> bool {
    let sumdb = format!("{SUMDB_DIR}/{db}");
    if [
        FEED_DIR,
        "feed/snapshot",
        TRACE_DIR,
        VULN_DIR,
        "vuln/index",
        "vuln/ID",
        SITE_DIR,
        "site/m",
        "site/search",
    ]
    .contains(&rel)
    {
        return true;
    }
    // The directories of module pages: escaped path elements.
    if let Some(rest) = rel.strip_prefix("site/m/") {
        return rest
            .split('/')
            .all(|e| !e.is_empty() && !e.starts_with('.') && !e.contains('@'));
    }
    if rel.starts_with("site/") {
        return false;
    }
    // `sumdb`, and each directory on the way to `sumdb/<db>`.
    if sumdb == rel || sumdb.starts_with(&format!("{rel}/")) {
        return true;
    }
    if let Some(rest) = rel.strip_prefix(&format!("{sumdb}/")) {
        return rest == "lookup"
            || rest.starts_with("lookup/")
            || rest == "tile"
            || rest.starts_with("tile/");
    }
    if rel.starts_with("sumdb/") {
        return false;
    }
    // Module directories: every element must be a valid escaped path element,
    // or `@v` directly below a valid module directory (`<root>/@v` has none).
    let mut elems = rel.split('/').peekable();
    while let Some(e) = elems.next() {
        if e == "@v" {
            return elems.peek().is_none()
                && rel
                    .strip_suffix("/@v")
                    .is_some_and(|module| gomod::unescape_path(module).is_ok());
        }
        if e.is_empty() || e.starts_with('.') || e.contains('@') {
            return false;
        }
    }
    true
}

/// `<module>` escaped.
pub fn module_dir(module: &str) -> Result<String, ModuleError> {
    gomod::escape_path(module)
}

/// `<module>/@v/<version>.<ext>`.
pub fn version_file(module: &str, version: &str, ext: &str) -> Result<String, ModuleError> {
    let ext = VersionExt::parse(ext).expect("callers name info, mod or zip");
    Key::Version {
        module: module.to_string(),
        version: version.to_string(),
        ext,
    }
    .path()
}

/// `<module>/@v/list`.
pub fn list(module: &str) -> Result<String, ModuleError> {
    Key::List {
        module: module.to_string(),
    }
    .path()
}

/// `<module>/@latest`.
pub fn latest(module: &str) -> Result<String, ModuleError> {
    Key::Latest {
        module: module.to_string(),
    }
    .path()
}

/// `sumdb/<name>`.
pub fn sumdb_dir(name: &str) -> String {
    format!("{SUMDB_DIR}/{name}")
}

/// `sumdb/<name>/lookup/<module>@<version>`.
pub fn lookup(name: &str, module: &str, version: &str) -> Result<String, ModuleError> {
    Key::Lookup {
        db: name.to_string(),
        module: module.to_string(),
        version: version.to_string(),
    }
    .path()
}

/// `sumdb/<name>/<tile path>`.
pub fn tile(name: &str, tile: Tile) -> String {
    Key::Tile {
        db: name.to_string(),
        tile,
    }
    .path()
    .expect("a tile key has nothing to escape")
}

/// A key with nothing to escape (the feed, the trace, the checksum database's
/// static files).
pub fn plain(key: Key) -> String {
    key.path().expect("this kind of key has nothing to escape")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_key_round_trips() {
        let keys = [
            "golang.org/x/mod/@v/v0.1.0.zip",
            "github.com/!azure/x/@v/v1.0.0-!r!c1.info",
            "github.com/!azure/x/@v/v1.0.0+incompatible.mod",
            "golang.org/x/mod/@v/list",
            "golang.org/x/mod/@latest",
            "sumdb/sum.golang.org/supported",
            "sumdb/sum.golang.org/latest",
            "sumdb/sum.golang.org/lookup/github.com/!azure/x@v1.0.0",
            "sumdb/sum.golang.org/tile/8/0/x001/234",
            "sumdb/sum.golang.org/tile/8/1/005.p/17",
            "feed/latest",
            "feed/tail.jsonl",
            "feed/000000000003.jsonl",
            "feed/snapshot/000000001000.jsonl",
            "trace/mirror.example.org.json",
            "vuln/index/db.json",
            "vuln/index/modules.json.gz",
            "vuln/ID/GO-2024-1234.json",
            "vuln/ID/GO-2024-1234.json.gz",
            "site/index.html",
            "site/style.css",
            "site/search.js",
            "site/search/shards.json",
            "site/search/index.html",
            "site/search/t-go_2dy.html",
            "site/m/github.com/!azure/go-autorest/@.html",
            "site/m/golang.org/x/mod/@.html",
        ];
        for k in keys {
            let key = Key::parse(k).unwrap_or_else(|| panic!("{k} is a key"));
            assert_eq!(key.path().unwrap(), k);
        }
    }

    #[test]
    fn near_misses_are_not_keys() {
        for k in [
            "golang.org/x/mod/@v/v0.1.0.tar",
            "golang.org/x/mod/@v/V0.1.0.zip",
            "github.com/Azure/x/@v/v1.0.0.zip",
            "golang.org/x/mod/@v/lists",
            "golang.org/x/mod/@v/v0.1.0.zip/more",
            "sumdb/sum.golang.org/tile/8/0/1234",
            "sumdb/sum.golang.org/tile/8/0/001.p/256",
            "sumdb/sum.golang.org/lookup/golang.org/x/mod",
            "sumdb/../latest",
            "sumdb/sum.golang.org/junk",
            "feed/3.jsonl",
            "feed/snapshot/%2e%2e/%2e%2e/secret.jsonl",
            "feed/snapshot/../000000000001.jsonl",
            "trace/.hidden.json",
            "vuln/index/other.json",
            "vuln/ID/../x.json",
            "vuln/ID/GO2024.json",
            "vuln/ID/GO-1.txt",
            "trace/a/b.json",
            "@v/list",
            "site/other.html",
            "site/search/t-.html",
            "site/search/t-Go.html",
            "site/search/t-_2D.html",
            "site/search/t-_2.html",
            "site/m/github.com/Azure/x/@.html",
            "site/m/golang.org/x/mod.html",
            "site/m/@.html",
            "",
        ] {
            assert_eq!(Key::parse(k), None, "{k:?} parsed");
        }
    }

    #[test]
    fn layout_directories() {
        let db = "sum.golang.org";
        for d in [
            "golang.org",
            "golang.org/x/mod",
            "golang.org/x/mod/@v",
            "sumdb",
            "sumdb/sum.golang.org",
            "sumdb/sum.golang.org/tile/8/0",
            "sumdb/sum.golang.org/lookup/golang.org/x",
            "feed",
            "feed/snapshot",
            "trace",
            "site",
            "site/m/github.com/!azure",
            "site/search",
        ] {
            assert!(is_layout_dir(d, db), "{d}");
        }
        for d in [
            "golang.org/x/mod/@v/sub",
            "golang.org/.git",
            "golang.org/x@y",
            "@v",
            "x/@v",
            "@v/@v",
            "sumdb/other.example",
            "sumdb/sum.golang.org/junk",
            ".hidden",
            "a/.b",
            "site/other",
            "site/m/a.com/@v",
            "site/m/.git",
        ] {
            assert!(!is_layout_dir(d, db), "{d}");
        }
        assert!(is_layout_dir("x.example/@v", db));
        assert!(is_layout_dir("github.com/!azure/go", db));
        // A database named with several elements: each directory on the way.
        assert!(is_layout_dir("sumdb/a.example", "a.example/sumdb"));
        assert!(is_layout_dir(
            "sumdb/a.example/sumdb/tile",
            "a.example/sumdb"
        ));
        assert!(
            Key::parse("sumdb/a.example/sumdb/lookup/golang.org/x/tile@v1.0.0").is_some(),
            "a module path with a `tile` element"
        );
    }

    #[test]
    fn only_the_canonical_escaping_of_a_version_is_a_key() {
        assert_eq!(
            Key::parse("a.com/m/@v/v1.0.0-!r!c1.zip"),
            Some(Key::Version {
                module: "a.com/m".into(),
                version: "v1.0.0-RC1".into(),
                ext: VersionExt::Zip
            })
        );
        assert_eq!(Key::parse("a.com/m/@v/v1.0.0-RC1.zip"), None);
        assert!(Key::parse("a.com/m/@v/v1.0.0+incompatible.mod").is_some());
        assert_eq!(Key::parse("a.com/m/README"), None);
    }
}
