//! Bounded reading of foreign input: every byte a peer hands us (a file in
//! a bundle or a project, a feed segment, a snapshot, a listing) is read
//! through here, so that its size is known to be bounded *before* or
//! *while* it is read, never after.
//!
//! * A file is opened only if it is a regular file ([`open_regular`]): a
//!   FIFO is opened without blocking and refused (it would hang the reader
//!   for ever), a device such as `/dev/zero` is refused before a byte is
//!   read (it never ends), and a file's size is judged from its metadata
//!   before it is read (a sparse 2 GB manifest costs nothing to refuse).
//!   A file that grows while it is read is cut at its limit all the same.
//! * Text is split into lines by a [`LineSplitter`] that refuses a line
//!   longer than the format allows as soon as that many bytes arrived
//!   without a newline, and a line past the number the format allows (a
//!   feed segment holds `segment_entries` lines: the next one is refused as
//!   it arrives). It takes bytes as they come, from a file ([`Lines`]) or
//!   a network stream, so memory is one line and one chunk.
//! * Sizes from a peer are summed with checked arithmetic ([`total`]): a
//!   sum that wraps past 2^64 is an error, not a small number.
//!
//! The limits themselves belong to the formats (their modules say why a
//! number is what it is); this module only enforces them. It depends on
//! nothing else of gomirror.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("`{}` is {what}, not a regular file", path.display())]
    NotRegular { path: PathBuf, what: &'static str },
    #[error("`{}` is {size} bytes, more than the {limit} it may have", path.display())]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl FileError {
    /// The file does not exist (or a directory on its way does not).
    pub fn is_not_found(&self) -> bool {
        matches!(self, FileError::Io { source, .. }
            if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory))
    }
}

/// What a file type is, for a refusal.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` (links followed) if it is a regular file of at most `limit`
/// bytes; returns it with its size. Never blocks on a FIFO, never reads a
/// device.
pub fn open_regular(path: &Path, limit: u64) -> Result<(File, u64), FileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer. It changes nothing for a regular file. O_NOCTTY: a terminal
    // device never becomes ours.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
            what: kind_of(meta.file_type()),
        });
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit,
        });
    }
    Ok((file, meta.len()))
}

/// Reads a regular file of at most `limit` bytes whole (see [`open_regular`]).
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let (file, size) = open_regular(path, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // One byte past the limit: a file growing meanwhile is refused too.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| FileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// Bytes that arrive in pieces (a network body, a file read a buffer at a
/// time) counted against a limit: the piece that passes it is refused as
/// it arrives, so nothing past the limit is ever kept.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    limit: u64,
    used: u64,
}

/// A piece took a [`Budget`] past its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("more than {limit} bytes")]
pub struct OverBudget {
    pub limit: u64,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget { limit, used: 0 }
    }

    /// Counts a piece of `n` bytes; refuses it if it takes the total past
    /// the limit.
    pub fn spend(&mut self, n: usize) -> Result<(), OverBudget> {
        self.used = self.used.saturating_add(n as u64);
        if self.used > self.limit {
            return Err(OverBudget { limit: self.limit });
        }
        Ok(())
    }

    /// Bytes counted so far.
    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

/// A reader that refuses to deliver more than `limit` bytes: past it, a
/// read fails (`InvalidData`, "more than N bytes") instead of ending
/// quietly as `Read::take` would, so a parser reading through it cannot
/// mistake a cut for the end.
pub struct Capped<R> {
    inner: R,
    budget: Budget,
}

impl<R: Read> Capped<R> {
    pub fn new(inner: R, limit: u64) -> Capped<R> {
        Capped {
            inner,
            budget: Budget::new(limit),
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Ask for one byte more than is left: getting it means the input is
        // longer than allowed.
        let left = self.budget.limit() - self.budget.used();
        let want = (buf.len() as u64).min(left.saturating_add(1)) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        self.budget
            .spend(n)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(n)
    }
}

/// The sum of sizes a peer declared, or `None` if it wraps past 2^64.
pub fn total(sizes: impl IntoIterator<Item = u64>) -> Option<u64> {
    sizes.into_iter().try_fold(0u64, u64::checked_add)
}

/// Why a line was refused. `line` is 1-based.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("line {line} is longer than {limit} bytes")]
    TooLong { line: u64, limit: usize },
    #[error("line {line}: more than the {limit} lines it may have")]
    TooMany { line: u64, limit: u64 },
}

/// How long a line and how many lines a format allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineLimits {
    /// Bytes in one line, its newline not counted.
    pub max_len: usize,
    /// Lines in all.
    pub max_lines: u64,
}

