//! The ledger: the `h1:` of every version no checksum database vouches
//! for — a private module made from its repository, a `sumdb.skip` module —
//! as this mirror first saw it. For those versions it is what the checksum
//! database is for public ones: `v1.2.3` means one content forever. A later
//! make that yields another content (a moved tag, a rewritten history) is
//! refused, and the difference is kept as the entry's conflict so `verify`
//! and the next run can say so; the same content seen again clears it.
//!
//! Keyed by module path and version (not the `modules` row) so a bundle's
//! entries are recorded before the versions they pin. Entries are never
//! deleted: a pruned version made again must be what it was.

use rusqlite::{OptionalExtension, params};

use super::version::state_code;
use super::{Result, State, Todo};

/// One version's ledger entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LedgerEntry {
    pub path: String,
    pub version: String,
    pub mod_h1: String,
    /// `None` while only the version's `.mod` has been seen (graph-only).
    pub zip_h1: Option<String>,
    /// When it was first seen (Unix seconds).
    pub first_at: i64,
    /// Where it was first seen (`the repository`, a bundle, an upstream).
    pub source: String,
    pub conflict: Option<LedgerConflict>,
}

/// Another content seen for a version after the first.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LedgerConflict {
    pub mod_h1: String,
    pub zip_h1: Option<String>,
    pub at: i64,
    pub source: String,
}

/// What comparing a version's content with the ledger found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerCheck {
    /// Not in the ledger before: recorded now.
    First,
    /// The recorded content.
    Same,
    /// Another content than the one recorded (kept as the conflict).
    Differs(Box<LedgerEntry>),
}

impl State {
    /// Compares `mod_h1` and `zip_h1` (`None`: no zip seen) of
    /// `path@version`, seen from `source`, with the ledger, in one
    /// transaction. A version not in the ledger is recorded — with the
    /// hashes it was published with when it is in the tree already (a
    /// mirror that published it before it kept a ledger), else with these;
    /// a zip seen for the first time fills in the entry's.
    pub fn ledger_check(
        &mut self,
        path: &str,
        version: &str,
        mod_h1: &str,
        zip_h1: Option<&str>,
        source: &str,
        now: i64,
    ) -> Result<LedgerCheck> {
        let db = self.path.clone();
        let e = |x: rusqlite::Error| super::err(&db, "cannot check the ledger", x);
        let tx = self.conn.transaction().map_err(e)?;
        let recorded = ledger_row(&tx, path, version).map_err(e)?;
        let recorded = match recorded {
            Some(r) => Some(r),
            None => {
                // Published before this mirror kept a ledger: that is the
                // first content.
                let published: Option<(String, Option<String>)> = tx
                    .query_row(
                        concat!(
                            "SELECT v.mod_h1, CASE WHEN v.state = ",
                            state_code!(GraphOnly),
                            " THEN NULL ELSE v.zip_h1 END
                             FROM versions v JOIN modules m ON m.id = v.module_id
                             WHERE m.path = ?1 AND v.version = ?2 AND v.in_tree = 1
                               AND v.mod_h1 IS NOT NULL AND v.mod_h1 != ''"
                        ),
                        params![path, version],
                        |r| Ok((r.get(0)?, r.get::<_, Option<String>>(1)?)),
                    )
                    .optional()
                    .map_err(e)?;
                match published {
                    Some((m, z)) => {
                        let z = z.filter(|z| !z.is_empty());
                        insert(&tx, path, version, &m, z.as_deref(), now, "the tree").map_err(e)?;
                        ledger_row(&tx, path, version).map_err(e)?
                    }
                    None => None,
                }
            }
        };
        let outcome = match recorded {
            None => {
                insert(&tx, path, version, mod_h1, zip_h1, now, source).map_err(e)?;
                LedgerCheck::First
            }
            Some(r) => {
                let zip_same = match (&r.zip_h1, zip_h1) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                if r.mod_h1 == mod_h1 && zip_same {
                    tx.execute(
                        "UPDATE private_ledger SET zip_h1 = coalesce(zip_h1, ?3),
                            conflict_mod_h1 = NULL, conflict_zip_h1 = NULL,
                            conflict_at = NULL, conflict_source = NULL
                         WHERE path = ?1 AND version = ?2",
                        params![path, version, zip_h1],
                    )
                    .map_err(e)?;
                    LedgerCheck::Same
                } else {
                    tx.execute(
                        "UPDATE private_ledger SET conflict_mod_h1 = ?3, conflict_zip_h1 = ?4,
                            conflict_at = ?5, conflict_source = ?6
                         WHERE path = ?1 AND version = ?2",
                        params![path, version, mod_h1, zip_h1, now, source],
                    )
                    .map_err(e)?;
                    LedgerCheck::Differs(Box::new(r))
                }
            }
        };
        tx.commit().map_err(e)?;
        Ok(outcome)
    }

