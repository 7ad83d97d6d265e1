//! Demand's part of the state database (`[demand] access_logs`, see
//! [`crate::source::demand`]): where each access log was read to, what
//! clients asked for and did not get, and which of those requests the mirror
//! took on.
//!
//! * `demand_logs`: per configured log, the file it was read from (device,
//!   inode and its first bytes, so a rotated or truncated log is told apart
//!   from the same file grown) and the offset after the last line read. It
//!   moves in the transaction that records the lines before it.
//! * `demand`: one row per request — a version (`module@version`: its
//!   `.info`, `.mod` or `.zip` was a 404) or a module (`version = ''`: its
//!   `@v/list` or `@latest` was) — with how often it was missed and asked
//!   for, and where it stands: `waiting` (not taken yet: `max_new_modules`
//!   and `max_new_versions` bound a run), `wanted`, or `unavailable` (the
//!   upstream does not have it: asked again after `retry_at`, the delay
//!   doubling each time).
//! * `demand_listed`: for a module asked for as a whole, the tagged versions
//!   its upstream `@v/list` named (re-read once a day, as a seed would be).
//!
//! What demand wants reaches the pipeline as one more named "file" (kind
//! `demand`) in `named`, replaced on every sync by [`State::name_demanded`]:
//! so a demanded version is wanted, fetched, verified, listed and — once no
//! client has asked for it within `demand.keep` — unnamed and pruned exactly
//! like a version a `from_files` file stops naming.

use rusqlite::{OptionalExtension, params};

use super::version::{state_code, state_codes};
use super::{NameStats, NamedFile, NamedVersion, Result, State, err};

/// The kind (and file name) under which demand's wants are named.
pub const DEMAND_KIND: &str = "demand";
/// How demand's named set is shown where files are listed.
pub const DEMAND_FILE: &str = "(access logs)";

/// At most this many requests wait to be taken; past it, requests for new
/// names are counted and dropped (a flood of made-up paths must not grow
/// the database without bound). Requests already recorded are still counted.
pub const MAX_WAITING: u64 = 10_000;
/// A module asked for as a whole has its upstream `@v/list` read again
/// after this long (a seed's is read on every run; demand may name
/// thousands of modules).
pub const RELIST_SECS: i64 = 24 * 3600;
/// At most this many module lists are read in one run (the oldest first).
pub const MAX_LISTS_PER_RUN: usize = 200;
/// The first delay before a request the upstream could not serve is asked
/// again; it doubles with every failure, up to [`MAX_BACKOFF_SECS`].
pub const FIRST_BACKOFF_SECS: i64 = 3600;
pub const MAX_BACKOFF_SECS: i64 = 7 * 24 * 3600;

/// The delay before a request that failed `failures` times is asked again.
pub fn backoff_secs(failures: i64) -> i64 {
    let shift = failures.saturating_sub(1).clamp(0, 20) as u32;
    FIRST_BACKOFF_SECS
        .saturating_mul(1i64 << shift)
        .min(MAX_BACKOFF_SECS)
}

/// Where a log was read to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogPosition {
    /// The configured path (the key).
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    /// Bytes consumed: the next read starts here.
    pub offset: u64,
    /// The file's first bytes (up to 64) when it was read: a file truncated
    /// and written again under the same inode starts differently.
    pub head: Vec<u8>,
}

/// What this run's lines said about one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DemandTally {
    pub module: String,
    /// `None`: the module as a whole (`@v/list`, `@latest`).
    pub version: Option<String>,
    /// Lines answered 404 or 410.
    pub misses: u64,
    /// Lines answered 200, 206 or 304.
    pub hits: u64,
    /// When the first and last miss were logged (Unix seconds).
    pub first_missed: Option<i64>,
    pub last_missed: Option<i64>,
}

/// What one read of the logs hands the state database.
#[derive(Clone, Debug, Default)]
pub struct DemandBatch {
    pub tallies: Vec<DemandTally>,
    pub positions: Vec<LogPosition>,
    /// Misses read, whether recorded or not (for `status`).
    pub misses: u64,
    pub lines: u64,
}

/// What recording a batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DemandRecorded {
    /// Requests seen for the first time.
    pub new: u64,
    /// Requests dropped: more than [`MAX_WAITING`] were waiting.
    pub dropped: u64,
}

