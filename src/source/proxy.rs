//! A GOPROXY-protocol origin: one proxy URL, reached through the process's
//! one HTTP client. The only place that turns a module version into a proxy
//! URL (`<base>/<escaped module>/@v/<escaped version>.<ext>`); a list of
//! proxies with the go command's `,`/`|` failover will wrap several of these.

use std::path::Path;
use std::sync::Arc;

use reqwest::Url;

use crate::http::{self, Download, Upstream};
use crate::source::{BoxFuture, Origin, OriginError, VersionFile};
use crate::store::layout;

pub struct ProxyOrigin {
    upstream: Arc<Upstream>,
    base: Url,
    sumdb: Url,
}

impl ProxyOrigin {
    pub fn new(upstream: Arc<Upstream>, base: Url, sumdb: Url) -> ProxyOrigin {
        ProxyOrigin {
            upstream,
            base,
            sumdb,
        }
    }

    fn file_url(&self, module: &str, version: &str, file: VersionFile) -> Result<Url, OriginError> {
        let rel =
            layout::version_file(module, version, file.ext()).map_err(|e| OriginError::Name {
                module: module.to_string(),
                version: version.to_string(),
                what: file.ext(),
                reason: e.to_string(),
            })?;
        Ok(http::join(&self.base, &rel))
    }
}

impl Origin for ProxyOrigin {
    fn describe(&self) -> String {
        http::redact::redact_url(&self.base)
    }

    fn get<'a>(
        &'a self,
        module: &'a str,
        version: &'a str,
        file: VersionFile,
        limit: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, OriginError>> {
        Box::pin(async move {
            let url = self.file_url(module, version, file)?;
            Ok(self.upstream.get_bytes(&url, limit).await?)
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
            let url = self.file_url(module, version, file)?;
            Ok(self.upstream.get_to_file(&url, limit, dest).await?)
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
            Ok(self
                .upstream
                .get_bytes(&http::join(&self.base, &rel), limit)
                .await?)
        })
    }

    fn sumdb_urls(&self) -> Vec<Url> {
        vec![self.sumdb.clone()]
    }
}
