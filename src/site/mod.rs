//! The mirror's pages (`docs/site.md`): what a person pointed at the mirror
//! sees — how to use it, what it holds, how fresh it is, a chart of recent
//! runs, a search over every module path and a page per module with its
//! versions and what is known about them. Static files under `site/` (no
//! module path can start with it: a module path's first element has a dot),
//! written through the store like every other file of the tree, so they
//! read the same from nginx, a bucket or `file://`.
//!
//! Written at the end of every sync and import (and a prune that deleted
//! something), after the lists and the feed, before the trace; only what
//! changed is rewritten. A module's page is marked for rewriting by the
//! state database in the same transaction that changes what the module
//! holds ([`crate::state`]'s `site_dirty`), or when the vulnerability
//! database changes what it says of the module; search shards are
//! rewritten when a module is filed into or out of them. The order keeps
//! every link whole: module pages first, then the shards that list them
//! (and the list of shards), then the pages of modules with nothing left
//! are deleted, then the front page, last.

pub mod assets;
pub mod chart;
pub mod escape;
pub mod html;
pub mod search;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use crate::fatal::Fatal;
use crate::gomod::{semver, toolchain};
use crate::marks::{self, Notes, VulnIndex};
use crate::settings::Settings;
use crate::source::toolchains;
use crate::state::db::Db;
use crate::state::{Filed, ModuleFacts, SiteVersion, State, StateError};
use crate::store::Store;
use crate::store::layout::{self, Key, SiteFile};

use chart::ChartRun;
use html::{FrontPage, Mark, ModulePage, Source, VersionRow};

/// The format of the pages this gomirror writes: a database that recorded
/// another one has every page written again (a new gomirror's pages).
pub const FORMAT: &str = "1";
/// Modules whose pages are written per round trip to the state database.
const PAGE: usize = 256;
/// Recent additions on the front page.
const ADDITIONS: usize = 20;
/// Runs in the front page's chart.
const RUNS: usize = 30;

/// What the run writing the pages did.
#[derive(Clone, Debug)]
pub struct RunFacts {
    /// `sync`, `import` or `prune`.
    pub command: &'static str,
    /// Versions this run published.
    pub published: u64,
    /// When the newest change this run took in was made upstream (RFC 3339),
    /// when the caller knows better than the index cursor (an import: its
    /// bundle's creation time).
    pub upstream_as_of: Option<String>,
}

/// What writing the pages did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SiteSummary {
    /// Module pages written (or found already right).
    pub pages: u64,
    /// Module pages deleted (modules with nothing left).
    pub deleted: u64,
    /// Search shards written.
    pub shards: u64,
}

/// Whether a file of the pages belongs in the tree (prune's question).
pub fn tree_file_expected(state: &State, file: &SiteFile) -> Result<bool, String> {
    match file {
        SiteFile::Fixed(_) => Ok(true),
        SiteFile::Module { module } => state.site_has_page(module).map_err(|e| e.to_string()),
        SiteFile::Shard { prefix } => state.site_has_shard(prefix).map_err(|e| e.to_string()),
    }
}

fn key(f: SiteFile) -> Result<String, Fatal> {
    Key::Site(f)
        .path()
        .map_err(|e| Fatal::stopped(format!("site: {e}")))
}

/// Writes the pages that changed, then the front page (`[site] enabled`;
/// `None` when off).
pub async fn write_site(
    settings: &Settings,
    db: &Db,
    tree: &Arc<dyn Store>,
    run: RunFacts,
) -> Result<Option<SiteSummary>, Fatal> {
    if !settings.site.enabled {
        return Ok(None);
    }
    let mut summary = SiteSummary::default();
    if db.call(|s| s.site_format()).await?.as_deref() != Some(FORMAT) {
        db.call(|s| s.site_rewrite_all(FORMAT)).await?;
    }
    let vulndb = mark_vuln_changes(db).await?;
    write_module_pages(settings, db, tree, vulndb, &mut summary).await?;
    write_shards(settings, db, tree, &mut summary).await?;
    delete_emptied(db, tree, &mut summary).await?;
    write_front(settings, db, tree, &run).await?;
    Ok(Some(summary))
}

