//! The mirroring stage: brings `<output>/vuln/` up to the upstream's
//! database, in vuln.go.dev's own layout.
//!
//! One request decides whether there is anything to do: `index/db.json.gz`
//! and its `modified`. Equal to what the mirror holds, the run ends there. A
//! `modified` that went back is refused and nothing changes (a rewound
//! database would hide vulnerabilities published since; like a rewound
//! checksum database it is a loud stop, exit 2). Otherwise the two other
//! indexes are read and checked, and only the entries whose `modified`
//! changed are fetched (16 at a time), each checked against the index and
//! OSV's shape and staged outside the tree as `.json` and `.json.gz`.
//!
//! Nothing is published until everything checks out: then the entries go
//! into the tree, a barrier, the state database records the new state, the
//! indexes go in (`db.json` last), a barrier. A run killed half-way leaves
//! the old indexes describing entries that are all still there (an entry
//! only ever changes to a newer version of itself); the next run completes
//! it. Everything goes through the [`Store`], so a bucket works as a
//! directory does.
//!
//! The whole database comes from one upstream of the list: the first one
//! that serves `index/db.json` (a list's `,` and `|` rules), so that the
//! indexes and the entries are one snapshot.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::fatal::Fatal;
use crate::http::list::{Avoid, ListEntry, UpstreamList};
use crate::http::{FetchError, Upstream};
use crate::report::Reporter;
use crate::state::db::Db;
use crate::state::{VulnEntryRow, VulnFile};
use crate::store::Store;

use super::format::{self, Entry};

/// Entries fetched at once (the HTTP client's own limit applies too).
const IN_FLIGHT: usize = 16;

/// A followed mirror found without a database is asked again after this
/// long, not on every sync (a follower's sync with nothing new stays at its
/// feed's requests).
pub const ABSENT_RECHECK_SECS: i64 = 86_400;

/// What a pass did (a line of the sync's output; `status` shows the state).
#[derive(Clone, Debug, Default, Serialize)]
pub struct VulnReport {
    /// The upstream the database came from (credentials masked).
    pub url: String,
    /// Its `modified`, and the one held before.
    pub modified: Option<String>,
    pub previous: Option<String>,
    /// Entries held now, and how many were fetched.
    pub entries: u64,
    pub fetched: u64,
    /// Requests made, and bytes received.
    pub requests: u64,
    pub bytes: u64,
    /// Nothing changed (one request).
    pub unchanged: bool,
    /// An implied upstream (a followed mirror's `vuln/`) has no database.
    pub absent: bool,
}

impl VulnReport {
    /// One line for the output.
    pub fn line(&self) -> String {
        if self.absent {
            return format!(
                "vulndb: {} carries no vulnerability database; nothing mirrored (asked again within a day)",
                self.url
            );
        }
        let modified = self.modified.as_deref().unwrap_or("?");
        if self.unchanged {
            return format!(
                "vulndb: up to date (modified {modified}, {} entries) from {}",
                self.entries, self.url
            );
        }
        format!(
            "vulndb: modified {modified}{}: fetched {} of {} entries ({} requests, {}) from {}",
            self.previous
                .as_deref()
                .map(|p| format!(" (was {p})"))
                .unwrap_or_default(),
            self.fetched,
            self.entries,
            self.requests,
            crate::report::bytes(self.bytes),
            self.url
        )
    }
}

/// Where the database is read from: a list (`[vulndb] url`); `implied` when
/// nobody configured it (a followed mirror's `vuln/`), so that a mirror
/// without one is a note, not a failure; `expect` the `modified` a bundle's
/// manifest names.
pub struct Source<'a> {
    pub urls: &'a [ListEntry],
    pub implied: bool,
    pub expect: Option<&'a str>,
}

