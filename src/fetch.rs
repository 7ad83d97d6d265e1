//! Fetch: the worker pool, and the one fetch pass every command that brings
//! versions in runs ([`pass`]: sync, its early passes beside a long walk,
//! `verify --repair`, import). `mirror.workers` versions at once: each
//! version's lookup (with its signature, consistency and inclusion proofs),
//! `.info`, `.mod` and `.zip` stream to temporary files, are checked
//! ([`crate::check`]) and handed to the publisher ([`crate::publish`]) in
//! batches.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc};

use crate::check::{Fetched, INFO_LIMIT, Refusal, check_version};
use crate::check::{Verified, VersionError, failed, fetch_err};
use crate::context::{Gates, RunContext};
use crate::fatal::Fatal;
use crate::gomod::{self, zip as modzip};
use crate::http::list::Avoid;
use crate::publish::{BATCH, publish_loop};
use crate::report::summary::{SyncReport, VersionFailure};
use crate::report::{self, Reporter};
use crate::services::Services;
use crate::settings::Settings;
use crate::source::{Origin, OriginError, VersionFile};
use crate::state::{self, PinnedHash, Todo};
use crate::trust::client::LogClient;
use crate::trust::save_heads;

/// Temporary files removed on drop unless kept.
struct Temps(Vec<PathBuf>);

