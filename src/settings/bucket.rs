//! `mirror.output = "s3://bucket/prefix"` and `[s3]`, as configured.

/// Where the tree lives: `s3://bucket/prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketUrl {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl BucketUrl {
    /// Parses `s3://bucket[/prefix]`; `None` when `s` is not an `s3://` URL.
    pub fn parse(s: &str) -> Option<Result<BucketUrl, String>> {
        let rest = s.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/').to_string();
        if bucket.is_empty() {
            return Some(Err(format!("{s:?} names no bucket")));
        }
        // S3's rules for bucket names (the strict, DNS-compatible ones).
        let ok = bucket.len() >= 3
            && bucket.len() <= 63
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !ok {
            return Some(Err(format!(
                "{bucket:?} is not a valid bucket name (3–63 lower-case letters, digits, `-` and `.`)"
            )));
        }
        if !prefix.is_empty() && !crate::relpath::is_safe(&prefix) {
            return Some(Err(format!(
                "prefix {prefix:?}: not a safe path (no `.`, `..`, empty or hidden components)"
            )));
        }
        Some(Ok(BucketUrl {
            bucket: bucket.to_string(),
            prefix,
        }))
    }
}

impl std::fmt::Display for BucketUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// How to reach the store (`[s3]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Options {
    /// `None`: AWS itself.
    pub endpoint: Option<String>,
    pub region: Option<String>,
}
