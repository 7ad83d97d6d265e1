//! What every command that works on the mirror shares: an async runtime, the
//! state database on a thread of its own, the tree, and an entry in the run
//! log with the outcome (`gomirror status` shows it).

use std::sync::Arc;

use serde::Serialize;

use crate::report;
use crate::settings::Settings;
use crate::source::SourceError;
use crate::state::db::Db;
use crate::state::{State, StateError};
use crate::store::{Store, StoreError};
use crate::sumdb::client::SumdbError;

/// Why a command stopped. Each variant keeps its cause as `source()`, so the
/// one renderer ([`Fatal::render`], and `cli::print_error` on stderr) shows
/// `error:` and every `Caused by:`, and callers can still tell a security
/// failure from a state-database one.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sumdb(#[from] SumdbError),
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A task of the pipeline panicked (a bug): the run stops.
    #[error("{what} crashed")]
    Crashed {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// A failure with context of ours around a cause of any type.
    #[error("{message}")]
    Context {
        message: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A failure gomirror detected itself (an inconsistency, a refusal).
    #[error("{0}")]
    Stopped(String),
    /// SIGINT or SIGTERM stopped the run (see [`crate::interrupt`]).
    #[error("interrupted by {}: stopped before the end; the next run carries on", crate::interrupt::name(*signal))]
    Interrupted { signal: i32 },
}

impl Fatal {
    /// A failure gomirror detected itself.
    pub fn stopped(message: impl Into<String>) -> Fatal {
        Fatal::Stopped(message.into())
    }

    /// `message`, caused by `source`.
    pub fn context(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Fatal {
        Fatal::Context {
            message: message.into(),
            source: source.into(),
        }
    }

    /// A task that panicked or was cancelled.
    pub fn crashed(what: &'static str, source: tokio::task::JoinError) -> Fatal {
        Fatal::Crashed { what, source }
    }

    /// The exit code of a command that stopped with this error: 2 (fatal),
    /// or 128 + the signal's number for an interrupted run.
    pub fn exit_code(&self) -> i32 {
        match self {
            Fatal::Interrupted { signal } => crate::interrupt::exit_code(*signal),
            _ => 2,
        }
    }

    /// The error and its causes, one per line: the form the run log, the
    /// summary and `status` show.
    pub fn render(&self) -> String {
        render_chain(self)
    }
}

/// `message` then `Caused by: cause` for each cause whose text the line
/// before does not already carry (many messages quote their cause).
pub fn render_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut last = out.clone();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !last.contains(&text) {
            out.push_str("\nCaused by: ");
            out.push_str(&text);
        }
        last = text;
        source = s.source();
    }
    out
}

/// What a command reports: stored in the run log, mapped to an exit code.
pub trait Outcome: Serialize {
    fn exit_code(&self) -> i32;
}

/// Runs `work` with the state database and the tree, recording the run,
/// then rewrites the metrics file (`report.metrics_file`) from the state
/// database. A stop signal ends `work` (cooperatively, or by dropping it
/// once [`crate::interrupt::GRACE`] has passed) with [`Fatal::Interrupted`],
/// and the run is recorded with that exit code.
pub fn run_command<T: Outcome>(
    settings: &Settings,
    command: &str,
    work: impl AsyncFnOnce(&Db, &Arc<dyn Store>) -> Result<T, Fatal>,
) -> Result<T, Fatal> {
    let runtime = runtime()?;
    runtime.block_on(async {
        crate::interrupt::listen(say);
        let state = State::open(&settings.state)?;
        let tree = settings.open_store()?;
        let (db, db_thread) = Db::spawn(state);
        let (name, started) = (command.to_string(), report::now());
        let run_id = db.call(move |s| s.begin_run(&name, started)).await?;
        let result = tokio::select! {
            biased;
            r = work(&db, &tree) => r,
            signal = async {
                crate::interrupt::wait().await;
                tokio::time::sleep(crate::interrupt::GRACE).await;
                crate::interrupt::received().unwrap_or(libc::SIGTERM)
            } => Err(Fatal::Interrupted { signal }),
        };
        let (code, summary) = match &result {
            Ok(outcome) => (
                outcome.exit_code(),
                serde_json::to_value(outcome).unwrap_or_default(),
            ),
            Err(Fatal::Interrupted { signal }) => (
                crate::interrupt::exit_code(*signal),
                serde_json::json!({
                    "interrupted": crate::interrupt::name(*signal),
                    "fatal": result.as_ref().err().map(Fatal::render),
                }),
            ),
            Err(e) => (e.exit_code(), serde_json::json!({ "fatal": e.render() })),
        };
        let finished = report::now();
        let recorded = db
            .call(move |s| s.finish_run(run_id, finished, code, &summary))
            .await;
        if let Some(path) = &settings.metrics_file {
            write_metrics(settings, &db, path).await;
        }
        drop(db);
        let _ = db_thread.join();
        match (result, recorded) {
            (Ok(outcome), Err(e)) => Err(Fatal::context(
                format!(
                    "the run finished (exit {}) but could not be recorded",
                    outcome.exit_code()
                ),
                e,
            )),
            (result, _) => result,
        }
    })
}

