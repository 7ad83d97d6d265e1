//! The services a command works with, built once per command from the
//! settings: the one HTTP client, the proxy list (the origin of versions'
//! files), the checksum database's list, the discovery sources (the index
//! or another mirror's feed, seeds, toolchains, project files, the access
//! logs), the store the tree lives in and the state database's thread.
//!
//! [`crate::settings`] is data (parsed and checked); this module is where that
//! data becomes working parts, and the runner ([`crate::runner`]) is the only
//! caller that builds them: a command's stages receive them, so every stage of
//! one command shares one connection pool, one in-flight limit, one set of
//! per-upstream counts and health, and one store. Like ripgrep's `HiArgs`,
//! which builds the matcher, searcher and printer from checked arguments.

use std::path::Path;
use std::sync::Arc;

use reqwest::Url;

use crate::fatal::Fatal;
use crate::http::Upstream;
use crate::http::list::{EntryStats, UpstreamList};
use crate::private::{PrivateOrigin, Routed};
use crate::settings::Settings;
use crate::settings::lists::{Fallback, ListEntry};
use crate::source::demand::{Demand, Screen};
use crate::source::feed::MirrorFeed;
use crate::source::files::FromFiles;
use crate::source::proxy::ProxyOrigin;
use crate::source::seeds::Seeds;
use crate::source::toolchains::{Toolchains, WithoutToolchains};
use crate::source::walk::IndexFeed;
use crate::source::{Discovery, Origin};
use crate::state::db::Db;
use crate::store::Store;
use crate::trust::RunLog;
use crate::trust::client::{LogClient, SignedHead};

/// Where a command's bytes come from: the one HTTP client, the proxy list
/// and the checksum database's list, all through that client.
pub struct Upstreams {
    /// The one HTTP client: its connection pool and its in-flight limit
    /// (`mirror.workers`) are the command's, whatever a request is for.
    pub http: Arc<Upstream>,
    /// `None` when `upstream.proxy = "off"` (a mirror fed by `gomirror import`).
    proxy: Option<Arc<ProxyOrigin>>,
    /// `sumdb.url`: its entries' health (and whether a proxy serves
    /// `/sumdb/<name>/`) are remembered for the command.
    sumdb: Arc<UpstreamList>,
    /// `[private]`: modules made from their repositories by the go command
    /// (never for a bundle's upstreams: an import takes what it carries).
    private: Option<Arc<PrivateOrigin>>,
}

impl Upstreams {
    /// The configured upstreams, through a new HTTP client.
    pub fn new(settings: &Settings) -> Result<Upstreams, Fatal> {
        let transfer = crate::http::TransferPolicy::new(settings.min_rate, settings.stall_window);
        let http =
            Upstream::new(settings.timeout, settings.workers, transfer).map_err(Fatal::Stopped)?;
        if let Some(command) = &settings.auth_command {
            http.set_auth(crate::http::auth::AuthCommand::new(command.clone()));
        }
        let mut upstreams = Upstreams::through(
            settings,
            Arc::new(http),
            &settings.proxy,
            &settings.sumdb.urls,
        );
        upstreams.private = settings
            .private
            .as_ref()
            .map(|p| Arc::new(PrivateOrigin::new(p)));
        Ok(upstreams)
    }

    fn through(
        settings: &Settings,
        http: Arc<Upstream>,
        proxy: &[ListEntry],
        sumdb: &[ListEntry],
    ) -> Upstreams {
        let origin = (!proxy.is_empty()).then(|| {
            Arc::new(ProxyOrigin::new(Arc::new(UpstreamList::new(
                http.clone(),
                proxy,
            ))))
        });
        let sumdb = Arc::new(UpstreamList::for_sumdb(
            http.clone(),
            sumdb,
            &settings.sumdb.name,
        ));
        Upstreams {
            http,
            proxy: origin,
            sumdb,
            private: None,
        }
    }

    /// A bundle's unpacked tree at `dir` as the only upstream (an import):
    /// its files for the proxy, its `sumdb/<name>/` for the checksum
    /// database, read through `file://` URLs by the same HTTP client.
    pub fn for_bundle(&self, settings: &Settings, dir: &Path) -> Result<Upstreams, Fatal> {
        let base = Url::from_directory_path(dir).map_err(|()| {
            Fatal::stopped(format!(
                "`{}` is not an absolute directory path",
                dir.display()
            ))
        })?;
        let sumdb = crate::http::join(&base, &format!("sumdb/{}/", settings.sumdb.name));
        let entry = |url| ListEntry {
            url,
            fallback: Fallback::NotFound,
        };
        Ok(Upstreams::through(
            settings,
            self.http.clone(),
            &[entry(base)],
            &[entry(sumdb)],
        ))
    }

    /// Where versions' files come from: the proxy list, and for private
    /// modules their repositories.
    pub fn origin(&self) -> Result<Arc<dyn Origin>, Fatal> {
        let public = match &self.proxy {
            Some(o) => o.clone() as Arc<dyn Origin>,
            None => return Err(no_proxy()),
        };
        Ok(match &self.private {
            Some(private) => Arc::new(Routed {
                private: private.clone(),
                public,
            }),
            None => public,
        })
    }

