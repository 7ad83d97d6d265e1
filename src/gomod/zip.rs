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
//! decompressed straight into SHA-256 through a fixed buffer, never holding an
//! entry in memory, and must produce exactly its declared size. The entries
//! are taken a window of the central directory at a time (at most 1,024
//! records and 32 MiB); a window of 1 MiB or more is hashed on the rayon pool,
//! its entries side by side, so that one large zip uses every core. An error
//! is the first failing entry's in directory order, as a sequential pass
//! would report.
//!
//! Memory is bounded by the zip's size limit, not by what its central
//! directory claims: the directory is streamed twice from disk (once to check
//! names, once to hash), never collected beyond one window. What must outlive
//! one record is
//! compact: the collision check keeps 16 bytes per distinct path (a keyed hash
//! of the folded path and where to read the path back from the file, for an
//! exact comparison), and the hash keeps each entry's digest and the name
//! without the shared `module@version/` prefix, which `h1:` needs in sorted
//! order. Each costs well under 100 bytes an entry for short names, where a
//! `Vec` of parsed records cost about 270.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use base64::Engine as _;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use zip::ZipReadOptions;
use zip::read::read_zipfile_from_stream_with_options;

use super::dirhash;
use super::path::{check, check_file_path};
use super::quote::{display_bytes, quote, quote_bytes};
use super::unicode::{equal_fold, fold_key, str_to_fold};
use super::zipstream::StreamedZip;

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

fn read_at(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

/// A reader over a file with its own position (positional reads), so the
/// central directory and the entries' data can be streamed side by side from
/// one open file.
struct FileAt<'f> {
    file: &'f File,
    pos: u64,
}

impl<'f> FileAt<'f> {
    fn new(file: &'f File, pos: u64) -> Self {
        FileAt { file, pos }
    }
}

