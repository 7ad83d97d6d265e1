//! What each upstream of the proxy list served, summed over runs: `status`
//! shows it, so an operator sees which entry carries the mirror and which
//! one fails. URLs arrive with credentials already masked.

use rusqlite::params;

use super::{Result, State};

/// One upstream's counts (this run's, to add; or the sums, as read).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpstreamRecord {
    pub url: String,
    pub requests: i64,
    pub files: i64,
    pub bytes: i64,
    pub not_found: i64,
    pub failures: i64,
    /// Bodies refused: they failed verification.
    pub refused: i64,
    #[serde(serialize_with = "crate::clock::serialize_rfc3339_opt")]
    pub last_used: Option<i64>,
    pub last_error: Option<String>,
    #[serde(serialize_with = "crate::clock::serialize_rfc3339_opt")]
    pub last_error_at: Option<i64>,
}

/// A published version with the hashes the mirror proved, for `probe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleVersion {
    pub path: String,
    pub version: String,
    pub mod_h1: String,
    pub zip_h1: String,
}

impl State {
    /// Up to `n` published versions at random, and the `newest` most
    /// recently published (by `.info` time), each list without the other's.
    pub fn probe_sample(
        &self,
        n: usize,
        newest: usize,
    ) -> Result<(Vec<SampleVersion>, Vec<SampleVersion>)> {
        let row = |r: &rusqlite::Row<'_>| {
            Ok(SampleVersion {
                path: r.get(0)?,
                version: r.get(1)?,
                mod_h1: r.get(2)?,
                zip_h1: r.get(3)?,
            })
        };
        let fresh = self.query_vec(
            "cannot sample published versions",
            "SELECT m.path, v.version, v.mod_h1, v.zip_h1 FROM versions v JOIN modules m ON m.id = v.module_id
             WHERE v.in_tree = 1 AND v.mod_h1 IS NOT NULL AND v.zip_h1 IS NOT NULL
             ORDER BY v.info_time DESC, m.path, v.version LIMIT ?1",
            [newest as i64],
            row,
        )?;
        let mut sample = self.query_vec(
            "cannot sample published versions",
            "SELECT m.path, v.version, v.mod_h1, v.zip_h1 FROM versions v JOIN modules m ON m.id = v.module_id
             WHERE v.in_tree = 1 AND v.mod_h1 IS NOT NULL AND v.zip_h1 IS NOT NULL
             ORDER BY random() LIMIT ?1",
            [(n + newest) as i64],
            row,
        )?;
        sample.retain(|s| !fresh.contains(s));
        sample.truncate(n);
        Ok((sample, fresh))
    }

    /// Adds one run's counts; `now` becomes the last use, and the last
    /// error (if the run saw one) replaces the stored one.
    pub fn record_upstreams(&mut self, now: i64, runs: &[UpstreamRecord]) -> Result<()> {
        let path = self.path.clone();
        let e = |what: &str, x: rusqlite::Error| super::err(&path, what, x);
        let tx = self
            .conn
            .transaction()
            .map_err(|x| e("cannot record upstream counts", x))?;
        for r in runs {
            tx.execute(
                "INSERT INTO upstreams(url, requests, files, bytes, not_found, failures, refused, last_used, last_error, last_error_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, CASE WHEN ?9 IS NULL THEN NULL ELSE ?8 END)
                 ON CONFLICT(url) DO UPDATE SET
                   requests = requests + excluded.requests,
                   files = files + excluded.files,
                   bytes = bytes + excluded.bytes,
                   not_found = not_found + excluded.not_found,
                   failures = failures + excluded.failures,
                   refused = refused + excluded.refused,
                   last_used = excluded.last_used,
                   last_error = COALESCE(excluded.last_error, last_error),
                   last_error_at = COALESCE(excluded.last_error_at, last_error_at)",
                params![
                    r.url,
                    r.requests,
                    r.files,
                    r.bytes,
                    r.not_found,
                    r.failures,
                    r.refused,
                    now,
                    r.last_error
                ],
            )
            .map_err(|x| e(&format!("cannot record counts of upstream {}", r.url), x))?;
        }
        tx.commit()
            .map_err(|x| e("cannot record upstream counts", x))
    }

    /// Every upstream ever used, most files first.
    pub fn upstreams(&self) -> Result<Vec<UpstreamRecord>> {
        self.query_vec(
            "cannot list upstreams",
            "SELECT url, requests, files, bytes, not_found, failures, refused, last_used, last_error, last_error_at FROM upstreams ORDER BY files DESC, url",
            [],
            |r| {
                Ok(UpstreamRecord {
                    url: r.get(0)?,
                    requests: r.get(1)?,
                    files: r.get(2)?,
                    bytes: r.get(3)?,
                    not_found: r.get(4)?,
                    failures: r.get(5)?,
                    refused: r.get(6)?,
                    last_used: r.get(7)?,
                    last_error: r.get(8)?,
                    last_error_at: r.get(9)?,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_the_last_error_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(&dir.path().join("state.db")).unwrap();
        let run = |files, err: Option<&str>| UpstreamRecord {
            url: "http://a.example".into(),
            requests: files + 1,
            files,
            bytes: files * 10,
            failures: err.is_some() as i64,
            last_error: err.map(str::to_string),
            ..Default::default()
        };
        s.record_upstreams(100, &[run(3, Some("HTTP 503"))])
            .unwrap();
        s.record_upstreams(200, &[run(2, None)]).unwrap();
        let got = s.upstreams().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].files, got[0].bytes, got[0].failures), (5, 50, 1));
        assert_eq!(got[0].last_error.as_deref(), Some("HTTP 503"));
        assert_eq!(
            (got[0].last_used, got[0].last_error_at),
            (Some(200), Some(100))
        );
    }
}
