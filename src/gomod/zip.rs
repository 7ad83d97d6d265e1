//! Module zip rules (`golang.org/x/mod/zip` checkZip) and the zip's `h1:`
//! (`dirhash.HashZip`), computed in one streaming pass over a zip on disk.
//!
//! We read the central directory ourselves, the way Go's `archive/zip` does,
//! rather than through the `zip` crate's archive reader: that reader keys
//! entries by name (so duplicate entries, which Go reports, disappear) and
//! renames entries that carry an Info-ZIP Unicode Path field (which Go ignores,
//! and which would change the hash). The crate only inflates each entry's data,
//! located and sized from our directory record.
//!
//! Every entry name is checked before any data is read; then each entry is
//! decompressed in central-directory order straight into SHA-256 through a
//! fixed buffer, never holding an entry in memory, and must produce exactly its
//! declared size.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};
use zip::ZipReadOptions;
use zip::read::read_zipfile_from_stream_with_options;

use super::dirhash;
use super::path::{check, check_file_path};
use super::quote::{display_bytes, quote, quote_bytes};
use super::unicode::{equal_fold, str_to_fold};

/// `MaxZipFile`: the largest module zip, and the largest total uncompressed size.
pub const MAX_ZIP_FILE: u64 = 500 << 20;
/// `MaxGoMod`: the largest go.mod (inside a zip, and as a `.mod` file).
pub const MAX_GO_MOD: u64 = 16 << 20;
/// `MaxLICENSE`.
pub const MAX_LICENSE: u64 = 16 << 20;

/// What a valid module zip holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    /// `dirhash.HashZip`: Hash1 over every entry name and its decompressed bytes.
    pub h1: String,
    /// Number of file entries.
    pub files: u64,
    /// Sum of the entries' uncompressed sizes.
    pub uncompressed_size: u64,
}

/// Why a module zip was refused. Messages follow Go's wording where Go has one
/// (e.g. `path does not have prefix "m@v1.0.0/"`, `case-insensitive file name
/// collision: "m.go" and "M.GO"`) and always name the offending entry.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("{0}")]
    Invalid(String),
    #[error("reading zip: {0}")]
    Io(#[from] std::io::Error),
}

/// Decompressed data passes through a buffer this big, and the file is read
/// in blocks of this size.
const BUF_SIZE: usize = 256 << 10;

const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
const END_SIG: u32 = 0x0605_4b50;
const END64_LOCATOR_SIG: u32 = 0x0706_4b50;
const END64_SIG: u32 = 0x0606_4b50;
const DATA_DESCRIPTOR_SIG: u32 = 0x0807_4b50;

const LOCAL_HEADER_LEN: usize = 30;
const CENTRAL_HEADER_LEN: usize = 46;
const END_LEN: usize = 22;
const END64_LOCATOR_LEN: usize = 20;
const END64_LEN: usize = 56;

const FLAG_ENCRYPTED: u16 = 0x1;
const FLAG_DATA_DESCRIPTOR: u16 = 0x8;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;

/// One central-directory record, with zip64 sizes and offsets applied.
struct Entry {
    /// The name exactly as stored: Go compares and hashes these bytes.
    name: Vec<u8>,
    creator_version: u16,
    flags: u16,
    method: u16,
    crc32: u32,
    compressed_size: u64,
    uncompressed_size: u64,
    external_attrs: u32,
    /// Absolute offset of the local header; `u64::MAX` if the record's offset
    /// lies outside the file, which fails when the entry is read.
    header_offset: u64,
}

impl Entry {
    fn display(&self) -> String {
        display_bytes(&self.name)
    }

    fn is_dir(&self) -> bool {
        self.name.ends_with(b"/")
    }
}

fn invalid(msg: impl Into<String>) -> ZipError {
    ZipError::Invalid(msg.into())
}

fn not_a_zip(detail: &str) -> ZipError {
    invalid(format!("not a valid zip file: {detail}"))
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(bytes)
}

