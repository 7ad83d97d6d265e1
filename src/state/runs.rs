//! The run log and what `status` reports: counts by state, the failing
//! versions, the last runs.
//!
//! Every command records a row when it starts and completes it with its exit
//! code and summary when it ends, so a run that crashed shows as unfinished.
//! The lists here are capped by the caller (the most attempted failures, the
//! most recent runs): a report stays short whatever the mirror size.

use rusqlite::params;

use super::version::state_codes;
use super::{Result, State, err};

/// A failed version, for reports.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub path: String,
    pub version: String,
    pub attempts: i64,
    #[serde(serialize_with = "crate::clock::serialize_rfc3339_opt")]
    pub next_attempt: Option<i64>,
    pub error: String,
}

/// A row of the run log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub command: String,
    #[serde(serialize_with = "crate::clock::serialize_rfc3339")]
    pub started: i64,
    #[serde(serialize_with = "crate::clock::serialize_rfc3339_opt")]
    pub finished: Option<i64>,
    pub exit_code: Option<i64>,
    pub summary: Option<serde_json::Value>,
}

/// How one command's runs went, for the metrics file: its last finished
/// run and its last successful one (exit 0). A run that never ended (killed,
/// or still going) is not a "last run" until it has an exit code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRuns {
    pub command: String,
    pub last_started: i64,
    pub last_finished: i64,
    pub last_exit_code: i64,
    pub last_summary: Option<serde_json::Value>,
    /// When the last run that exited 0 finished; `None`: never.
    pub last_success: Option<i64>,
}

/// The earliest retry: through the work queue's partial index (its own
/// condition repeated, literally, so that SQLite proves it).
pub(super) const NEXT_RETRY: &str = concat!(
    "SELECT min(next_attempt) FROM versions WHERE state IN (",
    state_codes!(Pending, Failed, Missing),
    ") AND state IN (",
    state_codes!(Failed, Missing),
    ")"
);