impl Read for FileAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for FileAt<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let (from, delta) = match to {
            SeekFrom::Start(p) => {
                self.pos = p;
                return Ok(p);
            }
            SeekFrom::Current(d) => (self.pos, d),
            SeekFrom::End(d) => (self.file.metadata()?.len(), d),
        };
        self.pos = from.checked_add_signed(delta).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "seek to a negative offset")
        })?;
        Ok(self.pos)
    }
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
fn read_directory_end(file: &File, size: u64) -> Result<(DirectoryEnd, u64), ZipError> {
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
        let mut probe = BufReader::new(FileAt::new(file, end.offset));
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
fn find_directory64_end(file: &File, end_offset: u64) -> Result<Option<u64>, ZipError> {
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

/// Reads one central-directory record and its length in bytes; `None` where
/// Go's reader stops (a different signature, a truncated record, or missing
/// zip64 values).
fn read_central_header(r: &mut impl Read) -> io::Result<Option<(Entry, u64)>> {
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
    let record_len = (CENTRAL_HEADER_LEN + name.len() + extra.len() + comment.len()) as u64;
    let entry = Entry {
        name,
        creator_version: le16(&h, 4),
        flags: le16(&h, 8),
        method: le16(&h, 10),
        crc32: le32(&h, 16),
        compressed_size,
        uncompressed_size,
        external_attrs: le32(&h, 38),
        header_offset,
    };
    Ok(Some((entry, record_len)))
}

/// The central directory, streamed record by record from disk.
struct Directory<'f> {
    records: BufReader<FileAt<'f>>,
    base: u64,
    /// File offset of the next record.
    pos: u64,
    /// Records read so far.
    count: u64,
    /// What the end record says the count is.
    declared: u64,
}

impl<'f> Directory<'f> {
    fn open(file: &'f File, size: u64) -> Result<Self, ZipError> {
        let (end, base) = read_directory_end(file, size)?;
        let pos = base.saturating_add(end.offset);
        Ok(Directory {
            records: BufReader::with_capacity(64 << 10, FileAt::new(file, pos)),
            base,
            pos,
            count: 0,
            declared: end.records,
        })
    }

    /// The next record and the file offset of its name; `None` after the last.
    fn next_entry(&mut self) -> io::Result<Option<(Entry, u64)>> {
        let Some((mut entry, len)) = read_central_header(&mut self.records)? else {
            return Ok(None);
        };
        entry.header_offset = entry.header_offset.saturating_add(self.base);
        let name_at = self.pos + CENTRAL_HEADER_LEN as u64;
        self.pos += len;
        self.count += 1;
        Ok(Some((entry, name_at)))
    }

    /// Like Go, read records until one is malformed, then compare the count
    /// (modulo 2^16: zip32 writers wrap it) with the end record's.
    fn check_count(&self) -> Result<(), ZipError> {
        if self.count as u16 != self.declared as u16 {
            return Err(not_a_zip(&format!(
                "central directory holds {} readable records, end record says {}",
                self.count, self.declared
            )));
        }
        Ok(())
    }
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

/// Where a path recorded by the collision check can be read back from the
/// zip (`len` bytes at file offset `at`: a prefix of an entry name in the
/// central directory), and two flags, packed into 8 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct SeenPath(u64);

impl SeenPath {
    const AT_BITS: u32 = 46;
    const DIR: u64 = 1 << 62;
    /// Checking one of this path's parents failed when it was recorded, so
    /// meeting it again must check the parents again (Go does, and reports
    /// the failure once more).
    const PARENT_FAILED: u64 = 1 << 63;

    fn new(at: u64, len: usize, is_dir: bool) -> Self {
        // The zip is at most MAX_ZIP_FILE bytes and a name at most 64 KiB.
        debug_assert!(at < 1 << Self::AT_BITS && len <= 0xFFFF);
        let dir = if is_dir { Self::DIR } else { 0 };
        SeenPath(at | (len as u64) << Self::AT_BITS | dir)
    }

    fn at(self) -> u64 {
        self.0 & ((1 << Self::AT_BITS) - 1)
    }

    fn len(self) -> usize {
        ((self.0 >> Self::AT_BITS) & 0xFFFF) as usize
    }

    fn is_dir(self) -> bool {
        self.0 & Self::DIR != 0
    }

    fn parent_failed(self) -> bool {
        self.0 & Self::PARENT_FAILED != 0
    }
}

/// Keys are already keyed SipHash values: hashing them again would only cost.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Go's `collisionChecker`: paths equal under case folding, and paths used
/// both as a file and as a directory.
///
/// Go keeps a map from folded path to path; that is the one part of the check
/// whose memory grows with the zip, so here a path is remembered as a 64-bit
/// hash of its folded form (keyed randomly per run, so a zip cannot be built
/// to collide) and the place in the file it can be read back from. A hash
/// match is always confirmed against the bytes read back, so the result is
/// exact; two different folded paths with one hash go to `overflow`.
struct CollisionChecker<'f> {
    file: &'f File,
    keys: RandomState,
    /// Tests set this to give every path one hash, to exercise `overflow`.
    fixed_hash: Option<u64>,
    seen: HashMap<u64, SeenPath, BuildHasherDefault<PassThrough>>,
    overflow: HashMap<String, SeenPath>,
    /// The last path read back: the entries of one directory all meet the
    /// same parent, recorded by the first of them.
    last_read: Option<(SeenPath, String)>,
}

/// Where a path met before is recorded.
enum Slot {
    Hashed(u64),
    Overflow(String),
}

impl<'f> CollisionChecker<'f> {
    fn new(file: &'f File) -> Self {
        CollisionChecker {
            file,
            keys: RandomState::new(),
            fixed_hash: None,
            seen: HashMap::default(),
            overflow: HashMap::new(),
            last_read: None,
        }
    }

    fn fold_hash(&self, path: &str) -> u64 {
        if let Some(hash) = self.fixed_hash {
            return hash;
        }
        let mut h = self.keys.build_hasher();
        for c in path.chars() {
            h.write_u32(u32::from(fold_key(c)));
        }
        h.finish()
    }

    fn read_back(&mut self, seen: SeenPath) -> io::Result<String> {
        let key = SeenPath(seen.0 & !SeenPath::PARENT_FAILED);
        if let Some((at, path)) = &self.last_read
            && *at == key
        {
            return Ok(path.clone());
        }
        let mut buf = vec![0; seen.len()];
        read_at(self.file, seen.at(), &mut buf)?;
        // Recorded paths passed the UTF-8 check, and the file is ours.
        let path = String::from_utf8_lossy(&buf).into_owned();
        self.last_read = Some((key, path.clone()));
        Ok(path)
    }

    /// The path met before that folds like `path` (whose fold hash is
    /// `key`), with where it is recorded.
    fn find(&mut self, path: &str, key: u64) -> io::Result<Option<(Slot, SeenPath, String)>> {
        let Some(&seen) = self.seen.get(&key) else {
            return Ok(None);
        };
        let other = self.read_back(seen)?;
        if equal_fold(&other, path) {
            return Ok(Some((Slot::Hashed(key), seen, other)));
        }
        let fold = str_to_fold(path).into_owned();
        let Some(&seen) = self.overflow.get(&fold) else {
            return Ok(None);
        };
        let other = self.read_back(seen)?;
        Ok(Some((Slot::Overflow(fold), seen, other)))
    }

    fn insert(&mut self, path: &str, key: u64, seen: SeenPath) -> Slot {
        match self.seen.entry(key) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(seen);
                Slot::Hashed(key)
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                let fold = str_to_fold(path).into_owned();
                self.overflow.insert(fold.clone(), seen);
                Slot::Overflow(fold)
            }
        }
    }

    fn mark_parent_failed(&mut self, slot: &Slot) {
        let seen = match slot {
            Slot::Hashed(key) => self.seen.get_mut(key),
            Slot::Overflow(fold) => self.overflow.get_mut(fold),
        };
        if let Some(seen) = seen {
            seen.0 |= SeenPath::PARENT_FAILED;
        }
    }

    /// Records `path` (which starts at file offset `at`) and, as
    /// directories, each of its parents. The outer error is reading the zip
    /// back; the inner one is Go's message.
    fn check(&mut self, path: &str, at: u64, is_dir: bool) -> io::Result<Result<(), String>> {
        let mut path = path;
        let mut is_dir = is_dir;
        // Paths recorded by this call, to flag if a parent turns out bad.
        let mut recorded = Vec::new();
        let outcome = loop {
            let key = self.fold_hash(path);
            match self.find(path, key)? {
                Some((slot, seen, other)) => {
                    if path != other {
                        break Err(format!(
                            "case-insensitive file name collision: {} and {}",
                            quote(&other),
                            quote(path)
                        ));
                    }
                    if is_dir != seen.is_dir() {
                        break Err(format!(
                            "entry {} is both a file and a directory",
                            quote(path)
                        ));
                    }
                    if !is_dir {
                        break Err(format!("multiple entries for file {}", quote(path)));
                    }
                    // Go checks the parents again; when they passed before,
                    // they pass again (recorded paths never change).
                    if !seen.parent_failed() {
                        break Ok(());
                    }
                    recorded.push(slot);
                }
                None => {
                    let slot = self.insert(path, key, SeenPath::new(at, path.len(), is_dir));
                    recorded.push(slot);
                }
            }
            match path.rfind('/') {
                Some(slash) => {
                    path = &path[..slash];
                    is_dir = true;
                }
                None => break Ok(()),
            }
        };
        if outcome.is_err() {
            for slot in &recorded {
                self.mark_parent_failed(slot);
            }
        }
        Ok(outcome)
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

/// At most this many problems are listed; the rest are counted. Go lists
/// them all, but a zip of a million bad names would make a message (and a
/// state-database row) of tens of megabytes.
const MAX_PROBLEMS: usize = 100;

/// checkZip's per-entry rules, in Go's order, applied to one central-directory
/// record at a time. Like Go, all entries are checked and every problem
/// reported, except that a size-limit error alone is reported when there is
/// one.
struct EntryChecker<'f> {
    prefix: &'f str,
    problems: Vec<String>,
    more_problems: u64,
    size_error: Option<String>,
    collisions: CollisionChecker<'f>,
    total: u64,
}

