//! The tree in a bucket of an S3-compatible object store (AWS S3, Garage,
//! MinIO, Ceph), through the Apache Arrow `object_store` crate.
//!
//! Keys map to `<prefix>/<key>` verbatim (module paths are already
//! `!`-escaped, so a key is exactly the path a go client requests through a
//! website endpoint or nginx in front of the bucket).
//!
//! How the store's guarantees hold on a bucket:
//!
//! * **Atomic visibility.** An S3 `PUT` makes an object visible whole or not
//!   at all; a multipart upload only when it is completed, and an abandoned
//!   one is aborted (never visible). Files are staged on local disk first, so
//!   nothing is uploaded until it has been verified.
//! * **Write-once.** [`Store::put_immutable`] asks for the object first; an
//!   absent one is created with `If-None-Match: *` where the store supports
//!   conditional creation (a lost race is then an existing object, compared
//!   like any other); one already there is read back and hashed: the same
//!   bytes are kept, other bytes are replaced (damage being repaired).
//! * **Containment.** Keys are validated like a local store's and always
//!   live under the configured prefix; a bucket has no links to follow.
//! * **Durability.** A successful `PUT` is durable: [`Store::barrier`] has
//!   nothing to wait for.
//! * **Bounded memory.** Files over [`MULTIPART_OVER`] are uploaded in
//!   [`PART_SIZE`] parts, at most [`PART_CONCURRENCY`] at once; listings
//!   stream through a bounded channel.
//!
//! The methods are synchronous like every store's: each spawns its request on
//! the command's runtime and waits for it, giving its thread up to the
//! runtime while it waits if it is one of the runtime's workers, so it may be
//! called from the blocking pool or from an async task alike. Requests go
//! through the command's one HTTP client (its connection pool). The state
//! database and the staging area stay on local disk.

use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

use super::local::check_rel;
use super::{Entry, EntryKind, Listing, ObjectMeta, Staging, Store, StoreError, staging::SHARDS};

/// Files larger than this are uploaded in parts.
pub const MULTIPART_OVER: u64 = 16 << 20;
/// The size of one uploaded part.
pub const PART_SIZE: usize = 8 << 20;
/// Versions the publisher uploads at once.
pub const UPLOAD_CONCURRENCY: usize = 8;
/// Parts in flight at once per upload.
pub const PART_CONCURRENCY: usize = 4;

pub use crate::settings::bucket::{BucketUrl, S3Options};

pub struct S3Store {
    url: BucketUrl,
    endpoint: String,
    store: Arc<dyn ObjectStore>,
    /// The command's runtime, where requests run.
    runtime: tokio::runtime::Handle,
    staging: Staging,
    /// Whether `If-None-Match: *` on create is understood; cleared the first
    /// time the store says it is not.
    conditional_create: AtomicBool,
}

/// A store error about `key` in a bucket.
/// A bucket's error: its text may quote what the endpoint answered, so it
/// is shown escaped and cut.
fn remote(what: &'static str, key: &str, e: object_store::Error) -> StoreError {
    let text = crate::shown::text_max(&e.to_string(), 500);
    StoreError::io(what, Path::new(key), std::io::Error::other(text))
}