/// What [`State::take_demand`] decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DemandTake {
    /// Requests taken on this run (now wanted).
    pub taken: u64,
    /// Of those, modules the mirror did not hold or want before.
    pub new_modules: u64,
    /// Unavailable requests whose delay ran out: asked again.
    pub retried: u64,
    /// Requests left waiting for a later run (the limits).
    pub waiting: u64,
    /// Modules wanted as a whole whose upstream `@v/list` is to be read.
    pub to_list: Vec<String>,
}

/// What naming demand's wants did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DemandNamed {
    /// Wanted requests the upstream turned out not to have (now unavailable).
    pub unavailable: u64,
    pub stats: NameStats,
}

/// Demand, for `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DemandCounts {
    /// Misses read from the logs, in all.
    pub misses_seen: u64,
    /// Lines read from the logs, in all.
    pub lines_read: u64,
    /// Requests recorded (distinct module@version or module).
    pub requests: u64,
    pub waiting: u64,
    pub wanted: u64,
    /// Of the wanted, those the tree now serves.
    pub served: u64,
    pub unavailable: u64,
    /// Requests answered since they were taken.
    pub hits: u64,
    /// The earliest time an unavailable request is asked again.
    #[serde(serialize_with = "crate::clock::serialize_rfc3339_opt")]
    pub next_retry: Option<i64>,
    pub logs: Vec<LogRead>,
}

/// Where a log stands, for `status`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LogRead {
    pub path: String,
    pub offset: u64,
    #[serde(serialize_with = "crate::clock::serialize_rfc3339")]
    pub read_at: i64,
}

/// A request clients made and the mirror does not serve (`gomirror requests`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Request {
    pub module: String,
    /// `None`: the module as a whole.
    pub version: Option<String>,
    pub misses: u64,
    #[serde(serialize_with = "crate::clock::serialize_rfc3339")]
    pub first_missed: i64,
    #[serde(serialize_with = "crate::clock::serialize_rfc3339")]
    pub last_missed: i64,
    /// `waiting`, `wanted` or `unavailable`.
    pub status: String,
}

/// Versions whose files are in the tree with their zip.
const SERVED_VERSION: &str = concat!(
    "EXISTS (SELECT 1 FROM versions v JOIN modules m ON m.id = v.module_id
        WHERE m.path = d.module AND v.version = d.version AND v.in_tree = 1 AND v.state = ",
    state_code!(Published),
    ")"
);
/// A module with at least one version in the tree, listed.
const SERVED_MODULE: &str = concat!(
    "EXISTS (SELECT 1 FROM versions v JOIN modules m ON m.id = v.module_id
        WHERE m.path = d.module AND v.in_tree = 1 AND v.state = ",
    state_code!(Published),
    ")"
);