impl Drop for Temps {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Where the versions to fetch come from.
pub enum WorkSource {
    /// Due versions from the state database, a page at a time.
    Due { now: i64, retry_failed: bool },
    /// An explicit list (repairs).
    List(Vec<Todo>),
}

/// One fetch pass: the run's checksum-database client (opened, its head
/// refreshed and saved, on the run's first pass), then `due` versions from
/// `work` fetched, checked and published, then the heads the pass accepted
/// saved. Counts, failures and what each upstream did go into `report`.
pub async fn pass(
    settings: &Settings,
    svc: &Services,
    work: WorkSource,
    due: u64,
    out: &Reporter,
    report: &mut SyncReport,
) -> Result<(), Fatal> {
    let client = svc.log(settings).await?;
    fetch_and_publish(settings, svc, &client, work, due, out, report, None).await
}

/// [`pass`] started before the run's newest checksum-database head is
/// proven: the downloads and lookup requests begin at once, on the client as
/// [`Services::opened_log`] gives it; each lookup is verified once
/// `gates.head` opens (the caller has accepted the newest head), and nothing
/// is published until `gates.ready` does (its tiles are stored too). If a
/// gate's sender goes away first, the run is stopping: nothing is published.
pub async fn pass_before_ready(
    settings: &Settings,
    svc: &Services,
    work: WorkSource,
    due: u64,
    out: &Reporter,
    report: &mut SyncReport,
    gates: Gates,
) -> Result<(), Fatal> {
    let client = svc.opened_log(settings).await?;
    fetch_and_publish(settings, svc, &client, work, due, out, report, Some(gates)).await
}

/// The pass itself, on `client` (see [`pass`] and [`pass_before_ready`]).
#[allow(clippy::too_many_arguments)]
async fn fetch_and_publish(
    settings: &Settings,
    svc: &Services,
    client: &Arc<LogClient>,
    source: WorkSource,
    due: u64,
    out: &Reporter,
    report: &mut SyncReport,
    gates: Option<Gates>,
) -> Result<(), Fatal> {
    let db = &svc.db;
    let shared = Arc::new(RunContext {
        settings: settings.clone(),
        upstream: svc.upstreams.http.clone(),
        client: client.clone(),
        tree: svc.tree.clone(),
        stop: AtomicBool::new(false),
        all_dispatched: AtomicBool::new(false),
        gates,
        fatal: Mutex::new(None),
        failures: Mutex::new(Vec::new()),
        notices: Mutex::new(Vec::new()),
        security: Mutex::new(Vec::new()),
    });
    out.start("fetching", Some(due));
    let done = Arc::new(AtomicU64::new(0));
    let gone = Arc::new(AtomicU64::new(0));
    let not_yet = Arc::new(AtomicU64::new(0));
    let (vtx, vrx) = mpsc::channel::<Verified>(BATCH * 2);

    let publisher = {
        let shared = shared.clone();
        let db = db.clone();
        tokio::spawn(async move { publish_loop(shared, db, vrx).await })
    };

    let origin = svc.upstreams.origin()?;
    // `mirror.workers` versions download at once; a version whose files are
    // in hand gives its download slot to the next while it is checked, at
    // most one check per core at a time (inflating and hashing a zip is the
    // CPU's work; more at once only slows each down). At most twice
    // `mirror.workers` versions are in hand at once, checked or not.
    let sem = Arc::new(Semaphore::new(settings.workers * 2));
    let downloads = Arc::new(Semaphore::new(settings.workers));
    let checks = Arc::new(Semaphore::new(
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    let mut after: Option<(i64, String)> = None;
    let mut source = source;
    let mut list = match &mut source {
        WorkSource::List(l) => Some(std::mem::take(l)),
        WorkSource::Due { .. } => None,
    };
    'pages: loop {
        let page = match (&source, list.take()) {
            (_, Some(l)) => l,
            (WorkSource::Due { now, retry_failed }, None) => {
                let (a, now, retry_failed) = (after.clone(), *now, *retry_failed);
                db.call(move |s| {
                    s.todo_page(
                        a.as_ref().map(|(i, v)| (*i, v.as_str())),
                        500,
                        now,
                        retry_failed,
                    )
                })
                .await?
            }
            (WorkSource::List(_), None) => Vec::new(),
        };
        if page.is_empty() {
            break;
        }
        after = page.last().map(|t| (t.module_id, t.version.clone()));
        // The supply-chain policy first: held and denied versions are
        // recorded, not downloaded (a sync's due versions alone cool down).
        let cooldown = matches!(source, WorkSource::Due { .. });
        let page =
            crate::plan::screen(&settings.policy, db, page, cooldown, &mut report.policy).await?;
        for todo in page {
            // A stop signal ends the wait for a free worker too.
            let permit = tokio::select! {
                p = sem.clone().acquire_owned() => p.expect("semaphore open"),
                () = crate::interrupt::wait() => break 'pages,
            };
            if shared.stop.load(Ordering::SeqCst) || crate::interrupt::received().is_some() {
                break 'pages;
            }
            // Reap finished tasks so the set stays small.
            while tasks.try_join_next().is_some() {}
            {
                let (downloads, checks) = (downloads.clone(), checks.clone());
                let (shared, origin, db, vtx, done, gone, not_yet) = (
                    shared.clone(),
                    origin.clone(),
                    db.clone(),
                    vtx.clone(),
                    done.clone(),
                    gone.clone(),
                    not_yet.clone(),
                );
                tasks.spawn(async move {
                    let id = format!("{}@{}", todo.path, todo.version);
                    let pins = if todo.pinned {
                        let (mid, ver) = (todo.module_id, todo.version.clone());
                        match db.call(move |s| s.pinned_hashes(mid, &ver)).await {
                            Ok(p) => p,
                            Err(e) => {
                                shared.fail_run(e.into());
                                Vec::new()
                            }
                        }
                    } else {
                        Vec::new()
                    };
                    let slots = Slots {
                        download: downloads.acquire_owned().await.expect("semaphore open"),
                        checks: &checks,
                    };
                    let result =
                        process_version(&shared, origin.as_ref(), todo.clone(), &pins, slots).await;
                    // What no checksum database vouches for, the ledger does.
                    let result = match result {
                        Ok(v) if shared.settings.sumdb.skips(&v.todo.path) => {
                            let from = origin.route(&v.todo.path).unwrap_or(origin.as_ref());
                            crate::private::ledger::gate(&db, v, &from.describe()).await
                        }
                        other => other,
                    };
                    match result {
                        Ok(v) => {
                            // The publisher owns it now; if it is gone (fatal), the temps go too.
                            let _ = vtx.send(v).await;
                        }
                        Err(VersionError::NotFound(m)) => {
                            let (mid, ver, msg) = (todo.module_id, todo.version.clone(), m.clone());
                            let grace = shared.settings.prune.missing_grace_secs();
                            let recorded = db
                                .call(move |s| {
                                    s.mark_not_found(mid, &ver, &msg, report::now(), grace)
                                })
                                .await;
                            match recorded {
                                Ok(state::NotFound::NotYet { retry_at }) => {
                                    not_yet.fetch_add(1, Ordering::Relaxed);
                                    shared.notices.lock().unwrap().push(format!(
                                        "{id}: not on the upstream yet ({m}); asked again after {}",
                                        report::duration(Duration::from_secs(
                                            retry_at.saturating_sub(report::now()).max(0) as u64
                                        ))
                                    ));
                                }
                                Ok(state::NotFound::Gone { missing_since }) => {
                                    gone.fetch_add(1, Ordering::Relaxed);
                                    shared.notices.lock().unwrap().push(format!(
                                        "{id}: not on the upstream ({m}), missing for {}: given up",
                                        report::duration(Duration::from_secs(
                                            report::now().saturating_sub(missing_since).max(0)
                                                as u64
                                        ))
                                    ));
                                }
                                Err(e) => shared.fail_run(e.into()),
                            }
                        }
                        Err(VersionError::Failed { message, security }) => {
                            let (mid, ver, msg) =
                                (todo.module_id, todo.version.clone(), message.clone());
                            if let Err(e) = db
                                .call(move |s| s.mark_failed(mid, &ver, &msg, report::now()))
                                .await
                            {
                                shared.fail_run(e.into());
                            }
                            shared.failures.lock().unwrap().push(VersionFailure {
                                module: todo.path.clone(),
                                version: todo.version.clone(),
                                error: message,
                                security,
                            });
                        }
                        Err(VersionError::Fatal(e)) => shared.fail_run(e.into()),
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    drop(permit);
                });
            }
            let n = done.load(Ordering::Relaxed);
            out.progress(
                n,
                &format!(
                    "{} received",
                    report::bytes(shared.upstream.bytes_received())
                ),
            );
            // Report failures as they happen, not only at the end.
            drain_events(&shared, out, report);
        }
    }
    shared.all_dispatched.store(true, Ordering::SeqCst);
    // Interrupted: the downloads in hand are abandoned (dropping a worker
    // removes its temporary files; its version stays due for the next run),
    // and what was already verified is still published below.
    let mut aborted = false;
    loop {
        let next = tokio::select! {
            r = tasks.join_next() => r,
            () = crate::interrupt::wait(), if !aborted => {
                tasks.abort_all();
                aborted = true;
                continue;
            }
        };
        let Some(r) = next else { break };
        match r {
            Err(e) if e.is_cancelled() => {}
            Err(e) => shared.fail_run(Fatal::crashed("a worker", e)),
            Ok(()) => {}
        }
        out.progress(
            done.load(Ordering::Relaxed),
            &format!(
                "{} received",
                report::bytes(shared.upstream.bytes_received())
            ),
        );
    }
    drop(vtx);
    let published = publisher
        .await
        .map_err(|e| Fatal::crashed("the publisher", e))?;
    out.finish();
    drain_events(&shared, out, report);
    report.attempted = done.load(Ordering::Relaxed);
    report.gone = gone.load(Ordering::Relaxed);
    report.not_yet = not_yet.load(Ordering::Relaxed);
    match published {
        Ok(n) => report.published = n.published,
        Err(e) => shared.fail_run(e),
    }
    report.failed = report.failures.len() as u64;
    let pass = svc.upstreams.take_stats();
    // A configured `file://` proxy (a module cache) is an upstream.
    let configured = |url: &str| {
        settings
            .proxy
            .iter()
            .any(|e| crate::redact::redact_url(&e.url).trim_end_matches('/') == url)
    };
    let records: Vec<state::UpstreamRecord> = pass
        .iter()
        // A bundle being imported is read through `file://`: not an upstream.
        .filter(|u| u.requests > 0 && (!u.url.starts_with("file:") || configured(&u.url)))
        .map(|u| state::UpstreamRecord {
            url: u.url.clone(),
            requests: u.requests as i64,
            files: u.files as i64,
            bytes: u.bytes as i64,
            not_found: u.not_found as i64,
            failures: u.failures as i64,
            refused: u.refused as i64,
            last_error: u.last_error.clone(),
            ..Default::default()
        })
        .collect();
    crate::http::list::add_stats(&mut report.upstreams, pass);
    if !records.is_empty()
        && let Err(e) = db
            .call(move |s| s.record_upstreams(report::now(), &records))
            .await
    {
        shared.fail_run(e.into());
    }
    if let Some(f) = shared
        .fatal
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        return Err(f);
    }
    crate::fatal::stop_if_interrupted()?;
    // The heads this pass accepted (its lookups'), for the next run.
    save_heads(db, client).await
}

/// Prints the warnings and failures gathered since the last call; the
/// failures move into the report.
fn drain_events(shared: &RunContext, out: &Reporter, report: &mut SyncReport) {
    for n in std::mem::take(&mut *shared.notices.lock().unwrap()) {
        out.warn(&n);
    }
    for line in std::mem::take(&mut *shared.security.lock().unwrap()) {
        out.error(&line);
        report.security_events.push(line);
    }
    for f in std::mem::take(&mut *shared.failures.lock().unwrap()) {
        out.error(&format!(
            "{}{}@{}: {}",
            if f.security { "SECURITY: " } else { "" },
            f.module,
            f.version,
            f.error
        ));
        report.failures.push(f);
    }
}

/// An origin's failure as the version's: "not here" keeps its own variant
/// (the caller's not-found bookkeeping), a file that cannot be named is
/// reported as the naming error alone.
fn origin_err(what: &str, e: OriginError) -> VersionError {
    match e {
        OriginError::Fetch(e) => fetch_err(what, e),
        OriginError::Name { reason, .. } => failed(reason),
        e @ OriginError::NoneLeft => failed(e.to_string()),
        OriginError::Made {
            message,
            not_found: true,
        } => VersionError::NotFound(format!("{what}: {message}")),
        OriginError::Made { message, .. } => failed(format!("{what}: {message}")),
    }
}

async fn fetch_files(
    origin: &dyn Origin,
    m: &str,
    v: &str,
    with_zip: bool,
    temps: &Temps,
    avoid: Avoid,
) -> Result<Fetched, VersionError> {
    let info = origin.get_from(m, v, VersionFile::Info, INFO_LIMIT, avoid);
    let gomod = origin.get_to_file_from(
        m,
        v,
        VersionFile::Mod,
        modzip::MAX_GO_MOD,
        &temps.0[1],
        avoid,
    );
    let zip = async {
        if with_zip {
            origin
                .get_to_file_from(
                    m,
                    v,
                    VersionFile::Zip,
                    modzip::MAX_ZIP_FILE,
                    &temps.0[2],
                    avoid,
                )
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    };
    let (info, gomod, zip) = tokio::join!(info, gomod, zip);
    Ok(Fetched {
        info: info.map_err(|e| origin_err(".info", e))?,
        gomod: gomod.map_err(|e| origin_err(".mod", e))?,
        zip: zip.map_err(|e| origin_err(".zip", e))?,
    })
}

/// A worker's claim on the pass's bounded resources: its download slot,
/// given back once the files are in hand, and the checks (one per core).
struct Slots<'a> {
    download: tokio::sync::OwnedSemaphorePermit,
    checks: &'a Semaphore,
}

/// Fetches and verifies one version into temporary files: `.info`, `.mod`
/// and, unless the version is graph-only, `.zip`. `pins` are the hashes the
/// `from_files` go.sum files give for it: each must equal what was fetched
/// (and so the checksum database's record), or the version is refused.
///
/// When one upstream of a list serves bytes that fail verification, the
/// version is fetched again from the others (whatever the separators say);
/// an upstream the checksum database refutes is named in a `SECURITY` line
/// and the run exits 1 even if another upstream then served the version.
async fn process_version(
    shared: &RunContext,
    origin: &dyn Origin,
    todo: Todo,
    pins: &[PinnedHash],
    slots: Slots<'_>,
) -> Result<Verified, VersionError> {
    let (m, v) = (todo.path.as_str(), todo.version.as_str());
    // Private modules are made from their repositories, not the proxy list.
    let origin = origin.route(m).unwrap_or(origin);
    gomod::check(m, v).map_err(|e| VersionError::Failed {
        message: format!("invalid module version: {e}"),
        security: false,
    })?;
    let tree = &shared.tree;
    let temps = Temps(vec![
        tree.temp_path(&format!("{v}.info")),
        tree.temp_path(&format!("{v}.mod")),
        tree.temp_path(&format!("{v}.zip")),
    ]);

    let skip = shared.settings.sumdb.skips(m);
    let lookup = async {
        if skip {
            Ok(None)
        } else {
            let body = shared.client.fetch_lookup(m, v).await?;
            if let Some(g) = &shared.gates
                && !Gates::open(&g.head).await
            {
                // The run is stopping (its head refused): this worker is
                // about to be dropped; nothing of it is published.
                std::future::pending::<()>().await;
            }
            shared.client.verify_lookup(m, v, body).await.map(Some)
        }
    };
    let mut avoid = Avoid::none();
    let with_zip = todo.zip;
    // The download slot is given back as soon as the files are in hand: the
    // lookup's proof and the check below need none.
    let download = slots.download;
    let files = async {
        let fetched = fetch_files(origin, m, v, with_zip, &temps, avoid).await;
        drop(download);
        fetched
    };
    let (lookup, fetched) = tokio::join!(lookup, files);
    // A security failure (a forked log, a bad signature) outranks everything
    // else; then "no upstream has it" outranks a checksum database that
    // cannot answer for it (a private module not in `sumdb.skip`, an outage):
    // a version no upstream serves goes missing, then gone, instead of
    // failing on every run.
    let (lookup, mut fetched) = match (lookup.map_err(VersionError::from), fetched) {
        (Err(e @ VersionError::Fatal(_)), _) => return Err(e),
        (_, Err(e @ VersionError::NotFound(_))) => return Err(e),
        (lookup, fetched) => (lookup?, fetched?),
    };
    loop {
        let check = slots.checks.acquire().await.expect("semaphore open");
        let checked = check_version(
            m,
            v,
            lookup.as_ref(),
            shared.client.name(),
            &fetched,
            &temps.0[0],
            &temps.0[2],
            pins,
        )
        .await;
        drop(check);
        match checked {
            Ok(checked) => {
                let Fetched { info, gomod, zip } = fetched;
                let mut temps = temps;
                let files = std::mem::take(&mut temps.0);
                let [info_path, mod_path, zip_path]: [PathBuf; 3] =
                    files.try_into().expect("three temps");
                if zip.is_none() {
                    // Never written; nothing to keep.
                    drop(Temps(vec![zip_path.clone()]));
                }
                return Ok(Verified {
                    todo,
                    info: info_path,
                    info_time: checked.info_time,
                    mod_file: mod_path,
                    zip: zip.as_ref().map(|_| zip_path),
                    mod_h1: checked.mod_h1,
                    zip_h1: checked
                        .zip_h1
                        .or_else(|| lookup.as_ref().map(|l| l.zip_h1.clone()))
                        .unwrap_or_default(),
                    mod_sha256: gomod.value.sha256,
                    zip_sha256: zip.map(|z| z.value.sha256),
                    info_sha256: Sha256::digest(&info.value).into(),
                    lookup,
                });
            }
            Err(Refusal::Other(e)) => return Err(e),
            Err(Refusal::From {
                by,
                error,
                security,
            }) => {
                let message = match &error {
                    VersionError::Failed { message, .. } => message.clone(),
                    _ => String::new(),
                };
                origin.note_refused(by, &message);
                avoid = avoid.with(by);
                if origin.upstreams() == 1 {
                    return Err(error);
                }
                let who = origin.upstream_name(by);
                let left = (0..origin.upstreams()).any(|i| !avoid.has(i));
                let line = format!(
                    "{}upstream {who} served {m}@{v} wrong: {message}; {}",
                    if security { "SECURITY: " } else { "" },
                    if left {
                        "fetching it from the next upstream"
                    } else {
                        "no other upstream to ask"
                    }
                );
                if !left {
                    return Err(VersionError::Failed {
                        message: format!(
                            "every upstream served it wrong (the last, {who}: {message})"
                        ),
                        security,
                    });
                }
                if security {
                    shared.security.lock().unwrap().push(line);
                } else {
                    shared.notices.lock().unwrap().push(line);
                }
                fetched = fetch_files(origin, m, v, with_zip, &temps, avoid).await?;
            }
        }
    }
}