impl S3Store {
    /// Connects to the bucket (credentials from the environment or the AWS
    /// configuration chain, never from the config file) through `http` on
    /// `runtime`, and checks that it can be listed; `staging_dir` is a local
    /// directory for temporary files.
    pub fn open(
        url: &BucketUrl,
        options: &S3Options,
        staging_dir: &Path,
        http: reqwest::Client,
        runtime: tokio::runtime::Handle,
    ) -> Result<S3Store, StoreError> {
        // The process's TLS provider (ring), as for every client of ours.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&url.bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_http_connector(SharedClient(http));
        if let Some(r) = &options.region {
            b = b.with_region(r);
        }
        if let Some(e) = &options.endpoint {
            b = b
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = b.build().map_err(|e| {
            StoreError::io(
                "cannot configure the bucket",
                Path::new(&url.to_string()),
                std::io::Error::other(e.to_string()),
            )
        })?;
        for shard in 0..SHARDS {
            let d = staging_dir.join(shard.to_string());
            std::fs::create_dir_all(&d)
                .map_err(|e| StoreError::io("cannot create the staging directory", &d, e))?;
        }
        let s = S3Store {
            url: url.clone(),
            endpoint: options
                .endpoint
                .clone()
                .unwrap_or_else(|| "AWS".to_string()),
            store: Arc::new(store),
            runtime,
            staging: Staging::at(staging_dir.to_path_buf()),
            conditional_create: AtomicBool::new(true),
        };
        s.check_access()?;
        Ok(s)
    }

    /// One listing request: wrong credentials, a missing bucket and an
    /// unreachable endpoint are found here, before any work.
    fn check_access(&self) -> Result<(), StoreError> {
        let store = self.store.clone();
        let prefix = self.obj_path("").ok();
        let r = self.run(async move {
            let mut s = store.list(prefix.as_ref());
            s.next().await.transpose().map(|_| ())
        });
        r.map_err(|e| {
            StoreError::io(
                "cannot list the bucket",
                Path::new(&format!("{} at {}", self.url, self.endpoint)),
                std::io::Error::other(explain(&e)),
            )
        })
    }

    /// Runs `f` on the command's runtime and waits for it. On one of the
    /// runtime's own workers the wait gives the thread up (`block_in_place`),
    /// so the request can run; elsewhere (the blocking pool) it just waits.
    fn run<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
        let task = self.runtime.spawn(f);
        let handle = self.runtime.clone();
        tokio::task::block_in_place(move || handle.block_on(task))
            .expect("object-store requests run until the command's runtime ends")
    }

    fn obj_path(&self, key: &str) -> Result<ObjPath, StoreError> {
        let full = match (self.url.prefix.is_empty(), key.is_empty()) {
            (true, _) => key.to_string(),
            (false, true) => self.url.prefix.clone(),
            (false, false) => format!("{}/{key}", self.url.prefix),
        };
        ObjPath::parse(&full).map_err(|_| StoreError::UnsafeKey(key.to_string()))
    }

