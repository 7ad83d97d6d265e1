//! A GOPROXY-protocol origin: a list of proxies (one URL is a list of one)
//! with the go command's `,`/`|` failover ([`crate::http::list`]), reached
//! through the process's one HTTP client. The only place that turns a module
//! version into a proxy path (`<escaped module>/@v/<escaped version>.<ext>`).

use std::path::Path;
use std::sync::Arc;

use crate::http::Download;
use crate::http::list::{Avoid, Served, UpstreamList};
use crate::source::{BoxFuture, Origin, OriginError, VersionFile};
use crate::store::layout;

pub struct ProxyOrigin {
    list: Arc<UpstreamList>,
}

impl ProxyOrigin {
    pub fn new(list: Arc<UpstreamList>) -> ProxyOrigin {
        ProxyOrigin { list }
    }

    /// The entries and their counts.
    pub fn list(&self) -> &UpstreamList {
        &self.list
    }

    fn file_path(module: &str, version: &str, file: VersionFile) -> Result<String, OriginError> {
        layout::version_file(module, version, file.ext()).map_err(|e| OriginError::Name {
            module: module.to_string(),
            version: version.to_string(),
            what: file.ext(),
            reason: e.to_string(),
        })
    }
}

impl Origin for ProxyOrigin {
    fn describe(&self) -> String {
        self.list.describe()
    }

    fn upstreams(&self) -> usize {
        self.list.len()
    }

    fn upstream_name(&self, i: usize) -> String {
        self.list.host_port(i)
    }

    fn note_refused(&self, i: usize, why: &str) {
        self.list.note_refused(i, why);
    }

    fn get<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, OriginError>> {
        Box::pin(async move {
            Ok(self
                .get_from(module, version, file, limit, Avoid::none())
                .await?
                .value)
        })
    }

    fn get_to_file<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
        dest: &'a Path,
    ) -> BoxFuture<'a, Result<Download, OriginError>> {
        Box::pin(async move {
            Ok(self
                .get_to_file_from(module, version, file, limit, dest, Avoid::none())
                .await?
                .value)
        })
    }

    fn get_from<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
        avoid: Avoid,
    ) -> BoxFuture<'a, Result<Served<Vec<u8>>, OriginError>> {
        Box::pin(async move {
            let rel = Self::file_path(module, version, file)?;
            Ok(self.list.get_bytes(&rel, limit, avoid).await?)
        })
    }

    fn get_to_file_from<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
        dest: &'a Path,
        avoid: Avoid,
    ) -> BoxFuture<'a, Result<Served<Download>, OriginError>> {
        Box::pin(async move {
            let rel = Self::file_path(module, version, file)?;
            Ok(self.list.get_to_file(&rel, limit, dest, avoid).await?)
        })
    }

    fn list<'a>(
        &'a self,
        module: &'a str,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, OriginError>> {
        Box::pin(async move {
            let rel = layout::list(module).map_err(|e| OriginError::Name {
                module: module.to_string(),
                version: String::new(),
                what: "list",
                reason: e.to_string(),
            })?;
            Ok(self.list.get_bytes(&rel, limit, Avoid::none()).await?.value)
        })
    }
}
