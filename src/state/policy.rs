//! The supply-chain policy's part of the state database ([`crate::policy`]
//! decides; this records): when each version was first seen
//! (`versions.first_seen`: the index's timestamp, or this mirror's first
//! sight), the versions held for their cooldown (state `Held`, ready at
//! `next_attempt`), those denied (state `Denied`; one still in the tree
//! carries `versions.denied` until prune removes it), and since when a
//! version is no longer wanted (`versions.unwanted_since`, for `prune.keep`).
//!
//! A held version stays in the database only: it is never in the tree, its
//! lists or the feed, and is due again once old enough (`state::queue`).
//! A changed policy is applied once to everything already recorded
//! ([`State::apply_policy`], keyed on its fingerprint as the filter is).

use rusqlite::{OptionalExtension, params};

use super::version::{state_code, state_codes};
use super::{Result, State, VersionState, err};

/// What applying a changed policy did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PolicyChange {
    /// Versions in the tree `policy.deny` now covers (prune removes them).
    pub denied_in_tree: u64,
    /// Versions waiting to be fetched that it now covers (never fetched).
    pub denied: u64,
    /// Versions no longer denied: wanted again.
    pub undenied: u64,
    /// Held versions decided anew by this run (a changed `min_age` or `allow`).
    pub rescreened: u64,
}

/// What the policy holds back, for `status`, the summary and the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PolicyCounts {
    /// Versions held for their cooldown.
    pub held: u64,
    /// The earliest time one of them is old enough (Unix seconds; RFC 3339 in JSON).
    #[serde(serialize_with = "crate::clock::serialize_rfc3339_opt")]
    pub next_ready: Option<i64>,
    /// Denied versions not in the tree (never fetched).
    pub denied: u64,
    /// Denied versions still in the tree (prune removes them).
    pub denied_in_tree: u64,
    /// Versions in the tree no longer wanted, kept for `prune.keep`.
    pub retained: u64,
    /// When the earliest of those stopped being wanted (Unix seconds; RFC 3339 in JSON).
    #[serde(serialize_with = "crate::clock::serialize_rfc3339_opt")]
    pub retained_since: Option<i64>,
}

/// A held version, for `status` and `audit`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HeldVersion {
    pub module: String,
    pub version: String,
    /// When it was first seen (the index's timestamp or this mirror's first sight).
    #[serde(serialize_with = "crate::clock::serialize_rfc3339_opt")]
    pub first_seen: Option<i64>,
    /// When it is old enough: the first sync after this publishes it.
    #[serde(serialize_with = "crate::clock::serialize_rfc3339")]
    pub ready_at: i64,
}

/// A denied version the database knows (in the tree still, or not).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeniedVersion {
    pub module: String,
    pub version: String,
    /// Still in the tree: the next prune removes it.
    pub in_tree: bool,
}

/// A `from_files` pin of a held or denied version.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PolicyPin {
    pub file: String,
    /// 0: reached through the file's requirement graph.
    pub line: i64,
    pub module: String,
    pub version: String,
    /// `held` or `denied`.
    pub state: &'static str,
    /// For a held version: when it is old enough.
    #[serde(serialize_with = "crate::clock::serialize_rfc3339_opt")]
    pub ready_at: Option<i64>,
}

/// One version a dry run weighs against a changed policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRow {
    pub module_id: i64,
    pub module: String,
    pub version: String,
    pub state: VersionState,
    pub in_tree: bool,
    pub denied: bool,
    pub first_seen: Option<i64>,
}

/// What the policy needs of a version about to be fetched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VersionFacts {
    pub first_seen: Option<i64>,
    pub in_tree: bool,
}