    /// The origin of private modules, when `[private]` names some.
    pub fn private(&self) -> Option<&Arc<PrivateOrigin>> {
        self.private.as_ref()
    }

    /// Stops a command that will make private versions when the go
    /// command is missing or too old: one clear error before any work.
    pub async fn require_private_tools(&self) -> Result<(), Fatal> {
        match &self.private {
            Some(p) => p
                .require_go()
                .await
                .map_err(|e| Fatal::stopped(e.to_string())),
            None => Ok(()),
        }
    }

    /// What each proxy entry did since the last call (each fetch pass
    /// records its own counts once).
    pub fn take_stats(&self) -> Vec<EntryStats> {
        self.proxy
            .as_ref()
            .map(|o| o.list().take_stats())
            .unwrap_or_default()
    }

    /// A client of the configured checksum database, trusting nothing yet
    /// ([`crate::trust`] anchors it in the stored head); the tiles it reads
    /// are kept in `tree`'s staging area and published through `tree`.
    pub fn log_client(&self, settings: &Settings, tree: &Arc<dyn Store>) -> LogClient {
        LogClient::new(
            settings.sumdb.verifier.clone(),
            self.sumdb.clone(),
            tree.clone(),
        )
        .with_tiles(settings.sumdb.tiles)
    }

    /// What is wanted, in the order a sync walks it: the index feed (unless
    /// `index = "off"`) or another mirror's feed, then the seeds (whose
    /// versions the index usually named already), the toolchains and the
    /// project files. `tree` is the mirror's tree when there is one: project
    /// files read the `.mod` files it already holds from it.
    pub fn discovery(
        &self,
        settings: &Settings,
        tree: Option<Arc<dyn Store>>,
    ) -> Result<Vec<Box<dyn Discovery>>, Fatal> {
        let mut sources: Vec<Box<dyn Discovery>> = Vec::new();
        // With toolchain_versions, the Toolchains source alone says which Go
        // releases are wanted: the feeds' toolchain publications are left out.
        let feed = |d: Box<dyn Discovery>| -> Box<dyn Discovery> {
            if settings.toolchain_versions.is_some() {
                Box::new(WithoutToolchains(d))
            } else {
                d
            }
        };
        if let Some(index) = &settings.index {
            sources.push(feed(Box::new(IndexFeed::new(
                self.http.clone(),
                index.clone(),
                settings.index_since.clone(),
                settings.index_walkers,
            ))));
        }
        if let Some(base) = &settings.follow {
            sources.push(feed(Box::new(MirrorFeed::new(
                self.http.clone(),
                base.clone(),
            ))));
        }
        if !settings.seeds.is_empty() {
            sources.push(Box::new(Seeds::new(self.origin()?, settings.seeds.clone())));
        }
        if !settings.toolchains.is_empty() {
            sources.push(Box::new(Toolchains::new(
                self.origin()?,
                &settings.toolchains,
                settings.toolchain_versions.clone(),
                settings.config_dir.clone(),
                settings.from_files.clone(),
            )));
        }
        if !settings.from_files.is_empty() {
            sources.push(Box::new(FromFiles::new(
                settings.config_dir.clone(),
                settings.from_files.clone(),
                settings.filter.exclude.clone(),
                self.origin()?,
                tree,
            )));
        }
        if !settings.demand.access_logs.is_empty() {
            let d = &settings.demand;
            sources.push(Box::new(Demand::new(
                d.access_logs.clone(),
                // None on a mirror with no upstream: requests only recorded.
                self.origin().ok(),
                d.max_new_modules,
                d.max_new_versions,
                d.keep,
                demand_screen(settings),
            )));
        }
        Ok(sources)
    }
}

/// What may be taken from the access logs: `filter.exclude` and
/// `demand.include` (the supply-chain policy's deny list belongs here too).
pub fn demand_screen(settings: &Settings) -> Screen {
    let (demand, filter) = (settings.demand.clone(), settings.filter.clone());
    Arc::new(move |module: &str, _version: Option<&str>| {
        demand.refuses(&filter, module).map(str::to_string)
    })
}

/// Refuses a mirror with no upstream (`upstream.proxy = "off"`, fed by
/// `gomirror import`) before a command that fetches builds anything.
pub fn require_proxy(settings: &Settings) -> Result<(), Fatal> {
    if settings.proxy.is_empty() {
        Err(no_proxy())
    } else {
        Ok(())
    }
}

fn no_proxy() -> Fatal {
    Fatal::stopped(
        "upstream.proxy is \"off\": this mirror has no upstream to fetch from; it is fed by `gomirror import BUNDLE` (see examples/airgap/)",
    )
}

/// Opens (creating) the configured store: a local directory, or a bucket
/// reached through `upstreams`' HTTP client and the command's runtime.
/// Called on the command's runtime.
pub fn open_store(
    settings: &Settings,
    upstreams: &Upstreams,
) -> Result<Arc<dyn Store>, crate::store::StoreError> {
    if let Some(b) = &settings.bucket {
        return Ok(Arc::new(crate::store::s3::S3Store::open(
            b,
            &settings.s3,
            &settings.output,
            upstreams.http.reqwest_client(),
            tokio::runtime::Handle::current(),
        )?));
    }
    Ok(Arc::new(crate::store::LocalStore::open(&settings.output)?))
}

