//! The state database on a thread of its own: SQLite work never runs on the
//! async executor, and one thread owns the connection.

use std::sync::Arc;

use super::{State, StateError};

/// Work for the state thread.
type Job = Box<dyn FnOnce(&mut State) + Send>;

/// The state database, owned by a thread of its own: SQLite work never runs
/// on the async executor, and one thread owns the connection.
///
/// A job that panics does not take the thread down: its transaction rolls
/// back as the panic unwinds, the caller gets a [`StateError`] saying so (the
/// command then fails with exit 2), and later jobs — recording the run —
/// still run.
#[derive(Clone)]
pub struct Db {
    tx: std::sync::mpsc::Sender<Job>,
    last_panic: Arc<std::sync::Mutex<Option<String>>>,
    path: std::path::PathBuf,
}

impl Db {
    pub fn spawn(state: State) -> (Db, std::thread::JoinHandle<()>) {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let last_panic = Arc::new(std::sync::Mutex::new(None));
        let path = state.path().to_path_buf();
        let panics = last_panic.clone();
        let handle = std::thread::Builder::new()
            .name("state-db".into())
            .spawn(move || {
                let mut state = state;
                let crash_at = test_panic_at();
                for (n, job) in rx.into_iter().enumerate() {
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        if crash_at == Some(n + 1) {
                            panic!("GOMIRROR_TEST_STATE_PANIC_AT={} reached", n + 1);
                        }
                        job(&mut state)
                    }));
                    if let Err(payload) = outcome {
                        let message = payload
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown panic".into());
                        *panics.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
                    }
                }
            })
            .expect("spawn state thread");
        (
            Db {
                tx,
                last_panic,
                path,
            },
            handle,
        )
    }

    /// Runs `f` on the state thread and waits for its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> Result<R, StateError> + Send + 'static,
    ) -> Result<R, StateError> {
        let (otx, orx) = tokio::sync::oneshot::channel();
        let sent = self.tx.send(Box::new(move |s| {
            let _ = otx.send(f(s));
        }));
        if sent.is_err() {
            return Err(self.crashed("the state database thread has stopped".into()));
        }
        match orx.await {
            Ok(r) => r,
            Err(_) => {
                let why = self
                    .last_panic
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .unwrap_or_else(|| "no answer".into());
                Err(self.crashed(format!("a state database operation crashed: {why}")))
            }
        }
    }

    fn crashed(&self, message: String) -> StateError {
        StateError {
            path: self.path.clone(),
            message,
            source: None,
        }
    }
}

/// Debug builds only: `GOMIRROR_TEST_STATE_PANIC_AT=N` makes the N-th state
/// job panic, so tests can show that a crash there is exit 2 with the run
/// recorded.
fn test_panic_at() -> Option<usize> {
    crate::env::test::state_panic_at()
}