impl<'f> EntryChecker<'f> {
    fn new(file: &'f File, prefix: &'f str) -> Self {
        EntryChecker {
            prefix,
            problems: Vec::new(),
            more_problems: 0,
            size_error: None,
            collisions: CollisionChecker::new(file),
            total: 0,
        }
    }

    /// Checks `entry`, whose name starts at file offset `name_at`.
    fn check(&mut self, entry: &Entry, name_at: u64) -> io::Result<()> {
        if let Some(msg) = self.problem(entry, name_at)? {
            if self.problems.len() < MAX_PROBLEMS {
                self.problems.push(format!("{}: {msg}", entry.display()));
            } else {
                self.more_problems += 1;
            }
        }
        Ok(())
    }

    fn problem(&mut self, entry: &Entry, name_at: u64) -> io::Result<Option<String>> {
        let prefix = self.prefix;
        let Some(rest) = entry.name.strip_prefix(prefix.as_bytes()) else {
            return Ok(Some(format!("path does not have prefix {}", quote(prefix))));
        };
        if rest.is_empty() {
            // The module root directory itself.
            return Ok(None);
        }
        let (name, is_dir) = match rest.strip_suffix(b"/") {
            Some(dir) => (dir, true),
            None => (rest, false),
        };
        if clean(name) != name {
            return Ok(Some("file path is not clean".into()));
        }
        let Ok(name) = std::str::from_utf8(name) else {
            return Ok(Some(format!(
                "malformed file path {}: invalid UTF-8",
                quote_bytes(name)
            )));
        };
        if let Err(e) = check_file_path(name) {
            return Ok(Some(e.to_string()));
        }
        let at = name_at + prefix.len() as u64;
        if let Err(msg) = self.collisions.check(name, at, is_dir)? {
            return Ok(Some(msg));
        }
        if let Some(msg) = irregular(entry) {
            return Ok(Some(msg.into()));
        }
        if is_dir {
            return Ok(None);
        }
        let base = name.rsplit('/').next().unwrap_or(name);
        if equal_fold(base, "go.mod") {
            if base != name {
                return Ok(Some("go.mod file not in module root directory".into()));
            }
            if name != "go.mod" {
                return Ok(Some("go.mod files must have lowercase names".into()));
            }
        }
        let size = entry.uncompressed_size;
        if size <= i64::MAX as u64 && MAX_ZIP_FILE - self.total >= size {
            self.total += size;
        } else if self.size_error.is_none() {
            self.size_error = Some(format!(
                "total uncompressed size of module contents too large (max size is {MAX_ZIP_FILE} bytes)"
            ));
        }
        if name == "go.mod" && size > MAX_GO_MOD {
            return Ok(Some(format!(
                "go.mod file too large (max size is {MAX_GO_MOD} bytes)"
            )));
        }
        if name == "LICENSE" && size > MAX_LICENSE {
            return Ok(Some(format!(
                "LICENSE file too large (max size is {MAX_LICENSE} bytes)"
            )));
        }
        Ok(None)
    }

