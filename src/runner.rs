//! What every command that works on the mirror shares: an async runtime, the
//! state database on a thread of its own, the tree, and an entry in the run
//! log with the outcome (`gomirror status` shows it).

use std::sync::Arc;

use serde::Serialize;

use crate::report;
use crate::settings::Settings;
use crate::state::db::Db;
use crate::state::{State, StateError};
use crate::store::Store;

/// A fatal error: the command stopped.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Fatal(pub String);

impl From<StateError> for Fatal {
    fn from(e: StateError) -> Fatal {
        Fatal(e.to_string())
    }
}

/// What a command reports: stored in the run log, mapped to an exit code.
pub trait Outcome: Serialize {
    fn exit_code(&self) -> i32;
}

/// Runs `work` with the state database and the tree, recording the run.
pub fn run_command<T: Outcome>(
    settings: &Settings,
    command: &str,
    work: impl AsyncFnOnce(&Db, &Arc<dyn Store>) -> Result<T, Fatal>,
) -> Result<T, Fatal> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Fatal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let state = State::open(&settings.state)?;
        let tree = settings.open_store().map_err(|e| Fatal(e.to_string()))?;
        let (db, db_thread) = Db::spawn(state);
        let (name, started) = (command.to_string(), report::now());
        let run_id = db.call(move |s| s.begin_run(&name, started)).await?;
        let result = work(&db, &tree).await;
        let (code, summary) = match &result {
            Ok(outcome) => (
                outcome.exit_code(),
                serde_json::to_value(outcome).unwrap_or_default(),
            ),
            Err(Fatal(m)) => (2, serde_json::json!({ "fatal": m })),
        };
        let finished = report::now();
        let recorded = db
            .call(move |s| s.finish_run(run_id, finished, code, &summary))
            .await;
        drop(db);
        let _ = db_thread.join();
        match (result, recorded) {
            (Ok(outcome), Err(e)) => Err(Fatal(format!(
                "the run finished (exit {}) but could not be recorded: {e}",
                outcome.exit_code()
            ))),
            (result, _) => result,
        }
    })
}