/// Mirrors the database: see the module documentation. `Ok(None)` when no
/// source is configured.
pub async fn mirror(
    upstream: &Arc<Upstream>,
    tree: &Arc<dyn Store>,
    db: &Db,
    source: &Source<'_>,
    out: &Reporter,
) -> Result<Option<VulnReport>, Fatal> {
    if source.urls.is_empty() {
        return Ok(None);
    }
    let reader = Reader {
        list: UpstreamList::new(upstream.clone(), source.urls),
        by: std::sync::OnceLock::new(),
        plain: std::sync::OnceLock::new(),
        requests: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
    };
    let mut report = VulnReport {
        url: reader.list.describe(),
        ..VulnReport::default()
    };

    // A followed mirror that had none a moment ago is not asked again yet.
    let absent_before = if source.implied {
        db.call(|s| s.vuln_absent()).await?
    } else {
        None
    };
    if let Some((url, at)) = &absent_before
        && *url == report.url
        && crate::clock::now().saturating_sub(*at) < ABSENT_RECHECK_SECS
    {
        report.absent = true;
        return Ok(Some(report));
    }

    // index/db.json: is there anything to do?
    let db_json = match reader.first_db().await {
        Ok(b) => b,
        Err(e) if e.is_not_found() && source.implied => {
            report.absent = true;
            let url = report.url.clone();
            db.call(move |s| s.set_vuln_absent(Some((&url, crate::clock::now()))))
                .await?;
            return Ok(Some(report));
        }
        Err(e) => return Err(reader.failed("index/db.json", e)),
    };
    if absent_before.is_some() {
        db.call(|s| s.set_vuln_absent(None)).await?;
    }
    report.url = reader.label();
    let fail = |what: &str, why: String| {
        Fatal::stopped(format!(
            "vulnerability database {}: {what}: {why}; nothing changed",
            report.url
        ))
    };
    let modified = format::parse_db(&db_json).map_err(|e| fail("index/db.json", e))?;
    report.modified = Some(modified.clone());
    if let Some(expect) = source.expect
        && format::parse_time("modified", expect).ok()
            != format::parse_time("modified", &modified).ok()
    {
        return Err(fail(
            "index/db.json",
            format!("modified {modified} is not the {expect} the bundle's manifest names"),
        ));
    }

    let t = tree.clone();
    let in_tree = tokio::task::spawn_blocking(move || {
        t.read(&format::index_key("db", false), format::DB_LIMIT)
    })
    .await
    .map_err(|e| Fatal::crashed("reading the vulnerability database", e))?
    .ok()
    .flatten()
    .and_then(|b| format::parse_db(&b).ok());
    let (status, held) = db.call(|s| Ok((s.vuln_status()?, s.vuln_held()?))).await?;
    report.previous = status.modified.clone();
    let new_t = format::parse_time("modified", &modified).map_err(|e| fail("index/db.json", e))?;
    if let Some(prev) = &status.modified
        && let Ok(prev_t) = format::parse_time("modified", prev)
    {
        if new_t < prev_t {
            return Err(Fatal::stopped(format!(
                "SECURITY ERROR: vulnerability database {}: modified {modified} is older than the {prev} this mirror holds: refusing a rewound database (it would hide what was published since); nothing changed",
                report.url
            )));
        }
        let tree_t = in_tree
            .as_deref()
            .and_then(|m| format::parse_time("modified", m).ok());
        if new_t == prev_t && tree_t == Some(prev_t) {
            report.unchanged = true;
            report.entries = status.entries as u64;
            report.requests = reader.requests.load(Ordering::Relaxed);
            report.bytes = reader.bytes.load(Ordering::Relaxed);
            let url = report.url.clone();
            db.call(move |s| s.record_vuln_checked(&url, crate::clock::now()))
                .await?;
            return Ok(Some(report));
        }
    }
    // The tree lost its copy (a new output, a wiped directory): every entry
    // is fetched again, not only the changed ones.
    let refetch_all = in_tree.is_none() && !held.is_empty();

    // The indexes: well-formed, and consistent with what is held.
    let vulns_json = reader
        .get("index/vulns", format::INDEX_LIMIT)
        .await
        .map_err(|e| reader.failed("index/vulns.json", e))?;
    let modules_json = reader
        .get("index/modules", format::INDEX_LIMIT)
        .await
        .map_err(|e| reader.failed("index/modules.json", e))?;
    let (vulns, modules) = {
        let (v, m, modified) = (vulns_json.clone(), modules_json.clone(), modified.clone());
        tokio::task::spawn_blocking(move || {
            Ok::<_, (String, String)>((
                format::parse_vulns(&v, &modified).map_err(|e| ("index/vulns.json".into(), e))?,
                format::parse_modules(&m).map_err(|e| ("index/modules.json".into(), e))?,
            ))
        })
        .await
        .map_err(|e| Fatal::crashed("checking the vulnerability indexes", e))?
        .map_err(|(what, e)| fail(&what, e))?
    };
    let held: HashMap<String, String> = held.into_iter().collect();
    let listed: HashMap<&str, &str> = vulns
        .iter()
        .map(|v| (v.id.as_str(), v.modified.as_str()))
        .collect();
    for (id, had) in &held {
        match listed.get(id.as_str()) {
            None => {
                return Err(fail(
                    "index/vulns.json",
                    format!(
                        "{id}, which this mirror holds, is no longer listed (the database withdraws entries, it never removes them): a rewound or damaged database"
                    ),
                ));
            }
            Some(now)
                if format::parse_time("modified", now).ok()
                    < format::parse_time("modified", had).ok() =>
            {
                return Err(fail(
                    "index/vulns.json",
                    format!(
                        "{id}: modified {now} is older than the {had} this mirror holds: a rewound database"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let wanted: Vec<(String, String)> = vulns
        .iter()
        .filter(|v| {
            refetch_all
                || held.get(&v.id).is_none_or(|h| {
                    format::parse_time("modified", h).ok()
                        != format::parse_time("modified", &v.modified).ok()
                })
        })
        .map(|v| (v.id.clone(), v.modified.clone()))
        .collect();

    // The changed entries, staged.
    if !wanted.is_empty() {
        out.start("vulnerability database", Some(wanted.len() as u64));
    }
    let done = AtomicU64::new(0);
    let mut staged: Vec<Staged> = Vec::with_capacity(wanted.len());
    {
        let mut fetches = futures_util::stream::iter(wanted.iter())
            .map(|(id, modified)| {
                let (reader, tree) = (&reader, tree.clone());
                async move {
                    let rel = format!("ID/{id}");
                    let json = reader
                        .get(&rel, format::ENTRY_LIMIT)
                        .await
                        .map_err(|e| reader.failed(&format!("ID/{id}.json"), e))?;
                    let (id, modified) = (id.clone(), modified.clone());
                    tokio::task::spawn_blocking(move || stage_entry(&*tree, &id, &modified, json))
                        .await
                        .map_err(|e| Fatal::crashed("checking a vulnerability entry", e))?
                }
            })
            .buffer_unordered(IN_FLIGHT);
        while let Some(r) = fetches.next().await {
            let s = r.map_err(|e| match e {
                Fatal::Stopped(m) => Fatal::stopped(format!(
                    "vulnerability database {}: {m}; nothing changed",
                    report.url
                )),
                e => e,
            })?;
            staged.push(s);
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            out.progress(n, "entries");
        }
    }
    out.finish();

    // The index of modules must name, for every entry, exactly the modules
    // the entry affects, at the entry's `modified`.
    let mut summaries: BTreeMap<String, Entry> = BTreeMap::new();
    if staged.len() < vulns.len() {
        for r in db.call(|s| s.vuln_entries()).await? {
            let e: Entry = serde_json::from_str(&r.summary).map_err(|e| {
                Fatal::stopped(format!(
                    "state database: the recorded vulnerability entry {} cannot be read ({e}); remove vuln/ from the tree and sync again",
                    r.id
                ))
            })?;
            summaries.insert(r.id, e);
        }
    }
    for s in &staged {
        summaries.insert(s.row.id.clone(), s.entry.clone());
    }
    check_modules_index(&vulns, &modules, &summaries).map_err(|e| fail("index/modules.json", e))?;
    drop(summaries);

    // Publish: entries, barrier, state, indexes (db.json last), barrier.
    report.fetched = staged.len() as u64;
    report.entries = vulns.len() as u64;
    let indexes = {
        let t = tree.clone();
        let texts = [
            ("vulns", vulns_json),
            ("modules", modules_json),
            ("db", db_json),
        ];
        tokio::task::spawn_blocking(move || stage_indexes(&*t, texts))
            .await
            .map_err(|e| Fatal::crashed("staging the vulnerability indexes", e))??
    };
    let rows: Vec<VulnEntryRow> = staged.iter().map(|s| s.row.clone()).collect();
    let t = tree.clone();
    let staged = tokio::task::spawn_blocking(move || {
        put_entries(&*t, staged)?;
        t.barrier()
    })
    .await
    .map_err(|e| Fatal::crashed("publishing the vulnerability entries", e))?;
    staged.map_err(Fatal::from)?;
    let index_rows: Vec<(String, VulnFile)> = indexes
        .iter()
        .map(|i| (i.name.to_string(), i.file.clone()))
        .collect();
    let (m, url) = (modified.clone(), report.url.clone());
    db.call(move |s| s.record_vuln_update(&m, &url, &rows, &index_rows, crate::clock::now()))
        .await?;
    let t = tree.clone();
    tokio::task::spawn_blocking(move || {
        for i in indexes {
            t.put(i.json.as_ref(), &format::index_key(i.name, false))?;
            let _ = i.json.keep();
            t.put(i.gz.as_ref(), &format::index_key(i.name, true))?;
            let _ = i.gz.keep();
        }
        t.barrier()
    })
    .await
    .map_err(|e| Fatal::crashed("publishing the vulnerability indexes", e))?
    .map_err(Fatal::from)?;
    report.requests = reader.requests.load(Ordering::Relaxed);
    report.bytes = reader.bytes.load(Ordering::Relaxed);
    Ok(Some(report))
}

/// Checks `modules.json` against `vulns.json` and the entries: each listed
/// id is an entry with the same `modified`, and each entry is listed under
/// exactly the modules it affects.
fn check_modules_index(
    vulns: &[format::VulnRef],
    modules: &[format::ModuleRef],
    entries: &BTreeMap<String, Entry>,
) -> Result<(), String> {
    let listed: HashMap<&str, &str> = vulns
        .iter()
        .map(|v| (v.id.as_str(), v.modified.as_str()))
        .collect();
    let mut by_id: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for m in modules {
        for v in &m.vulns {
            let Some(modified) = listed.get(v.id.as_str()) else {
                return Err(format!(
                    "module {} names {}, which index/vulns.json does not list",
                    m.path, v.id
                ));
            };
            if format::parse_time("modified", modified).ok()
                != format::parse_time("modified", &v.modified).ok()
            {
                return Err(format!(
                    "module {} gives {} modified {}, index/vulns.json {modified}",
                    m.path, v.id, v.modified
                ));
            }
            by_id
                .entry(v.id.as_str())
                .or_default()
                .insert(m.path.as_str());
        }
    }
    for v in vulns {
        let Some(e) = entries.get(&v.id) else {
            return Err(format!("{} has no entry", v.id));
        };
        let named = by_id.remove(v.id.as_str()).unwrap_or_default();
        if named != e.modules() {
            return Err(format!(
                "lists {} under {:?}, but the entry affects {:?}",
                v.id,
                named,
                e.modules()
            ));
        }
        if e.aliases != v.aliases {
            return Err(format!(
                "index/vulns.json gives {} other aliases than its entry",
                v.id
            ));
        }
    }
    Ok(())
}

/// Reads the database's files from the one upstream that served `db.json`.
struct Reader {
    list: UpstreamList,
    /// The entry of the list the database comes from.
    by: std::sync::OnceLock<usize>,
    /// That upstream serves only plain `.json` files (a directory of a
    /// database without its `.gz` twins).
    plain: std::sync::OnceLock<bool>,
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl Reader {
    /// `index/db.json` (gzipped, else plain) from the first upstream of the
    /// list that has it; fixes which upstream the rest comes from.
    async fn first_db(&self) -> Result<Vec<u8>, FetchError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let gz = self
            .list
            .get_bytes("index/db.json.gz", format::DB_LIMIT, Avoid::none())
            .await;
        match gz {
            Ok(s) => {
                let _ = self.by.set(s.by);
                let _ = self.plain.set(false);
                self.bytes
                    .fetch_add(s.value.len() as u64, Ordering::Relaxed);
                format::gunzip(&s.value, format::DB_LIMIT)
                    .map_err(|e| self.corrupt("index/db.json.gz", e))
            }
            Err(e) if e.is_not_found() => {
                self.requests.fetch_add(1, Ordering::Relaxed);
                let s = self
                    .list
                    .get_bytes("index/db.json", format::DB_LIMIT, Avoid::none())
                    .await?;
                let _ = self.by.set(s.by);
                let _ = self.plain.set(true);
                self.bytes
                    .fetch_add(s.value.len() as u64, Ordering::Relaxed);
                Ok(s.value)
            }
            Err(e) => Err(e),
        }
    }

    /// A body that is not what its name says, as a fetch failure.
    fn corrupt(&self, rel: &str, why: String) -> FetchError {
        FetchError::Status {
            url: format!("{}/{rel}", self.label()),
            status: 200,
            detail: format!(" but {why}"),
        }
    }

    /// `<rel>.json`, decompressed, at most `limit` bytes.
    async fn get(&self, rel: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        let by = *self.by.get().unwrap_or(&0);
        let mut avoid = Avoid::none();
        for i in 0..self.list.len() {
            if i != by {
                avoid = avoid.with(i);
            }
        }
        let plain = *self.plain.get().unwrap_or(&false);
        let name = format!("{rel}.json{}", if plain { "" } else { ".gz" });
        self.requests.fetch_add(1, Ordering::Relaxed);
        // A gzip of JSON is smaller than the JSON but for its header.
        let s = self.list.get_bytes(&name, limit + 4096, avoid).await?;
        self.bytes
            .fetch_add(s.value.len() as u64, Ordering::Relaxed);
        if plain {
            if s.value.len() as u64 > limit {
                return Err(FetchError::TooLarge {
                    url: format!("{}/{name}", self.label()),
                    limit,
                });
            }
            return Ok(s.value);
        }
        format::gunzip(&s.value, limit).map_err(|e| self.corrupt(&name, e))
    }

    /// The upstream the database comes from (the list before the first read).
    fn label(&self) -> String {
        match self.by.get() {
            Some(i) => self.list.label(*i).to_string(),
            None => self.list.describe(),
        }
    }

    fn failed(&self, what: &str, e: FetchError) -> Fatal {
        Fatal::context(
            format!(
                "vulnerability database {}: cannot read {what}; nothing changed (the next sync tries again)",
                self.label()
            ),
            e,
        )
    }
}

/// An entry checked and staged outside the tree.
struct Staged {
    row: VulnEntryRow,
    entry: Entry,
    json: tempfile::TempPath,
    gz: tempfile::TempPath,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Checks one entry and writes its `.json` (the bytes as served) and
/// `.json.gz` (ours, deterministic) into the staging area.
fn stage_entry(tree: &dyn Store, id: &str, modified: &str, json: Vec<u8>) -> Result<Staged, Fatal> {
    let entry = format::parse_entry(&json, id, modified)
        .map_err(|e| Fatal::stopped(format!("ID/{id}.json: {e}")))?;
    let gz = format::gzip(&json);
    let file = VulnFile {
        json_size: json.len() as i64,
        json_sha256: sha256_hex(&json),
        gz_size: gz.len() as i64,
        gz_sha256: sha256_hex(&gz),
    };
    let summary = serde_json::to_string(&entry).expect("an entry serializes");
    Ok(Staged {
        row: VulnEntryRow {
            id: id.to_string(),
            modified: modified.to_string(),
            summary,
            file,
        },
        entry,
        json: staged_file(tree, &json)?,
        gz: staged_file(tree, &gz)?,
    })
}

fn staged_file(tree: &dyn Store, bytes: &[u8]) -> Result<tempfile::TempPath, Fatal> {
    let mut f = tree.staging().new_file("vuln")?;
    f.write_all(bytes)
        .and_then(|()| f.flush())
        .map_err(|e| Fatal::context(format!("cannot write `{}`", f.path().display()), e))?;
    Ok(f.into_temp_path())
}

/// An index file staged: its name, the files, their sizes and hashes.
struct StagedIndex {
    name: &'static str,
    json: tempfile::TempPath,
    gz: tempfile::TempPath,
    file: VulnFile,
}

fn stage_indexes(
    tree: &dyn Store,
    texts: [(&'static str, Vec<u8>); 3],
) -> Result<Vec<StagedIndex>, Fatal> {
    let mut out = Vec::new();
    for (name, json) in texts {
        let gz = format::gzip(&json);
        out.push(StagedIndex {
            name,
            file: VulnFile {
                json_size: json.len() as i64,
                json_sha256: sha256_hex(&json),
                gz_size: gz.len() as i64,
                gz_sha256: sha256_hex(&gz),
            },
            json: staged_file(tree, &json)?,
            gz: staged_file(tree, &gz)?,
        });
    }
    Ok(out)
}

/// Puts the staged entries into the tree, as many at once as the store takes.
fn put_entries(tree: &dyn Store, staged: Vec<Staged>) -> Result<(), crate::store::StoreError> {
    let put = |s: Staged| -> Result<(), crate::store::StoreError> {
        tree.put(s.json.as_ref(), &format::entry_key(&s.row.id, false))?;
        let _ = s.json.keep();
        tree.put(s.gz.as_ref(), &format::entry_key(&s.row.id, true))?;
        let _ = s.gz.keep();
        Ok(())
    };
    let threads = tree.parallelism().max(1);
    if threads == 1 || staged.len() < 2 {
        return staged.into_iter().try_for_each(put);
    }
    let queue = std::sync::Mutex::new(staged);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                        match next {
                            Some(s) => put(s)?,
                            None => return Ok(()),
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    })
}