    /// The ledger entries of `versions` (path, version) that it has, in
    /// that order.
    pub fn ledger_entries(&self, versions: &[(String, String)]) -> Result<Vec<LedgerEntry>> {
        let mut out = Vec::new();
        for (p, v) in versions {
            if let Some(r) =
                ledger_row(&self.conn, p, v).map_err(|x| self.err("cannot read the ledger", x))?
            {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Published versions of the modules `owns` names that were not checked
    /// since `cutoff`, oldest check first, at most `limit`: the private
    /// versions a recheck makes again.
    pub fn due_private_rechecks(
        &self,
        cutoff: i64,
        limit: u64,
        owns: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<Todo>> {
        let modules: Vec<(i64, String)> = self.query_vec(
            "cannot list modules",
            "SELECT id, path FROM modules",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut due: Vec<(Option<i64>, Todo)> = Vec::new();
        for (id, path) in modules.into_iter().filter(|(_, p)| owns(p)) {
            due.extend(self.query_vec(
                "cannot list private rechecks",
                concat!(
                    "SELECT version, attempts, state != ",
                    state_code!(GraphOnly),
                    ", checked_at FROM versions
                     WHERE module_id = ?1 AND in_tree = 1 AND state IN (",
                    state_code!(Published),
                    ", ",
                    state_code!(GraphOnly),
                    ") AND (checked_at IS NULL OR checked_at <= ?2)"
                ),
                params![id, cutoff],
                |r| {
                    Ok((
                        r.get::<_, Option<i64>>(3)?,
                        Todo {
                            module_id: id,
                            path: path.clone(),
                            version: r.get(0)?,
                            attempts: r.get(1)?,
                            zip: r.get(2)?,
                            pinned: false,
                        },
                    ))
                },
            )?);
        }
        due.sort_by_key(|(checked, _)| checked.unwrap_or(i64::MIN));
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|(_, t)| t)
            .collect())
    }

    /// How many versions the ledger pins, and how many of them have a
    /// conflict on record.
    pub fn ledger_counts(&self) -> Result<(u64, u64)> {
        self.conn
            .query_row(
                "SELECT count(*), count(conflict_at) FROM private_ledger",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(|x| self.err("cannot read the ledger", x))
    }
}

fn insert(
    conn: &rusqlite::Connection,
    path: &str,
    version: &str,
    mod_h1: &str,
    zip_h1: Option<&str>,
    now: i64,
    source: &str,
) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO private_ledger(path, version, mod_h1, zip_h1, first_at, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![path, version, mod_h1, zip_h1, now, source],
    )
}

fn ledger_row(
    conn: &rusqlite::Connection,
    path: &str,
    version: &str,
) -> rusqlite::Result<Option<LedgerEntry>> {
    conn.query_row(
        "SELECT mod_h1, zip_h1, first_at, source,
                conflict_mod_h1, conflict_zip_h1, conflict_at, conflict_source
         FROM private_ledger WHERE path = ?1 AND version = ?2",
        params![path, version],
        |r| {
            let conflict = match (r.get::<_, Option<String>>(4)?, r.get::<_, Option<i64>>(6)?) {
                (Some(mod_h1), Some(at)) => Some(LedgerConflict {
                    mod_h1,
                    zip_h1: r.get(5)?,
                    at,
                    source: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                }),
                _ => None,
            };
            Ok(LedgerEntry {
                path: path.to_string(),
                version: version.to_string(),
                mod_h1: r.get(0)?,
                zip_h1: r.get(1)?,
                first_at: r.get(2)?,
                source: r.get(3)?,
                conflict,
            })
        },
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, open_temp, published};
    use super::*;

    #[test]
    fn the_first_content_is_kept_and_another_is_refused_and_remembered() {
        let (_d, mut st) = open_temp();
        let check = |st: &mut State, m: &str, z: Option<&str>, at| {
            st.ledger_check(
                "git.corp.example/lib.git",
                "v1.0.0",
                m,
                z,
                "the repository",
                at,
            )
            .unwrap()
        };
        assert_eq!(check(&mut st, "h1:m", Some("h1:z"), 10), LedgerCheck::First);
        assert_eq!(check(&mut st, "h1:m", Some("h1:z"), 20), LedgerCheck::Same);
        let LedgerCheck::Differs(first) = check(&mut st, "h1:m", Some("h1:OTHER"), 30) else {
            panic!("a moved tag was accepted")
        };
        assert_eq!(
            (first.zip_h1.as_deref(), first.first_at),
            (Some("h1:z"), 10)
        );
        let e = &st
            .ledger_entries(&[("git.corp.example/lib.git".into(), "v1.0.0".into())])
            .unwrap()[0];
        assert_eq!(e.zip_h1.as_deref(), Some("h1:z"), "the first content stays");
        assert_eq!(
            e.conflict.as_ref().map(|c| (c.zip_h1.as_deref(), c.at)),
            Some((Some("h1:OTHER"), 30))
        );
        assert_eq!(st.ledger_counts().unwrap(), (1, 1));
        // The tag moved back: the conflict is cleared.
        assert_eq!(check(&mut st, "h1:m", Some("h1:z"), 40), LedgerCheck::Same);
        assert_eq!(st.ledger_counts().unwrap(), (1, 0));
    }

    #[test]
    fn a_graph_only_first_sight_takes_the_zip_later() {
        let (_d, mut st) = open_temp();
        let mut check = |z: Option<&str>| {
            st.ledger_check("a.example/m", "v1.0.0", "h1:m", z, "bundle", 1)
                .unwrap()
        };
        assert_eq!(check(None), LedgerCheck::First);
        assert_eq!(check(Some("h1:z")), LedgerCheck::Same);
        assert!(matches!(check(Some("h1:y")), LedgerCheck::Differs(_)));
    }

    #[test]
    fn a_version_published_before_the_ledger_is_its_first_content() {
        let (_d, mut st) = open_temp();
        st.record_entries(&[entry("a.example/m", "v1.0.0")], &|_| true, None)
            .unwrap();
        let mid = st.module_id("a.example/m").unwrap().unwrap();
        st.mark_published(&[published(mid, "v1.0.0", None)], &[], 0)
            .unwrap();
        let got = st
            .ledger_check("a.example/m", "v1.0.0", "h1:m", Some("h1:new"), "x", 5)
            .unwrap();
        let LedgerCheck::Differs(first) = got else {
            panic!("{got:?}")
        };
        assert_eq!(
            (first.zip_h1.as_deref(), first.source.as_str()),
            (Some("h1:z"), "the tree")
        );
    }
}
