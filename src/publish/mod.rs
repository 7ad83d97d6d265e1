//! Publish: verified versions go into the tree in an order that keeps every
//! client's view consistent. Per batch: the checksum-database tiles clients
//! need, then each lookup, `.zip`, `.mod`, `.info` (renamed into place), then
//! the state database, then `@v/list` and `@latest` of the touched modules
//! ([`lists`]), then `sumdb/<name>/latest`. A version is listed only once
//! everything it needs is in place.

pub mod lists;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::context::RunContext;
use crate::model::Verified;
use crate::report::{self, summary::VersionFailure};
use crate::runner::Fatal;
use crate::state::db::Db;
use crate::state::{Published, Todo};
use crate::store::{self, Tree, layout};
use crate::trust::save_heads;
use lists::rewrite_dirty_lists;

/// Verified versions published together.
pub const BATCH: usize = 64;

const BATCH_WAIT: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct PublishCount {
    pub published: u64,
}

/// Receives verified versions and publishes them in batches.
pub async fn publish_loop(
    shared: Arc<RunContext>,
    db: Db,
    mut rx: mpsc::Receiver<Verified>,
) -> Result<PublishCount, Fatal> {
    let mut count = PublishCount::default();
    let mut previous_max: Option<i64> = db.call(|s| s.served_heads()).await?.last().map(|h| h.size);
    let mut batch: Vec<Verified> = Vec::new();
    loop {
        let deadline = tokio::time::sleep(BATCH_WAIT);
        tokio::pin!(deadline);
        let closed = loop {
            tokio::select! {
                v = rx.recv() => match v {
                    Some(v) => {
                        batch.push(v);
                        if batch.len() >= BATCH {
                            break false;
                        }
                    }
                    None => break true,
                },
                _ = &mut deadline, if !batch.is_empty() => break false,
            }
        };
        if shared.stop.load(Ordering::SeqCst) {
            // Nothing further is published after a fatal error.
            discard_async(std::mem::take(&mut batch)).await;
            if closed {
                return Ok(count);
            }
            continue;
        }
        if !batch.is_empty() {
            let items = std::mem::take(&mut batch);
            match publish_batch(&shared, &db, items, previous_max).await {
                Ok((n, max)) => {
                    count.published += n;
                    previous_max = max.or(previous_max);
                }
                Err(e) => {
                    shared.stop.store(true, Ordering::SeqCst);
                    let mut f = shared.fatal.lock().unwrap();
                    if f.is_none() {
                        *f = Some(e.0.clone());
                    }
                }
            }
        }
        if closed {
            return Ok(count);
        }
    }
}

/// [`discard`] on the blocking pool.
async fn discard_async(mut batch: Vec<Verified>) {
    let _ = tokio::task::spawn_blocking(move || discard(&mut batch)).await;
}

fn discard(batch: &mut Vec<Verified>) {
    for v in batch.drain(..) {
        let _ = std::fs::remove_file(&v.info);
        let _ = std::fs::remove_file(&v.mod_file);
        let _ = std::fs::remove_file(&v.zip);
    }
}

