//! Seeds: modules whose tagged versions are wanted whatever the index says,
//! read from the origin's `@v/list` on every run.

use std::sync::Arc;

use crate::gomod::{self, zip as modzip};
use crate::source::{Discovery, Event, Intake, LocalBoxFuture, Origin, OriginError, SourceError};
use crate::state::IndexEntry;

pub struct Seeds {
    origin: Arc<dyn Origin>,
    modules: Vec<String>,
}

impl Seeds {
    pub fn new(origin: Arc<dyn Origin>, modules: Vec<String>) -> Seeds {
        Seeds { origin, modules }
    }
}

impl Discovery for Seeds {
    fn describe(&self) -> String {
        format!("seeds from {}", self.origin.describe())
    }

    fn discover<'a>(
        &'a self,
        intake: &'a mut dyn Intake,
    ) -> LocalBoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            for module in &self.modules {
                let body = match self.origin.list(module, modzip::MAX_GO_MOD).await {
                    Ok(b) => b,
                    // The configuration checked every seed; a failure here is a bug to show, not skip.
                    Err(OriginError::Name { reason, .. }) => {
                        return Err(SourceError::SeedName {
                            module: module.clone(),
                            reason,
                        });
                    }
                    Err(e) if e.is_not_found() => {
                        intake.note(Event::Warning(format!(
                            "seed {module}: the proxy has no versions: {e}"
                        )));
                        continue;
                    }
                    Err(e) => {
                        return Err(SourceError::Seed {
                            module: module.clone(),
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
                            path: module.clone(),
                            version: v.to_string(),
                        }),
                        Err(e) => {
                            intake.note(Event::Invalid(format!("seed {module}: @v/list: {e}")))
                        }
                    }
                }
                intake.offer(entries, None).await?;
            }
            Ok(())
        })
    }
}