impl State {
    /// Where each of `paths` was read to.
    pub fn demand_positions(&self, paths: &[String]) -> Result<Vec<Option<LogPosition>>> {
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            let row = self
                .conn
                .query_row(
                    "SELECT dev, ino, offset, head FROM demand_logs WHERE path = ?1",
                    [p],
                    |r| {
                        Ok(LogPosition {
                            path: p.clone(),
                            dev: r.get::<_, i64>(0)? as u64,
                            ino: r.get::<_, i64>(1)? as u64,
                            offset: r.get::<_, i64>(2)? as u64,
                            head: r.get(3)?,
                        })
                    },
                )
                .optional()
                .map_err(|e| self.err("cannot read the access logs' positions", e))?;
            out.push(row);
        }
        Ok(out)
    }

    /// Records what the logs asked for and where they were read to, in one
    /// transaction: a killed run reads the same lines again, never skips
    /// any. Hits count only for requests already recorded.
    pub fn record_demand(&mut self, batch: &DemandBatch, now: i64) -> Result<DemandRecorded> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record what the access logs asked for", x);
        let tx = self.conn.transaction().map_err(e)?;
        let mut out = DemandRecorded::default();
        {
            let mut waiting: u64 = tx
                .query_row(
                    "SELECT count(*) FROM demand WHERE status = 'waiting'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(e)? as u64;
            let mut exists = tx
                .prepare_cached("SELECT 1 FROM demand WHERE module = ?1 AND version = ?2")
                .map_err(e)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO demand(module, version, status, misses, hits, first_missed,
                                        last_missed, last_asked)
                     VALUES (?1, ?2, 'waiting', ?3, 0, ?4, ?5, ?6)",
                )
                .map_err(e)?;
            let mut update = tx
                .prepare_cached(
                    "UPDATE demand SET
                        misses = misses + ?3,
                        hits = hits + ?4,
                        last_missed = CASE WHEN ?5 IS NULL THEN last_missed
                                           ELSE max(last_missed, ?5) END,
                        last_asked = max(last_asked, ?6)
                     WHERE module = ?1 AND version = ?2",
                )
                .map_err(e)?;
            for t in &batch.tallies {
                let version = t.version.as_deref().unwrap_or("");
                let known = exists
                    .query_row(params![t.module, version], |_| Ok(()))
                    .optional()
                    .map_err(e)?
                    .is_some();
                if known {
                    update
                        .execute(params![
                            t.module,
                            version,
                            t.misses as i64,
                            t.hits as i64,
                            t.last_missed,
                            now
                        ])
                        .map_err(e)?;
                    continue;
                }
                if t.misses == 0 {
                    continue;
                }
                if waiting >= MAX_WAITING {
                    out.dropped += 1;
                    continue;
                }
                let first = t.first_missed.unwrap_or(now);
                insert
                    .execute(params![
                        t.module,
                        version,
                        t.misses as i64,
                        first,
                        t.last_missed.unwrap_or(first),
                        now
                    ])
                    .map_err(e)?;
                waiting += 1;
                out.new += 1;
            }
            let mut position = tx
                .prepare_cached(
                    "INSERT INTO demand_logs(path, dev, ino, offset, head, read_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(path) DO UPDATE SET dev = excluded.dev, ino = excluded.ino,
                        offset = excluded.offset, head = excluded.head, read_at = excluded.read_at",
                )
                .map_err(e)?;
            for p in &batch.positions {
                position
                    .execute(params![
                        p.path,
                        p.dev as i64,
                        p.ino as i64,
                        p.offset as i64,
                        p.head,
                        now
                    ])
                    .map_err(e)?;
            }
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET
                        value = CAST(CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER) AS TEXT)",
                )
                .map_err(e)?;
            add.execute(params!["demand.misses_seen", batch.misses.to_string()])
                .map_err(e)?;
            add.execute(params!["demand.lines_read", batch.lines.to_string()])
                .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(out)
    }

    /// Decides which requests this run acts on: unavailable ones whose delay
    /// ran out are wanted again; waiting ones are taken, the most asked
    /// for first, while at most `max_new_modules` modules the mirror neither
    /// holds nor wants join and at most `max_new_versions` requests are taken
    /// in all; modules wanted as a whole whose list is due are returned to
    /// be listed.
    pub fn take_demand(
        &mut self,
        now: i64,
        max_new_modules: u64,
        max_new_versions: u64,
    ) -> Result<DemandTake> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot take what the access logs asked for", x);
        let tx = self.conn.transaction().map_err(e)?;
        let mut take = DemandTake {
            retried: tx
                .execute(
                    "UPDATE demand SET status = 'wanted', listed_at = NULL
                     WHERE status = 'unavailable' AND retry_at <= ?1",
                    [now],
                )
                .map_err(e)? as u64,
            ..DemandTake::default()
        };
        {
            let waiting: Vec<(String, String)> = {
                let mut q = tx
                    .prepare_cached(
                        "SELECT module, version FROM demand WHERE status = 'waiting'
                         ORDER BY misses DESC, first_missed, module, version",
                    )
                    .map_err(e)?;
                q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(e)?
                    .collect::<std::result::Result<_, _>>()
                    .map_err(e)?
            };
            // Whether the mirror holds or wants the module already (then it
            // is not new), or demand took it already.
            let mut known = tx
                .prepare_cached(concat!(
                    "SELECT EXISTS (SELECT 1 FROM modules m WHERE m.path = ?1 AND (m.wanted = 1
                        OR EXISTS (SELECT 1 FROM versions v WHERE v.module_id = m.id AND v.in_tree = 1)
                        OR EXISTS (SELECT 1 FROM versions v WHERE v.module_id = m.id AND v.named > 0
                                   AND v.state IN (",
                    state_codes!(Pending, Failed, Published, GraphOnly),
                    "))))
                     OR EXISTS (SELECT 1 FROM demand WHERE module = ?1 AND status = 'wanted')"
                ))
                .map_err(e)?;
            let mut want = tx
                .prepare_cached(
                    "UPDATE demand SET status = 'wanted', wanted_at = ?3
                     WHERE module = ?1 AND version = ?2",
                )
                .map_err(e)?;
            let mut joined: std::collections::HashSet<String> = std::collections::HashSet::new();
            for (module, version) in waiting {
                if take.taken >= max_new_versions {
                    take.waiting += 1;
                    continue;
                }
                let is_known: bool = joined.contains(&module)
                    || known
                        .query_row([&module], |r| r.get::<_, bool>(0))
                        .map_err(e)?;
                if !is_known {
                    if take.new_modules >= max_new_modules {
                        take.waiting += 1;
                        continue;
                    }
                    take.new_modules += 1;
                    joined.insert(module.clone());
                }
                want.execute(params![module, version, now]).map_err(e)?;
                take.taken += 1;
            }
            let mut q = tx
                .prepare_cached(
                    "SELECT module FROM demand
                     WHERE status = 'wanted' AND version = ''
                       AND (listed_at IS NULL OR listed_at <= ?1)
                     ORDER BY coalesce(listed_at, 0), module LIMIT ?2",
                )
                .map_err(e)?;
            take.to_list = q
                .query_map(params![now - RELIST_SECS, MAX_LISTS_PER_RUN as i64], |r| {
                    r.get(0)
                })
                .map_err(e)?
                .collect::<std::result::Result<_, _>>()
                .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(take)
    }

    /// Records what `module`'s upstream `@v/list` named (`Some`), or that
    /// the upstream does not have the module (`None`: unavailable, asked
    /// again after a growing delay).
    pub fn demand_listed(
        &mut self,
        module: &str,
        versions: Option<&[String]>,
        now: i64,
    ) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot record a demanded module's list", x);
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute("DELETE FROM demand_listed WHERE module = ?1", [module])
            .map_err(e)?;
        match versions {
            Some(versions) => {
                let mut add = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO demand_listed(module, version) VALUES (?1, ?2)",
                    )
                    .map_err(e)?;
                for v in versions {
                    add.execute(params![module, v]).map_err(e)?;
                }
                drop(add);
                tx.execute(
                    "UPDATE demand SET listed_at = ?2, failures = 0, retry_at = NULL
                     WHERE module = ?1 AND version = ''",
                    params![module, now],
                )
                .map_err(e)?;
            }
            None => {
                let failures: i64 = tx
                    .query_row(
                        "SELECT failures + 1 FROM demand WHERE module = ?1 AND version = ''",
                        [module],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(e)?
                    .unwrap_or(1);
                tx.execute(
                    "UPDATE demand SET status = 'unavailable', failures = ?2, retry_at = ?3,
                        listed_at = ?4
                     WHERE module = ?1 AND version = ''",
                    params![module, failures, now + backoff_secs(failures), now],
                )
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)?;
        Ok(())
    }

    /// Names what demand wants (replacing what it named before) and brings
    /// the queue in line: wanted versions the upstream answered 404/410 for
    /// become unavailable first (not named: not fetched again until their
    /// delay runs out). With `keep_since`, a request no client asked for
    /// since then is no longer named (prune then treats its versions as a
    /// `from_files` line removed).
    pub fn name_demanded(
        &mut self,
        now: i64,
        keep_since: Option<i64>,
        wants: &dyn Fn(&str) -> bool,
    ) -> Result<DemandNamed> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, "cannot name what demand wants", x);
        let mut out = DemandNamed::default();
        {
            let tx = self.conn.transaction().map_err(e)?;
            let missing: Vec<(String, String, i64)> = {
                let mut q = tx
                    .prepare_cached(concat!(
                        "SELECT d.module, d.version, d.failures + 1 FROM demand d
                         JOIN modules m ON m.path = d.module
                         JOIN versions v ON v.module_id = m.id AND v.version = d.version
                         WHERE d.status = 'wanted' AND d.version <> '' AND v.in_tree = 0
                           AND v.state IN (",
                        state_codes!(Missing, Gone),
                        ")"
                    ))
                    .map_err(e)?;
                q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(e)?
                    .collect::<std::result::Result<_, _>>()
                    .map_err(e)?
            };
            {
                let mut set = tx
                    .prepare_cached(
                        "UPDATE demand SET status = 'unavailable', failures = ?3, retry_at = ?4
                         WHERE module = ?1 AND version = ?2",
                    )
                    .map_err(e)?;
                for (module, version, failures) in &missing {
                    set.execute(params![
                        module,
                        version,
                        failures,
                        now + backoff_secs(*failures)
                    ])
                    .map_err(e)?;
                }
            }
            out.unavailable = missing.len() as u64;
            tx.commit().map_err(e)?;
        }
        let since = keep_since.unwrap_or(i64::MIN);
        let versions: Vec<NamedVersion> = self.query_vec(
            "cannot read what demand wants",
            "SELECT module, version FROM demand
                 WHERE status = 'wanted' AND version <> '' AND last_asked >= ?1
             UNION
             SELECT l.module, l.version FROM demand_listed l
                 JOIN demand d ON d.module = l.module AND d.version = ''
                 WHERE d.status = 'wanted' AND d.last_asked >= ?1
             ORDER BY 1, 2",
            [since],
            |r| {
                Ok(NamedVersion {
                    path: r.get(0)?,
                    version: r.get(1)?,
                    zip: true,
                    line: 0,
                    zip_h1: None,
                    mod_h1: None,
                })
            },
        )?;
        let file = NamedFile {
            file: DEMAND_FILE.to_string(),
            kind: DEMAND_KIND,
            versions,
        };
        out.stats = self.name_versions_of(std::slice::from_ref(&file), true, wants)?;
        Ok(out)
    }

    /// Demand at a glance, for `status` (which may read a database no sync
    /// has brought to this schema yet: nothing to count then).
    pub fn demand_counts(&self) -> Result<DemandCounts> {
        let present: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'demand')",
                [],
                |r| r.get(0),
            )
            .map_err(|x| self.err("cannot count demand", x))?;
        if !present {
            return Ok(DemandCounts::default());
        }
        let meta = |k: &str| -> Result<u64> {
            Ok(self
                .meta(k)?
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0))
        };
        let mut c = DemandCounts {
            misses_seen: meta("demand.misses_seen")?,
            lines_read: meta("demand.lines_read")?,
            ..DemandCounts::default()
        };
        let sql = format!(
            "SELECT count(*),
                coalesce(sum(status = 'waiting'), 0),
                coalesce(sum(status = 'wanted'), 0),
                coalesce(sum(status = 'wanted' AND CASE WHEN d.version = '' THEN {SERVED_MODULE}
                                                   ELSE {SERVED_VERSION} END), 0),
                coalesce(sum(status = 'unavailable'), 0),
                coalesce(sum(CASE WHEN status = 'wanted' THEN hits ELSE 0 END), 0),
                min(CASE WHEN status = 'unavailable' THEN retry_at END)
             FROM demand d"
        );
        let row = self
            .conn
            .query_row(&sql, [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                ))
            })
            .map_err(|x| self.err("cannot count demand", x))?;
        c.requests = row.0 as u64;
        c.waiting = row.1 as u64;
        c.wanted = row.2 as u64;
        c.served = row.3 as u64;
        c.unavailable = row.4 as u64;
        c.hits = row.5 as u64;
        c.next_retry = row.6;
        c.logs = self.query_vec(
            "cannot read the access logs' positions",
            "SELECT path, offset, read_at FROM demand_logs ORDER BY path",
            [],
            |r| {
                Ok(LogRead {
                    path: r.get(0)?,
                    offset: r.get::<_, i64>(1)? as u64,
                    read_at: r.get(2)?,
                })
            },
        )?;
        Ok(c)
    }

    /// What clients asked for and this mirror does not serve, missed at or
    /// after `since` (Unix seconds), the most asked for first.
    pub fn unserved_requests(&self, since: Option<i64>) -> Result<Vec<Request>> {
        let sql = format!(
            "SELECT module, version, misses, first_missed, last_missed, status FROM demand d
             WHERE last_missed >= ?1 AND misses > 0
               AND NOT (CASE WHEN d.version = '' THEN {SERVED_MODULE} ELSE {SERVED_VERSION} END)
             ORDER BY module, version"
        );
        self.query_vec(
            "cannot list the requests not served",
            &sql,
            [since.unwrap_or(i64::MIN)],
            |r| {
                let version: String = r.get(1)?;
                Ok(Request {
                    module: r.get(0)?,
                    version: (!version.is_empty()).then_some(version),
                    misses: r.get::<_, i64>(2)? as u64,
                    first_missed: r.get(3)?,
                    last_missed: r.get(4)?,
                    status: r.get(5)?,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{open_temp, published};
    use super::super::{DeletionReason, VersionState};
    use super::*;

    fn tally(module: &str, version: Option<&str>, misses: u64) -> DemandTally {
        DemandTally {
            module: module.into(),
            version: version.map(str::to_string),
            misses,
            hits: 0,
            first_missed: Some(100),
            last_missed: Some(200),
        }
    }

    fn batch(tallies: Vec<DemandTally>) -> DemandBatch {
        DemandBatch {
            misses: tallies.iter().map(|t| t.misses).sum(),
            lines: 10,
            tallies,
            positions: vec![LogPosition {
                path: "/var/log/a.log".into(),
                dev: 1,
                ino: 2,
                offset: 300,
                head: b"head".to_vec(),
            }],
        }
    }

    #[test]
    fn positions_and_requests_are_recorded_together() {
        let (_d, mut st) = open_temp();
        let none = |_: &str| false;
        assert_eq!(
            st.demand_positions(&["/var/log/a.log".into()]).unwrap(),
            [None]
        );
        let r = st
            .record_demand(
                &batch(vec![
                    tally("a.example/m", Some("v1.0.0"), 2),
                    tally("b.example/m", None, 1),
                    // A hit for something never missed is not recorded.
                    DemandTally {
                        hits: 5,
                        ..tally("c.example/m", Some("v1.0.0"), 0)
                    },
                ]),
                1000,
            )
            .unwrap();
        assert_eq!((r.new, r.dropped), (2, 0));
        let p = st.demand_positions(&["/var/log/a.log".into()]).unwrap();
        assert_eq!(p[0].as_ref().unwrap().offset, 300);
        // Again: counted, not new.
        let r = st
            .record_demand(&batch(vec![tally("a.example/m", Some("v1.0.0"), 3)]), 1001)
            .unwrap();
        assert_eq!(r.new, 0);
        let c = st.demand_counts().unwrap();
        assert_eq!((c.requests, c.waiting, c.misses_seen), (2, 2, 6));
        let req = st.unserved_requests(None).unwrap();
        assert_eq!(req.len(), 2);
        assert_eq!(req[0].misses, 5);
        assert_eq!(req[1].version, None);

        // Taken: one new module per run; the most asked for first.
        let t = st.take_demand(1002, 1, 100).unwrap();
        assert_eq!((t.taken, t.new_modules, t.waiting), (1, 1, 1));
        assert!(t.to_list.is_empty());
        let named = st.name_demanded(1002, None, &none).unwrap();
        assert_eq!((named.stats.named, named.stats.queued), (1, 1));
        let todo = st.todo_page(None, 10, 0, false).unwrap();
        assert_eq!(todo.len(), 1);
        assert_eq!(todo[0].version, "v1.0.0");
        assert!(todo[0].zip);

        // The next run takes the module asked for as a whole: it is listed.
        let t = st.take_demand(1003, 1, 100).unwrap();
        assert_eq!(t.to_list, ["b.example/m"]);
        st.demand_listed(
            "b.example/m",
            Some(&["v0.1.0".into(), "v0.2.0".into()]),
            1003,
        )
        .unwrap();
        let named = st.name_demanded(1003, None, &none).unwrap();
        assert_eq!(named.stats.named, 3);
        // Listed a day ago at most: not listed again yet.
        assert!(st.take_demand(1004, 1, 100).unwrap().to_list.is_empty());
        assert_eq!(
            st.take_demand(1003 + RELIST_SECS, 1, 100).unwrap().to_list,
            ["b.example/m"]
        );

        // Published: served, and no longer among the requests.
        let m = todo[0].module_id;
        st.mark_published(&[published(m, "v1.0.0", None)], &[], 5)
            .unwrap();
        let c = st.demand_counts().unwrap();
        assert_eq!((c.wanted, c.served), (2, 1));
        let req = st.unserved_requests(None).unwrap();
        assert_eq!(req.len(), 1);
        assert_eq!(req[0].module, "b.example/m");
        assert!(st.unserved_requests(Some(201)).unwrap().is_empty());
    }

    #[test]
    fn what_the_upstream_lacks_backs_off_and_what_nobody_asks_for_is_unnamed() {
        let (_d, mut st) = open_temp();
        let none = |_: &str| false;
        st.record_demand(
            &batch(vec![
                tally("a.example/m", Some("v1.0.0"), 1),
                tally("gone.example/m", None, 1),
            ]),
            1000,
        )
        .unwrap();
        let t = st.take_demand(1000, 10, 10).unwrap();
        assert_eq!(t.to_list, ["gone.example/m"]);
        st.demand_listed("gone.example/m", None, 1000).unwrap();
        st.name_demanded(1000, None, &none).unwrap();
        // The version's fetch got a 404.
        let todo = st.todo_page(None, 10, 0, false).unwrap();
        st.mark_not_found(todo[0].module_id, &todo[0].version, "404", 1000, 3 * 86400)
            .unwrap();
        let named = st.name_demanded(1001, None, &none).unwrap();
        assert_eq!(named.unavailable, 1);
        let c = st.demand_counts().unwrap();
        assert_eq!(
            (c.unavailable, c.next_retry),
            (2, Some(1000 + FIRST_BACKOFF_SECS))
        );
        // Not named, not fetched while unavailable.
        assert!(st.todo_page(None, 10, 0, false).unwrap().is_empty());
        assert_eq!(st.take_demand(1002, 10, 10).unwrap().retried, 0);
        // The delay ran out: asked again (and listed again).
        let t = st.take_demand(1001 + FIRST_BACKOFF_SECS, 10, 10).unwrap();
        assert_eq!((t.retried, t.to_list.len()), (2, 1));
        st.name_demanded(1001 + FIRST_BACKOFF_SECS, None, &none)
            .unwrap();
        assert_eq!(st.todo_page(None, 10, 0, false).unwrap().len(), 1);
        assert_eq!(backoff_secs(2), 2 * FIRST_BACKOFF_SECS);
        assert_eq!(backoff_secs(40), MAX_BACKOFF_SECS);

        // Published, then nobody asks for it within `keep`: unnamed, pruned.
        let todo = st.todo_page(None, 10, 0, false).unwrap();
        let m = todo[0].module_id;
        st.mark_published(&[published(m, "v1.0.0", None)], &[], 5)
            .unwrap();
        st.name_demanded(5000, Some(1000), &none).unwrap();
        assert_eq!(st.deletion_count().unwrap(), 0);
        st.name_demanded(5000, Some(4000), &none).unwrap();
        let doomed = st.deletion_page(None, 10).unwrap();
        assert_eq!(doomed.len(), 1);
        assert_eq!(doomed[0].reason, DeletionReason::Unwanted);
        assert_eq!(
            st.version_state(m, "v1.0.0").unwrap(),
            Some(VersionState::Published)
        );
    }

    #[test]
    fn a_flood_of_new_names_is_bounded_and_from_files_keeps_its_own_set() {
        let (_d, mut st) = open_temp();
        let none = |_: &str| false;
        let many: Vec<DemandTally> = (0..MAX_WAITING + 5)
            .map(|i| tally(&format!("x.example/m{i}"), Some("v1.0.0"), 1))
            .collect();
        let r = st.record_demand(&batch(many), 1000).unwrap();
        assert_eq!((r.new, r.dropped), (MAX_WAITING, 5));
        let t = st.take_demand(1000, 3, 1000).unwrap();
        assert_eq!((t.taken, t.new_modules), (3, 3));
        st.name_demanded(1000, None, &none).unwrap();
        // A from_files sync replaces its own names, not demand's.
        st.name_versions(
            &[NamedFile {
                file: "go.sum".into(),
                kind: "go.sum",
                versions: vec![NamedVersion {
                    path: "y.example/m".into(),
                    version: "v1.0.0".into(),
                    zip: true,
                    line: 1,
                    zip_h1: None,
                    mod_h1: None,
                }],
            }],
            &none,
        )
        .unwrap();
        assert_eq!(st.todo_page(None, 100, 0, false).unwrap().len(), 4);
        let files = st.file_counts().unwrap();
        assert_eq!(files.len(), 1, "{files:?}");
        // And demand replaces its own, not the files'.
        st.name_demanded(1001, Some(2000), &none).unwrap();
        assert_eq!(st.todo_page(None, 100, 0, false).unwrap().len(), 1);
    }
}