/// Publishes a batch; returns how many were published and the largest served tree size.
async fn publish_batch(
    shared: &Arc<RunContext>,
    db: &Db,
    items: Vec<Verified>,
    previous_max: Option<i64>,
) -> Result<(u64, Option<i64>), Fatal> {
    let client = &shared.client;
    // 1. Tiles every client needs for these lookups and heads.
    let records: Vec<i64> = items
        .iter()
        .filter_map(|v| v.lookup.as_ref().map(|l| l.record_id))
        .collect();
    let mut sizes: BTreeSet<i64> = items
        .iter()
        .filter_map(|v| v.lookup.as_ref().map(|l| l.head.tree.n))
        .collect();
    let trusted = client.trusted();
    if let Some(t) = &trusted {
        sizes.insert(t.tree.n);
    }
    let sizes: Vec<i64> = sizes.into_iter().collect();
    if let Err(e) = client.mirror_tiles(&records, &sizes, previous_max).await {
        if e.is_fatal() {
            discard_async(items).await;
            return Err(Fatal(e.to_string()));
        }
        // The tiles could not be fetched: these versions wait for the next run.
        let msg = format!("cannot mirror checksum database tiles: {e}");
        for v in &items {
            let (mid, ver, m) = (v.todo.module_id, v.todo.version.clone(), msg.clone());
            db.call(move |s| s.mark_failed(mid, &ver, &m, report::now()))
                .await?;
            shared.failures.lock().unwrap().push(VersionFailure {
                module: v.todo.path.clone(),
                version: v.todo.version.clone(),
                error: msg.clone(),
                security: false,
            });
        }
        discard_async(items).await;
        return Ok((0, None));
    }
    save_heads(db, client).await?;

    // 2. Files, immutable ones first, on the blocking pool.
    let tree = shared.tree.clone();
    let name = client.name().to_string();
    let installed = tokio::task::spawn_blocking(move || install_batch(&tree, &name, items))
        .await
        .map_err(|e| Fatal(format!("publishing crashed: {e}")))?;
    let (published, failures) = installed.map_err(|e| Fatal(format!("cannot publish: {e}")))?;
    for (v, msg) in failures {
        shared.failures.lock().unwrap().push(VersionFailure {
            module: v.1.clone(),
            version: v.2.clone(),
            error: msg.clone(),
            security: false,
        });
        db.call(move |s| s.mark_failed(v.0, &v.2, &msg, report::now()))
            .await?;
    }
    if published.is_empty() {
        return Ok((0, None));
    }
    // 3. The state database, then 4. the indexes that list them, then `latest`.
    let n = published.len() as u64;
    let served = sizes.clone();
    db.call(move |s| s.mark_published(&published, &served, report::now()))
        .await?;
    client
        .write_static_files()
        .await
        .map_err(|e| Fatal(e.to_string()))?;
    rewrite_dirty_lists(db, &shared.tree).await?;
    Ok((n, sizes.last().copied()))
}

type InstallFailure = ((i64, String, String), String);

/// Renames a batch's verified files into place. Per version: lookup, `.zip`,
/// `.mod`, `.info` — `.info` last, so a version is never visible before its
/// content (the go command starts from `.info` or the list). Lookups are
/// staged as temporary files first so that one barrier makes every file's
/// data durable before any rename, and a second one makes the renames durable
/// before the state database records them.
fn install_batch(
    tree: &Tree,
    sumdb_name: &str,
    items: Vec<Verified>,
) -> Result<(Vec<Published>, Vec<InstallFailure>), String> {
    let mut failures = Vec::new();
    // Stage the lookups.
    let mut staged: Vec<(Verified, Option<(PathBuf, String)>)> = Vec::with_capacity(items.len());
    for v in items {
        let lookup = match &v.lookup {
            None => Ok(None),
            Some(l) => stage_lookup(tree, sumdb_name, &v.todo, &l.body),
        };
        match lookup {
            Ok(l) => staged.push((v, l)),
            Err(e) => {
                failures.push((
                    (
                        v.todo.module_id,
                        v.todo.path.clone(),
                        v.todo.version.clone(),
                    ),
                    format!("cannot publish: {e}"),
                ));
                discard(&mut vec![v]);
            }
        }
    }
    tree.sync_to_disk().map_err(|e| e.to_string())?;
    let mut published = Vec::with_capacity(staged.len());
    for (v, lookup) in staged {
        let (m, ver) = (v.todo.path.clone(), v.todo.version.clone());
        let result = (|| -> Result<Published, String> {
            if let Some((tmp, rel)) = &lookup {
                tree.install(tmp, rel).map_err(|e| e.to_string())?;
            }
            let rel = |ext| layout::version_file(&m, &ver, ext).map_err(|e| e.to_string());
            let zip = install_immutable(tree, &v.zip, &rel("zip")?, &v.zip_sha256)?;
            let gomod = install_immutable(tree, &v.mod_file, &rel("mod")?, &v.mod_sha256)?;
            let info_dest = tree
                .install(&v.info, &rel("info")?)
                .map_err(|e| e.to_string())?;
            let info = store::stat(&info_dest).map_err(|e| e.to_string())?;
            Ok(Published {
                module_id: v.todo.module_id,
                version: ver.clone(),
                info_time: v.info_time.clone(),
                zip_h1: v.zip_h1.clone(),
                mod_h1: v.mod_h1.clone(),
                info_size: info.0,
                mod_size: gomod.0,
                zip_size: zip.0,
                info_mtime: info.1,
                mod_mtime: gomod.1,
                zip_mtime: zip.1,
                record_id: v.lookup.as_ref().map(|l| l.record_id),
                zip_sha256: Some(hex(&v.zip_sha256)),
                info_sha256: Some(hex(&v.info_sha256)),
            })
        })();
        if let Some((tmp, _)) = &lookup {
            let _ = std::fs::remove_file(tmp);
        }
        let _ = std::fs::remove_file(&v.info);
        let _ = std::fs::remove_file(&v.mod_file);
        let _ = std::fs::remove_file(&v.zip);
        match result {
            Ok(p) => published.push(p),
            Err(e) => failures.push(((v.todo.module_id, m, ver), format!("cannot publish: {e}"))),
        }
    }
    tree.sync_to_disk().map_err(|e| e.to_string())?;
    Ok((published, failures))
}