/// Splits bytes that arrive in pieces into lines under [`LineLimits`]:
/// [`LineSplitter::push`] a piece, take the lines it completed with
/// [`LineSplitter::next_line`] until it says `None`, and
/// [`LineSplitter::finish`] at the end for a last line without a newline.
/// A line is refused as soon as it is too long, not when it ends, and a
/// line past the count as soon as its first byte is there. Memory is one
/// line and one piece.
#[derive(Debug)]
pub struct LineSplitter {
    limits: LineLimits,
    buf: Vec<u8>,
    /// Where the next line starts in `buf`.
    start: usize,
    /// Where the search for the next newline resumes.
    scanned: usize,
    /// Lines handed out so far.
    lines: u64,
    ended: bool,
}

impl LineSplitter {
    pub fn new(limits: LineLimits) -> LineSplitter {
        LineSplitter {
            limits,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            lines: 0,
            ended: false,
        }
    }

    /// Lines handed out so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Takes the next piece of input. Call [`LineSplitter::next_line`] until
    /// it says `None` before pushing again.
    pub fn push(&mut self, piece: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(piece);
    }

    /// The input has ended: what is left is the last line.
    pub fn finish(&mut self) {
        self.ended = true;
    }

    /// The next complete line (without its `\n`), if one is there.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, LineError> {
        Ok(self.next_range()?.map(|r| &self.buf[r]))
    }

    fn next_range(&mut self) -> Result<Option<std::ops::Range<usize>>, LineError> {
        let from = self.scanned.max(self.start);
        let end = match self.buf[from..].iter().position(|&b| b == b'\n') {
            Some(i) => from + i,
            None => {
                self.scanned = self.buf.len();
                let partial = self.buf.len() - self.start;
                if partial == 0 {
                    return Ok(None);
                }
                self.check(partial)?;
                if !self.ended {
                    return Ok(None);
                }
                self.buf.len()
            }
        };
        self.check(end - self.start)?;
        self.lines += 1;
        let range = self.start..end;
        self.start = (end + 1).min(self.buf.len());
        self.scanned = self.start;
        Ok(Some(range))
    }

    /// Whether a line of `len` bytes (so far) may be the next one.
    fn check(&self, len: usize) -> Result<(), LineError> {
        let line = self.lines + 1;
        if len > self.limits.max_len {
            return Err(LineError::TooLong {
                line,
                limit: self.limits.max_len,
            });
        }
        if line > self.limits.max_lines {
            return Err(LineError::TooMany {
                line,
                limit: self.limits.max_lines,
            });
        }
        Ok(())
    }
}