fn read_at(file: &mut File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// Like `read_exact`, but a short read is `Ok(false)` rather than an error.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// The end-of-central-directory record, zip64 values applied.
struct DirectoryEnd {
    records: u64,
    size: u64,
    offset: u64,
}

/// Finds the end record the way Go does: search the last 1 KiB, then the last
/// 65 KiB, for the last signature whose comment fits in the file.
fn read_directory_end(file: &mut File, size: u64) -> Result<(DirectoryEnd, u64), ZipError> {
    let mut found = None;
    for window in [1024u64, 65 * 1024] {
        let window = window.min(size);
        let mut buf = vec![0; usize::try_from(window).unwrap_or(0)];
        read_at(file, size - window, &mut buf)?;
        if let Some(p) = find_end_signature(&buf) {
            found = Some((size - window + p as u64, buf.split_off(p)));
            break;
        }
        if window == size {
            break;
        }
    }
    let (mut end_offset, rec) =
        found.ok_or_else(|| not_a_zip("no end of central directory record"))?;
    let mut end = DirectoryEnd {
        records: u64::from(le16(&rec, 10)),
        size: u64::from(le32(&rec, 12)),
        offset: u64::from(le32(&rec, 16)),
    };
    // Go's exact test (it compares the 32-bit size with 0xFFFF, not 0xFFFFFFFF).
    let maybe_zip64 = end.records == 0xFFFF || end.size == 0xFFFF || end.offset == 0xFFFF_FFFF;
    if maybe_zip64 && let Some(p) = find_directory64_end(file, end_offset)? {
        let mut rec = [0; END64_LEN];
        read_at(file, p, &mut rec).map_err(|_| not_a_zip("truncated zip64 end record"))?;
        if le32(&rec, 0) != END64_SIG {
            return Err(not_a_zip("bad zip64 end record signature"));
        }
        end = DirectoryEnd {
            records: le64(&rec, 32),
            size: le64(&rec, 40),
            offset: le64(&rec, 48),
        };
        end_offset = p;
    }
    // Data may precede the archive (a self-extractor stub); the offsets in the
    // end record are then relative to the archive's start.
    let mut base = i128::from(end_offset) - i128::from(end.size) - i128::from(end.offset);
    let dir_start = base + i128::from(end.offset);
    if dir_start < 0 || dir_start >= i128::from(size) {
        return Err(not_a_zip("central directory offset out of range"));
    }
    if base > 0 {
        // Some writers record a wrong base; prefer zero if a directory header is there.
        let mut probe = BufReader::new(&mut *file);
        probe.seek(SeekFrom::Start(end.offset))?;
        if read_central_header(&mut probe)?.is_some() {
            base = 0;
        }
    }
    let base = u64::try_from(base).unwrap_or(0);
    Ok((end, base))
}

/// The last end-record signature in `b` whose comment fits in `b`.
fn find_end_signature(b: &[u8]) -> Option<usize> {
    let last = b.len().checked_sub(END_LEN)?;
    (0..=last).rev().find(|&i| {
        le32(b, i) == END_SIG && i + END_LEN + usize::from(le16(b, i + END_LEN - 2)) <= b.len()
    })
}

/// The offset of the zip64 end record, if a zip64 locator precedes the end record.
fn find_directory64_end(file: &mut File, end_offset: u64) -> Result<Option<u64>, ZipError> {
    let Some(at) = end_offset.checked_sub(END64_LOCATOR_LEN as u64) else {
        return Ok(None);
    };
    let mut loc = [0; END64_LOCATOR_LEN];
    read_at(file, at, &mut loc)?;
    if le32(&loc, 0) != END64_LOCATOR_SIG || le32(&loc, 4) != 0 || le32(&loc, 16) != 1 {
        return Ok(None);
    }
    Ok(Some(le64(&loc, 8)))
}

/// Reads one central-directory record; `None` where Go's reader stops (a
/// different signature, a truncated record, or missing zip64 values).
fn read_central_header(r: &mut impl Read) -> io::Result<Option<Entry>> {
    let mut h = [0; CENTRAL_HEADER_LEN];
    if !read_full(r, &mut h)? || le32(&h, 0) != CENTRAL_HEADER_SIG {
        return Ok(None);
    }
    let mut name = vec![0; usize::from(le16(&h, 28))];
    let mut extra = vec![0; usize::from(le16(&h, 30))];
    let mut comment = vec![0; usize::from(le16(&h, 32))];
    if !read_full(r, &mut name)? || !read_full(r, &mut extra)? || !read_full(r, &mut comment)? {
        return Ok(None);
    }
    let mut compressed_size = u64::from(le32(&h, 20));
    let mut uncompressed_size = u64::from(le32(&h, 24));
    let mut header_offset = u64::from(le32(&h, 42));
    let mut need_usize = uncompressed_size == 0xFFFF_FFFF;
    let mut need_csize = compressed_size == 0xFFFF_FFFF;
    let mut need_offset = header_offset == 0xFFFF_FFFF;
    let mut fields = extra.as_slice();
    while fields.len() >= 4 {
        let tag = le16(fields, 0);
        let len = usize::from(le16(fields, 2));
        if fields.len() - 4 < len {
            break;
        }
        let mut field = &fields[4..4 + len];
        fields = &fields[4 + len..];
        if tag != 0x0001 {
            continue;
        }
        // The zip64 field holds only the values the record maxed out, in order.
        for (needed, value) in [
            (&mut need_usize, &mut uncompressed_size),
            (&mut need_csize, &mut compressed_size),
            (&mut need_offset, &mut header_offset),
        ] {
            if *needed {
                *needed = false;
                if field.len() < 8 {
                    return Ok(None);
                }
                *value = le64(field, 0);
                field = &field[8..];
            }
        }
    }
    // An uncompressed size of exactly 2^32-1 is plausible in a zip32 file.
    if need_csize || need_offset {
        return Ok(None);
    }
    Ok(Some(Entry {
        name,
        creator_version: le16(&h, 4),
        flags: le16(&h, 8),
        method: le16(&h, 10),
        crc32: le32(&h, 16),
        compressed_size,
        uncompressed_size,
        external_attrs: le32(&h, 38),
        header_offset,
    }))
}

/// All central-directory records, in order.
fn read_directory(file: &mut File, size: u64) -> Result<Vec<Entry>, ZipError> {
    let (end, base) = read_directory_end(file, size)?;
    let mut r = BufReader::with_capacity(64 << 10, &mut *file);
    r.seek(SeekFrom::Start(base.saturating_add(end.offset)))?;
    let mut entries = Vec::new();
    // Like Go, read records until one is malformed, then compare the count
    // (modulo 2^16: zip32 writers wrap it) with the end record's.
    while let Some(mut entry) = read_central_header(&mut r)? {
        entry.header_offset = entry.header_offset.saturating_add(base);
        entries.push(entry);
    }
    if entries.len() as u16 != end.records as u16 {
        return Err(not_a_zip(&format!(
            "central directory holds {} readable records, end record says {}",
            entries.len(),
            end.records
        )));
    }
    Ok(entries)
}

/// Go's `path.Clean`, on bytes (zip names need not be UTF-8).
fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let n = path.len();
    let mut out = Vec::with_capacity(n);
    let mut r = 0;
    // `out[..dotdot]` cannot be backtracked over by "..".
    let mut dotdot = 0;
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        let rest = &path[r..];
        if rest[0] == b'/' || rest == b"." || rest.starts_with(b"./") {
            // An empty or "." element.
            r += 1;
        } else if rest == b".." || rest.starts_with(b"../") {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if out.len() > usize::from(rooted) {
                out.push(b'/');
            }
            while r < n && path[r] != b'/' {
                out.push(path[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return b".".to_vec();
    }
    out
}

/// Go's `collisionChecker`: paths equal under case folding, and paths used
/// both as a file and as a directory.
#[derive(Default)]
struct CollisionChecker {
    /// Folded path → (path as first seen, is a directory).
    seen: HashMap<String, (String, bool)>,
}

impl CollisionChecker {
    /// Records `path` and, as directories, each of its parents.
    fn check(&mut self, path: &str, is_dir: bool) -> Result<(), String> {
        let mut path = path;
        let mut is_dir = is_dir;
        loop {
            let fold = str_to_fold(path);
            match self.seen.get(fold.as_ref()) {
                Some((other, other_is_dir)) => {
                    if path != other {
                        return Err(format!(
                            "case-insensitive file name collision: {} and {}",
                            quote(other),
                            quote(path)
                        ));
                    }
                    if is_dir != *other_is_dir {
                        return Err(format!(
                            "entry {} is both a file and a directory",
                            quote(path)
                        ));
                    }
                    if !is_dir {
                        return Err(format!("multiple entries for file {}", quote(path)));
                    }
                }
                None => {
                    self.seen
                        .insert(fold.into_owned(), (path.to_owned(), is_dir));
                }
            }
            match path.rfind('/') {
                Some(slash) => {
                    path = &path[..slash];
                    is_dir = true;
                }
                None => return Ok(()),
            }
        }
    }
}

/// Symbolic links and other non-regular files, recognised from the Unix mode
/// a Unix or macOS writer stores in the external attributes.
fn irregular(entry: &Entry) -> Option<&'static str> {
    const CREATOR_UNIX: u16 = 3;
    const CREATOR_MACOS: u16 = 19;
    let creator = entry.creator_version >> 8;
    if creator != CREATOR_UNIX && creator != CREATOR_MACOS {
        return None;
    }
    match (entry.external_attrs >> 16) & 0o170000 {
        0o120000 => Some("file is a symbolic link"),
        0o010000 | 0o020000 | 0o060000 | 0o140000 => Some("not a regular file"),
        _ => None,
    }
}

/// checkZip's per-entry rules, in Go's order. Like Go, all entries are
/// checked and every problem reported, except that a size-limit error alone
/// is reported when there is one.
fn check_entries(entries: &[Entry], prefix: &str) -> Result<(), ZipError> {
    let mut problems = Vec::new();
    let mut size_error = None;
    let mut collisions = CollisionChecker::default();
    let mut total: u64 = 0;
    for entry in entries {
        let mut problem = |msg: String| problems.push(format!("{}: {msg}", entry.display()));
        let Some(rest) = entry.name.strip_prefix(prefix.as_bytes()) else {
            problem(format!("path does not have prefix {}", quote(prefix)));
            continue;
        };
        if rest.is_empty() {
            // The module root directory itself.
            continue;
        }
        let (name, is_dir) = match rest.strip_suffix(b"/") {
            Some(dir) => (dir, true),
            None => (rest, false),
        };
        if clean(name) != name {
            problem("file path is not clean".into());
            continue;
        }
        let Ok(name) = std::str::from_utf8(name) else {
            problem(format!(
                "malformed file path {}: invalid UTF-8",
                quote_bytes(name)
            ));
            continue;
        };
        if let Err(e) = check_file_path(name) {
            problem(e.to_string());
            continue;
        }
        if let Err(msg) = collisions.check(name, is_dir) {
            problem(msg);
            continue;
        }
        if let Some(msg) = irregular(entry) {
            problem(msg.into());
            continue;
        }
        if is_dir {
            continue;
        }
        let base = name.rsplit('/').next().unwrap_or(name);
        if equal_fold(base, "go.mod") {
            if base != name {
                problem("go.mod file not in module root directory".into());
                continue;
            }
            if name != "go.mod" {
                problem("go.mod files must have lowercase names".into());
                continue;
            }
        }
        let size = entry.uncompressed_size;
        if size <= i64::MAX as u64 && MAX_ZIP_FILE - total >= size {
            total += size;
        } else if size_error.is_none() {
            size_error = Some(format!(
                "total uncompressed size of module contents too large (max size is {MAX_ZIP_FILE} bytes)"
            ));
        }
        if name == "go.mod" && size > MAX_GO_MOD {
            problem(format!(
                "go.mod file too large (max size is {MAX_GO_MOD} bytes)"
            ));
            continue;
        }
        if name == "LICENSE" && size > MAX_LICENSE {
            problem(format!(
                "LICENSE file too large (max size is {MAX_LICENSE} bytes)"
            ));
            continue;
        }
    }
    if let Some(msg) = size_error {
        return Err(invalid(msg));
    }
    if !problems.is_empty() {
        return Err(invalid(problems.join("\n")));
    }
    Ok(())
}

/// Moves to `pos`, keeping the buffer when `pos` is inside it (entries are
/// usually read in file order, so this saves re-reading).
fn seek_to(r: &mut BufReader<File>, pos: u64) -> io::Result<()> {
    let current = r.stream_position()?;
    match i64::try_from(i128::from(pos) - i128::from(current)) {
        Ok(delta) => r.seek_relative(delta),
        Err(_) => r.seek(SeekFrom::Start(pos)).map(drop),
    }
}

/// What reading an entry's data can fail with: an OS error is I/O, anything
/// else (bad deflate data, checksum mismatch, truncation) is the zip's fault.
fn entry_error(entry: &Entry, zip_path: &Path, err: io::Error) -> ZipError {
    if err.raw_os_error().is_some() {
        ZipError::Io(io::Error::new(
            err.kind(),
            format!("{}: {}: {err}", zip_path.display(), entry.display()),
        ))
    } else {
        invalid(format!("{}: {err}", entry.display()))
    }
}

/// Decompresses one entry into SHA-256, enforcing its declared size.
fn hash_entry(
    r: &mut BufReader<File>,
    entry: &Entry,
    zip_path: &Path,
    buf: &mut [u8],
) -> Result<[u8; 32], ZipError> {
    let name = entry.display();
    let io_err = |err: io::Error| entry_error(entry, zip_path, err);

    // Go opens every entry, directories included, through its local header.
    let mut local = [0; LOCAL_HEADER_LEN];
    if entry.header_offset == u64::MAX {
        return Err(invalid(format!("{name}: local header offset out of range")));
    }
    seek_to(r, entry.header_offset).map_err(io_err)?;
    if !read_full(r, &mut local).map_err(io_err)? || le32(&local, 0) != LOCAL_HEADER_SIG {
        return Err(invalid(format!("{name}: missing local file header")));
    }
    // Saturating: offsets come from the zip; an absurd one fails to read.
    let data_start = entry
        .header_offset
        .saturating_add(LOCAL_HEADER_LEN as u64)
        .saturating_add(u64::from(le16(&local, 26)))
        .saturating_add(u64::from(le16(&local, 28)));

    if entry.is_dir() {
        if entry.uncompressed_size != 0 {
            return Err(invalid(format!("{name}: directory entry has content")));
        }
        return Ok(Sha256::digest(b"").into());
    }
    // Go ignores the flag and fails later on the scrambled data; say why up front.
    if entry.flags & FLAG_ENCRYPTED != 0 {
        return Err(invalid(format!(
            "{name}: encrypted entries are not supported"
        )));
    }
    if entry.method != METHOD_STORED && entry.method != METHOD_DEFLATED {
        return Err(invalid(format!(
            "{name}: unsupported compression method {} (module zips use store or deflate)",
            entry.method
        )));
    }
    // Like Go, decode with the central directory's method and sizes and use
    // the local header only to find the data: hand the zip crate a local
    // header built from the directory record, followed by the data.
    let mut header = [0; LOCAL_HEADER_LEN];
    header[..4].copy_from_slice(&LOCAL_HEADER_SIG.to_le_bytes());
    header[4..6].copy_from_slice(&20u16.to_le_bytes());
    // "Sizes follow the data" makes the crate take the sizes given below.
    header[6..8].copy_from_slice(&FLAG_DATA_DESCRIPTOR.to_le_bytes());
    header[8..10].copy_from_slice(&entry.method.to_le_bytes());
    seek_to(r, data_start).map_err(io_err)?;
    let mut stream = io::Cursor::new(header).chain(&mut *r);
    let mut options = ZipReadOptions::new()
        .override_compressed_size(entry.compressed_size)
        // One byte of slack lets us see, and name, an entry that runs long.
        .override_uncompressed_size(entry.uncompressed_size.saturating_add(1));
    // Like Go, a CRC of zero is "not recorded" unless a data descriptor follows.
    options = if entry.flags & FLAG_DATA_DESCRIPTOR == 0 && entry.crc32 == 0 {
        options.ignore_crc32(true)
    } else {
        options.override_crc(entry.crc32)
    };
    let file = match read_zipfile_from_stream_with_options(&mut stream, options) {
        Ok(Some(file)) => file,
        Ok(None) => return Err(invalid(format!("{name}: missing local file header"))),
        Err(zip::result::ZipError::Io(err)) => return Err(io_err(err)),
        Err(err) => return Err(invalid(format!("{name}: {err}"))),
    };
    let mut data = file.take(entry.uncompressed_size.saturating_add(1));
    let mut hasher = Sha256::new();
    let mut read: u64 = 0;
    loop {
        let n = match data.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(io_err(err)),
        };
        hasher.update(&buf[..n]);
        read += n as u64;
    }
    drop(data);
    if read != entry.uncompressed_size {
        let relation = if read > entry.uncompressed_size {
            "larger"
        } else {
            "smaller"
        };
        return Err(invalid(format!(
            "uncompressed size of file {name} is {relation} than declared size ({} bytes)",
            entry.uncompressed_size
        )));
    }

    if entry.flags & FLAG_DATA_DESCRIPTOR != 0 {
        // The descriptor (signature optional) must repeat the directory's CRC.
        let mut desc = [0; 16];
        seek_to(r, data_start.saturating_add(entry.compressed_size)).map_err(io_err)?;
        let mut ok = read_full(r, &mut desc[..4]).map_err(io_err)?;
        let start = if ok && le32(&desc, 0) == DATA_DESCRIPTOR_SIG {
            4
        } else {
            0
        };
        ok = ok && read_full(r, &mut desc[4..12 + start]).map_err(io_err)?;
        if !ok {
            return Err(invalid(format!("{name}: truncated data descriptor")));
        }
        if le32(&desc, start) != entry.crc32 {
            return Err(invalid(format!(
                "{name}: checksum error (data descriptor does not match central directory)"
            )));
        }
    }
    Ok(hasher.finalize().into())
}

/// Checks the zip at `path` against the module zip rules for `module@version`
/// and computes its `h1:`. Streams: memory use does not grow with the zip.
pub fn check_and_hash_zip(
    path: &Path,
    module: &str,
    version: &str,
) -> Result<ZipSummary, ZipError> {
    check(module, version).map_err(|e| invalid(e.0))?;
    let file = File::open(path).map_err(|err| {
        ZipError::Io(io::Error::new(
            err.kind(),
            format!("{}: {err}", path.display()),
        ))
    })?;
    check_and_hash_zip_file(file, path, module, version)
}

/// [`check_and_hash_zip`] of a file already open (one a store handed out);
/// `path` names it in errors.
pub fn check_and_hash_zip_file(
    mut file: File,
    path: &Path,
    module: &str,
    version: &str,
) -> Result<ZipSummary, ZipError> {
    check(module, version).map_err(|e| invalid(e.0))?;
    let with_path = |err: io::Error| {
        ZipError::Io(io::Error::new(
            err.kind(),
            format!("{}: {err}", path.display()),
        ))
    };
    let size = file.metadata().map_err(with_path)?.len();
    if size > MAX_ZIP_FILE {
        return Err(invalid(format!(
            "module zip file is too large ({size} bytes; limit is {MAX_ZIP_FILE} bytes)"
        )));
    }
    let entries = read_directory(&mut file, size).map_err(|e| match e {
        ZipError::Io(err) => with_path(err),
        other => other,
    })?;
    let prefix = format!("{module}@{version}/");
    check_entries(&entries, &prefix)?;

    let mut reader = BufReader::with_capacity(BUF_SIZE, file);
    let mut buf = vec![0; BUF_SIZE];
    let mut hashes = Vec::with_capacity(entries.len());
    let mut files = 0;
    let mut uncompressed_size: u64 = 0;
    for entry in &entries {
        let digest = hash_entry(&mut reader, entry, path, &mut buf)?;
        // Every name passed the prefix check, so it is UTF-8.
        let name = String::from_utf8(entry.name.clone())
            .map_err(|_| invalid(format!("{}: invalid UTF-8", entry.display())))?;
        if !entry.is_dir() {
            files += 1;
            uncompressed_size += entry.uncompressed_size;
        }
        hashes.push((name, digest));
    }
    let h1 = dirhash::hash1(hashes).map_err(|e| invalid(e.to_string()))?;
    Ok(ZipSummary {
        h1,
        files,
        uncompressed_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;
    use zip::CompressionMethod;
    use zip::write::SimpleFileOptions;

    const EMPTY_HASH: &str = "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    const M: &str = "example.com/m";
    const V: &str = "v1.0.0";

    fn opts(method: CompressionMethod) -> SimpleFileOptions {
        SimpleFileOptions::default().compression_method(method)
    }

    /// Writes a zip whose entries are `(name, content)`; names ending in `/`
    /// become directory entries.
    fn zip_bytes(entries: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, opts(method)).unwrap();
            } else {
                w.start_file(*name, opts(method)).unwrap();
                w.write_all(data).unwrap();
            }
        }
        w.finish().unwrap().into_inner()
    }

    fn save(dir: &tempfile::TempDir, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(format!("{}.zip", fastrand_name(bytes)));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn fastrand_name(bytes: &[u8]) -> String {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn run(bytes: &[u8], module: &str, version: &str) -> Result<ZipSummary, ZipError> {
        let dir = tempfile::tempdir().unwrap();
        let path = save(&dir, bytes);
        check_and_hash_zip(&path, module, version)
    }

    fn error_of(bytes: &[u8]) -> String {
        match run(bytes, M, V) {
            Ok(summary) => panic!("zip accepted: {summary:?}"),
            Err(ZipError::Invalid(msg)) => msg,
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }

    fn name(rel: &str) -> String {
        format!("{M}@{V}/{rel}")
    }

    fn sha(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    /// Replaces every occurrence of `from` (same length as `to`).
    fn patch_all(bytes: &mut [u8], from: &[u8], to: &[u8]) {
        assert_eq!(from.len(), to.len());
        let mut found = 0;
        let mut i = 0;
        while i + from.len() <= bytes.len() {
            if &bytes[i..i + from.len()] == from {
                bytes[i..i + from.len()].copy_from_slice(to);
                found += 1;
                i += from.len();
            } else {
                i += 1;
            }
        }
        assert!(found > 0, "pattern not found");
    }

    /// Offsets of the (single) local header and central-directory record.
    fn header_offsets(bytes: &[u8]) -> (usize, usize) {
        let find = |sig: u32| {
            (0..bytes.len() - 4)
                .find(|&i| le32(bytes, i) == sig)
                .expect("signature")
        };
        (find(LOCAL_HEADER_SIG), find(CENTRAL_HEADER_SIG))
    }

    const SIMPLE: &[(&str, &str)] = &[
        ("go.mod", "module example.com/m\n\ngo 1.13\n"),
        ("m.go", "package m\n\nfunc Foo() int { return 42 }\n"),
        (
            "cmd/hello/hello.go",
            "package main\n\nimport (\n  \"fmt\"\n  \"example.com/m\"\n)\n\nfunc main() {\n  fmt.Println(m.Foo())\n}\n",
        ),
    ];

    fn simple_entries() -> Vec<(String, &'static [u8])> {
        SIMPLE
            .iter()
            .map(|(n, d)| (name(n), d.as_bytes()))
            .collect()
    }

    fn as_refs<'a>(entries: &'a [(String, &'static [u8])]) -> Vec<(&'a str, &'static [u8])> {
        entries.iter().map(|(n, d)| (n.as_str(), *d)).collect()
    }

    #[test]
    fn simple_module_hash_matches_go() {
        for method in [CompressionMethod::Deflated, CompressionMethod::Stored] {
            let entries = simple_entries();
            let summary = run(&zip_bytes(&as_refs(&entries), method), M, V).unwrap();
            assert_eq!(
                summary.h1,
                "h1:tpqYOOmuilagXzyqoJ3roUjp8gneQeTv5YVpL6BG7/k="
            );
            assert_eq!(summary.files, 3);
            let total: usize = SIMPLE.iter().map(|(_, d)| d.len()).sum();
            assert_eq!(summary.uncompressed_size, total as u64);
        }
    }

    #[test]
    fn streamed_zip_with_data_descriptors() {
        // Go's archive/zip writer, like this one, puts sizes and CRC after the data.
        let mut w = zip::ZipWriter::new_stream(Vec::new());
        for (n, d) in simple_entries() {
            w.start_file(n, opts(CompressionMethod::Deflated)).unwrap();
            w.write_all(d).unwrap();
        }
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(le32(&bytes, 0), LOCAL_HEADER_SIG);
        assert_ne!(
            le16(&bytes, 6) & FLAG_DATA_DESCRIPTOR,
            0,
            "writer used no data descriptor"
        );
        let summary = run(&bytes, M, V).unwrap();
        assert_eq!(
            summary.h1,
            "h1:tpqYOOmuilagXzyqoJ3roUjp8gneQeTv5YVpL6BG7/k="
        );
    }

    #[test]
    fn data_before_the_archive_is_skipped() {
        let entries = simple_entries();
        let mut bytes = b"#!/bin/sh\necho self-extracting stub\nexit 0\n".to_vec();
        bytes.extend(zip_bytes(&as_refs(&entries), CompressionMethod::Deflated));
        let summary = run(&bytes, M, V).unwrap();
        assert_eq!(
            summary.h1,
            "h1:tpqYOOmuilagXzyqoJ3roUjp8gneQeTv5YVpL6BG7/k="
        );
    }

    #[test]
    fn empty_zip() {
        let summary = run(
            &zip_bytes(&[], CompressionMethod::Deflated),
            "example.com/empty",
            V,
        )
        .unwrap();
        assert_eq!(summary.h1, EMPTY_HASH);
        assert_eq!((summary.files, summary.uncompressed_size), (0, 0));
    }

    #[test]
    fn directory_named_go_mod_is_fine() {
        let bytes = zip_bytes(
            &[(&name("go.mod/a.go"), b"package a\n")],
            CompressionMethod::Deflated,
        );
        assert_eq!(
            run(&bytes, M, V).unwrap().h1,
            "h1:Mun5l9cBlDnnV6JasTpio2aZJSbFj++h+814mnKC/OM="
        );
    }

    #[test]
    fn names_hash_with_their_original_case() {
        let module = "github.com/Foo/Bar";
        let names = [
            format!("{module}@{V}/README.MD"),
            format!("{module}@{V}/Src/Main.go"),
            format!("{module}@{V}/LICENSE"),
        ];
        let data: [&[u8]; 3] = [b"# Bar\n", b"package main\n", b"MIT\n"];
        let entries: Vec<(&str, &[u8])> = names.iter().map(String::as_str).zip(data).collect();
        let summary = run(&zip_bytes(&entries, CompressionMethod::Deflated), module, V).unwrap();
        let want = dirhash::hash1(names.iter().cloned().zip(data.map(sha))).unwrap();
        assert_eq!(summary.h1, want);
        let lowered =
            dirhash::hash1(names.iter().map(|n| n.to_lowercase()).zip(data.map(sha))).unwrap();
        assert_ne!(summary.h1, lowered);
    }

    #[test]
    fn directory_entries_are_hashed_like_go() {
        let (root, sub, file) = (name(""), name("sub/"), name("sub/a.go"));
        let bytes = zip_bytes(
            &[(&root, b""), (&sub, b""), (&file, b"package sub\n")],
            CompressionMethod::Deflated,
        );
        let summary = run(&bytes, M, V).unwrap();
        let want = dirhash::hash1([
            (root.clone(), sha(b"")),
            (sub.clone(), sha(b"")),
            (file.clone(), sha(b"package sub\n")),
        ])
        .unwrap();
        assert_eq!(summary.h1, want);
        assert_eq!(summary.files, 1);
    }

    #[test]
    fn unicode_file_names_are_allowed() {
        let n = name("docs/испытание/ß.md");
        let bytes = zip_bytes(&[(&n, b"text\n")], CompressionMethod::Deflated);
        let want = dirhash::hash1([(n.clone(), sha(b"text\n"))]).unwrap();
        assert_eq!(run(&bytes, M, V).unwrap().h1, want);
    }

    fn one_file_error(rel_or_full: &str) -> String {
        error_of(&zip_bytes(
            &[(rel_or_full, b"x\n")],
            CompressionMethod::Deflated,
        ))
    }

    #[test]
    fn entry_outside_the_prefix() {
        assert_eq!(
            one_file_error("other.com/x@v1.0.0/x.go"),
            r#"other.com/x@v1.0.0/x.go: path does not have prefix "example.com/m@v1.0.0/""#
        );
        assert_eq!(
            one_file_error("/etc/passwd"),
            r#"/etc/passwd: path does not have prefix "example.com/m@v1.0.0/""#
        );
    }

    #[test]
    fn prefix_only_entry() {
        let bytes = zip_bytes(
            &[
                ("example.com/m@v1.0.0", b""),
                (&name("go.mod"), b"module example.com/m\n"),
            ],
            CompressionMethod::Deflated,
        );
        assert_eq!(
            error_of(&bytes),
            r#"example.com/m@v1.0.0: path does not have prefix "example.com/m@v1.0.0/""#
        );
    }

    #[test]
    fn unclean_and_escaping_paths() {
        assert_eq!(
            one_file_error(&name("a/../b")),
            "example.com/m@v1.0.0/a/../b: file path is not clean"
        );
        assert_eq!(
            one_file_error(&name("./a.go")),
            "example.com/m@v1.0.0/./a.go: file path is not clean"
        );
        assert_eq!(
            one_file_error(&name("../escape")),
            r#"example.com/m@v1.0.0/../escape: malformed file path "../escape": invalid path element "..""#
        );
        assert_eq!(
            one_file_error(&name("/etc/passwd")),
            r#"example.com/m@v1.0.0//etc/passwd: malformed file path "/etc/passwd": empty path element"#
        );
        assert_eq!(
            one_file_error(&name("bad.go'")),
            r#"example.com/m@v1.0.0/bad.go': malformed file path "bad.go'": invalid char '\''"#
        );
    }

    #[test]
    fn case_insensitive_collision() {
        let bytes = zip_bytes(
            &[
                (&name("m.go"), b"package m\n"),
                (&name("M.GO"), b"package m\n"),
            ],
            CompressionMethod::Deflated,
        );
        assert_eq!(
            error_of(&bytes),
            r#"example.com/m@v1.0.0/M.GO: case-insensitive file name collision: "m.go" and "M.GO""#
        );
        // Directories collide too, and Unicode folding applies (Kelvin sign vs k).
        let bytes = zip_bytes(
            &[(&name("k/a.go"), b"x"), (&name("\u{212A}/b.go"), b"y")],
            CompressionMethod::Deflated,
        );
        assert_eq!(
            error_of(&bytes),
            "example.com/m@v1.0.0/\u{212A}/b.go: case-insensitive file name collision: \"k\" and \"\u{212A}\""
        );
    }

    #[test]
    fn duplicate_entries() {
        // The writer refuses duplicate names, so write dux.go and rename it.
        let mut bytes = zip_bytes(
            &[
                (&name("dup.go"), b"package d1\n"),
                (&name("dux.go"), b"package d2\n"),
            ],
            CompressionMethod::Deflated,
        );
        patch_all(&mut bytes, b"dux.go", b"dup.go");
        assert_eq!(
            error_of(&bytes),
            r#"example.com/m@v1.0.0/dup.go: multiple entries for file "dup.go""#
        );
        // Repeated directory entries are allowed, as in Go.
        let mut bytes = zip_bytes(
            &[
                (&name("d/"), b""),
                (&name("e/"), b""),
                (&name("d/a.go"), b"x"),
            ],
            CompressionMethod::Deflated,
        );
        patch_all(&mut bytes, b"@v1.0.0/e/", b"@v1.0.0/d/");
        assert!(run(&bytes, M, V).is_ok());
    }

    #[test]
    fn file_and_directory_conflict() {
        let bytes = zip_bytes(
            &[
                (&name("a.go"), b"package a\n"),
                (&name("a.go/b.go"), b"package b\n"),
            ],
            CompressionMethod::Deflated,
        );
        assert_eq!(
            error_of(&bytes),
            r#"example.com/m@v1.0.0/a.go/b.go: entry "a.go" is both a file and a directory"#
        );
    }

    #[test]
    fn go_mod_rules() {
        let bytes = zip_bytes(
            &[
                (&name("go.mod"), b"module example.com/m\n"),
                (&name("sub/go.mod"), b"module example.com/m/sub\n"),
            ],
            CompressionMethod::Deflated,
        );
        assert_eq!(
            error_of(&bytes),
            "example.com/m@v1.0.0/sub/go.mod: go.mod file not in module root directory"
        );
        assert_eq!(
            one_file_error(&name("b/GO.MOD")),
            "example.com/m@v1.0.0/b/GO.MOD: go.mod file not in module root directory"
        );
        assert_eq!(
            one_file_error(&name("GO.MOD")),
            "example.com/m@v1.0.0/GO.MOD: go.mod files must have lowercase names"
        );
    }

    #[test]
    fn all_problems_are_reported() {
        let bytes = zip_bytes(
            &[
                ("noprefix", b""),
                (&name("valid.go"), b"x"),
                (&name("not/../clean"), b"x"),
                (&name("invalid.go'"), b"x"),
                (&name("GO.MOD"), b"x"),
            ],
            CompressionMethod::Deflated,
        );
        assert_eq!(
            error_of(&bytes),
            [
                r#"noprefix: path does not have prefix "example.com/m@v1.0.0/""#,
                "example.com/m@v1.0.0/not/../clean: file path is not clean",
                r#"example.com/m@v1.0.0/invalid.go': malformed file path "invalid.go'": invalid char '\''"#,
                "example.com/m@v1.0.0/GO.MOD: go.mod files must have lowercase names",
            ]
            .join("\n")
        );
    }

    #[test]
    fn declared_size_must_match_content() {
        let content = b"package m\n\nfunc Foo() int { return 42 }\n";
        let bytes = zip_bytes(&[(&name("m.go"), content)], CompressionMethod::Stored);
        let (local, central) = header_offsets(&bytes);

        // Declared smaller than the data.
        let mut short = bytes.clone();
        short[local + 22..local + 26].copy_from_slice(&10u32.to_le_bytes());
        short[central + 24..central + 28].copy_from_slice(&10u32.to_le_bytes());
        assert_eq!(
            error_of(&short),
            "uncompressed size of file example.com/m@v1.0.0/m.go is larger than declared size (10 bytes)"
        );

        // Declared larger than the data.
        let mut long = bytes.clone();
        long[local + 22..local + 26].copy_from_slice(&1000u32.to_le_bytes());
        long[central + 24..central + 28].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            error_of(&long),
            "uncompressed size of file example.com/m@v1.0.0/m.go is smaller than declared size (1000 bytes)"
        );

        // The same for deflated data, where only the decompressor knows the real size.
        let bytes = zip_bytes(&[(&name("m.go"), content)], CompressionMethod::Deflated);
        let (local, central) = header_offsets(&bytes);
        let mut short = bytes.clone();
        short[local + 22..local + 26].copy_from_slice(&10u32.to_le_bytes());
        short[central + 24..central + 28].copy_from_slice(&10u32.to_le_bytes());
        assert!(error_of(&short).contains("is larger than declared size (10 bytes)"));
    }

    #[test]
    fn corrupted_data_fails_the_checksum() {
        let content = b"package m\n\nfunc Foo() int { return 42 }\n";
        let mut bytes = zip_bytes(&[(&name("m.go"), content)], CompressionMethod::Stored);
        patch_all(&mut bytes, b"return 42", b"return 43");
        let msg = error_of(&bytes);
        assert!(msg.starts_with("example.com/m@v1.0.0/m.go: "), "{msg}");
        assert!(msg.to_lowercase().contains("checksum"), "{msg}");
    }

    #[test]
    fn oversize_go_mod_and_license() {
        let big = vec![b'\n'; (MAX_GO_MOD + 1) as usize];
        let bytes = zip_bytes(&[(&name("go.mod"), &big)], CompressionMethod::Deflated);
        assert!(bytes.len() < 100_000);
        assert_eq!(
            error_of(&bytes),
            "example.com/m@v1.0.0/go.mod: go.mod file too large (max size is 16777216 bytes)"
        );
        let bytes = zip_bytes(&[(&name("LICENSE"), &big)], CompressionMethod::Deflated);
        assert_eq!(
            error_of(&bytes),
            "example.com/m@v1.0.0/LICENSE: LICENSE file too large (max size is 16777216 bytes)"
        );
        // Exactly at the limit is fine, and other files may be larger.
        let at_limit = &big[..MAX_GO_MOD as usize];
        let bytes = zip_bytes(
            &[(&name("go.mod"), at_limit), (&name("big.txt"), &big)],
            CompressionMethod::Deflated,
        );
        assert_eq!(run(&bytes, M, V).unwrap().files, 2);
    }

    #[test]
    fn total_declared_size_is_limited() {
        let bytes = zip_bytes(
            &[(&name("a.txt"), b"a"), (&name("b.txt"), b"b")],
            CompressionMethod::Stored,
        );
        let mut bytes = bytes;
        // Claim 300 MiB for each entry in the central directory (checked before reading).
        let mut at = 0;
        while let Some(p) = (at..bytes.len() - 4).find(|&i| le32(&bytes, i) == CENTRAL_HEADER_SIG) {
            bytes[p + 24..p + 28].copy_from_slice(&(300u32 << 20).to_le_bytes());
            at = p + 4;
        }
        assert_eq!(
            error_of(&bytes),
            "total uncompressed size of module contents too large (max size is 524288000 bytes)"
        );
    }

    #[test]
    fn zip_file_size_is_limited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.zip");
        let file = File::create(&path).unwrap();
        file.set_len(MAX_ZIP_FILE + 1).unwrap(); // sparse
        match check_and_hash_zip(&path, M, V) {
            Err(ZipError::Invalid(msg)) => assert_eq!(
                msg,
                "module zip file is too large (524288001 bytes; limit is 524288000 bytes)"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_utf8_name() {
        let mut bytes = zip_bytes(&[(&name("aQb.go"), b"x")], CompressionMethod::Deflated);
        patch_all(&mut bytes, b"aQb.go", b"a\xffb.go");
        assert_eq!(
            error_of(&bytes),
            r#""example.com/m@v1.0.0/a\xffb.go": malformed file path "a\xffb.go": invalid UTF-8"#
        );
    }

    #[test]
    fn symlinks_are_refused() {
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        w.start_file(name("a.go"), opts(CompressionMethod::Deflated))
            .unwrap();
        w.write_all(b"package a\n").unwrap();
        w.add_symlink(name("link.go"), "a.go", opts(CompressionMethod::Stored))
            .unwrap();
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(
            error_of(&bytes),
            "example.com/m@v1.0.0/link.go: file is a symbolic link"
        );
    }

    #[test]
    fn encrypted_and_unsupported_entries() {
        let bytes = zip_bytes(
            &[(&name("a.go"), b"package a\n")],
            CompressionMethod::Stored,
        );
        let (local, central) = header_offsets(&bytes);

        let mut encrypted = bytes.clone();
        encrypted[local + 6] |= 1;
        encrypted[central + 8] |= 1;
        assert_eq!(
            error_of(&encrypted),
            "example.com/m@v1.0.0/a.go: encrypted entries are not supported"
        );

        let mut bzip2 = bytes.clone();
        bzip2[local + 8..local + 10].copy_from_slice(&12u16.to_le_bytes());
        bzip2[central + 10..central + 12].copy_from_slice(&12u16.to_le_bytes());
        assert_eq!(
            error_of(&bzip2),
            "example.com/m@v1.0.0/a.go: unsupported compression method 12 (module zips use store or deflate)"
        );
    }

    #[test]
    fn module_and_version_are_checked_first() {
        let bytes = zip_bytes(&[], CompressionMethod::Deflated);
        let msg = |module: &str, version: &str| match run(&bytes, module, version) {
            Err(ZipError::Invalid(msg)) => msg,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            msg(M, "v1.0.0+bad"),
            r#"version "v1.0.0+bad" is not canonical (should be "v1.0.0")"#
        );
        assert_eq!(
            msg(M, "v2.0.0"),
            "example.com/m@v2.0.0: invalid version: should be v0 or v1, not v2"
        );
        assert_eq!(
            msg("cache", V),
            r#"malformed module path "cache": missing dot in first path element"#
        );
    }

    #[test]
    fn not_a_zip() {
        let msg = error_of(b"this is not a zip file at all, just some text");
        assert!(msg.starts_with("not a valid zip file"), "{msg}");
        let mut truncated = zip_bytes(&as_refs(&simple_entries()), CompressionMethod::Deflated);
        truncated.truncate(truncated.len() - 30);
        assert!(error_of(&truncated).starts_with("not a valid zip file"));
        match check_and_hash_zip(Path::new("/nonexistent/x.zip"), M, V) {
            Err(ZipError::Io(e)) => assert!(e.to_string().contains("/nonexistent/x.zip")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn large_entry_is_streamed_and_hashed_exactly() {
        // 50 MB of compressible but not constant data.
        let mut data = Vec::with_capacity(50 << 20);
        let mut i: u32 = 0;
        while data.len() < 50 << 20 {
            data.extend_from_slice(format!("line {i} of a large generated file\n").as_bytes());
            i += 1;
        }
        let n = name("big/data.txt");
        let bytes = zip_bytes(
            &[(&n, &data), (&name("go.mod"), b"module example.com/m\n")],
            CompressionMethod::Deflated,
        );
        let summary = run(&bytes, M, V).unwrap();
        let want = dirhash::hash1([
            (n, sha(&data)),
            (name("go.mod"), sha(b"module example.com/m\n")),
        ])
        .unwrap();
        assert_eq!(summary.h1, want);
        assert_eq!(summary.uncompressed_size, data.len() as u64 + 21);
    }

    #[test]
    fn clean_matches_go_path_clean() {
        for (input, want) in [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("/abc/", "/abc"),
            ("//abc", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("abc/./def", "abc/def"),
            ("./abc/def", "abc/def"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ] {
            assert_eq!(clean(input.as_bytes()), want.as_bytes(), "clean({input:?})");
        }
    }
}