/// The most attempted failures, through the same index.
pub(super) const FAILURES: &str = concat!(
    "SELECT m.path, v.version, v.attempts, v.next_attempt, coalesce(v.last_error, '')
                 FROM versions v JOIN modules m ON m.id = v.module_id
                 WHERE v.state IN (",
    state_codes!(Pending, Failed, Missing),
    ") AND v.state IN (",
    state_codes!(Failed, Missing),
    ") ORDER BY v.attempts DESC, m.path, v.version LIMIT ?1"
);

impl State {
    /// Every command that has finished a run, by name: from the summary
    /// kept as runs finish (`command_runs`), not from the whole run log.
    pub fn command_runs(&self) -> Result<Vec<CommandRuns>> {
        self.query_vec(
            "cannot summarise the run log",
            "SELECT c.command, r.started, r.finished, r.exit_code, r.summary, c.last_success
                 FROM command_runs c JOIN runs r ON r.id = c.last_id
                 ORDER BY c.command",
            [],
            |r| {
                let summary: Option<String> = r.get(4)?;
                Ok(CommandRuns {
                    command: r.get(0)?,
                    last_started: r.get(1)?,
                    last_finished: r.get(2)?,
                    last_exit_code: r.get(3)?,
                    last_summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
                    last_success: r.get(5)?,
                })
            },
        )
    }

    /// The earliest retry time among failed and missing versions.
    pub fn next_retry(&self) -> Result<Option<i64>> {
        // The codes are literal so that the partial index of the work queue
        // is used (a bound parameter cannot prove its condition).
        self.conn
            .query_row(NEXT_RETRY, [], |r| r.get(0))
            .map_err(|e| self.err("cannot read the next retry time", e))
    }

    /// Failed and missing versions, most attempted first, at most `limit`.
    pub fn failures(&self, limit: usize) -> Result<Vec<Failure>> {
        self.query_vec(
            "cannot list failures",
            FAILURES,
            params![limit as i64],
            |r| {
                Ok(Failure {
                    path: r.get(0)?,
                    version: r.get(1)?,
                    attempts: r.get(2)?,
                    next_attempt: r.get(3)?,
                    error: r.get(4)?,
                })
            },
        )
    }

    pub fn begin_run(&mut self, command: &str, now: i64) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO runs(command, started) VALUES (?1, ?2)",
                params![command, now],
            )
            .map_err(|e| self.err("cannot record run", e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn finish_run(
        &mut self,
        id: i64,
        now: i64,
        exit_code: i32,
        summary: &serde_json::Value,
    ) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, &format!("cannot record the end of run {id}"), x);
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute(
            "UPDATE runs SET finished = ?2, exit_code = ?3, summary = ?4 WHERE id = ?1",
            params![id, now, exit_code, summary.to_string()],
        )
        .map_err(e)?;
        // The command's last run, and its last success: what the metrics
        // file reads after every run.
        tx.execute(
            "INSERT INTO command_runs(command, last_id, last_success)
                 SELECT command, id, CASE WHEN ?2 = 0 THEN finished END FROM runs WHERE id = ?1
             ON CONFLICT(command) DO UPDATE SET
                 last_id = max(last_id, excluded.last_id),
                 last_success = CASE WHEN ?2 = 0 THEN max(coalesce(last_success, excluded.last_success), excluded.last_success)
                                     ELSE last_success END",
            params![id, exit_code],
        )
        .map_err(e)?;
        tx.commit().map_err(e)
    }

    /// The last `limit` runs, newest first.
    pub fn recent_runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.query_vec(
            "cannot list runs",
            "SELECT id, command, started, finished, exit_code, summary FROM runs ORDER BY id DESC LIMIT ?1",
            [limit as i64],
            |r| {
                let summary: Option<String> = r.get(5)?;
                Ok(RunRecord {
                    id: r.get(0)?,
                    command: r.get(1)?,
                    started: r.get(2)?,
                    finished: r.get(3)?,
                    exit_code: r.get(4)?,
                    summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, open_temp, published};

    #[test]
    fn publication_shows_in_the_counts() {
        let (_d, mut st) = open_temp();
        st.record_index_page(&[entry("golang.org/x/a", "v1.0.0")], &|_| true, "t")
            .unwrap();
        let t = st.todo_page(None, 1, 0, false).unwrap().remove(0);
        st.mark_published(&[published(t.module_id, &t.version, Some(7))], &[], 100)
            .unwrap();
        let mut ids = Vec::new();
        st.for_each_record_id(|id| ids.push(id)).unwrap();
        assert_eq!(ids, vec![7]);
        assert_eq!(st.dirty_modules_page(0, 10).unwrap().len(), 1);
        assert_eq!(
            st.listed_versions(t.module_id).unwrap()[0].version,
            "v1.0.0"
        );
        let c = st.counts().unwrap();
        assert_eq!((c.published, c.in_tree, c.published_bytes), (1, 1, 6));
    }

    #[test]
    fn runs_are_logged_newest_first() {
        let (_d, mut st) = open_temp();
        let a = st.begin_run("sync", 1).unwrap();
        let b = st.begin_run("prune", 2).unwrap();
        st.finish_run(a, 3, 1, &serde_json::json!({"published": 2}))
            .unwrap();
        let runs = st.recent_runs(10).unwrap();
        assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [b, a]);
        assert_eq!(runs[0].finished, None, "a run that has not ended shows so");
        assert_eq!(runs[1].exit_code, Some(1));
        assert_eq!(runs[1].summary, Some(serde_json::json!({"published": 2})));
    }

    #[test]
    fn command_runs_keep_the_last_success_apart_from_the_last_run() {
        let (_d, mut st) = open_temp();
        let a = st.begin_run("sync", 10).unwrap();
        st.finish_run(a, 20, 0, &serde_json::json!({})).unwrap();
        let b = st.begin_run("sync", 30).unwrap();
        st.finish_run(b, 45, 2, &serde_json::json!({"fatal": "x"}))
            .unwrap();
        let c = st.begin_run("prune", 50).unwrap();
        st.finish_run(c, 51, 2, &serde_json::json!({})).unwrap();
        // Unfinished: not a last run.
        st.begin_run("sync", 60).unwrap();
        let runs = st.command_runs().unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].command, "prune");
        assert_eq!(runs[0].last_success, None);
        assert_eq!(runs[1].command, "sync");
        assert_eq!(
            (runs[1].last_started, runs[1].last_finished),
            (30, 45),
            "the failed run is the last one"
        );
        assert_eq!(runs[1].last_exit_code, 2);
        assert_eq!(
            runs[1].last_success,
            Some(20),
            "a failure keeps the last success"
        );
    }
}
