//! Publish: verified versions go into the tree in an order that keeps every
//! client's view consistent. Per batch: the checksum-database tiles clients
//! need, then each lookup, `.zip`, `.mod`, `.info` (renamed into place), then
//! the state database, then `@v/list` and `@latest` of the touched modules
//! ([`lists`]), then `sumdb/<name>/latest`. A version is listed only once
//! everything it needs is in place.

pub mod feed;
pub mod lists;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tempfile::TempPath;
use tokio::sync::mpsc;

use crate::check::Verified;
use crate::context::RunContext;
use crate::fatal::Fatal;
use crate::report::{self, summary::VersionFailure};
use crate::state::db::Db;
use crate::state::{Published, Todo};
use crate::store::{Store, layout};
use crate::trust::save_heads;
use lists::rewrite_dirty_lists;

/// Verified versions published together.
pub const BATCH: usize = 64;

const BATCH_WAIT: Duration = Duration::from_millis(500);

/// Once every version of a pass is with a worker, how long a partial batch
/// waits after the last version arrived before it is published anyway.
const TAIL_IDLE: Duration = Duration::from_millis(30);

/// How long a partly filled batch waits for more versions. Debug builds take
/// `GOMIRROR_TEST_BATCH_WAIT_MS` so that the crash-point tests can make the
/// batches (and so the durability points of a run) the same on every run,
/// however loaded the machine.
fn batch_wait() -> Duration {
    crate::env::test::batch_wait()
        .or_else(crate::env::test::batch_deadline)
        .unwrap_or(BATCH_WAIT)
}

/// [`TAIL_IDLE`], unless a test fixed the batches (then only a full batch,
/// the deadline or the end of the pass publishes).
fn tail_idle() -> Option<Duration> {
    match crate::env::test::batch_wait() {
        Some(_) => None,
        None => Some(TAIL_IDLE),
    }
}

#[derive(Default)]
pub struct PublishCount {
    pub published: u64,
}

/// Receives verified versions and publishes them in batches: a batch is
/// published when it is full, when its first version has waited
/// [`BATCH_WAIT`], when the pass ends, or — once every version of the pass is
/// with a worker — when no version has arrived for [`TAIL_IDLE`]. The last
/// rule is for the end of a pass, where a few large zips are still being
/// checked: the versions verified before them are published meanwhile
/// instead of waiting for them (or for the deadline).
pub async fn publish_loop(
    shared: Arc<RunContext>,
    db: Db,
    mut rx: mpsc::Receiver<Verified>,
) -> Result<PublishCount, Fatal> {
    let mut count = PublishCount::default();
    // The largest head served before, read when the first batch may be
    // published (a gated pass's tile fill may serve a new one until then).
    let mut previous_max: Option<i64> = None;
    let mut batch: Vec<Verified> = Vec::new();
    let mut ready = false;
    loop {
        let deadline = tokio::time::sleep(batch_wait());
        tokio::pin!(deadline);
        let idle = tail_idle();
        let closed = loop {
            let quiet = tokio::time::sleep(idle.unwrap_or(Duration::MAX));
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
                _ = quiet, if idle.is_some() && !batch.is_empty() => {
                    if shared.all_dispatched.load(Ordering::SeqCst) {
                        break false;
                    }
                }
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
        if !batch.is_empty() && !ready {
            // A gated pass's head may still be being proven: nothing is
            // published before it is (and nothing at all if that fails).
            ready = wait_ready(&shared).await;
            if ready {
                previous_max = db.call(|s| s.largest_served_head()).await?.map(|h| h.size);
            } else {
                shared.stop.store(true, Ordering::SeqCst);
                discard_async(std::mem::take(&mut batch)).await;
                if closed {
                    return Ok(count);
                }
                continue;
            }
        }
        if !batch.is_empty() {
            let items = std::mem::take(&mut batch);
            match publish_batch(&shared, &db, items, previous_max).await {
                Ok((n, max)) => {
                    count.published += n;
                    previous_max = max.or(previous_max);
                }
                Err(e) => shared.fail_run(e),
            }
        }
        if closed {
            return Ok(count);
        }
    }
}

/// Waits until the run says publishing may start: `false` if it never will
/// (the head could not be proven, the run stopped).
async fn wait_ready(shared: &RunContext) -> bool {
    match &shared.gates {
        Some(g) => crate::context::Gates::open(&g.ready).await,
        None => true,
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
        if let Some(z) = &v.zip {
            let _ = std::fs::remove_file(z);
        }
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
            return Err(e.into());
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
    let store = shared.tree.clone();
    let name = client.name().to_string();
    let installed = tokio::task::spawn_blocking(move || install_batch(&*store, &name, items))
        .await
        .map_err(|e| Fatal::crashed("publishing", e))?;
    let (published, failures) = installed.map_err(|e| Fatal::context("cannot publish", e))?;
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
    client.write_static_files().await.map_err(Fatal::from)?;
    rewrite_dirty_lists(db, &shared.tree).await?;
    // 5. The feed names them only now that their files and lists are in place.
    feed::write_feed(&shared.settings, db, &shared.tree).await?;
    Ok((n, sizes.last().copied()))
}

type InstallFailure = ((i64, String, String), String);

/// Puts a batch's verified files into the store. Per version: lookup, `.zip`,
/// `.mod`, `.info` — `.info` last, so a version is never visible before its
/// content (the go command starts from `.info` or the list). Lookups are
/// staged as temporary files first so that one barrier makes every file's
/// data durable before any rename, and a second one makes the renames durable
/// before the state database records them.
fn install_batch(
    store: &dyn Store,
    sumdb_name: &str,
    items: Vec<Verified>,
) -> Result<(Vec<Published>, Vec<InstallFailure>), String> {
    let mut failures = Vec::new();
    // Stage the lookups.
    let mut staged: Vec<(Verified, Option<(TempPath, String)>)> = Vec::with_capacity(items.len());
    for v in items {
        let lookup = match &v.lookup {
            None => Ok(None),
            Some(l) => stage_lookup(store, sumdb_name, &v.todo, &l.body),
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
    store.barrier().map_err(|e| e.to_string())?;
    // Versions go in independently of each other (each one's own files in
    // order); a store that gains from it (a bucket: one request per file)
    // takes several at once.
    let threads = store.parallelism().clamp(1, staged.len().max(1));
    let mut published = Vec::with_capacity(staged.len());
    if threads == 1 {
        for (v, lookup) in staged {
            match install_version(store, v, lookup) {
                Ok(p) => published.push(p),
                Err(f) => failures.push(f),
            }
        }
    } else {
        let queue = std::sync::Mutex::new(staged.into_iter());
        let results = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                        let Some((v, lookup)) = next else { break };
                        let r = install_version(store, v, lookup);
                        results.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                    }
                });
            }
        });
        for r in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
            match r {
                Ok(p) => published.push(p),
                Err(f) => failures.push(f),
            }
        }
    }
    store.barrier().map_err(|e| e.to_string())?;
    Ok((published, failures))
}