/// Writes a lookup body to a temporary file, unless the tree already holds it.
fn stage_lookup(
    tree: &Tree,
    sumdb_name: &str,
    todo: &Todo,
    body: &[u8],
) -> Result<Option<(PathBuf, String)>, String> {
    let rel = layout::lookup(sumdb_name, &todo.path, &todo.version).map_err(|e| e.to_string())?;
    let dest = tree.path_of(&rel).map_err(|e| e.to_string())?;
    if std::fs::read(&dest).is_ok_and(|cur| cur == body) {
        return Ok(None);
    }
    let tmp = tree.temp_path("lookup");
    std::fs::write(&tmp, body).map_err(|e| format!("cannot write `{}`: {e}", tmp.display()))?;
    Ok(Some((tmp, rel)))
}

/// `.mod` and `.zip` are written once: if the file is already in place with the
/// same content (a run killed after renaming, before recording), it is kept.
fn install_immutable(
    tree: &Tree,
    tmp: &std::path::Path,
    rel: &str,
    sha256: &[u8; 32],
) -> Result<(i64, i64), String> {
    install_immutable_with(tree, tmp, rel, sha256, sha256_file)
}

/// [`install_immutable`] with the hash of the file in place computed by
/// `hash_in_place` (a seam for tests: as root, no file is unreadable).
fn install_immutable_with(
    tree: &Tree,
    tmp: &std::path::Path,
    rel: &str,
    sha256: &[u8; 32],
    hash_in_place: impl Fn(&std::path::Path) -> std::io::Result<[u8; 32]>,
) -> Result<(i64, i64), String> {
    let dest = tree.path_of(rel).map_err(|e| e.to_string())?;
    if let Ok(meta) = std::fs::symlink_metadata(&dest) {
        if meta.is_file() {
            // A file that cannot be read is not known to differ: refuse to
            // replace it rather than rename over what may be good bytes.
            let current = hash_in_place(&dest).map_err(|e| {
                format!(
                    "`{}` is already in place but cannot be read ({e}); refusing to replace it",
                    dest.display()
                )
            })?;
            if &current == sha256 {
                let _ = std::fs::remove_file(tmp);
                return store::stat(&dest).map_err(|e| e.to_string());
            }
        }
        if meta.file_type().is_symlink() {
            // Never ours: a link where a module file belongs is damage to repair.
            tree.remove_file(rel).map_err(|e| e.to_string())?;
        }
    }
    let dest = tree.install(tmp, rel).map_err(|e| e.to_string())?;
    store::stat(&dest).map_err(|e| e.to_string())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub fn sha256_file(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 8.5: an unreadable `.zip` at its final path is not "different":
    /// it is never renamed over.
    #[test]
    fn unreadable_immutable_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::open(&dir.path().join("out")).unwrap();
        let rel = "example.com/m/@v/v1.0.0.zip";
        tree.write_file(rel, b"the bytes in place").unwrap();
        let tmp = tree.temp_path("zip");
        std::fs::write(&tmp, b"new bytes").unwrap();
        let sha: [u8; 32] = Sha256::digest(b"new bytes").into();
        let err = install_immutable_with(&tree, &tmp, rel, &sha, |_| {
            Err(std::io::Error::from_raw_os_error(libc::EIO))
        })
        .unwrap_err();
        assert!(err.contains("cannot be read"), "{err}");
        assert!(err.contains("v1.0.0.zip"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("out").join(rel)).unwrap(),
            b"the bytes in place"
        );
        // A readable file with other bytes is damage, and is replaced.
        install_immutable(&tree, &tmp, rel, &sha).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("out").join(rel)).unwrap(),
            b"new bytes"
        );
    }
}
