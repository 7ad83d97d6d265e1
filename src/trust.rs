//! The checksum database as this mirror trusts it: a [`LogClient`] built from
//! the settings that trusts the tree head the state database recorded (checked
//! again with the configured key), and the heads it accepts saved back.

use std::sync::Arc;

use crate::http::Upstream;
use crate::http::list::UpstreamList;
use crate::runner::Fatal;
use crate::settings::Settings;
use crate::state;
use crate::state::db::Db;
use crate::store::Store;
use crate::sumdb::client::LogClient;

/// A client of the configured checksum database, trusting nothing yet.
pub fn log_client(
    settings: &Settings,
    upstream: &Arc<Upstream>,
    tree: &Arc<dyn Store>,
) -> LogClient {
    LogClient::new(
        settings.sumdb.verifier.clone(),
        Arc::new(UpstreamList::for_sumdb(
            upstream.clone(),
            &settings.sumdb.urls,
            &settings.sumdb.name,
        )),
        tree.clone(),
    )
    .with_tiles(settings.sumdb.tiles)
}

/// A client of the configured checksum database that trusts the head stored
/// in the state database (verified again with the configured key).
pub async fn open_log(
    settings: &Settings,
    db: &Db,
    tree: &Arc<dyn Store>,
    upstream: &Arc<Upstream>,
) -> Result<LogClient, Fatal> {
    let client = log_client(settings, upstream, tree);
    let Some(stored) = db.call(|s| s.trusted_head()).await? else {
        return Ok(client);
    };
    let head = client.parse_head(&stored.note).map_err(|e| {
        Fatal::context(
            "the tree head stored in the state database does not verify with the configured key; was sumdb.key changed?",
            e,
        )
    })?;
    if head.tree.n != stored.size || head.tree.hash.to_string() != stored.hash {
        return Err(Fatal::stopped(format!(
            "the state database's tree head is inconsistent with its own note (size {})",
            stored.size
        )));
    }
    Ok(client.trust(head))
}

pub async fn save_heads(db: &Db, client: &LogClient) -> Result<(), Fatal> {
    let heads = client.take_unsaved();
    if heads.is_empty() {
        return Ok(());
    }
    db.call(move |s| -> Result<(), state::StateError> {
        for h in heads {
            s.save_head(h.tree.n, &h.tree.hash.to_string(), &h.note)?;
        }
        Ok(())
    })
    .await
    .map_err(Fatal::from)
}

/// Rewrites `sumdb/<name>/supported` and `latest` for the largest head the
/// mirror serves: a run killed after recording a batch, before writing them,
/// leaves them missing or older than the lookups, and nothing else in a sync
/// that finds no new versions would write them again.
pub async fn restore_served_head(
    settings: &Settings,
    db: &Db,
    tree: &Arc<dyn Store>,
    upstream: &Arc<Upstream>,
) -> Result<(), Fatal> {
    let Some(last) = db.call(|s| s.largest_served_head()).await? else {
        return Ok(());
    };
    let client = log_client(settings, upstream, tree);
    let head = client.parse_head(&last.note).map_err(|e| {
        Fatal::context(
            format!(
                "the served tree head (size {}) in the state database does not verify",
                last.size
            ),
            e,
        )
    })?;
    client
        .trust(head)
        .offline()
        .write_static_files()
        .await
        .map_err(Fatal::from)
}
