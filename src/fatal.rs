//! Why a command stopped: [`Fatal`], the typed error every command returns,
//! and the one renderer of an error chain (`error:` then `Caused by:`).

use crate::source::SourceError;
use crate::state::StateError;
use crate::store::StoreError;

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
    /// The checksum database (a `trust::client::SumdbError`, converted
    /// there): a forked log, a bad signature, an unreachable database.
    #[error(transparent)]
    Checksum(Box<dyn std::error::Error + Send + Sync>),
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
    Interrupted {
        signal: i32,
        /// Bytes received from the upstreams before the stop (the runner
        /// fills it in: the work that counted them may have been dropped).
        received: u64,
    },
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
            Fatal::Interrupted { signal, .. } => crate::interrupt::exit_code(*signal),
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

/// `Err(Interrupted)` once SIGINT or SIGTERM has come: for the places a run
/// stops between stages, and for loops on a blocked thread, which the
/// runner's own wait for the signal cannot reach.
pub fn stop_if_interrupted() -> Result<(), Fatal> {
    match crate::interrupt::received() {
        Some(signal) => Err(Fatal::Interrupted {
            signal,
            received: 0,
        }),
        None => Ok(()),
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
