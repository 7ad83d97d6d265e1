//! What `@v/list` and `@latest` say, derived from the published versions the
//! way the go command reads them (protocols.md §1.2, §6).
//!
//! `@v/list` holds tagged versions only (the go command ignores pseudo-versions
//! there). `@latest` answers what `go` would pick when the list has nothing
//! suitable: the highest release, else the highest pre-release, else the newest
//! pseudo-version — after dropping `+incompatible` versions when the highest
//! compatible version has a real go.mod, exactly as `go` filters them.

use std::sync::Arc;

use crate::fatal::Fatal;
use crate::gomod::{dirhash, pseudo, semver};
pub use crate::model::Listed;
use crate::state::{self, db::Db};
use crate::store::{Store, layout};
use sha2::{Digest, Sha256};

/// The content of `@v/list`: tagged versions in semver order, one per line.
pub fn render_list(versions: &[Listed]) -> String {
    let mut tagged: Vec<&str> = versions
        .iter()
        .map(|v| v.version.as_str())
        .filter(|v| !pseudo::is_pseudo_version(v))
        .collect();
    tagged.sort_by(|a, b| semver::sort_cmp(a, b));
    tagged.dedup();
    let mut out = String::with_capacity(tagged.len() * 10);
    for v in tagged {
        out.push_str(v);
        out.push('\n');
    }
    out
}

/// The version `@latest` names, if any.
pub fn choose_latest<'a>(module: &str, versions: &'a [Listed]) -> Option<&'a Listed> {
    let mut tagged: Vec<&Listed> = versions
        .iter()
        .filter(|v| !pseudo::is_pseudo_version(&v.version))
        .collect();
    tagged.sort_by(|a, b| semver::sort_cmp(&a.version, &b.version));

    // go's filterVersions: walking upwards, the first +incompatible version
    // after a compatible one is kept only if that compatible version has no
    // go.mod of its own; otherwise it and everything after it are dropped.
    let legacy = legacy_go_mod_h1(module);
    let mut kept: Vec<&Listed> = Vec::new();
    let mut last_compatible: Option<&Listed> = None;
    let mut need_incompatible = false;
    for v in tagged {
        if !need_incompatible {
            if !v.version.ends_with("+incompatible") {
                last_compatible = Some(v);
            } else if let Some(c) = last_compatible {
                if c.mod_h1 != legacy {
                    break;
                }
                need_incompatible = true;
            }
        }
        kept.push(v);
    }
    let release = kept
        .iter()
        .rev()
        .find(|v| semver::prerelease(&v.version).is_empty());
    if let Some(v) = release {
        return Some(v);
    }
    if let Some(v) = kept.last() {
        return Some(v);
    }
    versions
        .iter()
        .filter_map(|v| pseudo::pseudo_version_time(&v.version).map(|t| (t, v)))
        .max_by(|(ta, a), (tb, b)| {
            ta.cmp(tb)
                .then_with(|| semver::sort_cmp(&a.version, &b.version))
        })
        .map(|(_, v)| v)
}

/// The `.info`-shaped JSON `@latest` serves.
pub fn render_info(version: &str, time: Option<&str>) -> String {
    #[derive(serde::Serialize)]
    struct Info<'a> {
        #[serde(rename = "Version")]
        version: &'a str,
        #[serde(rename = "Time", skip_serializing_if = "Option::is_none")]
        time: Option<&'a str>,
    }
    let mut s = serde_json::to_string(&Info { version, time }).expect("plain strings serialize");
    s.push('\n');
    s
}

/// The `h1:` of the go.mod the go command synthesizes for a module without
/// one (`module <path>\n`; valid module paths never need quoting).
pub fn legacy_go_mod_h1(module: &str) -> String {
    let sum: [u8; 32] = Sha256::digest(format!("module {module}\n").as_bytes()).into();
    dirhash::go_mod_hash(sum)
}

/// Rewrites `@v/list` and `@latest` of every module marked dirty, from the
/// database, a page of modules at a time: after a first sync every module is
/// dirty, and memory must not grow with the mirror (invariant 8).
pub async fn rewrite_dirty_lists(db: &Db, tree: &Arc<dyn Store>) -> Result<(), Fatal> {
    // Keyset pagination on the module id: a page's modules are clean (or, if
    // writing failed, the run stopped) before the next page is asked for, and
    // a module marked dirty behind the walk is rewritten on the next call.
    let mut after = 0;
    loop {
        let listed = db
            .call(
                move |s| -> Result<Vec<(i64, String, Vec<Listed>)>, state::StateError> {
                    let page = s.dirty_modules_page(after, DIRTY_PAGE)?;
                    let mut out = Vec::with_capacity(page.len());
                    for (id, path) in page {
                        let versions = s.listed_versions(id)?;
                        out.push((id, path, versions));
                    }
                    Ok(out)
                },
            )
            .await?;
        let Some((last, _, _)) = listed.last() else {
            return Ok(());
        };
        after = *last;
        let tree = tree.clone();
        let written = tokio::task::spawn_blocking(move || -> Result<Vec<i64>, String> {
            let mut done = Vec::new();
            for (id, path, versions) in listed {
                write_module_indexes(&*tree, &path, &versions)?;
                done.push(id);
            }
            // The indexes are durable before the database stops marking them stale.
            tree.barrier().map_err(|e| e.to_string())?;
            Ok(done)
        })
        .await
        .map_err(|e| Fatal::crashed("list writer", e))?
        .map_err(Fatal::Stopped)?;
        db.call(move |s| s.set_dirty(&written, false)).await?;
    }
}

/// How many dirty modules' indexes are rewritten per database round trip.
const DIRTY_PAGE: usize = 256;

