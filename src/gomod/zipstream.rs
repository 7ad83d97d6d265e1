//! A module zip checked while it downloads. A [`Follower`] thread reads the
//! staged file behind the writer and feeds a [`ZipStream`], which inflates
//! and hashes each entry in the order it lies in the file; when the last
//! byte lands, the check after the download
//! ([`super::zip::check_and_hash_zip_streamed`]) is left the central
//! directory and whatever the follower had not reached. On a first sync the
//! last, largest zips were otherwise hashed after their download ended, with
//! the network idle.
//!
//! Nothing here is trusted on its own. A record says what the local header
//! at an offset led to: the method, how many compressed bytes the data took,
//! what they inflated to (size, CRC-32, SHA-256) and the CRC its data
//! descriptor repeats. The check after the download takes a record's digest
//! only for a central directory entry whose local header is at exactly that
//! offset and whose method, sizes and CRC equal the record's; then its own
//! pass (the same zlib-rs inflater, over the same bytes of the same file)
//! could only have produced that digest. Anything else, it reads and hashes
//! from the file as it always did, and any refusal is its own: a zip this
//! parser cannot follow (data before the first entry, a stored entry whose
//! size follows its data, zip64, an unknown method, bad deflate data) just
//! stops the recording, and what was recorded before stays usable.
//!
//! Bounded, per zip downloading: at most [`MAX_RECORDS`] records (about 80
//! bytes each) and Go's `MaxZipFile` (500 MiB) inflated bytes per entry; one
//! inflater, a 64 KiB output buffer and the follower's 256 KiB read buffer;
//! with a `Helper`, ten 64 KiB buffers more. About 1 MB, and two threads
//! at most, that end with the download.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use flate2::{Decompress, FlushDecompress, Status};
use sha2::{Digest, Sha256};

const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
const END_SIG: u32 = 0x0605_4b50;
const DATA_DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const LOCAL_HEADER_LEN: usize = 30;
const FLAG_ENCRYPTED: u16 = 0x1;
const FLAG_DATA_DESCRIPTOR: u16 = 0x8;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;
/// The most entries recorded for one zip (a module's zip rarely holds more
/// than a few thousand files); the rest are hashed after the download.
pub const MAX_RECORDS: usize = 1 << 16;
const OUT_BUF: usize = 64 << 10;
/// A zip that has inflated to this much gets a [`Helper`] for the rest.
const HELP_AFTER: u64 = 8 << 20;
/// Pieces in flight to the helper (and so buffers: a few more).
const HELPER_PIECES: usize = 8;
/// The most one entry may inflate to: Go's `MaxZipFile`, the module zip
/// check's bound on all of them (`gomod::zip::MAX_ZIP_FILE`, which uses
/// this module and so is not used here).
const MAX_INFLATED: u64 = 500 << 20;

/// One entry hashed on the way in, keyed by its local header's offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub header_offset: u64,
    pub method: u16,
    /// Compressed bytes the data took: up to the end of the deflate stream,
    /// or the local header's size for a stored entry.
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub crc32: u32,
    /// The CRC-32 in the data descriptor after the data, when the local
    /// header said one follows.
    pub descriptor_crc: Option<u32>,
    pub sha256: [u8; 32],
}

/// What streaming a zip recorded, in file order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StreamedZip {
    records: Vec<Record>,
}