    /// The listing behind [`Store::list`] and [`Store::list_after`].
    fn list_from(&self, prefix: &str, after: Option<&str>) -> Listing<'_> {
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty()
            && let Err(e) = check_rel(prefix)
        {
            return Box::new(std::iter::once(Err(e)));
        }
        let p = match self.obj_path(prefix) {
            Ok(p) => p,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let offset = match after.map(|a| self.obj_path(a.trim_end_matches('/'))) {
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => return Box::new(std::iter::once(Err(e))),
            None => None,
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<String, object_store::Error>>(1000);
        let store = self.store.clone();
        self.runtime.spawn(async move {
            let root = p.as_ref().is_empty();
            let prefix = if root { None } else { Some(&p) };
            let mut s = match &offset {
                Some(o) => store.list_with_offset(prefix, o),
                None => store.list(prefix),
            };
            while let Some(item) = s.next().await {
                let item = item.map(|m| m.location.as_ref().to_string());
                let stop = item.is_err();
                // The reader stopped: so do we.
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        let prefix = prefix.to_string();
        // The reader may be one of the runtime's workers: it gives its
        // thread up while it waits for the next page.
        let items = std::iter::from_fn(move || tokio::task::block_in_place(|| rx.blocking_recv()));
        Box::new(items.map(move |item| match item {
            Ok(full) => Ok(Entry {
                key: self.key_of(&full),
                kind: EntryKind::File,
            }),
            Err(e) => Err(remote("cannot list", &prefix, e)),
        }))
    }

    fn key_of(&self, s: &str) -> String {
        if self.url.prefix.is_empty() {
            s.to_string()
        } else {
            s.strip_prefix(&self.url.prefix)
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or(s)
                .to_string()
        }
    }

    fn checked(&self, key: &str) -> Result<ObjPath, StoreError> {
        check_rel(key)?;
        self.obj_path(key)
    }

    /// The object at `key`, `None` when absent.
    fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let path = self.checked(key)?;
        let store = self.store.clone();
        match self.run(async move { store.head(&path).await }) {
            Ok(m) => Ok(Some(meta(&m))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote("cannot read", key, e)),
        }
    }

    /// SHA-256 of the object at `key` (streamed), `None` when absent.
    fn hash_object(&self, key: &str) -> Result<Option<[u8; 32]>, StoreError> {
        let path = self.checked(key)?;
        let store = self.store.clone();
        let r = self.run(async move {
            let got = store.get(&path).await?;
            let mut stream = got.into_stream();
            let mut h = Sha256::new();
            while let Some(chunk) = stream.next().await {
                h.update(&chunk?);
            }
            Ok::<_, object_store::Error>(<[u8; 32]>::from(h.finalize()))
        });
        match r {
            Ok(h) => Ok(Some(h)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote("cannot read", key, e)),
        }
    }

    /// Uploads the staged file to `key` (`create`: only if absent), then
    /// removes the staged file. `Ok(None)`: `create` and something is there.
    fn upload(
        &self,
        staged: &Path,
        key: &str,
        create: bool,
    ) -> Result<Option<ObjectMeta>, StoreError> {
        crate::crashpoint::reached("upload into the bucket");
        let path = self.checked(key)?;
        let size = std::fs::metadata(staged)
            .map_err(|e| StoreError::io("cannot read", staged, e))?
            .len();
        let store = self.store.clone();
        let result = if size > MULTIPART_OVER {
            // Multipart has no conditional create: the caller looked first,
            // and the run lock keeps other writers out.
            let staged = staged.to_path_buf();
            self.run(async move { upload_parts(store, path, staged).await })
        } else {
            let mut body = Vec::with_capacity(size as usize);
            std::fs::File::open(staged)
                .and_then(|mut f| f.read_to_end(&mut body))
                .map_err(|e| StoreError::io("cannot read", staged, e))?;
            let conditional = create && self.conditional_create.load(Ordering::Relaxed);
            let mode = if conditional {
                PutMode::Create
            } else {
                PutMode::Overwrite
            };
            let payload = PutPayload::from(body);
            let r = self.run({
                let (store, path, payload) = (store.clone(), path.clone(), payload.clone());
                async move {
                    store
                        .put_opts(
                            &path,
                            payload,
                            PutOptions {
                                mode,
                                ..Default::default()
                            },
                        )
                        .await
                }
            });
            match r {
                Err(object_store::Error::NotImplemented { .. })
                | Err(object_store::Error::NotSupported { .. })
                    if conditional =>
                {
                    // The store cannot create conditionally: plain puts from now on.
                    self.conditional_create.store(false, Ordering::Relaxed);
                    self.run(async move { store.put(&path, payload).await })
                }
                other => other,
            }
        };
        match result {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => return Ok(None),
            Err(e) => return Err(remote("cannot upload", key, e)),
        }
        let _ = std::fs::remove_file(staged);
        Ok(Some(self.head(key)?.ok_or_else(|| {
            StoreError::io(
                "uploaded but not found",
                Path::new(key),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?))
    }

    /// `key` for messages.
    fn show(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("{}/{key}", self.url))
    }
}

/// Hands object_store the command's HTTP client instead of letting it
/// build a client (and a connection pool) of its own.
#[derive(Debug)]
struct SharedClient(reqwest::Client);

impl object_store::client::HttpConnector for SharedClient {
    fn connect(
        &self,
        _options: &object_store::ClientOptions,
    ) -> object_store::Result<object_store::client::HttpClient> {
        Ok(object_store::client::HttpClient::new(self.0.clone()))
    }
}

async fn upload_parts(
    store: Arc<dyn ObjectStore>,
    path: ObjPath,
    staged: PathBuf,
) -> Result<object_store::PutResult, object_store::Error> {
    let upload = store.put_multipart(&path).await?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut file =
        tokio::fs::File::open(&staged)
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "local",
                source: Box::new(e),
            })?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        use tokio::io::AsyncReadExt;
        let n = match file.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                w.abort().await?;
                return Err(object_store::Error::Generic {
                    store: "local",
                    source: Box::new(e),
                });
            }
        };
        if n == 0 {
            break;
        }
        // At most PART_CONCURRENCY parts in memory and in flight.
        w.wait_for_capacity(PART_CONCURRENCY).await?;
        w.write(&buf[..n]);
    }
    // An error here aborts the upload inside `finish`: nothing becomes visible.
    w.finish().await
}