/// The async runtime a command runs on.
fn runtime() -> Result<tokio::runtime::Runtime, Fatal> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Fatal::context("cannot start the async runtime", e))
}

/// Runs `work` for a dry run: the state database opened for a preview
/// (read-only, or empty in memory when there is none yet), no run recorded,
/// no metrics written.
pub fn run_preview<T>(
    settings: &Settings,
    work: impl AsyncFnOnce(&Db) -> Result<T, Fatal>,
) -> Result<T, Fatal> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let state = State::open_for_preview(&settings.state)?;
        let (db, db_thread) = Db::spawn(state);
        let result = work(&db).await;
        drop(db);
        if db_thread.join().is_err() {
            return Err(Fatal::stopped("the state database thread crashed"));
        }
        result
    })
}

/// `Err(Interrupted)` once SIGINT or SIGTERM has come: for the places a run
/// stops between stages, and for loops on a blocked thread, which the
/// runner's own wait for the signal cannot reach.
pub fn stop_if_interrupted() -> Result<(), Fatal> {
    match crate::interrupt::received() {
        Some(signal) => Err(Fatal::Interrupted { signal }),
        None => Ok(()),
    }
}

/// A line on stderr, for the signal listener (which sits below `report`).
fn say(line: String) {
    report::errln(line);
}

/// Rewrites the metrics file from the state database. A failure does not
/// undo the run's work: it is reported on stderr and raises the exit code to
/// 2 when the command ends ([`report::late_failure`]), because monitoring
/// reading a stale file would otherwise think all is well.
async fn write_metrics(settings: &Settings, db: &Db, path: &std::path::Path) {
    let gathered = db.call(|s| report::metrics::gather(s)).await;
    let result = gathered.map_err(|e| e.to_string()).and_then(|input| {
        let text = report::metrics::render(&input, &settings.mirror_name, report::now());
        report::metrics::write_atomically(path, &text)
    });
    if let Err(e) = result {
        report::late_failure(format!(
            "cannot write the metrics file `{}`: {e}",
            path.display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read `state.db`")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_shows_every_cause_once() {
        let e = Fatal::context(
            "the run could not be recorded",
            Outer(std::io::Error::other("disk on fire")),
        );
        assert_eq!(
            e.render(),
            "the run could not be recorded\nCaused by: cannot read `state.db`\nCaused by: disk on fire"
        );
        // A message that already quotes its cause does not repeat it.
        let quoted = Fatal::context(
            "cannot plan the prune: walk failed",
            std::io::Error::other("walk failed"),
        );
        assert_eq!(quoted.render(), "cannot plan the prune: walk failed");
        // Typed causes stay typed: a state-database failure is one.
        let state = Fatal::from(StateError {
            path: "s.db".into(),
            message: "locked".into(),
            source: None,
        });
        assert!(matches!(state, Fatal::State(_)));
        assert_eq!(state.render(), "state database `s.db`: locked");
    }
}
