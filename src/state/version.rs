//! A version's state in the state database, as one Rust type.
//!
//! The database stores it as a small integer (the on-disk schema predates the
//! enum and does not change with it); [`VersionState`] is the only place that
//! knows the numbers, and converts to and from SQL so every query binds or
//! reads the enum rather than a bare integer. A number this build does not
//! know (a newer gomirror wrote it) is an error when read, never a guess.
//!
//! Whether a version's files are in the tree is a separate column
//! (`in_tree`): a version being repaired is `Pending` with its files still in
//! place, and one the upstream dropped is `Gone` until prune removes them.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// Where a version stands. The discriminants are the values stored on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionState {
    /// Listed by the index, module not wanted by the filter.
    Seen = 0,
    /// Wanted, not yet mirrored.
    Pending = 1,
    /// Wanted, last attempt failed; retried after `next_attempt`.
    Failed = 2,
    /// The upstream answers 404/410 for it (past the grace period).
    Gone = 3,
    /// Mirrored and verified.
    Published = 4,
    /// The upstream answered 404/410, but the version is known (the index or
    /// a seed's list named it): a proxy that has not caught up yet. Retried
    /// with backoff until it has been missing for the grace period, then
    /// `Gone`.
    Missing = 5,
    /// Mirrored without its zip: `.info` and `.mod` only (verified), because
    /// only a go.sum's `/go.mod` line or a go.mod's requirement graph wants
    /// it. Never in `@v/list` or `@latest`; a file that later names the full
    /// version queues it again for its zip.
    GraphOnly = 6,
    /// Wanted, but younger than `policy.min_age` (by the index's timestamp
    /// or this mirror's first sight): not fetched before `next_attempt`,
    /// when it is old enough ([`crate::policy`]).
    Held = 7,
    /// Wanted, but `policy.deny` covers it: never fetched. One still in the
    /// tree carries `versions.denied` until prune removes it.
    Denied = 8,
}

impl VersionState {
    /// Every state, in stored order.
    pub const ALL: [VersionState; 9] = [
        VersionState::Seen,
        VersionState::Pending,
        VersionState::Failed,
        VersionState::Gone,
        VersionState::Published,
        VersionState::Missing,
        VersionState::GraphOnly,
        VersionState::Held,
        VersionState::Denied,
    ];

    /// The value stored in `versions.state`.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The state a stored value stands for, if this build knows it.
    pub fn from_code(code: i64) -> Option<VersionState> {
        VersionState::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The name people read (status, reports).
    pub fn name(self) -> &'static str {
        match self {
            VersionState::Seen => "seen",
            VersionState::Pending => "pending",
            VersionState::Failed => "failed",
            VersionState::Gone => "gone",
            VersionState::Published => "published",
            VersionState::Missing => "missing",
            VersionState::GraphOnly => "graph-only",
            VersionState::Held => "held",
            VersionState::Denied => "denied",
        }
    }
}

/// A state's stored code as a string literal, for SQL put together with
/// `concat!`: `concat!("… WHERE state = ", state_code!(Published))`. The
/// codes must be literal in the statement, not bound parameters, where a
/// partial index on `state` is to be used (SQLite proves an index's
/// condition from the statement's text). The one place besides
/// [`VersionState`] that knows the numbers; a test holds the two together.
macro_rules! state_code {
    (Seen) => {
        "0"
    };
    (Pending) => {
        "1"
    };
    (Failed) => {
        "2"
    };
    (Gone) => {
        "3"
    };
    (Published) => {
        "4"
    };
    (Missing) => {
        "5"
    };
    (GraphOnly) => {
        "6"
    };
    (Held) => {
        "7"
    };
    (Denied) => {
        "8"
    };
}

/// Several states' codes, comma-separated, for an SQL `IN (…)` list:
/// `state_codes!(Pending, Failed)` is `"1, 2"`.
macro_rules! state_codes {
    ($first:ident $(, $rest:ident)*) => {
        concat!(
            $crate::state::version::state_code!($first)
            $(, ", ", $crate::state::version::state_code!($rest))*
        )
    };
}

pub(crate) use {state_code, state_codes};

impl std::fmt::Display for VersionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ToSql for VersionState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.code()))
    }
}

impl FromSql for VersionState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let code = i64::column_result(value)?;
        VersionState::from_code(code).ok_or(FromSqlError::OutOfRange(code))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sql_codes_are_the_stored_codes() {
        let pairs = [
            (state_code!(Seen), VersionState::Seen),
            (state_code!(Pending), VersionState::Pending),
            (state_code!(Failed), VersionState::Failed),
            (state_code!(Gone), VersionState::Gone),
            (state_code!(Published), VersionState::Published),
            (state_code!(Missing), VersionState::Missing),
            (state_code!(GraphOnly), VersionState::GraphOnly),
            (state_code!(Held), VersionState::Held),
            (state_code!(Denied), VersionState::Denied),
        ];
        assert_eq!(pairs.len(), VersionState::ALL.len());
        for (text, state) in pairs {
            assert_eq!(text, state.code().to_string(), "{state}");
        }
        assert_eq!(state_codes!(Pending, Failed, Missing), "1, 2, 5");
    }

    use super::*;

    #[test]
    fn version_states_round_trip_through_sqlite_as_the_stored_numbers() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (state INTEGER NOT NULL)")
            .unwrap();
        for s in VersionState::ALL {
            conn.execute("INSERT INTO t(state) VALUES (?1)", [s])
                .unwrap();
        }
        // The numbers on disk are the ones every existing database holds.
        let raw: Vec<i64> = conn
            .prepare("SELECT state FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(raw, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
        let back: Vec<VersionState> = conn
            .prepare("SELECT state FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, VersionState::ALL);
        let names: Vec<_> = back.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            names,
            [
                "seen",
                "pending",
                "failed",
                "gone",
                "published",
                "missing",
                "graph-only",
                "held",
                "denied"
            ]
        );
    }

    #[test]
    fn an_unknown_stored_state_is_an_error_not_a_guess() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let r: rusqlite::Result<VersionState> = conn.query_row("SELECT 19", [], |r| r.get(0));
        assert!(r.is_err(), "{r:?}");
        assert_eq!(VersionState::from_code(-1), None);
    }
}
