//! What every command that works on the mirror shares: an async runtime, its
//! services built once ([`crate::services`]: the state database on a thread
//! of its own, the tree, the upstreams), and an entry in the run log with the
//! outcome (`gomirror status` shows it).

use serde::Serialize;

pub use crate::fatal::{Fatal, render_chain, stop_if_interrupted};
use crate::report;
use crate::services::{self, Services, Upstreams};
use crate::settings::Settings;
use crate::state::State;
use crate::state::db::Db;

/// What a command reports: stored in the run log, mapped to an exit code.
pub trait Outcome: Serialize {
    fn exit_code(&self) -> i32;
}

/// Runs `work` with the command's services ([`Services`]: the state
/// database, the tree, the upstreams), built once here, recording the run,
/// then rewrites the metrics file (`report.metrics_file`) from the state
/// database. A stop signal ends `work` (cooperatively, or by dropping it
/// once [`crate::interrupt::GRACE`] has passed) with [`Fatal::Interrupted`],
/// and the run is recorded with that exit code.
pub fn run_command<T: Outcome>(
    settings: &Settings,
    command: &str,
    work: impl AsyncFnOnce(&Services) -> Result<T, Fatal>,
) -> Result<T, Fatal> {
    // Only the commands that fill a mirror make its state database; the
    // others on a mirror that never synced would check an empty one and
    // report "0 problems".
    if !matches!(command, "sync" | "import") && !settings.state.exists() {
        return Err(Fatal::stopped(format!(
            "no state database at `{}`: this mirror has not synced yet (run `gomirror sync` first)",
            settings.state.display()
        )));
    }
    let runtime = runtime()?;
    runtime.block_on(async {
        crate::interrupt::listen(say);
        let state = State::open(&settings.state)?;
        let upstreams = Upstreams::new(settings)?;
        let tree = services::open_store(settings, &upstreams)?;
        let (db, db_thread) = Db::spawn(state);
        let svc = Services::new(db.clone(), tree, upstreams);
        let (name, started) = (command.to_string(), report::now());
        let run_id = db.call(move |s| s.begin_run(&name, started)).await?;
        let result = tokio::select! {
            biased;
            r = work(&svc) => r,
            signal = async {
                crate::interrupt::wait().await;
                tokio::time::sleep(crate::interrupt::GRACE).await;
                crate::interrupt::received().unwrap_or(libc::SIGTERM)
            } => Err(Fatal::Interrupted { signal, received: 0 }),
        };
        // What was received before a stop, whichever way the work ended.
        let result = match result {
            Err(Fatal::Interrupted { signal, .. }) => Err(Fatal::Interrupted {
                signal,
                received: svc.upstreams.http.bytes_received(),
            }),
            other => other,
        };
        drop(svc);
        let (code, summary) = match &result {
            Ok(outcome) => (
                outcome.exit_code(),
                serde_json::to_value(outcome).unwrap_or_default(),
            ),
            Err(Fatal::Interrupted { signal, received }) => (
                crate::interrupt::exit_code(*signal),
                serde_json::json!({
                    "interrupted": crate::interrupt::name(*signal),
                    "fatal": result.as_ref().err().map(Fatal::render),
                    "bytes": received,
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
/// (read-only, or empty in memory when there is none yet) and the
/// upstreams; no tree opened (a dry run opens it only if there is one,
/// [`services::open_store_if_present`]), no run recorded, no metrics
/// written.
pub fn run_preview<T>(
    settings: &Settings,
    work: impl AsyncFnOnce(&Db, &Upstreams) -> Result<T, Fatal>,
) -> Result<T, Fatal> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let state = State::open_for_preview(&settings.state)?;
        let upstreams = Upstreams::new(settings)?;
        let (db, db_thread) = Db::spawn(state);
        let result = work(&db, &upstreams).await;
        drop(db);
        if db_thread.join().is_err() {
            return Err(Fatal::stopped("the state database thread crashed"));
        }
        result
    })
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
    let keep_cutoff = settings.prune.keep_cutoff(crate::clock::now());
    let gathered = db
        .call(move |s| report::metrics::gather(s, keep_cutoff))
        .await;
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
