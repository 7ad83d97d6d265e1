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