/// Writes (or removes, for a module with nothing left) a module's `@v/list` and `@latest`.
pub fn write_module_indexes(
    tree: &dyn Store,
    module: &str,
    versions: &[Listed],
) -> Result<(), String> {
    let list_rel = layout::list(module).map_err(|e| e.to_string())?;
    let latest_rel = layout::latest(module).map_err(|e| e.to_string())?;
    if versions.is_empty() {
        tree.delete(&latest_rel).map_err(|e| e.to_string())?;
        tree.delete(&list_rel).map_err(|e| e.to_string())?;
        return Ok(());
    }
    tree.write_if_changed(&list_rel, render_list(versions).as_bytes())
        .map_err(|e| e.to_string())?;
    match choose_latest(module, versions) {
        Some(l) => {
            tree.write_if_changed(
                &latest_rel,
                render_info(&l.version, l.time.as_deref()).as_bytes(),
            )
            .map_err(|e| e.to_string())?;
        }
        None => {
            tree.delete(&latest_rel).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &str) -> Listed {
        Listed {
            version: v.into(),
            time: None,
            mod_h1: "h1:real".into(),
        }
    }

    #[test]
    fn list_is_tagged_and_sorted() {
        let vs = [
            l("v1.10.0"),
            l("v1.2.0"),
            l("v0.0.0-20191011191535-87dc89f01550"),
            l("v1.2.0-pre"),
            l("v2.0.0+incompatible"),
        ];
        assert_eq!(
            render_list(&vs),
            "v1.2.0-pre\nv1.2.0\nv1.10.0\nv2.0.0+incompatible\n"
        );
        assert_eq!(render_list(&[]), "");
    }

    #[test]
    fn latest_prefers_release_then_prerelease_then_pseudo() {
        let m = "example.com/m";
        let vs = [l("v1.0.0"), l("v1.1.0-rc.1"), l("v0.9.0")];
        assert_eq!(choose_latest(m, &vs).unwrap().version, "v1.0.0");
        let vs = [l("v1.1.0-rc.1"), l("v1.1.0-beta")];
        assert_eq!(choose_latest(m, &vs).unwrap().version, "v1.1.0-rc.1");
        let vs = [
            l("v0.0.0-20200101000000-aaaaaaaaaaaa"),
            l("v0.0.0-20210101000000-bbbbbbbbbbbb"),
            l("v0.0.0-20190101000000-cccccccccccc"),
        ];
        assert_eq!(
            choose_latest(m, &vs).unwrap().version,
            "v0.0.0-20210101000000-bbbbbbbbbbbb"
        );
        assert!(choose_latest(m, &[]).is_none());
    }

    #[test]
    fn incompatible_dropped_when_compatible_has_go_mod() {
        let m = "example.com/m";
        let vs = [l("v1.5.0"), l("v2.0.0+incompatible")];
        assert_eq!(choose_latest(m, &vs).unwrap().version, "v1.5.0");
        let legacy = Listed {
            version: "v1.5.0".into(),
            time: None,
            mod_h1: legacy_go_mod_h1(m),
        };
        let vs = [legacy, l("v2.0.0+incompatible")];
        assert_eq!(
            choose_latest(m, &vs).unwrap().version,
            "v2.0.0+incompatible"
        );
        // Only incompatible versions: nothing to prefer over them.
        let vs = [l("v2.0.0+incompatible"), l("v3.0.0+incompatible")];
        assert_eq!(
            choose_latest(m, &vs).unwrap().version,
            "v3.0.0+incompatible"
        );
    }

    #[test]
    fn info_json() {
        assert_eq!(
            render_info("v1.0.0", Some("2020-01-02T17:33:45Z")),
            "{\"Version\":\"v1.0.0\",\"Time\":\"2020-01-02T17:33:45Z\"}\n"
        );
        assert_eq!(render_info("v1.0.0", None), "{\"Version\":\"v1.0.0\"}\n");
    }

    /// Invariant 8: the dirty modules are walked a page at a time, and a walk
    /// over several pages (a first sync marks every module dirty) still
    /// rewrites each module's indexes and leaves none marked.
    #[tokio::test]
    async fn dirty_lists_are_rewritten_page_by_page_for_every_module() {
        use crate::state::{IndexEntry, Published, State};
        let dir = tempfile::tempdir().unwrap();
        let mut st = State::open(&dir.path().join("state.db")).unwrap();
        let n = DIRTY_PAGE * 2 + 3;
        let path = |i: usize| format!("example.com/m{i:04}");
        let entries: Vec<_> = (0..n)
            .map(|i| IndexEntry {
                path: path(i),
                version: "v1.0.0".into(),
                listed_at: None,
            })
            .collect();
        st.record_entries(&entries, &|_| true, None).unwrap();
        let published: Vec<_> = (0..n)
            .map(|i| Published {
                module_id: st.module(&path(i)).unwrap().unwrap().0,
                version: "v1.0.0".into(),
                info_time: None,
                zip_h1: "h1:z".into(),
                mod_h1: "h1:m".into(),
                info_size: 1,
                mod_size: 1,
                zip_size: 1,
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
        let (db, handle) = Db::spawn(st);
        let out = dir.path().join("out");
        let tree: Arc<dyn Store> = Arc::new(crate::store::LocalStore::open(&out).unwrap());
        rewrite_dirty_lists(&db, &tree).await.unwrap();
        for i in 0..n {
            let list = std::fs::read_to_string(out.join(path(i)).join("@v/list")).unwrap();
            assert_eq!(list, "v1.0.0\n", "{}", path(i));
        }
        let left = db.call(|s| s.dirty_modules_page(0, 10)).await.unwrap();
        assert!(left.is_empty(), "still marked dirty: {left:?}");
        drop(db);
        handle.join().unwrap();
    }
}