/// Why [`Lines`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadLinesError {
    #[error(transparent)]
    Line(#[from] LineError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The lines of a reader under [`LineLimits`] (see [`LineSplitter`]).
pub struct Lines<R> {
    inner: R,
    splitter: LineSplitter,
    chunk: Vec<u8>,
}

impl<R: Read> Lines<R> {
    pub fn new(inner: R, limits: LineLimits) -> Lines<R> {
        Lines {
            inner,
            splitter: LineSplitter::new(limits),
            chunk: vec![0; 64 << 10],
        }
    }

    /// The next line (without its `\n`), `None` at the end.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, ReadLinesError> {
        loop {
            if let Some(r) = self.splitter.next_range()? {
                return Ok(Some(&self.splitter.buf[r]));
            }
            if self.splitter.ended {
                return Ok(None);
            }
            let n = loop {
                match self.inner.read(&mut self.chunk) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r?,
                }
            };
            if n == 0 {
                self.splitter.finish();
            } else {
                self.splitter.push(&self.chunk[..n]);
            }
        }
    }

    /// Lines handed out so far.
    pub fn count(&self) -> u64 {
        self.splitter.lines()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_len: usize, max_lines: u64) -> LineLimits {
        LineLimits { max_len, max_lines }
    }

    fn all_lines(input: &[u8], l: LineLimits, piece: usize) -> Result<Vec<String>, LineError> {
        let mut s = LineSplitter::new(l);
        let mut out = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            s.push(chunk);
            while let Some(line) = s.next_line()? {
                out.push(String::from_utf8_lossy(line).into_owned());
            }
        }
        s.finish();
        while let Some(line) = s.next_line()? {
            out.push(String::from_utf8_lossy(line).into_owned());
        }
        Ok(out)
    }

    #[test]
    fn lines_come_out_whole_however_the_input_is_cut() {
        let input = b"alpha\nbeta\n\ngamma";
        for piece in 1..=input.len() {
            assert_eq!(
                all_lines(input, limits(10, 10), piece).unwrap(),
                ["alpha", "beta", "", "gamma"],
                "pieces of {piece}"
            );
        }
        assert_eq!(all_lines(b"a\n", limits(1, 1), 1).unwrap(), ["a"]);
        assert!(all_lines(b"", limits(1, 0), 1).unwrap().is_empty());
    }

    #[test]
    fn a_long_line_is_refused_before_it_ends() {
        // An endless line: refused once a byte past the limit arrived.
        let mut s = LineSplitter::new(limits(8, 10));
        s.push(b"ok\n12345678");
        assert_eq!(s.next_line().unwrap(), Some(&b"ok"[..]));
        assert_eq!(s.next_line().unwrap(), None);
        s.push(b"9");
        assert_eq!(s.next_line(), Err(LineError::TooLong { line: 2, limit: 8 }));
        assert_eq!(
            all_lines(b"123456789\n", limits(8, 10), 100),
            Err(LineError::TooLong { line: 1, limit: 8 })
        );
        // The buffer never holds much more than one line and one piece.
        let mut s = LineSplitter::new(limits(1000, u64::MAX));
        let mut refused = false;
        for _ in 0..10_000 {
            s.push(&[b'x'; 100]);
            if s.next_line().is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused && s.buf.len() <= 1100, "{}", s.buf.len());
    }

    #[test]
    fn the_line_past_the_count_is_refused_as_it_begins() {
        let mut s = LineSplitter::new(limits(100, 2));
        s.push(b"a\nb\nc");
        assert!(s.next_line().unwrap().is_some() && s.next_line().unwrap().is_some());
        // The third line is refused before it ends.
        assert_eq!(s.next_line(), Err(LineError::TooMany { line: 3, limit: 2 }));
        assert_eq!(
            all_lines(b"a\nb\nc\n", limits(100, 2), 100),
            Err(LineError::TooMany { line: 3, limit: 2 })
        );
        // Exactly the count, with or without a final newline, passes.
        assert_eq!(all_lines(b"a\nb\n", limits(100, 2), 1).unwrap(), ["a", "b"]);
        assert_eq!(all_lines(b"a\nb", limits(100, 2), 1).unwrap(), ["a", "b"]);
    }

    #[test]
    fn lines_of_a_reader() {
        let text = "one\ntwo\nthree\n".repeat(10_000);
        let mut l = Lines::new(text.as_bytes(), limits(5, u64::MAX));
        let mut n = 0;
        while let Some(line) = l.next_line().unwrap() {
            assert!([&b"one"[..], b"two", b"three"].contains(&line), "{line:?}");
            n += 1;
        }
        assert_eq!((n, l.count()), (30_000, 30_000));
        let mut l = Lines::new(&b"ok\ntoo long\n"[..], limits(5, 10));
        assert_eq!(l.next_line().unwrap(), Some(&b"ok"[..]));
        assert!(matches!(
            l.next_line(),
            Err(ReadLinesError::Line(LineError::TooLong { line: 2, .. }))
        ));
    }

    #[test]
    fn only_regular_files_are_read_and_their_size_is_judged_first() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"module x\n").unwrap();
        assert_eq!(read_regular(&small, 100).unwrap(), b"module x\n");

        // A sparse file of 2 GB: refused from its metadata, nothing read.
        let sparse = dir.path().join("sparse");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(2 << 30)
            .unwrap();
        let e = read_regular(&sparse, 1 << 20).unwrap_err();
        assert!(
            matches!(e, FileError::TooLarge { size, .. } if size == 2 << 30),
            "{e}"
        );

        // A FIFO with no writer: refused at once, never waited on.
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_regular(&fifo, 100).unwrap_err();
        assert!(e.to_string().contains("is a FIFO"), "{e}");

        // A link to a device that never ends, a directory.
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_regular(&zero, 100).unwrap_err();
        assert!(e.to_string().contains("is a device"), "{e}");
        let e = read_regular(dir.path(), 100).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");

        let e = read_regular(&dir.path().join("absent"), 100).unwrap_err();
        assert!(e.is_not_found(), "{e}");
    }

    #[test]
    fn capped_readers_fail_past_their_limit() {
        let mut out = Vec::new();
        Capped::new(&b"12345"[..], 5).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"12345");
        let e = Capped::new(&b"123456"[..], 5)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let e = Capped::new(std::io::repeat(0), 1 << 20)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(e.to_string().contains("more than 1048576 bytes"), "{e}");
    }

    #[test]
    fn a_budget_refuses_the_piece_that_passes_it() {
        let mut b = Budget::new(10);
        assert_eq!(b.spend(4), Ok(()));
        assert_eq!(b.spend(6), Ok(()));
        assert_eq!(b.spend(1), Err(OverBudget { limit: 10 }));
        let mut b = Budget::new(u64::MAX);
        b.spend(usize::MAX).unwrap();
        assert!(b.spend(usize::MAX).is_ok() || b.used() == u64::MAX);
    }

    #[test]
    fn sizes_that_wrap_are_no_total() {
        assert_eq!(total([1, 2, 3]), Some(6));
        assert_eq!(total([u64::MAX, 2]), None);
        assert_eq!(total([u64::MAX / 2 + 1, u64::MAX / 2 + 1]), None);
        assert_eq!(total([]), Some(0));
    }
}