/// The versions a changed policy is weighed against: in the tree, waiting
/// to be fetched, held or denied.
const POLICY_ROWS: &str = concat!(
    "SELECT v.module_id, m.path, v.version, v.state, v.in_tree, v.denied, v.first_seen
     FROM versions v JOIN modules m ON m.id = v.module_id
     WHERE (v.in_tree = 1 OR v.state IN (",
    state_codes!(Pending, Failed, Missing, Held, Denied),
    "))
       AND (v.module_id > ?1 OR (v.module_id = ?1 AND v.version > ?2))
     ORDER BY v.module_id, v.version LIMIT ?3"
);

fn policy_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PolicyRow> {
    Ok(PolicyRow {
        module_id: r.get(0)?,
        module: r.get(1)?,
        version: r.get(2)?,
        state: r.get(3)?,
        in_tree: r.get(4)?,
        denied: r.get(5)?,
        first_seen: r.get(6)?,
    })
}

impl State {
    /// The policy fingerprint the database was last brought in line with.
    pub fn policy_fingerprint(&self) -> Result<Option<String>> {
        self.meta("policy")
    }

    /// Brings what the database holds in line with a changed policy, in one
    /// transaction, once per change (`fingerprint`): versions in the tree
    /// that `denies` covers are marked for prune, and the mark is lifted
    /// from those it no longer covers; versions waiting to be fetched that
    /// it covers become `Denied`, denied ones it no longer covers are wanted
    /// again; held ones are due now, to be decided anew. `None` when the
    /// policy did not change.
    pub fn apply_policy(
        &mut self,
        fingerprint: &str,
        denies: &dyn Fn(&str, &str) -> bool,
        has_deny: bool,
        now: i64,
    ) -> Result<Option<PolicyChange>> {
        let stored = self.meta("policy")?;
        if stored.as_deref() == Some(fingerprint) {
            return Ok(None);
        }
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot apply the policy", x);
        let tx = self.conn.transaction().map_err(e)?;
        let rescreened = tx
            .execute(
                concat!(
                    "UPDATE versions SET next_attempt = ?1 WHERE state IN (",
                    state_codes!(Held, Denied),
                    ") AND state = ",
                    state_code!(Held)
                ),
                [now],
            )
            .map_err(e)? as u64;
        let mut change = PolicyChange {
            rescreened,
            ..PolicyChange::default()
        };
        if has_deny {
            // Keyset pages, each read before it is changed.
            let mut after: (i64, String) = (-1, String::new());
            loop {
                let page: Vec<PolicyRow> = {
                    let mut q = tx.prepare_cached(POLICY_ROWS).map_err(e)?;
                    q.query_map(params![after.0, after.1, 1000i64], policy_row)
                        .map_err(e)?
                        .collect::<rusqlite::Result<_>>()
                        .map_err(e)?
                };
                let Some(last) = page.last() else { break };
                after = (last.module_id, last.version.clone());
                for row in &page {
                    let d = denies(&row.module, &row.version);
                    apply_one(&tx, row, d, &mut change).map_err(e)?;
                }
            }
        } else {
            // Nothing is denied: lift every mark (through the partial indexes).
            let lifted: Vec<PolicyRow> = {
                let mut q = tx
                    .prepare(concat!(
                        "SELECT v.module_id, m.path, v.version, v.state, v.in_tree, v.denied, v.first_seen
                         FROM versions v JOIN modules m ON m.id = v.module_id
                         WHERE v.denied = 1
                         UNION
                         SELECT v.module_id, m.path, v.version, v.state, v.in_tree, v.denied, v.first_seen
                         FROM versions v JOIN modules m ON m.id = v.module_id
                         WHERE v.state IN (",
                        state_codes!(Held, Denied),
                        ") AND v.state = ",
                        state_code!(Denied)
                    ))
                    .map_err(e)?;
                q.query_map([], policy_row)
                    .map_err(e)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(e)?
            };
            for row in &lifted {
                apply_one(&tx, row, false, &mut change).map_err(e)?;
            }
        }
        // No policy, none before and nothing held or denied: nothing to
        // record (the checks above are a few indexed lookups), so a mirror
        // without a policy writes nothing here.
        if stored.is_none() && !has_deny && change == PolicyChange::default() {
            tx.rollback().map_err(e)?;
            return Ok(Some(change));
        }
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('policy', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [fingerprint],
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(Some(change))
    }

    /// For each version about to be fetched: when it was first seen, and
    /// whether its files are in the tree (a repair is never held).
    pub fn version_facts(&self, versions: &[(i64, String)]) -> Result<Vec<VersionFacts>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT first_seen, in_tree FROM versions WHERE module_id = ?1 AND version = ?2",
            )
            .map_err(|e| self.err("cannot read versions", e))?;
        versions
            .iter()
            .map(|(id, v)| {
                stmt.query_row(params![id, v], |r| {
                    Ok(VersionFacts {
                        first_seen: r.get(0)?,
                        in_tree: r.get(1)?,
                    })
                })
                .optional()
                .map(Option::unwrap_or_default)
                .map_err(|e| self.err("cannot read versions", e))
            })
            .collect()
    }

    /// A version by path, for a dry run: its state, whether it is in the
    /// tree, when it was first seen.
    pub fn version_by_path(
        &self,
        path: &str,
        version: &str,
    ) -> Result<Option<(VersionState, bool, Option<i64>)>> {
        self.conn
            .query_row(
                "SELECT v.state, v.in_tree, v.first_seen FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE m.path = ?1 AND v.version = ?2",
                params![path, version],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err("cannot look up versions", e))
    }

    /// Records what the policy decided for versions due to be fetched, in
    /// one transaction: `held` (module id, version, ready at) wait for their
    /// cooldown, their first sight recorded as `now` when none was;
    /// `denied` are never fetched (one in the tree is marked for prune).
    pub fn record_screened(
        &mut self,
        held: &[(i64, String, i64)],
        denied: &[(i64, String)],
        now: i64,
    ) -> Result<()> {
        if held.is_empty() && denied.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record what the policy decided", x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut hold = tx
                .prepare_cached(
                    "UPDATE versions SET state = ?3, next_attempt = ?4, first_seen = coalesce(first_seen, ?5),
                        attempts = 0, last_error = NULL
                     WHERE module_id = ?1 AND version = ?2 AND in_tree = 0",
                )
                .map_err(e)?;
            for (id, v, ready) in held {
                hold.execute(params![id, v, VersionState::Held, ready, now])
                    .map_err(e)?;
            }
            let mut deny = tx
                .prepare_cached(
                    "UPDATE versions SET state = ?3, next_attempt = NULL, denied = in_tree,
                        first_seen = coalesce(first_seen, ?4)
                     WHERE module_id = ?1 AND version = ?2",
                )
                .map_err(e)?;
            for (id, v) in denied {
                deny.execute(params![id, v, VersionState::Denied, now])
                    .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// What the policy holds back now; `keep_cutoff` is `prune.keep`'s
    /// ([`crate::settings::PruneSettings::keep_cutoff`]).
    pub fn policy_counts(&self, keep_cutoff: i64) -> Result<PolicyCounts> {
        let what = "cannot count what the policy holds back";
        let (held, next_ready): (i64, Option<i64>) = self
            .conn
            .query_row(
                concat!(
                    "SELECT count(*), min(next_attempt) FROM versions WHERE state IN (",
                    state_codes!(Held, Denied),
                    ") AND state = ",
                    state_code!(Held)
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(what, e))?;
        let denied: i64 = self
            .conn
            .query_row(
                concat!(
                    "SELECT count(*) FROM versions WHERE state IN (",
                    state_codes!(Held, Denied),
                    ") AND state = ",
                    state_code!(Denied),
                    " AND in_tree = 0"
                ),
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(what, e))?;
        let denied_in_tree: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM versions WHERE denied = 1 AND in_tree = 1",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(what, e))?;
        let (retained, retained_since): (i64, Option<i64>) = if keep_cutoff == i64::MAX {
            (0, None)
        } else {
            self.conn
                .query_row(
                    concat!(
                        "SELECT count(*), min(v.unwanted_since) FROM versions v JOIN modules m ON m.id = v.module_id
                         WHERE v.in_tree = 1 AND m.wanted = 0 AND v.denied = 0 AND v.state != ",
                        state_code!(Gone),
                        " AND (v.named = 0 OR (v.named = 1 AND v.state = ",
                        state_code!(Published),
                        ")) AND v.unwanted_since > ?1"
                    ),
                    [keep_cutoff],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(|e| self.err(what, e))?
        };
        Ok(PolicyCounts {
            held: held as u64,
            next_ready,
            denied: denied as u64,
            denied_in_tree: denied_in_tree as u64,
            retained: retained as u64,
            retained_since,
        })
    }

    /// Up to `limit` held versions, the soonest ready first.
    pub fn held_versions(&self, limit: usize) -> Result<Vec<HeldVersion>> {
        self.query_vec(
            "cannot list held versions",
            concat!(
                "SELECT m.path, v.version, v.first_seen, v.next_attempt
                 FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE v.state IN (",
                state_codes!(Held, Denied),
                ") AND v.state = ",
                state_code!(Held),
                " ORDER BY v.next_attempt, m.path, v.version LIMIT ?1"
            ),
            [limit as i64],
            |r| {
                Ok(HeldVersion {
                    module: r.get(0)?,
                    version: r.get(1)?,
                    first_seen: r.get(2)?,
                    ready_at: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                })
            },
        )
    }

    /// Up to `limit` denied versions: those still in the tree first.
    pub fn denied_versions(&self, limit: usize) -> Result<Vec<DeniedVersion>> {
        self.query_vec(
            "cannot list denied versions",
            concat!(
                "SELECT m.path, v.version, v.in_tree FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE v.denied = 1 AND v.in_tree = 1
                 UNION ALL
                 SELECT * FROM (SELECT m.path, v.version, v.in_tree FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE v.state IN (",
                state_codes!(Held, Denied),
                ") AND v.state = ",
                state_code!(Denied),
                " AND v.in_tree = 0 ORDER BY m.path, v.version)
                 LIMIT ?1"
            ),
            [limit as i64],
            |r| {
                Ok(DeniedVersion {
                    module: r.get(0)?,
                    version: r.get(1)?,
                    in_tree: r.get(2)?,
                })
            },
        )
    }

    /// The `from_files` pins of held or denied versions, by file and line.
    pub fn policy_pins(&self) -> Result<Vec<PolicyPin>> {
        self.query_vec(
            "cannot read what from_files names",
            concat!(
                "SELECT n.file, n.line, m.path, n.version, v.state, v.denied, v.next_attempt
                 FROM named n
                 JOIN modules m ON m.id = n.module_id
                 JOIN versions v ON v.module_id = n.module_id AND v.version = n.version
                 WHERE v.state IN (",
                state_codes!(Held, Denied),
                ") OR v.denied = 1
                 ORDER BY n.file, n.line, m.path, n.version"
            ),
            [],
            |r| {
                let state: VersionState = r.get(4)?;
                let denied: bool = r.get(5)?;
                let held = state == VersionState::Held && !denied;
                Ok(PolicyPin {
                    file: r.get(0)?,
                    line: r.get(1)?,
                    module: r.get(2)?,
                    version: r.get(3)?,
                    state: if held { "held" } else { "denied" },
                    ready_at: if held { r.get(6)? } else { None },
                })
            },
        )
    }

    /// A page of the versions a changed policy is weighed against (in the
    /// tree, waiting, held, denied), for a dry run, after `after`.
    pub fn policy_rows(&self, after: Option<(i64, &str)>, limit: usize) -> Result<Vec<PolicyRow>> {
        let (aid, aver) = after.unwrap_or((-1, ""));
        self.query_vec(
            "cannot read versions",
            POLICY_ROWS,
            params![aid, aver, limit as i64],
            policy_row,
        )
    }
}

/// Brings one version in line with whether `policy.deny` covers it (`d`).
fn apply_one(
    tx: &rusqlite::Transaction<'_>,
    row: &PolicyRow,
    d: bool,
    change: &mut PolicyChange,
) -> rusqlite::Result<()> {
    if row.in_tree {
        if d != row.denied {
            tx.prepare_cached(
                "UPDATE versions SET denied = ?3 WHERE module_id = ?1 AND version = ?2",
            )?
            .execute(params![row.module_id, row.version, d])?;
            if d {
                change.denied_in_tree += 1;
            } else {
                change.undenied += 1;
            }
        }
        // Unlisted by a prune that was then stopped, and no longer denied:
        // fetched again (identical bytes are kept) and listed again.
        if !d && row.state == VersionState::Denied {
            tx.prepare_cached(
                "UPDATE versions SET state = ?3, attempts = 0, next_attempt = NULL
                 WHERE module_id = ?1 AND version = ?2",
            )?
            .execute(params![row.module_id, row.version, VersionState::Pending])?;
        }
        return Ok(());
    }
    match (row.state, d) {
        (
            VersionState::Pending
            | VersionState::Failed
            | VersionState::Missing
            | VersionState::Held,
            true,
        ) => {
            tx.prepare_cached(
                "UPDATE versions SET state = ?3, next_attempt = NULL WHERE module_id = ?1 AND version = ?2",
            )?
            .execute(params![row.module_id, row.version, VersionState::Denied])?;
            change.denied += 1;
        }
        (VersionState::Denied, false) => {
            tx.prepare_cached(
                "UPDATE versions SET state = ?3, denied = 0, attempts = 0, next_attempt = NULL
                 WHERE module_id = ?1 AND version = ?2",
            )?
            .execute(params![row.module_id, row.version, VersionState::Pending])?;
            change.undenied += 1;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, open_temp, published};
    use super::*;

    fn dated(p: &str, v: &str, at: i64) -> super::super::IndexEntry {
        super::super::IndexEntry {
            listed_at: Some(at),
            ..entry(p, v)
        }
    }

    #[test]
    fn first_sight_is_the_index_timestamp_or_the_recording_time_and_the_earliest_wins() {
        let (_d, mut st) = open_temp();
        let before = crate::clock::now();
        st.record_entries(
            &[
                dated("a.example/m", "v1.0.0", 1000),
                entry("a.example/m", "v1.1.0"),
            ],
            &|_| true,
            None,
        )
        .unwrap();
        let (id, _) = st.module("a.example/m").unwrap().unwrap();
        let facts = st
            .version_facts(&[
                (id, "v1.0.0".into()),
                (id, "v1.1.0".into()),
                (id, "v9.0.0".into()),
            ])
            .unwrap();
        assert_eq!(facts[0].first_seen, Some(1000));
        assert!(facts[1].first_seen.unwrap() >= before);
        assert_eq!(facts[2], VersionFacts::default(), "unknown");
        // The index lists the second one later, stamped earlier: that counts.
        st.record_entries(&[dated("a.example/m", "v1.1.0", 2000)], &|_| true, None)
            .unwrap();
        // A later stamp does not move an earlier sight.
        st.record_entries(&[dated("a.example/m", "v1.0.0", 5000)], &|_| true, None)
            .unwrap();
        let facts = st
            .version_facts(&[(id, "v1.0.0".into()), (id, "v1.1.0".into())])
            .unwrap();
        assert_eq!(
            (facts[0].first_seen, facts[1].first_seen),
            (Some(1000), Some(2000))
        );
    }

    #[test]
    fn held_versions_wait_in_the_database_and_are_due_when_ready() {
        let (_d, mut st) = open_temp();
        st.record_entries(&[dated("a.example/m", "v1.0.0", 100)], &|_| true, None)
            .unwrap();
        let (id, _) = st.module("a.example/m").unwrap().unwrap();
        assert_eq!(st.count_todo(200, false).unwrap().due, 1);
        st.record_screened(&[(id, "v1.0.0".into(), 500)], &[], 200)
            .unwrap();
        assert_eq!(
            st.version_state(id, "v1.0.0").unwrap(),
            Some(VersionState::Held)
        );
        assert_eq!(st.count_todo(499, false).unwrap().due, 0, "not ready yet");
        assert!(st.todo_page(None, 10, 499, false).unwrap().is_empty());
        assert_eq!(st.count_todo(500, false).unwrap().due, 1);
        assert_eq!(st.todo_page(None, 10, 500, false).unwrap().len(), 1);
        let c = st.policy_counts(i64::MAX).unwrap();
        assert_eq!((c.held, c.next_ready), (1, Some(500)));
        let h = st.held_versions(10).unwrap();
        assert_eq!((h[0].first_seen, h[0].ready_at), (Some(100), 500));
        // Published once ready: no longer held.
        st.mark_published(&[published(id, "v1.0.0", None)], &[], 600)
            .unwrap();
        assert_eq!(st.policy_counts(i64::MAX).unwrap().held, 0);
    }

    #[test]
    fn a_changed_deny_marks_the_tree_and_the_queue_once_and_lifts_both() {
        let (_d, mut st) = open_temp();
        st.record_entries(
            &[
                entry("a.example/m", "v1.0.0"),
                entry("a.example/m", "v1.1.0"),
                entry("b.example/m", "v1.0.0"),
            ],
            &|_| true,
            None,
        )
        .unwrap();
        let (a, _) = st.module("a.example/m").unwrap().unwrap();
        st.mark_published(&[published(a, "v1.0.0", None)], &[], 1)
            .unwrap();
        let deny_a = |m: &str, _: &str| m == "a.example/m";
        let c = st
            .apply_policy("deny a", &deny_a, true, 10)
            .unwrap()
            .unwrap();
        assert_eq!((c.denied_in_tree, c.denied), (1, 1));
        assert_eq!(st.apply_policy("deny a", &deny_a, true, 10).unwrap(), None);
        assert_eq!(
            st.version_state(a, "v1.1.0").unwrap(),
            Some(VersionState::Denied)
        );
        // Prune's deletion set holds the one in the tree, whole.
        let doomed = st.deletion_page(None, 10).unwrap();
        assert_eq!(doomed.len(), 1);
        assert_eq!(doomed[0].reason, super::super::DeletionReason::Denied);
        assert!(!doomed[0].aged);
        let counts = st.policy_counts(i64::MAX).unwrap();
        assert_eq!((counts.denied, counts.denied_in_tree), (1, 1));
        // Unlisted by prune: denied, not merely seen.
        st.unlist(&[(a, "v1.0.0".into())]).unwrap();
        assert_eq!(
            st.version_state(a, "v1.0.0").unwrap(),
            Some(VersionState::Denied)
        );
        assert!(st.listed_versions(a).unwrap().is_empty());
        // The deny lifted (no rule left): both wanted again.
        let c = st
            .apply_policy("", &|_, _| false, false, 20)
            .unwrap()
            .unwrap();
        assert_eq!(c.undenied, 2);
        assert_eq!(
            st.version_state(a, "v1.1.0").unwrap(),
            Some(VersionState::Pending)
        );
        assert_eq!(
            st.version_state(a, "v1.0.0").unwrap(),
            Some(VersionState::Pending)
        );
        assert!(st.deletion_page(None, 10).unwrap().is_empty());
    }

    #[test]
    fn what_stops_being_named_ages_out_of_keep() {
        use super::super::{NamedFile, NamedVersion};
        let (_d, mut st) = open_temp();
        let none = |_: &str| false;
        let named = |v: &str| NamedVersion {
            path: "a.example/m".into(),
            version: v.into(),
            zip: true,
            line: 3,
            zip_h1: None,
            mod_h1: None,
        };
        let file = |vs: Vec<NamedVersion>| NamedFile {
            file: "go.sum".into(),
            kind: "go.sum",
            versions: vs,
        };
        st.name_versions(&[file(vec![named("v1.0.0")])], &none)
            .unwrap();
        let (id, _) = st.module("a.example/m").unwrap().unwrap();
        st.mark_published(&[published(id, "v1.0.0", None)], &[], 1)
            .unwrap();
        // An upgrade: v1.0.0 no longer named.
        let t = crate::clock::now();
        st.name_versions(&[file(vec![named("v1.1.0")])], &none)
            .unwrap();
        assert_eq!(st.deletion_count_at(t - 10).unwrap(), 0, "kept");
        let kept = st.policy_counts(t - 10).unwrap();
        assert_eq!(kept.retained, 1);
        assert!(kept.retained_since.unwrap() >= t);
        assert_eq!(st.deletion_count_at(t + 10).unwrap(), 1, "aged out");
        assert_eq!(st.aged_deletion_count(t + 10).unwrap(), 1);
        assert!(st.deletion_page_at(None, 10, t + 10).unwrap()[0].aged);
        // Named again: kept for good.
        st.name_versions(&[file(vec![named("v1.0.0"), named("v1.1.0")])], &none)
            .unwrap();
        assert_eq!(st.deletion_count_at(i64::MAX).unwrap(), 0);
        // Held versions no file names any more stop waiting.
        st.record_screened(&[(id, "v1.1.0".into(), t + 99)], &[], t)
            .unwrap();
        let s = st
            .name_versions(&[file(vec![named("v1.0.0")])], &none)
            .unwrap();
        assert_eq!(s.dropped, 1);
        assert_eq!(
            st.version_state(id, "v1.1.0").unwrap(),
            Some(VersionState::Seen)
        );
    }

    #[test]
    fn pins_of_held_and_denied_versions_are_named_by_file_and_line() {
        use super::super::{NamedFile, NamedVersion};
        let (_d, mut st) = open_temp();
        let v = |m: &str, line| NamedVersion {
            path: m.into(),
            version: "v1.0.0".into(),
            zip: true,
            line,
            zip_h1: None,
            mod_h1: None,
        };
        st.name_versions(
            &[NamedFile {
                file: "app/go.sum".into(),
                kind: "go.sum",
                versions: vec![
                    v("a.example/new", 4),
                    v("b.example/evil", 9),
                    v("c.example/ok", 12),
                ],
            }],
            &|_| false,
        )
        .unwrap();
        let (a, _) = st.module("a.example/new").unwrap().unwrap();
        let (b, _) = st.module("b.example/evil").unwrap().unwrap();
        st.record_screened(&[(a, "v1.0.0".into(), 777)], &[(b, "v1.0.0".into())], 5)
            .unwrap();
        let pins = st.policy_pins().unwrap();
        let got: Vec<_> = pins
            .iter()
            .map(|p| (p.line, p.module.as_str(), p.state, p.ready_at))
            .collect();
        assert_eq!(
            got,
            [
                (4, "a.example/new", "held", Some(777)),
                (9, "b.example/evil", "denied", None)
            ]
        );
        assert_eq!(st.denied_versions(10).unwrap().len(), 1);
    }
}
