//! Seeds: modules whose tagged versions are wanted whatever the index says,
//! read from the origin's `@v/list` on every run.

use std::sync::Arc;

use crate::gomod;
use crate::shown;
use crate::source::{
    AnyIntake, Discovery, Event, Events, LocalBoxFuture, Origin, OriginError, SourceError,
};
use crate::state::IndexEntry;

/// The largest `@v/list` read: tagged versions, one a line (about 400,000
/// of them; the largest real modules list a few thousand). Its entries are
/// held while they are offered, so this bounds their memory (~40 MB).
pub const LIST_BYTES: u64 = 4 << 20;

pub struct Seeds {
    origin: Arc<dyn Origin>,
    modules: Vec<String>,
}

impl Seeds {
    pub fn new(origin: Arc<dyn Origin>, modules: Vec<String>) -> Seeds {
        Seeds { origin, modules }
    }
}

/// The valid versions of `module`'s `@v/list` on `origin`; `None` (after a
/// warning) when the origin has no such module. Invalid lines are reported
/// to `intake` and skipped.
pub(crate) async fn list_module(
    origin: &dyn Origin,
    module: &str,
    intake: &mut dyn Events,
) -> Result<Option<Vec<IndexEntry>>, SourceError> {
    let body = match origin.list(module, LIST_BYTES).await {
        Ok(b) => b,
        // The configuration checked every module named; a failure here is a bug to show, not skip.
        Err(OriginError::Name { reason, .. }) => {
            return Err(SourceError::SeedName {
                module: module.to_string(),
                reason,
            });
        }
        Err(e) if e.is_not_found() => {
            intake.note(Event::Warning(format!(
                "seed {module}: the proxy has no versions: {e}"
            )));
            return Ok(None);
        }
        Err(e) => {
            return Err(SourceError::Seed {
                module: module.to_string(),
                source: e,
            });
        }
    };
    let mut entries = Vec::new();
    for line in String::from_utf8_lossy(&body).lines() {
        let Some(v) = line.split_whitespace().next() else {
            continue;
        };
        match gomod::check(module, v) {
            Ok(()) => entries.push(IndexEntry {
                path: module.to_string(),
                version: v.to_string(),
                listed_at: None,
            }),
            // The proxy's text: shown escaped and cut.
            Err(e) => intake.note(Event::Invalid(format!(
                "seed {module}: @v/list: {}",
                shown::text(&e.to_string())
            ))),
        }
    }
    Ok(Some(entries))
}

impl Discovery for Seeds {
    fn describe(&self) -> String {
        format!("seeds from {}", self.origin.describe())
    }

    fn discover<'a>(
        &'a self,
        intake: &'a mut dyn AnyIntake,
    ) -> LocalBoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            for module in &self.modules {
                if let Some(entries) = list_module(&*self.origin, module, intake).await? {
                    intake.offer(entries, None).await?;
                }
            }
            Ok(())
        })
    }
}