    fn finish(self) -> Result<(), ZipError> {
        if let Some(msg) = self.size_error {
            return Err(invalid(msg));
        }
        if self.problems.is_empty() {
            return Ok(());
        }
        let mut msg = self.problems.join("\n");
        if self.more_problems > 0 {
            msg.push_str(&format!("\n... and {} more problems", self.more_problems));
        }
        Err(invalid(msg))
    }
}

/// Moves to `pos`, keeping the buffer when `pos` is inside it (entries are
/// usually read in file order, so this saves re-reading).
fn seek_to(r: &mut BufReader<FileAt<'_>>, pos: u64) -> io::Result<()> {
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
    r: &mut BufReader<FileAt<'_>>,
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

/// The digest this pass would compute for `entry`, when the download
/// already computed it (see [`super::zipstream`]): a record made from the
/// local header at the entry's offset, for the method and sizes the entry
/// declares, whose data inflated to the entry's CRC-32 and was followed by
/// the descriptor the entry calls for. The same inflater over the same bytes
/// of the file gives the same content, so every check below would pass and
/// the hash would be the record's.
fn streamed_digest(streamed: &StreamedZip, entry: &Entry) -> Option<[u8; 32]> {
    let r = streamed.at(entry.header_offset)?;
    let plain = !entry.is_dir()
        && entry.flags & FLAG_ENCRYPTED == 0
        && (entry.method == METHOD_STORED || entry.method == METHOD_DEFLATED);
    let descriptor_ok =
        entry.flags & FLAG_DATA_DESCRIPTOR == 0 || r.descriptor_crc == Some(entry.crc32);
    (plain
        && descriptor_ok
        && r.method == entry.method
        && r.compressed_size == entry.compressed_size
        && r.uncompressed_size == entry.uncompressed_size
        && r.crc32 == entry.crc32)
        .then_some(r.sha256)
}

/// The most directory records hashed together (see [`hash_window`]).
const WINDOW_ENTRIES: usize = 1024;
/// The most compressed bytes (and name bytes) hashed together.
const WINDOW_BYTES: u64 = 32 << 20;
/// A window smaller than this is hashed on the calling thread: spreading it
/// would cost more than it saves.
const PARALLEL_BYTES: u64 = 1 << 20;

/// Hashes a window of entries, each with the digest the download already
/// made of it, if any: the digests in the window's order, or the error of its
/// first entry (in directory order) that fails, the one a sequential pass
/// would report. `bytes` is what is left to read; a window with 1 MiB or
/// more has its entries hashed on the rayon pool, so that one big zip (the
/// last of a sync, often) uses every core instead of one; memory stays
/// bounded by the window.
fn hash_window(
    file: &File,
    path: &Path,
    window: &[(Entry, Option<[u8; 32]>)],
    bytes: u64,
    buf: &mut Vec<u8>,
) -> Result<Vec<[u8; 32]>, ZipError> {
    let hash =
        |reader: &mut BufReader<FileAt<'_>>, buf: &mut [u8], (e, known): &(Entry, _)| match known {
            Some(digest) => Ok(*digest),
            None => hash_entry(reader, e, path, buf),
        };
    if window.len() < 2 || bytes < PARALLEL_BYTES {
        buf.resize(BUF_SIZE, 0);
        let mut reader = BufReader::with_capacity(BUF_SIZE, FileAt::new(file, 0));
        return window.iter().map(|e| hash(&mut reader, buf, e)).collect();
    }
    let results: Vec<Result<[u8; 32], ZipError>> = window
        .par_iter()
        .map_init(
            || {
                (
                    BufReader::with_capacity(BUF_SIZE, FileAt::new(file, 0)),
                    vec![0; BUF_SIZE],
                )
            },
            |(reader, buf), e| hash(reader, buf, e),
        )
        .collect();
    results.into_iter().collect()
}