impl StreamedZip {
    /// The record of the local header at `offset`, if one was completed.
    pub fn at(&self, offset: u64) -> Option<&Record> {
        self.records
            .binary_search_by_key(&offset, |r| r.header_offset)
            .ok()
            .map(|i| &self.records[i])
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

enum State {
    /// Gathering a local header (or meeting the central directory).
    Header,
    /// Passing over the current entry's name and extra field.
    Skip(u64),
    Deflated,
    Stored(u64),
    /// Gathering the data descriptor after the data.
    Descriptor,
    /// The central directory: nothing further is of use here.
    Done,
    /// Something this parser does not follow; the check after the download
    /// reads the rest.
    Stopped,
}

/// The entry being read.
struct Current {
    header_offset: u64,
    flags: u16,
    method: u16,
    /// A stored entry's size, from its local header.
    stored_size: u64,
    consumed: u64,
    produced: u64,
    /// The entry's digests, when they are made on this thread; `None` when
    /// its bytes go to the [`Helper`].
    inline: Option<(Sha256, crc32fast::Hasher)>,
}

/// Bytes for the helper thread: a piece of the current entry (a buffer and
/// how much of it is data), or the end of an entry that is recorded.
enum Piece {
    Data(Vec<u8>, usize),
    End,
}

/// A thread that hashes what this one inflates, once a zip has inflated to
/// [`HELP_AFTER`] bytes: inflating runs at about 1 GB/s and SHA-256 at about
/// 1.8, one after the other about 0.65 on one core, slower than one gigabit
/// for a large, well-compressed zip (google.golang.org/api's 44 MB inflate to
/// 375). Side by side the download keeps its pace. The pieces go through a
/// bounded channel, their buffers come back to be used again.
struct Helper {
    pieces: SyncSender<Piece>,
    spare: Receiver<Vec<u8>>,
    made: usize,
    done: JoinHandle<Vec<([u8; 32], u32)>>,
}

impl Helper {
    fn start() -> Option<Helper> {
        let (pieces, rx) = sync_channel::<Piece>(HELPER_PIECES);
        let (give_back, spare) = sync_channel::<Vec<u8>>(HELPER_PIECES + 2);
        let done = std::thread::Builder::new()
            .name("zip-hash".into())
            .spawn(move || {
                let mut digests = Vec::new();
                let (mut sha, mut crc) = (Sha256::new(), crc32fast::Hasher::new());
                while let Ok(piece) = rx.recv() {
                    match piece {
                        Piece::Data(buf, len) => {
                            sha.update(&buf[..len]);
                            crc.update(&buf[..len]);
                            // The feeding side may be gone: then the buffer goes too.
                            let _ = give_back.try_send(buf);
                        }
                        Piece::End => {
                            let sha = std::mem::take(&mut sha);
                            let crc = std::mem::take(&mut crc);
                            digests.push((sha.finalize().into(), crc.finalize()));
                        }
                    }
                }
                digests
            })
            .ok()?;
        Some(Helper {
            pieces,
            spare,
            made: 0,
            done,
        })
    }

    /// Hands `bytes` over; false if the thread is gone.
    fn send(&mut self, bytes: &[u8]) -> bool {
        for part in bytes.chunks(OUT_BUF) {
            let mut buf = match self.spare.try_recv() {
                Ok(buf) => buf,
                Err(_) if self.made < HELPER_PIECES + 2 => {
                    self.made += 1;
                    vec![0; OUT_BUF]
                }
                Err(_) => match self.spare.recv() {
                    Ok(buf) => buf,
                    Err(_) => return false,
                },
            };
            buf[..part.len()].copy_from_slice(part);
            if self.pieces.send(Piece::Data(buf, part.len())).is_err() {
                return false;
            }
        }
        true
    }

    /// The digests of every entry ended, in order.
    fn finish(self) -> Vec<([u8; 32], u32)> {
        drop(self.pieces);
        self.done.join().unwrap_or_default()
    }
}

/// Feeds of one download, in order.
pub struct ZipStream {
    state: State,
    /// File offset of the next byte fed.
    offset: u64,
    /// A header or descriptor being gathered across chunks (at most 30 bytes).
    pending: Vec<u8>,
    current: Option<Current>,
    inflater: Option<Box<Decompress>>,
    out: Vec<u8>,
    records: Vec<Record>,
    max_records: usize,
    /// Bytes inflated (or stored) so far, all entries.
    inflated: u64,
    helper: Option<Helper>,
    /// Records whose digests the helper makes, in order.
    awaiting: Vec<usize>,
    help_after: u64,
}

impl Default for ZipStream {
    fn default() -> Self {
        Self::new()
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl ZipStream {
    pub fn new() -> Self {
        ZipStream {
            state: State::Header,
            offset: 0,
            pending: Vec::with_capacity(LOCAL_HEADER_LEN),
            current: None,
            inflater: None,
            out: Vec::new(),
            records: Vec::new(),
            max_records: MAX_RECORDS,
            inflated: 0,
            helper: None,
            awaiting: Vec::new(),
            help_after: HELP_AFTER,
        }
    }

    /// Whether feeding more can still record anything.
    pub fn is_active(&self) -> bool {
        !matches!(self.state, State::Done | State::Stopped)
    }

    /// The next bytes of the file.
    pub fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() && self.is_active() {
            let used = self.step(input);
            self.offset += used as u64;
            input = &input[used..];
        }
    }

    /// What was recorded; `None` when nothing was.
    pub fn finish(mut self) -> Option<StreamedZip> {
        if let Some(helper) = self.helper.take() {
            let mut digests = helper.finish().into_iter();
            for &i in &self.awaiting {
                let r = &mut self.records[i];
                match digests.next() {
                    Some((sha, crc)) => (r.sha256, r.crc32) = (sha, crc),
                    // Only if the helper died: what it did not hash is not
                    // recorded (below).
                    None => r.header_offset = u64::MAX,
                }
            }
            self.records.retain(|r| r.header_offset != u64::MAX);
        }
        (!self.records.is_empty()).then_some(StreamedZip {
            records: self.records,
        })
    }

    /// Takes up to `want` bytes of `input` into `pending`; how many it took.
    fn gather(&mut self, input: &[u8], want: usize) -> usize {
        let n = want.saturating_sub(self.pending.len()).min(input.len());
        self.pending.extend_from_slice(&input[..n]);
        n
    }

    /// One step of the parser over `input` (not empty); how many bytes it used.
    fn step(&mut self, input: &[u8]) -> usize {
        match self.state {
            State::Header => {
                let start = self.offset - self.pending.len() as u64;
                let used = self.gather(input, LOCAL_HEADER_LEN);
                if self.pending.len() >= 4 {
                    match le32(&self.pending, 0) {
                        LOCAL_HEADER_SIG => {}
                        CENTRAL_HEADER_SIG | END_SIG => {
                            self.state = State::Done;
                            return used;
                        }
                        _ => {
                            self.state = State::Stopped;
                            return used;
                        }
                    }
                }
                if self.pending.len() == LOCAL_HEADER_LEN {
                    self.begin_entry(start);
                }
                used
            }
            State::Skip(left) => {
                let n = left.min(input.len() as u64);
                let left = left - n;
                if left == 0 {
                    self.begin_data();
                } else {
                    self.state = State::Skip(left);
                }
                n as usize
            }
            State::Stored(left) => {
                let n = left.min(input.len() as u64) as usize;
                let cur = self.current.as_mut().expect("an entry is being read");
                cur.consumed += n as u64;
                cur.produced += n as u64;
                self.digest(&input[..n]);
                let left = left - n as u64;
                if !self.is_active() {
                    return n;
                }
                if left == 0 {
                    self.end_data();
                } else {
                    self.state = State::Stored(left);
                }
                n
            }
            State::Deflated => self.inflate(input),
            State::Descriptor => {
                let used = self.gather(input, 4);
                if self.pending.len() < 4 {
                    return used;
                }
                // The signature is optional: 16 bytes with it, 12 without
                // (zip64's 8-byte sizes are not followed: the next header
                // would not be where expected, and recording stops there).
                let want = if le32(&self.pending, 0) == DATA_DESCRIPTOR_SIG {
                    16
                } else {
                    12
                };
                let used = used + self.gather(&input[used..], want);
                if self.pending.len() == want {
                    let crc = le32(&self.pending, want - 12);
                    self.record(Some(crc));
                }
                used
            }
            State::Done | State::Stopped => input.len(),
        }
    }

    fn begin_entry(&mut self, header_offset: u64) {
        let h = &self.pending;
        let flags = le16(h, 6);
        let method = le16(h, 8);
        let (size, compressed) = (le32(h, 22), le32(h, 18));
        let skip = u64::from(le16(h, 26)) + u64::from(le16(h, 28));
        let descriptor = flags & FLAG_DATA_DESCRIPTOR != 0;
        let followable = flags & FLAG_ENCRYPTED == 0
            && self.records.len() < self.max_records
            && match method {
                METHOD_DEFLATED => true,
                // A stored entry's end is only known from its header.
                METHOD_STORED => !descriptor && size == compressed && size != u32::MAX,
                _ => false,
            };
        self.pending.clear();
        if !followable {
            self.state = State::Stopped;
            return;
        }
        self.current = Some(Current {
            header_offset,
            flags,
            method,
            stored_size: u64::from(size),
            consumed: 0,
            produced: 0,
            inline: Some((Sha256::new(), crc32fast::Hasher::new())),
        });
        self.state = State::Skip(skip);
        if skip == 0 {
            self.begin_data();
        }
    }

    fn begin_data(&mut self) {
        if self.inflated >= self.help_after && self.helper.is_none() {
            self.helper = Helper::start();
        }
        let cur = self.current.as_mut().expect("an entry is being read");
        if self.helper.is_some() {
            cur.inline = None;
        }
        if cur.method == METHOD_STORED {
            // `begin_entry` checked both sizes agree.
            let size = cur.stored_size;
            self.state = State::Stored(size);
            if size == 0 {
                self.end_data();
            }
            return;
        }
        match &mut self.inflater {
            Some(d) => d.reset(false),
            None => self.inflater = Some(Box::new(Decompress::new(false))),
        }
        if self.out.is_empty() {
            self.out = vec![0; OUT_BUF];
        }
        self.state = State::Deflated;
    }

    fn inflate(&mut self, input: &[u8]) -> usize {
        let d = self
            .inflater
            .as_mut()
            .expect("an inflater for a deflated entry");
        let cur = self.current.as_mut().expect("an entry is being read");
        let (in_before, out_before) = (d.total_in(), d.total_out());
        let status = d.decompress(input, &mut self.out, FlushDecompress::None);
        let used = (d.total_in() - in_before) as usize;
        let made = (d.total_out() - out_before) as usize;
        cur.consumed += used as u64;
        cur.produced += made as u64;
        let too_large = cur.produced > MAX_INFLATED;
        let out = std::mem::take(&mut self.out);
        self.digest(&out[..made]);
        self.out = out;
        match status {
            _ if !self.is_active() => {}
            _ if too_large => self.state = State::Stopped,
            Ok(Status::StreamEnd) => self.end_data(),
            Ok(Status::Ok) if used > 0 || made > 0 => {}
            // No progress with input left: the data is not a deflate stream
            // this inflater follows; the check after the download says why.
            Ok(_) | Err(_) => self.state = State::Stopped,
        }
        used
    }

    fn end_data(&mut self) {
        let cur = self.current.as_ref().expect("an entry is being read");
        if cur.flags & FLAG_DATA_DESCRIPTOR != 0 {
            self.pending.clear();
            self.state = State::Descriptor;
        } else {
            self.record(None);
        }
    }

    /// Hashes the current entry's next bytes, here or on the helper.
    fn digest(&mut self, bytes: &[u8]) {
        self.inflated += bytes.len() as u64;
        let cur = self.current.as_mut().expect("an entry is being read");
        match (&mut cur.inline, &mut self.helper) {
            (Some((sha, crc)), _) => {
                sha.update(bytes);
                crc.update(bytes);
            }
            (None, Some(helper)) => {
                if !helper.send(bytes) {
                    self.state = State::Stopped;
                }
            }
            (None, None) => unreachable!("an entry is hashed here or on the helper"),
        }
    }

    fn record(&mut self, descriptor_crc: Option<u32>) {
        let cur = self.current.take().expect("an entry is being read");
        let (sha256, crc32) = match cur.inline {
            Some((sha, crc)) => (sha.finalize().into(), crc.finalize()),
            None => {
                let sent = self
                    .helper
                    .as_ref()
                    .is_some_and(|h| h.pieces.send(Piece::End).is_ok());
                if !sent {
                    self.state = State::Stopped;
                    return;
                }
                self.awaiting.push(self.records.len());
                // Filled in by `finish`.
                ([0; 32], 0)
            }
        };
        self.records.push(Record {
            header_offset: cur.header_offset,
            method: cur.method,
            compressed_size: cur.consumed,
            uncompressed_size: cur.produced,
            crc32,
            descriptor_crc,
            sha256,
        });
        self.pending.clear();
        self.state = State::Header;
    }
}

/// How much more of the file the writer reports at a time.
pub const FOLLOW_STEP: u64 = 256 << 10;
/// What is left for the follower to read when the download ends, at most,
/// for it to finish rather than stop (the check reads the rest, its large
/// windows on every core).
const DRAIN_AT_END: u64 = 1 << 20;

struct Progress {
    /// Bytes of the file written so far.
    written: u64,
    ended: bool,
}

struct Shared {
    progress: Mutex<Progress>,
    moved: Condvar,
    /// Bytes the follower has fed so far (for tests to wait on).
    #[cfg(test)]
    fed: std::sync::atomic::AtomicU64,
}

/// A [`ZipStream`] that follows a zip being written to a file, on a thread
/// of its own, reading what the writer has put in the file so far. The
/// download never waits for it: when the last byte is written the follower
/// stops where it is (or finishes, with at most `DRAIN_AT_END` left), and
/// the check after the download reads whatever it did not record. A
/// large, well-compressed zip, hashed slower than one gigabit delivers it,
/// then costs its check only the part the follower had not reached, spread
/// over every core.
pub struct Follower {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Option<StreamedZip>>>,
}

impl Follower {
    /// Follows the file at `path` as it is written; `None` if it cannot be
    /// opened or no thread can be started (the check reads everything then).
    pub fn start(path: &Path) -> Option<Follower> {
        let file = File::open(path).ok()?;
        let shared = Arc::new(Shared {
            progress: Mutex::new(Progress {
                written: 0,
                ended: false,
            }),
            moved: Condvar::new(),
            #[cfg(test)]
            fed: std::sync::atomic::AtomicU64::new(0),
        });
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("zip-follow".into())
            .spawn(move || follow(&file, &theirs))
            .ok()?;
        Some(Follower {
            shared,
            thread: Some(thread),
        })
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.shared
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The first `len` bytes of the file are written (and flushed).
    pub fn written(&self, len: u64) {
        self.progress().written = len;
        self.shared.moved.notify_one();
    }

    /// The download is complete (all of it reported by [`Follower::written`]):
    /// what the follower recorded.
    pub fn finish(mut self) -> Option<StreamedZip> {
        self.end();
        self.thread.take()?.join().ok().flatten()
    }

    fn end(&self) {
        self.progress().ended = true;
        self.shared.moved.notify_one();
    }
}

impl Drop for Follower {
    /// A download that failed: the thread stops on its own, soon.
    fn drop(&mut self) {
        self.end();
    }
}

/// The follower's thread: reads the file as far as it is written and feeds
/// it to a [`ZipStream`], until the zip's directory, something it cannot
/// follow, or the end of the download.
fn follow(file: &File, shared: &Shared) -> Option<StreamedZip> {
    let mut zip = ZipStream::new();
    let mut buf = vec![0u8; FOLLOW_STEP as usize];
    let mut at: u64 = 0;
    'follow: while zip.is_active() {
        let (written, ended) = {
            let mut p = shared
                .progress
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while p.written <= at && !p.ended {
                p = shared
                    .moved
                    .wait(p)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            (p.written, p.ended)
        };
        if ended && written.saturating_sub(at) > DRAIN_AT_END {
            break;
        }
        while at < written && zip.is_active() {
            let want = (written - at).min(FOLLOW_STEP) as usize;
            let n = match file.read_at(&mut buf[..want], at) {
                Ok(0) | Err(_) => break 'follow,
                Ok(n) => n,
            };
            zip.feed(&buf[..n]);
            at += n as u64;
            #[cfg(test)]
            shared.fed.store(at, std::sync::atomic::Ordering::SeqCst);
            if !ended {
                let p = shared
                    .progress
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if p.ended && p.written.saturating_sub(at) > DRAIN_AT_END {
                    break 'follow;
                }
            }
        }
        if ended {
            break;
        }
    }
    zip.finish()
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use zip::CompressionMethod;
    use zip::write::SimpleFileOptions;

    use super::*;
    use crate::gomod::zip::tests::noise;
    use crate::gomod::zip::{ZipSummary, check_and_hash_zip_file, check_and_hash_zip_streamed};

    const M: &str = "example.com/m";
    const V: &str = "v1.0.0";

    fn name(rel: &str) -> String {
        format!("{M}@{V}/{rel}")
    }

    /// A zip of `files` entries (plus a directory entry when `dir`): written
    /// as Go's writer does, sizes after the data (`stream`), or with sizes in
    /// the local headers.
    fn module_zip(files: usize, method: CompressionMethod, stream: bool, dir: bool) -> Vec<u8> {
        let opts = SimpleFileOptions::default().compression_method(method);
        let entries: Vec<(String, Vec<u8>)> = (0..files)
            .map(|i| (name(&format!("f{i}.go")), noise(i, 100 + i * 977)))
            .collect();
        macro_rules! write_all {
            ($w:expr) => {{
                if dir {
                    $w.add_directory(name("sub/"), opts).unwrap();
                }
                for (n, d) in &entries {
                    $w.start_file(n.as_str(), opts).unwrap();
                    $w.write_all(d).unwrap();
                }
            }};
        }
        if stream {
            let mut w = zip::ZipWriter::new_stream(Vec::new());
            write_all!(w);
            w.finish().unwrap().into_inner()
        } else {
            let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
            write_all!(w);
            w.finish().unwrap().into_inner()
        }
    }

    fn stream_with(bytes: &[u8], chunk: usize, help_after: u64) -> Option<StreamedZip> {
        let mut z = ZipStream::new();
        z.help_after = help_after;
        for c in bytes.chunks(chunk.max(1)) {
            z.feed(c);
        }
        z.finish()
    }

    /// What streaming `bytes` in pieces of `chunk` records: the same whether
    /// every entry is hashed on this thread, each on the helper, or the
    /// helper takes over after the first kilobyte.
    fn stream(bytes: &[u8], chunk: usize) -> Option<StreamedZip> {
        let here = stream_with(bytes, chunk, u64::MAX);
        assert_eq!(stream_with(bytes, chunk, 0), here, "all on the helper");
        assert_eq!(stream_with(bytes, chunk, 1024), here, "helper after 1 KiB");
        here
    }

    /// The check of `bytes` (as a file), with what streaming recorded and
    /// without: the summary, or the error's text.
    fn both(bytes: &[u8], streamed: Option<&StreamedZip>) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.zip");
        std::fs::write(&path, bytes).unwrap();
        let show = |r: Result<ZipSummary, crate::gomod::zip::ZipError>| match r {
            Ok(s) => format!("{} {} {}", s.h1, s.files, s.uncompressed_size),
            Err(e) => format!("error: {e}"),
        };
        let with = show(check_and_hash_zip_streamed(
            std::fs::File::open(&path).unwrap(),
            &path,
            M,
            V,
            streamed,
        ));
        let without = show(check_and_hash_zip_file(
            std::fs::File::open(&path).unwrap(),
            &path,
            M,
            V,
        ));
        (with, without)
    }

    #[test]
    fn every_entry_is_recorded_in_any_chunking_and_the_check_agrees() {
        for method in [CompressionMethod::Deflated, CompressionMethod::Stored] {
            for stream_sizes in [true, false] {
                for dir in [false, true] {
                    if stream_sizes && method == CompressionMethod::Stored {
                        // The zip crate writes stored entries' sizes in the
                        // header even when streaming; Go never stores.
                        continue;
                    }
                    let bytes = module_zip(7, method, stream_sizes, dir);
                    for chunk in [1, 3, 29, 30, 31, 4096, bytes.len()] {
                        let streamed = stream(&bytes, chunk).expect("records");
                        let what =
                            format!("{method:?} stream={stream_sizes} dir={dir} chunk={chunk}");
                        assert_eq!(streamed.len(), 7 + usize::from(dir), "{what}");
                        let (with, without) = both(&bytes, Some(&streamed));
                        assert!(!with.starts_with("error"), "{what}: {with}");
                        assert_eq!(with, without, "{what}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_check_takes_the_recorded_digests_instead_of_reading_again() {
        // Proof that the check after the download does not read the data
        // again: data changed on disk after streaming goes unseen with the
        // records (and is refused without them).
        let bytes = module_zip(3, CompressionMethod::Stored, false, false);
        let streamed = stream(&bytes, 512).unwrap();
        let mut changed = bytes.clone();
        // The first entry's first byte of data.
        let at = LOCAL_HEADER_LEN + usize::from(le16(&bytes, 26)) + usize::from(le16(&bytes, 28));
        changed[at] ^= 0x20;
        let (with, without) = both(&changed, Some(&streamed));
        let (original, _) = both(&bytes, None);
        assert_eq!(with, original);
        assert!(without.contains("checksum"), "{without}");
    }

    /// Offsets of the first local header's and central record's fields.
    fn central_offset(bytes: &[u8]) -> usize {
        bytes
            .windows(4)
            .position(|w| w == CENTRAL_HEADER_SIG.to_le_bytes())
            .unwrap()
    }

    #[test]
    fn a_record_the_directory_disagrees_with_is_not_taken() {
        // Each change makes the central directory declare something else
        // than what the local header at its offset led to: the check reads
        // the entry itself, and says what it always said.
        let bytes = module_zip(3, CompressionMethod::Deflated, true, false);
        let streamed = stream(&bytes, 4096).unwrap();
        let cd = central_offset(&bytes);
        let patches: [(usize, &[u8]); 5] = [
            (cd + 16, &[1, 2, 3, 4]),  // CRC-32
            (cd + 20, &[9, 0, 0, 0]),  // compressed size
            (cd + 24, &[10, 0, 0, 0]), // uncompressed size
            (cd + 10, &[0, 0]),        // method: stored
            (cd + 42, &[1, 0, 0, 0]),  // local header offset
        ];
        for (at, with_bytes) in patches {
            let mut b = bytes.clone();
            b[at..at + with_bytes.len()].copy_from_slice(with_bytes);
            let (with, without) = both(&b, Some(&streamed));
            assert!(without.starts_with("error"), "patch at {at}: {without}");
            assert_eq!(with, without, "patch at {at}");
        }
    }

    #[test]
    fn what_it_cannot_follow_stops_it_and_keeps_what_came_before() {
        let bytes = module_zip(3, CompressionMethod::Deflated, true, false);
        // Data before the first entry: nothing recorded.
        let mut prefixed = b"#!/bin/sh\n".to_vec();
        prefixed.extend_from_slice(&bytes);
        assert_eq!(stream(&prefixed, 100), None);
        // The second entry's local header names an unknown method: the
        // first is kept, and the check refuses the zip as before.
        let second = bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == LOCAL_HEADER_SIG.to_le_bytes())
            .nth(1)
            .unwrap()
            .0;
        let mut odd = bytes.clone();
        odd[second + 8] = 12;
        let streamed = stream(&odd, 100).unwrap();
        assert_eq!(streamed.len(), 1);
        let (with, without) = both(&odd, Some(&streamed));
        assert_eq!(with, without);
        // A body that is no zip at all (a go.mod) is dropped at once.
        let mut z = ZipStream::new();
        z.feed(b"module example.com/m\n");
        assert!(!z.is_active());
        assert_eq!(z.finish(), None);
    }

    #[test]
    fn the_inflate_bound_is_the_zip_checks() {
        assert_eq!(MAX_INFLATED, crate::gomod::zip::MAX_ZIP_FILE);
    }

    #[test]
    fn a_helper_hashes_large_zips_beside_the_inflater() {
        // More than HELP_AFTER inflated: the later entries are hashed on the
        // helper thread, and the records are those made on one thread.
        let bytes = big_zip();
        let mut z = ZipStream::new();
        for c in bytes.chunks(64 << 10) {
            z.feed(c);
        }
        assert!(z.helper.is_some(), "a helper past {HELP_AFTER} bytes");
        assert!(!z.awaiting.is_empty());
        let helped = z.finish().unwrap();
        assert_eq!(
            Some(&helped),
            stream_with(&bytes, 64 << 10, u64::MAX).as_ref()
        );
        assert_eq!(helped.len(), 12);
        let (with, without) = both(&bytes, Some(&helped));
        assert!(!with.starts_with("error"), "{with}");
        assert_eq!(with, without);
    }

    fn big_zip() -> Vec<u8> {
        let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        let mut w = zip::ZipWriter::new_stream(Vec::new());
        for i in 0..12 {
            w.start_file(name(&format!("big{i}.txt")), opts).unwrap();
            w.write_all(&noise(i, 1 << 20)).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn a_follower_records_a_zip_written_piece_by_piece() {
        let bytes = big_zip();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z");
        let mut file = std::fs::File::create(&path).unwrap();
        let follower = Follower::start(&path).unwrap();
        let mut written = 0;
        for piece in bytes.chunks(100_000) {
            file.write_all(piece).unwrap();
            written += piece.len() as u64;
            follower.written(written);
        }
        // Caught up before the end (or within DRAIN_AT_END of it).
        let started = std::time::Instant::now();
        while follower
            .shared
            .fed
            .load(std::sync::atomic::Ordering::SeqCst)
            < written
            && started.elapsed() < std::time::Duration::from_secs(60)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let streamed = follower.finish().unwrap();
        assert_eq!(
            Some(&streamed),
            stream_with(&bytes, 4096, u64::MAX).as_ref()
        );
        let (with, without) = both(&bytes, Some(&streamed));
        assert!(!with.starts_with("error"), "{with}");
        assert_eq!(with, without);
    }

    #[test]
    fn a_follower_far_behind_at_the_end_stops_and_the_check_reads_the_rest() {
        let bytes = big_zip();
        assert!(bytes.len() as u64 > DRAIN_AT_END + 2 * FOLLOW_STEP);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z");
        std::fs::write(&path, &bytes).unwrap();
        let follower = Follower::start(&path).unwrap();
        // All of it written at once, and the download over at once: the
        // follower reads at most one step before it sees the end.
        follower.written(bytes.len() as u64);
        let streamed = follower.finish();
        let recorded = streamed.as_ref().map_or(0, StreamedZip::len);
        assert!(recorded < 12, "{recorded} of 12 recorded");
        let (with, without) = both(&bytes, streamed.as_ref());
        assert!(!with.starts_with("error"), "{with}");
        assert_eq!(with, without);
    }

    #[test]
    fn records_stop_at_their_bound() {
        let bytes = module_zip(9, CompressionMethod::Deflated, true, false);
        let mut z = ZipStream::new();
        z.max_records = 4;
        z.feed(&bytes);
        let streamed = z.finish().unwrap();
        assert_eq!(streamed.len(), 4);
        let (with, without) = both(&bytes, Some(&streamed));
        assert_eq!(with, without);
        assert!(!with.starts_with("error"), "{with}");
    }

    #[test]
    fn damaged_zips_check_the_same_with_and_without_records() {
        // Random damage, fed in random pieces: the parser never panics, and
        // the check's answer never depends on what it recorded.
        let zips = [
            module_zip(4, CompressionMethod::Deflated, true, true),
            module_zip(4, CompressionMethod::Deflated, false, false),
            module_zip(4, CompressionMethod::Stored, false, true),
        ];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for round in 0..300 {
            let mut b = zips[round % zips.len()].clone();
            for _ in 0..=next(3) {
                let at = next(b.len());
                b[at] = next(256) as u8;
            }
            let chunk = 1 + next(300);
            let streamed = stream(&b, chunk);
            let (with, without) = both(&b, streamed.as_ref());
            assert_eq!(with, without, "round {round}, chunk {chunk}");
        }
    }
}
