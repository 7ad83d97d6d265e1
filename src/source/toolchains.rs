//! Go toolchains: the `golang.org/toolchain` module, whose versions
//! `v0.0.1-go1.X.Y.GOOS-GOARCH` are whole Go distributions. Since Go 1.21 the
//! go command downloads one as a module when `GOTOOLCHAIN` or a go.mod's
//! `toolchain` line asks for a newer Go (cmd/go/internal/toolchain), so a
//! mirror that should serve offline builds must hold them. They are read from
//! the origin's `@v/list` on every run, like seeds, and only the configured
//! platforms are offered: each zip is tens of MB.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::source::seeds;
use crate::source::{Discovery, Event, Intake, LocalBoxFuture, Origin};
use crate::state::IndexEntry;

pub use crate::gomod::toolchain::{MODULE, PLATFORMS, is_platform};
/// The packaging version every toolchain version starts with (cmd/go's
/// `gotoolchainVersion`): a `v0.0.2` would be a different zip layout.
const PACKAGING: &str = "v0.0.1-";

/// The Go version and platform of a toolchain version
/// (`v0.0.1-go1.22.3.linux-amd64` → `("go1.22.3", "linux-amd64")`).
pub fn split_version(version: &str) -> Option<(&str, &str)> {
    let rest = version.strip_prefix(PACKAGING)?;
    let (go, platform) = rest.rsplit_once('.')?;
    (go.starts_with("go") && platform.contains('-')).then_some((go, platform))
}

pub struct Toolchains {
    origin: Arc<dyn Origin>,
    platforms: BTreeSet<String>,
}

impl Toolchains {
    pub fn new(origin: Arc<dyn Origin>, platforms: &[String]) -> Toolchains {
        Toolchains {
            origin,
            platforms: platforms.iter().cloned().collect(),
        }
    }

    /// The versions of `listed` for the configured platforms.
    fn wanted(&self, listed: Vec<IndexEntry>) -> Vec<IndexEntry> {
        listed
            .into_iter()
            .filter(|e| split_version(&e.version).is_some_and(|(_, p)| self.platforms.contains(p)))
            .collect()
    }
}

impl Discovery for Toolchains {
    fn describe(&self) -> String {
        format!(
            "toolchains ({}) from {}",
            self.platforms
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            self.origin.describe()
        )
    }

    fn discover<'a>(
        &'a self,
        intake: &'a mut dyn Intake,
    ) -> LocalBoxFuture<'a, Result<(), crate::source::SourceError>> {
        Box::pin(async move {
            let Some(listed) = seeds::list_module(&*self.origin, MODULE, intake).await? else {
                return Ok(());
            };
            let wanted = self.wanted(listed);
            if wanted.is_empty() {
                intake.note(Event::Warning(format!(
                    "toolchains: {} lists no {MODULE} version for {}",
                    self.origin.describe(),
                    self.platforms
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            intake.offer(wanted, None).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolchain_versions_split_into_go_version_and_platform() {
        assert_eq!(
            split_version("v0.0.1-go1.22.3.linux-amd64"),
            Some(("go1.22.3", "linux-amd64"))
        );
        assert_eq!(
            split_version("v0.0.1-go1.21rc2.windows-arm64"),
            Some(("go1.21rc2", "windows-arm64"))
        );
        assert_eq!(split_version("v0.0.2-go1.22.3.linux-amd64"), None);
        assert_eq!(split_version("v0.0.1-go1.22.3"), None);
        assert_eq!(split_version("v1.0.0"), None);
    }

    #[test]
    fn only_configured_platforms_are_wanted() {
        struct NoOrigin;
        impl Origin for NoOrigin {
            fn describe(&self) -> String {
                "none".into()
            }
            fn get<'a>(
                &'a self,
                _: &'a str,
                _: &'a str,
                _: crate::source::VersionFile,
                _: u64,
            ) -> crate::source::BoxFuture<'a, Result<Vec<u8>, crate::source::OriginError>>
            {
                unreachable!()
            }
            fn get_to_file<'a>(
                &'a self,
                _: &'a str,
                _: &'a str,
                _: crate::source::VersionFile,
                _: u64,
                _: &'a std::path::Path,
            ) -> crate::source::BoxFuture<
                'a,
                Result<crate::http::Download, crate::source::OriginError>,
            > {
                unreachable!()
            }
            fn list<'a>(
                &'a self,
                _: &'a str,
                _: u64,
            ) -> crate::source::BoxFuture<'a, Result<Vec<u8>, crate::source::OriginError>>
            {
                unreachable!()
            }
        }
        let t = Toolchains::new(Arc::new(NoOrigin), &["linux-amd64".to_string()]);
        let e = |v: &str| IndexEntry {
            path: MODULE.into(),
            version: v.into(),
        };
        let got = t.wanted(vec![
            e("v0.0.1-go1.22.3.linux-amd64"),
            e("v0.0.1-go1.22.3.linux-arm64"),
            e("v0.0.1-go1.22.3.linux-amd64p32"),
            e("v0.0.1-go1.23.0.linux-amd64"),
        ]);
        let got: Vec<&str> = got.iter().map(|e| e.version.as_str()).collect();
        assert_eq!(
            got,
            ["v0.0.1-go1.22.3.linux-amd64", "v0.0.1-go1.23.0.linux-amd64"]
        );
        assert!(is_platform("darwin-arm64") && !is_platform("linux-x86_64"));
    }
}