/// Marks the pages of the modules whose vulnerabilities changed since the
/// pages were last written (every entry modified after the database the
/// pages showed). Returns whether a database is held.
async fn mark_vuln_changes(db: &Db) -> Result<bool, Fatal> {
    let (status, shown) = db
        .call(|s| Ok((s.vuln_status()?, s.meta("site.vulndb")?)))
        .await?;
    let now = status.modified.clone().unwrap_or_default();
    if shown.as_deref().unwrap_or("") == now {
        return Ok(status.modified.is_some());
    }
    let rows = db.call(|s| s.vuln_entries()).await?;
    let since = shown.filter(|s| !s.is_empty());
    let mut modules: BTreeSet<String> = BTreeSet::new();
    for r in &rows {
        if since
            .as_deref()
            .is_some_and(|s| crate::clock::timestamp_cmp(&r.modified, s).is_le())
        {
            continue;
        }
        let Ok(e) = serde_json::from_str::<crate::vuln::format::Entry>(&r.summary) else {
            continue;
        };
        for a in &e.affected {
            match a.module.as_str() {
                crate::vuln::format::STDLIB | crate::vuln::format::TOOLCHAIN => {
                    modules.insert(toolchain::MODULE.to_string())
                }
                m => modules.insert(m.to_string()),
            };
        }
    }
    let modules: Vec<String> = modules.into_iter().collect();
    let held = status.modified.is_some();
    db.call(move |s| {
        // No database any more: every page says it again.
        if !held {
            s.site_rewrite_all(FORMAT)?;
        } else {
            s.site_mark_modules(&modules)?;
        }
        s.set_meta("site.vulndb", &now)
    })
    .await?;
    Ok(held)
}

/// One module to write, as read from the state database.
struct Pending {
    id: i64,
    path: String,
    versions: Vec<SiteVersion>,
    facts: Option<ModuleFacts>,
}

async fn write_module_pages(
    settings: &Settings,
    db: &Db,
    tree: &Arc<dyn Store>,
    vulndb: bool,
    summary: &mut SiteSummary,
) -> Result<(), Fatal> {
    let mut index: Option<Arc<VulnIndex>> = None;
    let mut after = 0;
    loop {
        let page = db
            .call(move |s| -> Result<Vec<Pending>, StateError> {
                let mut out = Vec::new();
                for (id, path) in s.site_dirty_page(after, PAGE)? {
                    out.push(Pending {
                        id,
                        versions: s.site_versions(id)?,
                        facts: s.site_module_facts(id)?,
                        path,
                    });
                }
                Ok(out)
            })
            .await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.id;
        if vulndb && index.is_none() {
            let rows = db.call(|s| s.vuln_entries()).await?;
            index = Some(Arc::new(
                tokio::task::spawn_blocking(move || VulnIndex::from_recorded(&rows))
                    .await
                    .map_err(|e| Fatal::crashed("the vulnerability index", e))??,
            ));
        }
        let (t, idx, mirror) = (tree.clone(), index.clone(), settings.mirror_name.clone());
        let done = tokio::task::spawn_blocking(move || -> Result<Written, Fatal> {
            let mut w = Written::default();
            for p in page {
                if p.versions.is_empty() {
                    w.emptied.push(p.id);
                    continue;
                }
                let (html, facts) = render_module(t.as_ref(), &mirror, &p, idx.as_deref())?;
                t.write_if_changed(
                    &key(SiteFile::Module {
                        module: p.path.clone(),
                    })?,
                    html.as_bytes(),
                )?;
                if let Some(f) = facts {
                    w.facts.push((p.id, f));
                }
                w.written.push(Filed {
                    module_id: p.id,
                    term: search::term(&p.path),
                    versions: p.versions.len() as i64,
                    bytes: p.versions.iter().map(|v| v.bytes).sum(),
                });
            }
            // The pages are durable before the database files them.
            t.barrier()?;
            Ok(w)
        })
        .await
        .map_err(|e| Fatal::crashed("the page writer", e))??;
        summary.pages += done.written.len() as u64;
        db.call(move |s| {
            if !done.facts.is_empty() {
                s.set_module_facts(&done.facts)?;
            }
            s.site_record_pages(&done.written, &done.emptied)
        })
        .await?;
    }
}

#[derive(Default)]
struct Written {
    written: Vec<Filed>,
    emptied: Vec<i64>,
    facts: Vec<(i64, ModuleFacts)>,
}

