//! What the workers and the publisher of one sync share: the settings, the
//! one HTTP client, the checksum-database client, the tree, and the run's
//! events (failures, warnings, the fatal error that stops everything).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::fatal::Fatal;
use crate::http::Upstream;
use crate::report::summary::VersionFailure;
use crate::settings::Settings;
use crate::store::Store;
use crate::trust::client::LogClient;

pub struct RunContext {
    pub settings: Settings,
    pub upstream: Arc<Upstream>,
    pub client: Arc<LogClient>,
    /// Where the tree lives.
    pub tree: Arc<dyn Store>,
    pub stop: AtomicBool,
    /// Set once every version of the pass has been handed to a worker: the
    /// publisher stops holding a partial batch for more (see
    /// [`crate::publish::publish_loop`]).
    pub all_dispatched: AtomicBool,
    /// Set when the pass starts before the run's newest head is proven
    /// ([`crate::fetch::pass_before_ready`]).
    pub gates: Option<Gates>,
    pub fatal: Mutex<Option<Fatal>>,
    /// Versions that failed (fetching, verifying or publishing), not yet reported.
    pub failures: Mutex<Vec<VersionFailure>>,
    /// Warnings from workers, printed by the main loop.
    pub notices: Mutex<Vec<String>>,
    /// `SECURITY` lines about upstreams that served refuted bytes, not yet
    /// reported (the run exits 1 even when another upstream served the version).
    pub security: Mutex<Vec<String>>,
}

impl RunContext {
    /// Stops the run with `error` as its fatal error (the first one wins).
    pub fn fail_run(&self, error: Fatal) {
        let mut f = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(error);
        }
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// What a pass started early waits for: `head` says the run's newest
/// checksum-database head is accepted (lookups are proven only after it,
/// in the order a sync always accepted heads: the newest first), `ready`
/// that its tiles are stored too (nothing is published before). Each says
/// `true` once; a sender dropped first means the run is stopping.
#[derive(Clone)]
pub struct Gates {
    pub head: tokio::sync::watch::Receiver<bool>,
    pub ready: tokio::sync::watch::Receiver<bool>,
}

impl Gates {
    /// Waits for `gate`: `false` if it will never open.
    pub async fn open(gate: &tokio::sync::watch::Receiver<bool>) -> bool {
        gate.clone().wait_for(|open| *open).await.is_ok()
    }
}