/// Puts one version's files: lookup, `.zip`, `.mod`, `.info` last.
fn install_version(
    store: &dyn Store,
    v: Verified,
    lookup: Option<(TempPath, String)>,
) -> Result<Published, InstallFailure> {
    let (m, ver) = (v.todo.path.clone(), v.todo.version.clone());
    let result = (|| -> Result<Published, String> {
        if let Some((tmp, rel)) = &lookup {
            store.put(tmp, rel).map_err(|e| e.to_string())?;
        }
        let rel = |ext| layout::version_file(&m, &ver, ext).map_err(|e| e.to_string());
        // A graph-only version has no zip: `.info` and `.mod` only.
        let zip = match (&v.zip, &v.zip_sha256) {
            (Some(z), Some(sha)) => Some(
                store
                    .put_immutable(z, &rel("zip")?, sha)
                    .map_err(|e| e.to_string())?,
            ),
            _ => None,
        };
        let gomod = store
            .put_immutable(&v.mod_file, &rel("mod")?, &v.mod_sha256)
            .map_err(|e| e.to_string())?;
        let info = store
            .put(&v.info, &rel("info")?)
            .map_err(|e| e.to_string())?;
        Ok(Published {
            module_id: v.todo.module_id,
            version: ver.clone(),
            info_time: v.info_time.clone(),
            zip_h1: v.zip_h1.clone(),
            mod_h1: v.mod_h1.clone(),
            info_size: info.size as i64,
            mod_size: gomod.size as i64,
            zip_size: zip.as_ref().map_or(0, |z| z.size as i64),
            info_mtime: info.modified_ns,
            mod_mtime: gomod.modified_ns,
            zip_mtime: zip.as_ref().map_or(0, |z| z.modified_ns),
            record_id: v.lookup.as_ref().map(|l| l.record_id),
            zip_sha256: v.zip_sha256.map(hex::encode),
            info_sha256: Some(hex::encode(v.info_sha256)),
            zip: zip.is_some(),
        })
    })();
    // A staged lookup that was put is gone from the staging area; one
    // that was not is removed when dropped here.
    if let Some((tmp, _)) = lookup
        && result.is_ok()
    {
        drop(tmp.keep());
    }
    // Best effort: whatever is left is removed by the next clean of the staging area.
    let _ = std::fs::remove_file(&v.info);
    let _ = std::fs::remove_file(&v.mod_file);
    if let Some(z) = &v.zip {
        let _ = std::fs::remove_file(z);
    }
    result.map_err(|e| ((v.todo.module_id, m, ver), format!("cannot publish: {e}")))
}

/// Writes a lookup body to a temporary file, unless the tree already holds it.
fn stage_lookup(
    store: &dyn Store,
    sumdb_name: &str,
    todo: &Todo,
    body: &[u8],
) -> Result<Option<(TempPath, String)>, String> {
    let rel = layout::lookup(sumdb_name, &todo.path, &todo.version).map_err(|e| e.to_string())?;
    // One byte more than the body is enough to know the file in place differs;
    // anything unreadable there is replaced (or refused) when it is put.
    if matches!(store.read(&rel, body.len() as u64), Ok(Some(cur)) if cur == body) {
        return Ok(None);
    }
    let mut tmp = store
        .staging()
        .new_file("lookup")
        .map_err(|e| e.to_string())?;
    tmp.write_all(body)
        .map_err(|e| format!("cannot write `{}`: {e}", tmp.path().display()))?;
    Ok(Some((tmp.into_temp_path(), rel)))
}

/// Lower-case hex (the `hex` crate), for callers that name it here.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}
