//! The checksum database as this mirror trusts it: the client
//! ([`client::LogClient`]: heads, lookups and tiles fetched and verified, the
//! tiles clients need published into the tree), anchored in the tree head the
//! state database recorded (checked again with the configured key), and the
//! heads it accepts saved back. [`RunLog`] is one run's view of it: opened,
//! refreshed and saved once, however many fetch passes the run makes.

pub mod client;

use std::sync::Arc;

use crate::fatal::Fatal;
use crate::state;
use crate::state::db::Db;
use client::{LogClient, SignedHead};

/// Anchors `client` (trusting nothing yet) in the head stored in the state
/// database, verified again with the configured key.
pub async fn open_log(db: &Db, client: LogClient) -> Result<LogClient, Fatal> {
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

/// The checksum database for one run: opened from the stored head with its
/// newest head fetched, proven consistent and saved, the first time a stage
/// asks; the same client (its verified tiles, its accepted heads) for every
/// later fetch pass of the run. `build` makes the client (untrusting) when
/// it is first needed ([`crate::services::Services::log`] passes it).
///
/// A sync's downloads start before the newest head is proven
/// ([`RunLog::opened`]: the client anchored in the stored head, nothing
/// fetched): lookups are proven against whatever head the client has
/// accepted by then, and nothing is published until the newest one is.
#[derive(Default)]
pub struct RunLog {
    opened: tokio::sync::OnceCell<Arc<LogClient>>,
    refreshed: tokio::sync::OnceCell<SignedHead>,
}

impl RunLog {
    /// The run's client, opened and refreshed on the first call.
    pub async fn client(
        &self,
        db: &Db,
        build: impl FnOnce() -> LogClient,
    ) -> Result<Arc<LogClient>, Fatal> {
        self.open(db, build).await.map(|(c, _)| c)
    }

    /// The run's client, anchored in the stored head but not refreshed yet
    /// (no request made): the same client [`RunLog::client`] returns.
    pub async fn opened(
        &self,
        db: &Db,
        build: impl FnOnce() -> LogClient,
    ) -> Result<Arc<LogClient>, Fatal> {
        self.opened
            .get_or_try_init(
                || async move { Ok::<_, Fatal>(Arc::new(open_log(db, build()).await?)) },
            )
            .await
            .cloned()
    }

    /// Asks for the newest head, proves it consistent and saves it: on the
    /// first call the head fetched to open the client, later a new request
    /// (a long walk may have outlived the first head).
    pub async fn refresh(
        &self,
        db: &Db,
        build: impl FnOnce() -> LogClient,
    ) -> Result<SignedHead, Fatal> {
        let (client, opened) = self.open(db, build).await?;
        if let Some(head) = opened {
            return Ok(head);
        }
        let latest = client.refresh_latest().await.map_err(Fatal::from)?;
        save_heads(db, &client).await?;
        Ok(latest)
    }

    /// The client, and the head it was refreshed to if this call refreshed
    /// it first.
    async fn open(
        &self,
        db: &Db,
        build: impl FnOnce() -> LogClient,
    ) -> Result<(Arc<LogClient>, Option<SignedHead>), Fatal> {
        let client = self.opened(db, build).await?;
        let mut first = None;
        let slot = &mut first;
        let c = &client;
        self.refreshed
            .get_or_try_init(|| async move {
                let head = c.refresh_latest().await.map_err(Fatal::from)?;
                save_heads(db, c).await?;
                *slot = Some(head.clone());
                Ok::<_, Fatal>(head)
            })
            .await?;
        Ok((client, first))
    }
}

/// Rewrites `sumdb/<name>/supported` and `latest` for the largest head the
/// mirror serves: a run killed after recording a batch, before writing them,
/// leaves them missing or older than the lookups, and nothing else in a sync
/// that finds no new versions would write them again.
pub async fn restore_served_head(db: &Db, client: LogClient) -> Result<(), Fatal> {
    let Some(last) = db.call(|s| s.largest_served_head()).await? else {
        return Ok(());
    };
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
