//! What is known about a mirrored version beyond its bytes, read one way
//! for everyone who shows it: the vulnerabilities of the mirrored database
//! that cover it ([`VulnIndex`]), its retraction and its module's
//! deprecation (the [`Notes`] of the go.mod the go command reads them from,
//! [`latest_of`]). `gomirror audit` reports them; the mirror's pages
//! ([`crate::site`]) show them beside each version.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::fatal::Fatal;
use crate::gomod::{self, modfile, semver};
use crate::state::ModuleFacts;
use crate::store::{Store, layout};
use crate::vuln::format::{self, Entry};
use crate::vuln::ranges;

/// One known vulnerability affecting a version.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VulnHit {
    pub id: String,
    /// Through which module of the entry (`stdlib`, `toolchain` for Go itself).
    pub module: String,
    /// The lowest fixed version above the one affected, if there is one.
    pub fixed: Option<String>,
    pub aliases: Vec<String>,
    pub summary: Option<String>,
}

/// The database's entries by the modules they name (withdrawn ones left out).
pub struct VulnIndex {
    entries: Vec<Entry>,
    by_module: HashMap<String, Vec<(usize, usize)>>,
}

impl VulnIndex {
    pub fn new(entries: Vec<Entry>) -> VulnIndex {
        let mut by_module: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if e.withdrawn.is_some() {
                continue;
            }
            for (j, a) in e.affected.iter().enumerate() {
                by_module.entry(a.module.clone()).or_default().push((i, j));
            }
        }
        VulnIndex { entries, by_module }
    }

    /// The entries the state database holds (`vuln::format::Entry` as
    /// JSON each); one that cannot be read is named.
    pub fn from_recorded(rows: &[crate::state::VulnEntryRow]) -> Result<VulnIndex, Fatal> {
        let mut entries = Vec::with_capacity(rows.len());
        for r in rows {
            let e: Entry = serde_json::from_str(&r.summary).map_err(|e| {
                Fatal::stopped(format!(
                    "state database: the recorded vulnerability entry {} cannot be read ({e})",
                    r.id
                ))
            })?;
            entries.push(e);
        }
        Ok(VulnIndex::new(entries))
    }

    /// The entries affecting `module` at `version` (a Go module version).
    pub fn affecting(&self, module: &str, version: &str) -> Vec<VulnHit> {
        let mut hits: BTreeMap<&str, VulnHit> = BTreeMap::new();
        for &(i, j) in self.by_module.get(module).into_iter().flatten() {
            let (e, a) = (&self.entries[i], &self.entries[i].affected[j]);
            if !ranges::affects(a, version) {
                continue;
            }
            let fixed = ranges::fixed_after(a, version);
            hits.entry(e.id.as_str()).or_insert_with(|| VulnHit {
                id: e.id.clone(),
                module: module.to_string(),
                fixed,
                aliases: e.aliases.clone(),
                summary: e.summary.clone(),
            });
        }
        hits.into_values().collect()
    }

    /// The `stdlib` and `toolchain` entries affecting a Go release (`go1.22.3`).
    pub fn affecting_go(&self, go: &str) -> Vec<VulnHit> {
        let Some(v) = ranges::go_to_semver(go) else {
            return Vec::new();
        };
        let mut hits = self.affecting(format::STDLIB, &v);
        for h in self.affecting(format::TOOLCHAIN, &v) {
            if !hits.iter().any(|x| x.id == h.id) {
                hits.push(h);
            }
        }
        hits.sort_by(|a, b| a.id.cmp(&b.id));
        hits
    }
}

/// What a module's latest go.mod says (cached in the state database's
/// `module_facts`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Notes {
    pub deprecated: Option<String>,
    /// (low, high, rationale)
    pub retracts: Vec<(String, String, String)>,
}

impl Notes {
    pub fn of(n: modfile::ModuleNotes) -> Notes {
        Notes {
            deprecated: n.deprecated,
            retracts: n
                .retract
                .into_iter()
                .map(|r| (r.low, r.high, r.rationale))
                .collect(),
        }
    }

    pub fn from_facts(f: &ModuleFacts) -> Notes {
        Notes {
            deprecated: f.deprecated.clone(),
            retracts: serde_json::from_str(&f.retracts).unwrap_or_default(),
        }
    }

    pub fn facts(&self, version: &str) -> ModuleFacts {
        ModuleFacts {
            version: version.to_string(),
            deprecated: self.deprecated.clone(),
            retracts: serde_json::to_string(&self.retracts).expect("serializable"),
        }
    }

    /// The retraction covering `version`, if any (`low <= version <= high`).
    pub fn retraction(&self, version: &str) -> Option<&str> {
        self.retracts
            .iter()
            .find(|(lo, hi, _)| {
                semver::compare(lo, version).is_le() && semver::compare(version, hi).is_le()
            })
            .map(|(_, _, why)| why.as_str())
    }
}

/// The version the go command reads a module's retractions and deprecation
/// from, of `versions` (each with whether it is graph-only): the highest
/// release it lists, else the highest prerelease, else the newest
/// pseudo-version (graph-only versions are never listed).
pub fn latest_of<'a>(versions: &[(&'a str, bool)]) -> Option<&'a str> {
    let listed = || {
        versions
            .iter()
            .filter(|(_, graph_only)| !graph_only)
            .map(|(v, _)| *v)
    };
    let best = |it: &mut dyn Iterator<Item = &'a str>| -> Option<&'a str> {
        it.max_by(|a, b| semver::compare(a, b))
    };
    best(&mut listed().filter(|v| semver::prerelease(v).is_empty()))
        .or_else(|| best(&mut listed().filter(|v| !gomod::pseudo::is_pseudo_version(v))))
        .or_else(|| best(&mut listed()))
}

/// Reads the notes of `module@version`'s `.mod` from the tree; `None` when
/// it is not there (a version being repaired).
pub fn read_notes(tree: &dyn Store, module: &str, version: &str) -> Result<Option<Notes>, Fatal> {
    let key = layout::version_file(module, version, "mod")
        .map_err(|e| Fatal::stopped(format!("{module}@{version}: {e}")))?;
    match tree.read(&key, gomod::zip::MAX_GO_MOD) {
        Ok(Some(bytes)) => Ok(Some(Notes::of(modfile::module_notes(
            &String::from_utf8_lossy(&bytes),
        )))),
        Ok(None) => Ok(None),
        Err(e) => Err(Fatal::from(e)),
    }
}
