//! Deterministic crash points, for tests only.
//!
//! A random `kill -9` lands wherever the scheduler puts it; most runs die in
//! the middle of a download and never exercise the moments that matter — just
//! after a rename into the tree, just after a state-database commit, between a
//! removal and the next one. So every durability point (each `syncfs`
//! barrier, each rename into the tree, each removal, each state-database
//! commit) calls [`reached`], which numbers it. With `GOMIRROR_CRASH_AT=N` the
//! process aborts (`std::process::abort`: no destructors, no flushing, like
//! `kill -9`) at the N-th point; with `GOMIRROR_CRASH_COUNT=FILE` it writes
//! how many points it passed to `FILE` when it exits normally, so a test can
//! crash a run at every one of its points in turn.
//!
//! Tree points are counted just before the operation, commits just after it
//! (SQLite's WAL hook runs once the commit is in the log), so crashing at
//! N = 1, 2, … leaves every prefix of the run's effects on disk.
//!
//! The hook exists only in builds with `debug_assertions` (the integration
//! tests drive the debug binary); in a release build both functions are
//! empty and the environment variables are ignored.

/// Marks a durability point: `what` names it in the abort message.
#[inline]
pub fn reached(what: &'static str) {
    #[cfg(debug_assertions)]
    armed::reached(what);
    #[cfg(not(debug_assertions))]
    let _ = what;
}

/// Makes every commit on `conn` a durability point. Installed only when a
/// crash point or a count is asked for: the hook replaces SQLite's own
/// auto-checkpoint hook, which [`armed`] then performs itself.
#[inline]
pub fn watch_commits(conn: &rusqlite::Connection) {
    #[cfg(debug_assertions)]
    armed::watch_commits(conn);
    #[cfg(not(debug_assertions))]
    let _ = conn;
}

#[cfg(debug_assertions)]
mod armed {
    use std::ffi::{c_char, c_int, c_void};
    use std::path::PathBuf;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    use rusqlite::ffi;

    /// Points passed so far in this process.
    static PASSED: AtomicU64 = AtomicU64::new(0);
    static SETTINGS: OnceLock<Settings> = OnceLock::new();

    /// SQLite's default: checkpoint once the log holds this many frames.
    const AUTO_CHECKPOINT_FRAMES: c_int = 1000;

    struct Settings {
        crash_at: Option<u64>,
        count_file: Option<PathBuf>,
    }

    impl Settings {
        fn armed(&self) -> bool {
            self.crash_at.is_some() || self.count_file.is_some()
        }
    }

    fn settings() -> &'static Settings {
        SETTINGS.get_or_init(|| {
            let crash_at = crate::env::test::crash_at();
            let count_file = crate::env::test::crash_count_file();
            if count_file.is_some() {
                // SAFETY: registers a plain function with no preconditions;
                // `std::process::exit` (how gomirror ends) runs it.
                unsafe { libc::atexit(write_count) };
            }
            Settings {
                crash_at,
                count_file,
            }
        })
    }

    pub fn reached(what: &'static str) {
        let s = settings();
        if !s.armed() {
            return;
        }
        let n = PASSED.fetch_add(1, Ordering::SeqCst) + 1;
        if s.crash_at == Some(n) {
            eprintln!("gomirror: crash point {n} ({what}): aborting");
            std::process::abort();
        }
    }

    pub fn watch_commits(conn: &rusqlite::Connection) {
        if !settings().armed() {
            return;
        }
        // SAFETY: the hook is a plain function that only reads its arguments
        // during the call; the handle is valid while `conn` lives, and SQLite
        // drops the hook with the connection.
        unsafe {
            ffi::sqlite3_wal_hook(conn.handle(), Some(on_commit), std::ptr::null_mut());
        }
    }

    unsafe extern "C" fn on_commit(
        _: *mut c_void,
        db: *mut ffi::sqlite3,
        name: *const c_char,
        frames: c_int,
    ) -> c_int {
        reached("state database commit");
        if frames >= AUTO_CHECKPOINT_FRAMES {
            // SAFETY: `db` and `name` are the ones SQLite passed for this call;
            // its own default hook does exactly this.
            unsafe { ffi::sqlite3_wal_checkpoint(db, name) };
        }
        ffi::SQLITE_OK
    }

    extern "C" fn write_count() {
        if let Some(path) = SETTINGS.get().and_then(|s| s.count_file.as_ref()) {
            let n = PASSED.load(Ordering::SeqCst);
            if let Err(e) = std::fs::write(path, format!("{n}\n")) {
                eprintln!(
                    "gomirror: cannot write crash point count to `{}`: {e}",
                    path.display()
                );
            }
        }
    }
}