fn meta(m: &object_store::ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        size: m.size,
        modified_ns: m.last_modified.timestamp_nanos_opt().unwrap_or(0),
        etag: m.e_tag.clone(),
    }
}

/// Whether `text` names the HTTP status `code` as a number of its own: not
/// inside a longer number or a port (`127.0.0.1:40453`).
fn names_status(text: &str, code: &str) -> bool {
    text.match_indices(code).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit() || c == ':' || c == '.')
            && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// What an operator should check, from the store's answer.
fn explain(e: &object_store::Error) -> String {
    let text = e.to_string();
    let hint = if text.contains("NoSuchBucket") || names_status(&text, "404") {
        " (does the bucket exist?)"
    } else if names_status(&text, "403")
        || text.contains("AccessDenied")
        || text.contains("InvalidAccessKeyId")
        || text.contains("SignatureDoesNotMatch")
    {
        " (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and the key's access to the bucket)"
    } else if text.contains("connect") || text.contains("dns") || text.contains("Connection") {
        " (is [s3] endpoint right and reachable?)"
    } else {
        ""
    };
    format!("{text}{hint}")
}

impl Store for S3Store {
    fn describe(&self) -> String {
        format!("bucket `{}` at {}", self.url, self.endpoint)
    }

    fn staging(&self) -> &Staging {
        &self.staging
    }

    fn put_immutable(
        &self,
        staged: &Path,
        key: &str,
        sha256: &[u8; 32],
    ) -> Result<ObjectMeta, StoreError> {
        check_rel(key)?;
        for _ in 0..2 {
            if let Some(m) = self.head(key)? {
                if self.hash_object(key)?.as_ref() == Some(sha256) {
                    let _ = std::fs::remove_file(staged);
                    return Ok(m);
                }
                // Other bytes: damage being repaired.
                return Ok(self
                    .upload(staged, key, false)?
                    .expect("overwrite always writes"));
            }
            if let Some(m) = self.upload(staged, key, true)? {
                return Ok(m);
            }
            // Created by someone else between our look and our write: compare.
        }
        Err(StoreError::io(
            "keeps changing while being written",
            &self.show(key),
            std::io::Error::from(std::io::ErrorKind::Interrupted),
        ))
    }

    fn put(&self, staged: &Path, key: &str) -> Result<ObjectMeta, StoreError> {
        Ok(self
            .upload(staged, key, false)?
            .expect("overwrite always writes"))
    }

    fn write_if_changed(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        match self.read(key, bytes.len() as u64) {
            Ok(Some(current)) if current == bytes => return Ok(false),
            Ok(_) | Err(StoreError::TooLarge { .. }) => {}
            Err(e) => return Err(e),
        }
        let mut tmp = self.staging.new_file("small")?;
        tmp.write_all(bytes)
            .map_err(|e| StoreError::io("cannot write", tmp.path(), e))?;
        let tmp = tmp.into_temp_path();
        self.upload(&tmp, key, false)?;
        Ok(true)
    }

    fn read(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.checked(key)?;
        let store = self.store.clone();
        let r = self.run(async move {
            let got = store.get(&path).await?;
            if got.meta.size > limit {
                return Ok(Err(got.meta.size));
            }
            let mut stream = got.into_stream();
            let mut buf = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                if buf.len() as u64 + chunk.len() as u64 > limit {
                    return Ok(Err(limit + 1));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok::<_, object_store::Error>(Ok(buf))
        });
        match r {
            Ok(Ok(b)) => Ok(Some(b)),
            Ok(Err(_)) => Err(StoreError::TooLarge {
                path: self.show(key),
                limit,
            }),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote("cannot read", key, e)),
        }
    }