/// A module's page, and its go.mod facts when they were read from the tree
/// (the cache is filled for the audit too).
fn render_module(
    tree: &dyn Store,
    mirror: &str,
    p: &Pending,
    index: Option<&VulnIndex>,
) -> Result<(String, Option<ModuleFacts>), Fatal> {
    let pairs: Vec<(&str, bool)> = p
        .versions
        .iter()
        .map(|v| (v.version.as_str(), v.graph_only))
        .collect();
    let mut read = None;
    let notes = match marks::latest_of(&pairs) {
        None => Notes::default(),
        Some(latest) => match &p.facts {
            Some(f) if f.version == latest => Notes::from_facts(f),
            _ => match marks::read_notes(tree, &p.path, latest)? {
                Some(n) => {
                    read = Some(n.facts(latest));
                    n
                }
                None => Notes::default(),
            },
        },
    };
    let is_toolchain = p.path == toolchain::MODULE;
    let mut rows: Vec<VersionRow> = p
        .versions
        .iter()
        .map(|v| {
            let mut marks = Vec::new();
            if let Some(idx) = index {
                let hits = if is_toolchain {
                    toolchains::split_version(&v.version)
                        .map(|(go, _)| idx.affecting_go(go))
                        .unwrap_or_default()
                } else {
                    idx.affecting(&p.path, &v.version)
                };
                marks.extend(hits.into_iter().map(|h| Mark::Vulnerable {
                    id: h.id,
                    fixed: h.fixed,
                    summary: h.summary,
                }));
            }
            if let Some(why) = notes.retraction(&v.version) {
                marks.push(Mark::Retracted {
                    why: why.to_string(),
                });
            }
            // Issue 27 (policy): a held or denied version gets its mark here.
            VersionRow {
                version: v.version.clone(),
                time: v.time.clone(),
                graph_only: v.graph_only,
                marks,
            }
        })
        .collect();
    rows.sort_by(|a, b| semver::sort_cmp(&b.version, &a.version));
    let html = html::module_page(&ModulePage {
        mirror,
        module: &p.path,
        versions: &rows,
        deprecated: notes.deprecated.as_deref(),
        vulndb: index.is_some(),
    });
    Ok((html, read))
}

