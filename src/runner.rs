//! What every command that works on the mirror shares: an async runtime, the
//! state database on a thread of its own, the tree, and an entry in the run
//! log with the outcome (`gomirror status` shows it).

use std::sync::Arc;

use serde::Serialize;

use crate::config::Settings;
use crate::report;
use crate::state::{State, StateError};
use crate::tree::Tree;

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

/// Work for the state thread.
type Job = Box<dyn FnOnce(&mut State) + Send>;

/// The state database, owned by a thread of its own: SQLite work never runs
/// on the async executor, and one thread owns the connection.
#[derive(Clone)]
pub struct Db {
    tx: std::sync::mpsc::Sender<Job>,
}

impl Db {
    pub fn spawn(state: State) -> (Db, std::thread::JoinHandle<()>) {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("state-db".into())
            .spawn(move || {
                let mut state = state;
                for job in rx {
                    job(&mut state);
                }
            })
            .expect("spawn state thread");
        (Db { tx }, handle)
    }

    /// Runs `f` on the state thread and waits for its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> R + Send + 'static,
    ) -> R {
        let (otx, orx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move |s| {
                let _ = otx.send(f(s));
            }))
            .expect("state thread is alive");
        orx.await.expect("state thread answers")
    }
}

/// Runs `work` with the state database and the tree, recording the run.
pub fn run_command<T: Outcome>(
    settings: &Settings,
    command: &str,
    work: impl AsyncFnOnce(&Db, &Arc<Tree>) -> Result<T, Fatal>,
) -> Result<T, Fatal> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Fatal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let state = State::open(&settings.state)?;
        let tree = Arc::new(Tree::open(&settings.output).map_err(|e| Fatal(e.to_string()))?);
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
        let _ = db
            .call(move |s| s.finish_run(run_id, finished, code, &summary))
            .await;
        drop(db);
        let _ = db_thread.join();
        result
    })
}