    /// A local copy in the staging area, already unlinked: it goes away when
    /// the file is closed.
    fn open(&self, key: &str) -> Result<Option<std::fs::File>, StoreError> {
        let path = self.checked(key)?;
        let tmp = self.staging.temp_path("download");
        let store = self.store.clone();
        let dest = tmp.clone();
        let r = self.run(async move {
            let got = store.get(&path).await?;
            let mut stream = got.into_stream();
            let mut f = std::fs::File::create(&dest).map_err(|e| object_store::Error::Generic {
                store: "local",
                source: Box::new(e),
            })?;
            while let Some(chunk) = stream.next().await {
                f.write_all(&chunk?)
                    .map_err(|e| object_store::Error::Generic {
                        store: "local",
                        source: Box::new(e),
                    })?;
            }
            Ok::<_, object_store::Error>(())
        });
        let result = match r {
            Ok(()) => std::fs::File::open(&tmp)
                .map(Some)
                .map_err(|e| StoreError::io("cannot read", &tmp, e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote("cannot read", key, e)),
        };
        let _ = std::fs::remove_file(&tmp);
        result
    }

    fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        self.head(key)
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        crate::crashpoint::reached("remove from the tree");
        if self.head(key)?.is_none() {
            return Ok(false);
        }
        let path = self.checked(key)?;
        let store = self.store.clone();
        match self.run(async move { store.delete(&path).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(remote("cannot delete", key, e)),
        }
    }

    fn delete_tree(&self, key: &str) -> Result<bool, StoreError> {
        crate::crashpoint::reached("remove a directory tree");
        check_rel(key)?;
        let mut any = self.delete(key)?;
        let under: Vec<String> = self
            .list(key)
            .filter_map(|e| e.ok())
            .filter(|e| e.key.starts_with(&format!("{key}/")))
            .map(|e| e.key)
            .collect();
        for k in under {
            any |= self.delete(&k)?;
        }
        Ok(any)
    }

    fn tidy(&self, _dir: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Objects under `prefix/`, in the bucket's (byte) order; a bucket has
    /// no directories and no links.
    fn list(&self, prefix: &str) -> Listing<'_> {
        self.list_from(prefix, None)
    }

    /// The bucket seeks (`list_with_offset`): a resumed scan lists only what follows.
    fn list_after(&self, prefix: &str, after: &str) -> Listing<'_> {
        self.list_from(prefix, Some(after))
    }

    fn barrier(&self) -> Result<(), StoreError> {
        crate::crashpoint::reached("syncfs barrier");
        Ok(())
    }

    /// Each put is a request (or three: a look, the upload, its metadata):
    /// several versions go up at once.
    fn parallelism(&self) -> usize {
        UPLOAD_CONCURRENCY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_a_number_of_its_own_not_part_of_a_port() {
        assert!(names_status("Received HTTP status 404 Not Found", "404"));
        assert!(names_status("status: 403", "403"));
        assert!(!names_status(
            "error sending request for http://127.0.0.1:40453/b",
            "404"
        ));
        assert!(!names_status("http://127.0.0.1:34038/", "403"));
        assert!(!names_status("10.4.40.4 answered 14040", "404"));
    }

    #[test]
    fn bucket_urls() {
        assert_eq!(BucketUrl::parse("/srv/mirror"), None);
        let u = BucketUrl::parse("s3://go-mirror/public/").unwrap().unwrap();
        assert_eq!(u.bucket, "go-mirror");
        assert_eq!(u.prefix, "public");
        assert_eq!(u.to_string(), "s3://go-mirror/public");
        let u = BucketUrl::parse("s3://go-mirror").unwrap().unwrap();
        assert_eq!(u.prefix, "");
        for bad in [
            "s3://",
            "s3://Upper",
            "s3://a",
            "s3://b_b",
            "s3://ok-name/../x",
        ] {
            assert!(BucketUrl::parse(bad).unwrap().is_err(), "{bad}");
        }
    }
}