/// What `h1:` needs of each entry once its data is hashed: its digest and its
/// name, kept without the prefix every name shares, in one buffer.
struct HashedEntries {
    names: Vec<u8>,
    /// `names[ends[i - 1]..ends[i]]` is entry `i`'s name after the prefix.
    ends: Vec<u32>,
    digests: Vec<[u8; 32]>,
}

impl HashedEntries {
    fn with_capacity(entries: usize, name_bytes: usize) -> Self {
        HashedEntries {
            names: Vec::with_capacity(name_bytes),
            ends: Vec::with_capacity(entries),
            digests: Vec::with_capacity(entries),
        }
    }

    fn push(&mut self, rest: &[u8], digest: [u8; 32]) {
        self.names.extend_from_slice(rest);
        // At most MAX_ZIP_FILE bytes of names.
        self.ends.push(self.names.len() as u32);
        self.digests.push(digest);
    }

    fn name(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.names[start..self.ends[i] as usize]
    }

    /// `dirhash.Hash1` over the entries: summary lines in name order.
    fn h1(&self, prefix: &str) -> Result<String, ZipError> {
        let mut order: Vec<u32> = (0..self.ends.len() as u32).collect();
        // Every name shares the prefix, so ordering the rest orders the names.
        order.sort_unstable_by(|&a, &b| self.name(a as usize).cmp(self.name(b as usize)));
        let mut summary = Sha256::new();
        let mut line = Vec::with_capacity(128);
        for i in order {
            let rest = self.name(i as usize);
            if rest.contains(&b'\n') {
                let name = format!("{prefix}{}", String::from_utf8_lossy(rest));
                return Err(invalid(dirhash::DirhashError(name).to_string()));
            }
            line.clear();
            for byte in self.digests[i as usize] {
                line.push(HEX[usize::from(byte >> 4)]);
                line.push(HEX[usize::from(byte & 15)]);
            }
            line.extend_from_slice(b"  ");
            line.extend_from_slice(prefix.as_bytes());
            line.extend_from_slice(rest);
            line.push(b'\n');
            summary.update(&line);
        }
        Ok(format!(
            "h1:{}",
            base64::engine::general_purpose::STANDARD.encode(summary.finalize())
        ))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Checks the zip at `path` against the module zip rules for `module@version`
/// and computes its `h1:`. Streams: memory use does not grow with the zip
/// beyond a few dozen bytes per entry (see the module comment).
pub fn check_and_hash_zip(
    path: &Path,
    module: &str,
    version: &str,
) -> Result<ZipSummary, ZipError> {
    check_and_hash_downloaded_zip(path, module, version, None)
}

/// [`check_and_hash_zip`] of a zip whose entries were hashed as it
/// downloaded (see [`check_and_hash_zip_streamed`]).
pub fn check_and_hash_downloaded_zip(
    path: &Path,
    module: &str,
    version: &str,
    streamed: Option<&StreamedZip>,
) -> Result<ZipSummary, ZipError> {
    check(module, version).map_err(|e| invalid(e.0))?;
    let file = File::open(path).map_err(|err| {
        ZipError::Io(io::Error::new(
            err.kind(),
            format!("{}: {err}", path.display()),
        ))
    })?;
    check_and_hash_zip_streamed(file, path, module, version, streamed)
}

/// [`check_and_hash_zip`] of a file already open (one a store handed out);
/// `path` names it in errors.
pub fn check_and_hash_zip_file(
    file: File,
    path: &Path,
    module: &str,
    version: &str,
) -> Result<ZipSummary, ZipError> {
    check_and_hash_zip_streamed(file, path, module, version, None)
}

/// [`check_and_hash_zip_file`] of a zip whose entries were hashed as it
/// downloaded (`streamed`, see [`super::zipstream`]): an entry the download
/// recorded exactly as the central directory declares it is not read
/// again; the result, error or summary, is the same as without.
pub fn check_and_hash_zip_streamed(
    file: File,
    path: &Path,
    module: &str,
    version: &str,
    streamed: Option<&StreamedZip>,
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
    let with_path_zip = |e: ZipError| match e {
        ZipError::Io(err) => with_path(err),
        other => other,
    };
    let prefix = format!("{module}@{version}/");

    // First pass: every name, before any data is read.
    let mut directory = Directory::open(&file, size).map_err(with_path_zip)?;
    let mut checker = EntryChecker::new(&file, &prefix);
    let mut name_bytes: u64 = 0;
    while let Some((entry, name_at)) = directory.next_entry().map_err(with_path)? {
        checker.check(&entry, name_at).map_err(with_path)?;
        name_bytes += entry.name.len().saturating_sub(prefix.len()) as u64;
    }
    directory.check_count()?;
    let entries = directory.count;
    checker.finish()?;

    // Second pass: the data, a window of directory records at a time, the
    // entries of a large window hashed in parallel.
    let mut directory = Directory::open(&file, size).map_err(with_path_zip)?;
    // Both counts are bounded by the file size, which is bounded above.
    let mut hashed = HashedEntries::with_capacity(entries as usize, name_bytes as usize);
    let mut files = 0;
    let mut uncompressed_size: u64 = 0;
    // Each entry with the digest the download made of it, when it did.
    let mut window: Vec<(Entry, Option<[u8; 32]>)> = Vec::new();
    let mut window_bytes: u64 = 0;
    // What is left to read in the window: entries the download hashed cost
    // nothing, and are no reason to spread the window over the pool.
    let mut window_work: u64 = 0;
    // The calling thread's buffer, kept across the windows it hashes.
    let mut buf = Vec::new();
    loop {
        let next = directory.next_entry().map_err(with_path)?;
        let end = next.is_none();
        if let Some((entry, _)) = next {
            window_bytes = window_bytes
                .saturating_add(entry.compressed_size)
                .saturating_add(entry.name.len() as u64);
            let known = streamed.and_then(|s| streamed_digest(s, &entry));
            if known.is_none() {
                window_work = window_work.saturating_add(entry.compressed_size);
            }
            window.push((entry, known));
            if window.len() < WINDOW_ENTRIES && window_bytes < WINDOW_BYTES {
                continue;
            }
        }
        let digests = hash_window(&file, path, &window, window_work, &mut buf)?;
        for ((entry, _), digest) in window.drain(..).zip(digests) {
            // The first pass refused any name without the prefix.
            let Some(rest) = entry.name.strip_prefix(prefix.as_bytes()) else {
                return Err(invalid(format!(
                    "{}: central directory changed while it was read",
                    entry.display()
                )));
            };
            if !entry.is_dir() {
                files += 1;
                uncompressed_size += entry.uncompressed_size;
            }
            hashed.push(rest, digest);
        }
        window_bytes = 0;
        window_work = 0;
        if end {
            break;
        }
    }
    if directory.count != entries {
        return Err(invalid(format!(
            "{}: central directory changed while it was read",
            path.display()
        )));
    }
    Ok(ZipSummary {
        h1: hashed.h1(&prefix)?,
        files,
        uncompressed_size,
    })
}

#[cfg(test)]
pub(super) mod tests {
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

    /// Go's `collisionChecker.check`, as Go writes it: a map from folded path
    /// to path, parents checked every time.
    fn go_collision_check(
        seen: &mut HashMap<String, (String, bool)>,
        path: &str,
        is_dir: bool,
    ) -> Result<(), String> {
        let fold = str_to_fold(path).into_owned();
        if let Some((other, other_is_dir)) = seen.get(&fold) {
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
        } else {
            seen.insert(fold, (path.to_owned(), is_dir));
        }
        match path.rfind('/') {
            Some(slash) => go_collision_check(seen, &path[..slash], true),
            None => Ok(()),
        }
    }

    #[test]
    fn compact_collision_check_matches_go_even_when_fold_hashes_collide() {
        let paths: &[(&str, bool)] = &[
            ("m.go", false),
            ("M.GO", false),
            ("a/b/c.go", false),
            ("a/b/d.go", false),
            ("A/x.go", false),
            ("a/b/e.go", false),
            ("B/y.go", false),
            ("b/z/1.go", false),
            ("b/z/2.go", false),
            ("b/z/2.go", false),
            ("k/a.go", false),
            ("\u{212A}/b.go", false),
            ("dir", true),
            ("dir", true),
            ("dir/f", false),
            ("dir/f/g", false),
            ("file.go", false),
            ("file.go", true),
            ("σ/1", false),
            ("Σ/2", false),
            ("ς/3", false),
        ];
        // The checker reads paths back from the zip file: write them there.
        let dir = tempfile::tempdir().unwrap();
        let file_path = dir.path().join("names");
        let mut bytes = Vec::new();
        let mut offsets = Vec::new();
        for (path, _) in paths {
            offsets.push(bytes.len() as u64);
            bytes.extend_from_slice(path.as_bytes());
        }
        std::fs::write(&file_path, &bytes).unwrap();
        let file = File::open(&file_path).unwrap();
        for fixed_hash in [None, Some(7)] {
            let mut go = HashMap::new();
            let mut ours = CollisionChecker::new(&file);
            ours.fixed_hash = fixed_hash;
            for ((path, is_dir), at) in paths.iter().zip(&offsets) {
                let want = go_collision_check(&mut go, path, *is_dir);
                let got = ours.check(path, *at, *is_dir).unwrap();
                assert_eq!(got, want, "{path:?} with fixed hash {fixed_hash:?}");
            }
            if fixed_hash.is_some() {
                assert!(!ours.overflow.is_empty());
            }
        }
    }

    #[test]
    fn parent_collision_is_reported_for_every_entry_below_it() {
        let bytes = zip_bytes(
            &[
                (&name("A/x.go"), b"x"),
                (&name("a/b/y.go"), b"y"),
                (&name("a/b/z.go"), b"z"),
            ],
            CompressionMethod::Deflated,
        );
        assert_eq!(
            error_of(&bytes),
            [
                r#"example.com/m@v1.0.0/a/b/y.go: case-insensitive file name collision: "A" and "a""#,
                r#"example.com/m@v1.0.0/a/b/z.go: case-insensitive file name collision: "A" and "a""#,
            ]
            .join("\n")
        );
    }

    #[test]
    fn problems_beyond_the_cap_are_counted() {
        let names: Vec<String> = (0..MAX_PROBLEMS + 5).map(|i| format!("x{i}")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let msg = error_of(&zip_bytes(&entries, CompressionMethod::Stored));
        assert_eq!(msg.lines().count(), MAX_PROBLEMS + 1);
        assert!(msg.ends_with("\n... and 5 more problems"), "{msg}");
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

    /// Content for entry `i` that differs per entry and does not compress
    /// away (the parallel path needs a window of at least `PARALLEL_BYTES`;
    /// `zipstream`'s tests, zips larger than what a follower drains).
    pub(in crate::gomod) fn noise(i: usize, len: usize) -> Vec<u8> {
        let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b'a' + (x % 26) as u8
            })
            .collect()
    }

    #[test]
    fn windows_hashed_in_parallel_give_the_sequential_hash() {
        // 1,500 entries of 1 KiB: a first window of WINDOW_ENTRIES hashed
        // in parallel (over PARALLEL_BYTES), the rest on the calling thread;
        // and a few large entries, each its own parallel work.
        for (count, len) in [(1500, 1024), (6, 600 << 10)] {
            assert!(count > WINDOW_ENTRIES || (count * len) as u64 > PARALLEL_BYTES);
            let names: Vec<String> = (0..count).map(|i| name(&format!("f{i:04}.txt"))).collect();
            let data: Vec<Vec<u8>> = (0..count).map(|i| noise(i, len)).collect();
            let entries: Vec<(&str, &[u8])> = names
                .iter()
                .map(String::as_str)
                .zip(data.iter().map(Vec::as_slice))
                .collect();
            let want =
                dirhash::hash1(names.iter().cloned().zip(data.iter().map(|d| sha(d)))).unwrap();
            for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
                let summary = run(&zip_bytes(&entries, method), M, V).unwrap();
                assert_eq!(
                    summary.h1, want,
                    "{count} entries of {len} bytes, {method:?}"
                );
                assert_eq!(summary.files, count as u64);
            }
        }
    }

    #[test]
    fn a_parallel_window_reports_its_first_bad_entry_in_directory_order() {
        // Two corrupted entries in one parallel window: the error names the
        // earlier one, as a sequential pass would, whichever thread fails first.
        let names: Vec<String> = (0..8).map(|i| name(&format!("f{i}.txt"))).collect();
        let mut data: Vec<Vec<u8>> = (0..8).map(|i| noise(i, 300 << 10)).collect();
        data[2][..9].copy_from_slice(b"MARKER-02");
        data[6][..9].copy_from_slice(b"MARKER-06");
        let entries: Vec<(&str, &[u8])> = names
            .iter()
            .map(String::as_str)
            .zip(data.iter().map(Vec::as_slice))
            .collect();
        let mut bytes = zip_bytes(&entries, CompressionMethod::Stored);
        patch_all(&mut bytes, b"MARKER-06", b"MARKER-6X");
        patch_all(&mut bytes, b"MARKER-02", b"MARKER-2X");
        for _ in 0..20 {
            let msg = error_of(&bytes);
            assert!(msg.starts_with("example.com/m@v1.0.0/f2.txt: "), "{msg}");
            assert!(msg.to_lowercase().contains("checksum"), "{msg}");
        }
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