/// Splits the shards that grew too large, writes every shard that changed,
/// then the list of shards; records them written once durable.
async fn write_shards(
    settings: &Settings,
    db: &Db,
    tree: &Arc<dyn Store>,
    summary: &mut SiteSummary,
) -> Result<(), Fatal> {
    db.call(|s| s.site_split_shards(search::SHARD_MAX)).await?;
    let shards = db.call(|s| s.site_shards()).await?;
    let all: Vec<String> = shards.iter().map(|(p, _)| p.clone()).collect();
    let dirty: Vec<String> = shards
        .into_iter()
        .filter(|(_, d)| *d)
        .map(|(p, _)| p)
        .collect();
    for chunk in dirty.chunks(64) {
        let chunk = chunk.to_vec();
        let listed = {
            let c = chunk.clone();
            db.call(move |s| {
                c.iter()
                    .map(|p| s.site_shard_members(p))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?
        };
        let (t, all, mirror) = (tree.clone(), all.clone(), settings.mirror_name.clone());
        let c = chunk.clone();
        tokio::task::spawn_blocking(move || -> Result<(), Fatal> {
            for (prefix, modules) in c.iter().zip(listed) {
                let children = search::children(prefix, &all);
                let html = html::shard_page(&mirror, prefix, &children, &modules);
                t.write_if_changed(
                    &key(SiteFile::Shard {
                        prefix: prefix.clone(),
                    })?,
                    html.as_bytes(),
                )?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Fatal::crashed("the shard writer", e))??;
        summary.shards += chunk.len() as u64;
    }
    let list = serde_json::to_string(&all).expect("strings serialize") + "\n";
    let t = tree.clone();
    let wrote = !dirty.is_empty();
    tokio::task::spawn_blocking(move || -> Result<(), Fatal> {
        let changed = t.write_if_changed(
            &key(SiteFile::Fixed("search/shards.json"))?,
            list.as_bytes(),
        )?;
        // The listings are durable before the database stops marking them.
        if wrote || changed {
            t.barrier()?;
        }
        Ok(())
    })
    .await
    .map_err(|e| Fatal::crashed("the shard writer", e))??;
    if !dirty.is_empty() {
        db.call(move |s| s.site_shards_written(&dirty)).await?;
    }
    Ok(())
}

/// Deletes the pages of modules left with nothing, now that no shard lists them.
async fn delete_emptied(
    db: &Db,
    tree: &Arc<dyn Store>,
    summary: &mut SiteSummary,
) -> Result<(), Fatal> {
    loop {
        let page = db.call(|s| s.site_dirty_page(0, PAGE)).await?;
        if page.is_empty() {
            return Ok(());
        }
        let t = tree.clone();
        let ids = tokio::task::spawn_blocking(move || -> Result<Vec<i64>, Fatal> {
            let mut ids = Vec::new();
            for (id, path) in page {
                let k = key(SiteFile::Module {
                    module: path.clone(),
                })?;
                t.delete(&k)?;
                if let Some((dir, _)) = k.rsplit_once('/') {
                    t.tidy(dir)?;
                }
                ids.push(id);
            }
            t.barrier()?;
            Ok(ids)
        })
        .await
        .map_err(|e| Fatal::crashed("the page writer", e))??;
        summary.deleted += ids.len() as u64;
        db.call(move |s| s.site_pages_deleted(&ids)).await?;
    }
}

/// The front page, its stylesheet and script: written last.
async fn write_front(
    settings: &Settings,
    db: &Db,
    tree: &Arc<dyn Store>,
    run: &RunFacts,
) -> Result<(), Fatal> {
    let now = crate::clock::now();
    let indexed = settings.index.is_some();
    let following = settings.follow.is_some();
    let has_proxy = !settings.proxy.is_empty();
    let (cursor, import) = db
        .call(move |s| {
            let import = match s.import_position()? {
                Some(p) => s.imported(&p.id)?,
                None => None,
            };
            Ok((s.cursor()?, import))
        })
        .await?;
    let cursor = cursor.filter(|_| indexed);
    let as_of = run.upstream_as_of.clone().or_else(|| cursor.clone());
    let lag = as_of
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| (now - t.as_second()).max(0))
        .filter(|_| !following || run.upstream_as_of.is_some());
    let (counts, additions, runs, last, vuln) = db
        .call(move |s| {
            s.site_record_lag(lag)?;
            let recorded = s.command_runs()?;
            let last: Vec<(String, Option<i64>)> = ["sync", "import"]
                .into_iter()
                .filter(|c| (*c == "sync" && has_proxy) || recorded.iter().any(|r| r.command == *c))
                .map(|c| {
                    let at = recorded
                        .iter()
                        .find(|r| r.command == c)
                        .and_then(|r| r.last_success);
                    (c.to_string(), at)
                })
                .collect();
            Ok((
                s.site_counts(toolchain::MODULE)?,
                s.site_recent_additions(ADDITIONS)?,
                s.site_runs(RUNS)?,
                last,
                s.vuln_status()?,
            ))
        })
        .await?;
    let chart: Vec<ChartRun> = runs
        .iter()
        .rev()
        .map(|r| {
            // The run writing the page: its figures are this run's so far.
            let current = r.finished.is_none() && r.id == runs[0].id && r.command == run.command;
            ChartRun {
                command: r.command.clone(),
                started: r.started,
                published: if current {
                    run.published
                } else {
                    r.published.unwrap_or(0)
                },
                seconds: if current {
                    (now - r.started).max(0) as f64
                } else {
                    r.seconds.unwrap_or_else(|| {
                        r.finished.map(|f| (f - r.started) as f64).unwrap_or(0.0)
                    })
                },
                lag: r.lag,
                ok: current || r.exit_code == Some(0),
            }
        })
        .collect();
    let source = match (&settings.follow, &import) {
        (Some(f), _) => Source::Follows {
            url: crate::redact::redact_url(f),
        },
        (None, Some(i)) if settings.proxy.is_empty() => Source::Bundles {
            from: i.mirror_name.clone(),
            sequence: i.seq,
            imported: i.imported,
        },
        _ => Source::Proxy {
            list: settings.upstream_name(),
            cursor: cursor.clone(),
        },
    };
    let url = settings.site.url.to_string();
    let vulndb = vuln.modified.as_deref().map(|m| (m, vuln.entries));
    let page = html::front_page(&FrontPage {
        mirror: &settings.mirror_name,
        url: &url,
        sumdb_name: &settings.sumdb.name,
        sumdb_key: &settings.sumdb.key,
        sumdb_skip: &settings.sumdb.skip,
        counts: &counts,
        vulndb,
        toolchain_platforms: &settings.toolchains,
        source: &source,
        lag,
        last_success: &last,
        written: now,
        command: run.command,
        additions: &additions,
        runs: &chart,
    });
    let t = tree.clone();
    tokio::task::spawn_blocking(move || -> Result<(), Fatal> {
        let style = t.write_if_changed(
            &key(SiteFile::Fixed("style.css"))?,
            assets::STYLE.as_bytes(),
        )?;
        let script = t.write_if_changed(
            &key(SiteFile::Fixed("search.js"))?,
            assets::SCRIPT.as_bytes(),
        )?;
        // A new stylesheet or script (a new gomirror) before the page that
        // uses it; the front page itself is rewritten by every run, and
        // nothing in the state database waits for it to be durable.
        if style || script {
            t.barrier()?;
        }
        t.write_if_changed(&key(SiteFile::Fixed("index.html"))?, page.as_bytes())?;
        Ok(())
    })
    .await
    .map_err(|e| Fatal::crashed("the page writer", e))??;
    Ok(())
}

/// `site/index.html`, the front page's key (for messages and tests).
pub fn front_key() -> String {
    layout::plain(Key::Site(SiteFile::Fixed("index.html")))
}