/// The tree if there is one yet: a dry run must not create it.
pub fn open_store_if_present(
    settings: &Settings,
    upstreams: &Upstreams,
) -> Result<Option<Arc<dyn Store>>, crate::store::StoreError> {
    if settings.bucket.is_some() || settings.output.is_dir() {
        open_store(settings, upstreams).map(Some)
    } else {
        Ok(None)
    }
}

/// What the stages of one command share: the state database's thread, the
/// tree, the upstreams and the checksum database as the command trusts it.
#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub tree: Arc<dyn Store>,
    pub upstreams: Arc<Upstreams>,
    log: Arc<RunLog>,
}

impl Services {
    pub fn new(db: Db, tree: Arc<dyn Store>, upstreams: Upstreams) -> Services {
        Services {
            db,
            tree,
            upstreams: Arc::new(upstreams),
            log: Arc::new(RunLog::default()),
        }
    }

    /// The same state database and tree, with other upstreams (an import's
    /// bundle) and so another checksum-database client.
    pub fn with_upstreams(&self, upstreams: Upstreams) -> Services {
        Services::new(self.db.clone(), self.tree.clone(), upstreams)
    }

    /// The command's checksum-database client: anchored in the stored head,
    /// its newest head fetched, proven and saved on the first call.
    pub async fn log(&self, settings: &Settings) -> Result<Arc<LogClient>, Fatal> {
        self.log
            .client(&self.db, || self.upstreams.log_client(settings, &self.tree))
            .await
    }

    /// The run's checksum-database client before its head is refreshed
    /// ([`crate::trust::RunLog::opened`]): for downloads that start while
    /// the newest head is being proven.
    pub async fn opened_log(&self, settings: &Settings) -> Result<Arc<LogClient>, Fatal> {
        self.log
            .opened(&self.db, || self.upstreams.log_client(settings, &self.tree))
            .await
    }

    /// The newest head, proven consistent with the trusted one and saved
    /// (no second request when [`Services::log`] has just fetched it).
    pub async fn refresh_log(&self, settings: &Settings) -> Result<SignedHead, Fatal> {
        self.log
            .refresh(&self.db, || self.upstreams.log_client(settings, &self.tree))
            .await
    }

    /// Rewrites `sumdb/<name>/supported` and `latest` for the largest head
    /// the mirror serves ([`crate::trust::restore_served_head`]).
    pub async fn restore_served_head(&self, settings: &Settings) -> Result<(), Fatal> {
        let client = self.upstreams.log_client(settings, &self.tree);
        crate::trust::restore_served_head(&self.db, client).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

    fn settings(index: &str, filter: &str) -> Settings {
        let text = format!(
            r#"
[upstream]
proxy = "https://proxy.golang.org"
index = "{index}"
[sumdb]
key = "{KEY}"
[mirror]
output = "mirror"
state = "state.db"
[filter]
{filter}
"#
        );
        Settings::parse(
            &text,
            Path::new("/etc/gomirror/sync.toml"),
            Path::new("/etc/gomirror"),
        )
        .unwrap()
    }

    fn described(s: &Settings) -> Vec<String> {
        let u = Upstreams::new(s).unwrap();
        u.discovery(s, None)
            .unwrap()
            .iter()
            .map(|d| d.describe())
            .collect()
    }

    #[test]
    fn discovery_follows_the_configuration() {
        let follow = settings(
            "mirror+https://up.example/tree",
            "include = [\"golang.org/x\"]",
        );
        assert_eq!(
            described(&follow),
            ["the change feed of https://up.example/tree/"]
        );
        let seeds = settings("off", "include = []\nseed = [\"golang.org/x/mod\"]");
        assert_eq!(described(&seeds).len(), 1);
        let toolchains = settings("off", "toolchains = [\"linux-amd64\", \"darwin-arm64\"]");
        let d = described(&toolchains);
        assert_eq!(d.len(), 1);
        assert!(
            d[0].starts_with("toolchains (darwin-arm64, linux-amd64)"),
            "{d:?}"
        );
        let files = settings("off", "include = []\nfrom_files = [\"projects/*/go.sum\"]");
        let d = described(&files);
        assert!(d.len() == 1 && d[0].starts_with("files ("), "{d:?}");
        let index_and_toolchains = settings(
            "https://index.golang.org/index",
            "include = []\ntoolchains = [\"linux-arm64\"]",
        );
        assert_eq!(described(&index_and_toolchains).len(), 2);
    }

    #[test]
    fn a_mirror_without_a_proxy_has_no_origin_but_says_why() {
        let mut s = settings("off", "include = []\nseed = [\"golang.org/x/mod\"]");
        s.proxy.clear();
        let u = Upstreams::new(&s).unwrap();
        let err = u.origin().err().unwrap().to_string();
        assert!(err.contains("gomirror import"), "{err}");
    }
}
