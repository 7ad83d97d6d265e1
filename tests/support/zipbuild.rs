//! Writes a module version's zip to disk with the `zip` crate and computes its
//! `h1:` from the bytes that went in (not by reading the zip back), so a zip
//! the `zip` crate got wrong would show up as a hash mismatch in the mirror.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

use super::corpus::ModuleVersionSpec;
use super::goformat;

/// A zip on disk and its `h1:` hash.
#[derive(Clone, Debug)]
pub struct BuiltZip {
    pub len: u64,
    pub h1: String,
}

const CHUNK: usize = 256 * 1024;

/// Builds the zip for `spec` at `dest`. With `tamper`, one file's content is
/// changed (the result is a valid zip with a different `h1:`).
pub fn build_zip(spec: &ModuleVersionSpec, dest: &Path, tamper: bool) -> io::Result<BuiltZip> {
    let file = File::create(dest)?;
    let mut zw = zip::ZipWriter::new(BufWriter::with_capacity(CHUNK, file));
    let method = if spec.stored {
        CompressionMethod::Stored
    } else {
        CompressionMethod::Deflated
    };
    let options = |size: u64| {
        SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644)
            .large_file(size >= u32::MAX as u64 / 2)
    };
    let mut digests: Vec<(String, [u8; 32])> = Vec::new();

    let mut entries: Vec<(String, Vec<u8>)> = match &spec.raw_zip {
        Some(raw) => raw.clone(),
        None => {
            let prefix = spec.zip_prefix();
            let mut v = Vec::new();
            if let Some(m) = &spec.go_mod {
                v.push((format!("{prefix}go.mod"), m.clone().into_bytes()));
            }
            for (name, data) in &spec.files {
                v.push((format!("{prefix}{name}"), data.clone()));
            }
            v
        }
    };
    if tamper {
        let victim = entries
            .iter()
            .position(|(n, _)| !n.ends_with('/') && !n.ends_with("/go.mod"));
        match victim {
            Some(i) => entries[i]
                .1
                .extend_from_slice(b"\n// tampered by the fake upstream\n"),
            None => entries.push((
                format!("{}TAMPERED", spec.zip_prefix()),
                b"tampered\n".to_vec(),
            )),
        }
    }
    for (name, data) in &entries {
        if name.ends_with('/') {
            zw.add_directory(name.trim_end_matches('/'), options(0))
                .map_err(io::Error::other)?;
            digests.push((name.clone(), goformat::sha256(b"")));
        } else {
            zw.start_file(name, options(data.len() as u64))
                .map_err(io::Error::other)?;
            zw.write_all(data)?;
            digests.push((name.clone(), goformat::sha256(data)));
        }
    }
    if spec.raw_zip.is_none() {
        let mut buf = vec![0u8; CHUNK];
        for g in &spec.generated_files {
            let name = format!("{}{}", spec.zip_prefix(), g.name);
            zw.start_file(&name, options(g.size))
                .map_err(io::Error::other)?;
            let mut rng = fastrand::Rng::with_seed(g.seed);
            let mut hasher = Sha256::new();
            let mut left = g.size;
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                rng.fill(&mut buf[..n]);
                hasher.update(&buf[..n]);
                zw.write_all(&buf[..n])?;
                left -= n as u64;
            }
            digests.push((name, hasher.finalize().into()));
        }
    }
    let mut inner = zw.finish().map_err(io::Error::other)?;
    inner.flush()?;
    let file = inner.into_inner().map_err(|e| e.into_error())?;
    let len = file.metadata()?.len();
    Ok(BuiltZip {
        len,
        h1: goformat::h1_of_digests(&digests),
    })
}
