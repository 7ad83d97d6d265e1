//! Demand: what the mirror's own clients asked for and did not get.
//!
//! `[demand] access_logs` names nginx's access logs for the tree. Each sync
//! reads what was appended since the last run ([`read_logs`]) and takes the
//! requests a GOPROXY client makes — `/<module>/@v/<version>.info|.mod|.zip`,
//! `/<module>/@v/list`, `/<module>/@latest` — that were answered 404 or 410
//! (a miss) or 200/206/304 (a hit, which only keeps a request known to be
//! in use). A missed version becomes wanted as that exact version; a missed
//! list or `@latest` makes the module's tagged versions wanted, as a seed's
//! are. Only *names* come from the log: every version is fetched from the
//! upstream and verified against the checksum database like any other, so a
//! client can make the mirror fetch, never make it serve something.
//!
//! What a noisy or hostile client can ask for is bounded: a run takes at
//! most `max_new_modules` modules the mirror did not hold and at most
//! `max_new_versions` requests (the rest wait, most asked for first);
//! `filter.exclude`, `demand.include` and the policy screen every request
//! ([`Screen`]); a request the upstream does not have is not asked again
//! for a growing delay ([`crate::state`]'s demand part); at most
//! [`MAX_KEYS`] distinct requests are tallied per run and a bounded number
//! wait in the state database.
//!
//! # Reading the logs
//!
//! Two line formats are understood, per line: nginx's `combined` (the
//! default) and JSON, as the shipped nginx sites log it (`log_format
//! gomirror escape=json '{"time":"$time_iso8601",…,"request":"$request",
//! "status":$status,…}'`; `uri`/`request_uri` with `method`/`request_method`
//! serve too). A line is bounded ([`MAX_LINE`]: a longer one is skipped, to
//! its end), the bytes of one run too ([`MAX_BYTES_PER_RUN`]: the rest is
//! read by the next run), and nothing of a line is shown unescaped.
//!
//! Where a log was read to is remembered in the state database by device,
//! inode and first bytes (moved in the transaction that records the lines,
//! so a killed run reads them again rather than losing them). When the log
//! was rotated since (logrotate's `create`: the file renamed to `<log>.1`,
//! a new one opened), the rest of `<log>.1` is read to its end and the new
//! file from its start; `copytruncate` is recognised by the first bytes.
//! A log rotated twice between two syncs loses what is in `<log>.2` (a
//! warning says so): sync more often than logs rotate.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::gomod::semver;
use crate::shown;
use crate::source::{
    AnyIntake, Discovery, Event, LocalBoxFuture, Origin, OriginError, SourceError,
};
use crate::state::{DemandBatch, DemandTally, LogPosition};
use crate::store::layout::Key;

/// The longest access-log line taken: nginx's request line is at most its
/// `large_client_header_buffers` (8 KiB by default), and the rest of a line
/// is short. A longer line is skipped to its end.
pub const MAX_LINE: usize = 16 << 10;
/// How much of the logs one run reads at most: at the speed of the reader
/// (several hundred MB/s) a few tens of seconds; the rest waits for the
/// next run, which resumes where this one stopped.
pub const MAX_BYTES_PER_RUN: u64 = 8 << 30;
/// Distinct requests tallied per run (each a few hundred bytes); past it,
/// misses of other requests are counted and dropped.
pub const MAX_KEYS: usize = 100_000;
/// Of those, how many a hit may start (a hit only says a request is still
/// in use); past it, hits on requests not missed this run are not counted.
const MAX_HIT_KEYS: usize = MAX_KEYS / 2;
/// How many bytes identify a log file besides its inode.
const HEAD: usize = 64;
/// How many sample lines a run shows per kind of problem.
const SAMPLES: usize = 3;
/// How much of a sample line is shown.
const SAMPLE_CHARS: usize = 160;
/// The largest `@v/list` read for a module asked for as a whole (as a seed's).
const LIST_BYTES: u64 = crate::source::seeds::LIST_BYTES;

/// Says why a request is not taken (`None`: it may be). Built from
/// `filter.exclude` and `demand.include` ([`crate::services`]); the place
/// where the supply-chain policy's deny list screens demand as well.
pub type Screen = Arc<dyn Fn(&str, Option<&str>) -> Option<String> + Send + Sync>;

/// What one read of the logs saw, besides the requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DemandRead {
    pub lines: u64,
    pub bytes: u64,
    /// Lines answered 404/410 for a module request.
    pub misses: u64,
    /// Lines in neither format.
    pub not_understood: u64,
    /// Lines longer than [`MAX_LINE`].
    pub too_long: u64,
    /// Module-like requests whose path is not a valid module path or version
    /// (`..`, control characters, a version query such as `@v/master.info`).
    pub invalid: u64,
    /// Lines about requests past [`MAX_KEYS`].
    pub dropped: u64,
    /// Misses of requests refused by the screen.
    pub refused: u64,
    /// The byte budget ran out: the next run reads on.
    pub more: bool,
}

/// The result of [`read_logs`].
#[derive(Debug, Default)]
pub struct LogReport {
    pub batch: DemandBatch,
    pub read: DemandRead,
    /// Problems reading the files and samples of skipped lines (escaped,
    /// bounded): shown as warnings.
    pub warnings: Vec<String>,
}

/// What a line says, if it is a request.
#[derive(Debug, PartialEq, Eq)]
struct LogLine<'a> {
    /// GET or HEAD.
    fetch: bool,
    target: &'a [u8],
    status: u16,
    /// The line's time, as logged: parsed only for a miss ([`LogLine::time`]).
    time: Option<LoggedTime<'a>>,
}

/// A line's time as nginx wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LoggedTime<'a> {
    /// `$time_local`: `10/Oct/2000:13:55:36 -0700`.
    Local(&'a [u8]),
    /// `$time_iso8601`: `2000-10-10T13:55:36-07:00`.
    Iso(&'a [u8]),
}

impl LogLine<'_> {
    /// When the request was logged (Unix seconds), if its time parses.
    fn time(&self) -> Option<i64> {
        match self.time? {
            LoggedTime::Local(t) => parse_clf_time(t),
            LoggedTime::Iso(t) => std::str::from_utf8(t)
                .ok()?
                .parse::<jiff::Timestamp>()
                .ok()
                .map(|t| t.as_second()),
        }
    }
}

/// How a request was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Miss,
    Hit,
    Other,
}

fn answer(status: u16) -> Answer {
    match status {
        404 | 410 => Answer::Miss,
        200 | 206 | 304 => Answer::Hit,
        _ => Answer::Other,
    }
}

/// A line in either format, `None` when it is in neither.
fn parse_line(line: &[u8]) -> Option<LogLine<'_>> {
    let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
    if line[start] == b'{' {
        parse_json(line)
    } else {
        parse_combined(line)
    }
}

/// `$remote_addr - $remote_user [$time_local] "$request" $status …`. nginx
/// escapes `"` inside a variable (`\x22`), so the request is between the
/// first two quotes.
fn parse_combined(line: &[u8]) -> Option<LogLine<'_>> {
    let open = memchr::memchr(b'"', line)?;
    let close = open + 1 + memchr::memchr(b'"', &line[open + 1..])?;
    let request = &line[open + 1..close];
    let rest = line.get(close + 1..)?;
    let rest = rest.strip_prefix(b" ")?;
    let status = parse_status(rest.get(..3)?)?;
    if rest.get(3).is_some_and(|b| !b.is_ascii_whitespace()) {
        return None;
    }
    let (fetch, target) = split_request(request)?;
    let time = memchr::memchr(b'[', &line[..open]).and_then(|i| {
        let end = i + 1 + memchr::memchr(b']', &line[i + 1..open])?;
        Some(LoggedTime::Local(&line[i + 1..end]))
    });
    Some(LogLine {
        fetch,
        target,
        status,
        time,
    })
}

/// A JSON line. Keys are found where they can only be keys: after `{` or
/// `,` (inside a JSON string every `"` is escaped).
fn parse_json(line: &[u8]) -> Option<LogLine<'_>> {
    let status = match json_value(line, b"status")? {
        JsonValue::Number(n) | JsonValue::String(n) => parse_status(n)?,
    };
    let (fetch, target) = match json_string(line, b"request") {
        Some(r) => split_request(r)?,
        None => {
            let target = json_string(line, b"request_uri").or_else(|| json_string(line, b"uri"))?;
            let method = json_string(line, b"request_method")
                .or_else(|| json_string(line, b"method"))
                .unwrap_or(b"GET");
            (matches!(method, b"GET" | b"HEAD"), target)
        }
    };
    let time = json_string(line, b"time")
        .or_else(|| json_string(line, b"time_iso8601"))
        .map(LoggedTime::Iso);
    Some(LogLine {
        fetch,
        target,
        status,
        time,
    })
}

enum JsonValue<'a> {
    Number(&'a [u8]),
    /// The raw bytes between the quotes (escapes not decoded: a module
    /// request never needs one, so a value with `\` is never taken as one).
    String(&'a [u8]),
}

/// The keys read from a JSON line.
const JSON_KEYS: [&[u8]; 8] = [
    b"status",
    b"request",
    b"request_uri",
    b"uri",
    b"request_method",
    b"method",
    b"time",
    b"time_iso8601",
];

/// The searcher for one of [`JSON_KEYS`], built once (building one costs
/// more than searching a line with it).
fn key_finder(key: &[u8]) -> &'static memchr::memmem::Finder<'static> {
    static FINDERS: std::sync::LazyLock<Vec<memchr::memmem::Finder<'static>>> =
        std::sync::LazyLock::new(|| {
            JSON_KEYS
                .iter()
                .map(|k| memchr::memmem::Finder::new(*k))
                .collect()
        });
    let i = JSON_KEYS
        .iter()
        .position(|k| *k == key)
        .expect("a key of JSON_KEYS");
    &FINDERS[i]
}

fn json_value<'a>(line: &'a [u8], key: &'static [u8]) -> Option<JsonValue<'a>> {
    let finder = key_finder(key);
    let mut from = 0;
    while let Some(i) = finder.find(&line[from..]) {
        let at = from + i;
        from = at + key.len();
        // `"key"` preceded by `{` or `,` (spaces allowed), followed by `:`.
        if at == 0 || line[at - 1] != b'"' || line.get(at + key.len()) != Some(&b'"') {
            continue;
        }
        let before = line[..at - 1]
            .iter()
            .rev()
            .find(|b| !b.is_ascii_whitespace());
        if !matches!(before, Some(b'{' | b',')) {
            continue;
        }
        let mut rest = &line[at + key.len() + 1..];
        rest = trim_start(rest).strip_prefix(b":")?;
        rest = trim_start(rest);
        if let Some(s) = rest.strip_prefix(b"\"") {
            // The closing quote is the first one not escaped.
            let mut i = 0;
            while i < s.len() {
                match s[i] {
                    b'\\' => i += 2,
                    b'"' => return Some(JsonValue::String(&s[..i])),
                    _ => i += 1,
                }
            }
            return None;
        }
        let end = rest
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b'.' || *b == b'-'))
            .unwrap_or(rest.len());
        return Some(JsonValue::Number(&rest[..end]));
    }
    None
}

fn json_string<'a>(line: &'a [u8], key: &'static [u8]) -> Option<&'a [u8]> {
    match json_value(line, key)? {
        JsonValue::String(s) => Some(s),
        JsonValue::Number(_) => None,
    }
}

fn trim_start(b: &[u8]) -> &[u8] {
    let i = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[i..]
}

fn parse_status(b: &[u8]) -> Option<u16> {
    if b.len() != 3 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// `GET /path HTTP/1.1` → (is a GET or HEAD, the target).
fn split_request(request: &[u8]) -> Option<(bool, &[u8])> {
    let sp = memchr::memchr(b' ', request)?;
    let method = &request[..sp];
    let rest = &request[sp + 1..];
    let target = match memchr::memchr(b' ', rest) {
        Some(i) => &rest[..i],
        None => rest,
    };
    Some((matches!(method, b"GET" | b"HEAD"), target))
}

/// `10/Oct/2000:13:55:36 -0700` → Unix seconds.
fn parse_clf_time(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    let (date_time, zone) = s.split_once(' ')?;
    let mut parts = date_time.splitn(4, ':');
    let (date, h, mi, sec) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let mut d = date.splitn(3, '/');
    let (day, mon, year) = (d.next()?, d.next()?, d.next()?);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == mon)? as i8 + 1;
    let date = jiff::civil::Date::new(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    let time =
        jiff::civil::Time::new(h.parse().ok()?, mi.parse().ok()?, sec.parse().ok()?, 0).ok()?;
    let zone = zone.trim();
    if zone.len() != 5 {
        return None;
    }
    let sign: i32 = match &zone[..1] {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let zh: i32 = zone[1..3].parse().ok()?;
    let zm: i32 = zone[3..5].parse().ok()?;
    let offset = jiff::tz::Offset::from_seconds(sign * (zh * 3600 + zm * 60)).ok()?;
    let ts = offset.to_timestamp(date.to_datetime(time)).ok()?;
    Some(ts.as_second())
}

/// What a request target names: `(module, Some(version))` for a version's
/// file, `(module, None)` for `@v/list` or `@latest`; `Err(())` for a
/// request that looks like a module request but names no valid module
/// (counted and sampled), `Ok(None)` for anything else (the checksum
/// database, the feed, a scanner's probe).
#[allow(clippy::type_complexity)]
fn module_request(target: &[u8]) -> Result<Option<(String, Option<String>)>, ()> {
    let mut t = target;
    for scheme in [&b"http://"[..], b"https://"] {
        if let Some(rest) = t.strip_prefix(scheme) {
            t = &rest[memchr::memchr(b'/', rest).unwrap_or(rest.len())..];
        }
    }
    if let Some(i) = memchr::memchr2(b'?', b'#', t) {
        t = &t[..i];
    }
    let looks = memchr::memmem::find(t, b"/@v/").is_some() || t.ends_with(b"/@latest");
    if !looks {
        return Ok(None);
    }
    let Some(rel) = t.strip_prefix(b"/") else {
        return Err(());
    };
    let decoded;
    let rel = if memchr::memchr(b'%', rel).is_some() {
        decoded = percent_decode(rel).ok_or(())?;
        &decoded[..]
    } else {
        rel
    };
    let rel = std::str::from_utf8(rel).map_err(|_| ())?;
    match Key::parse(rel) {
        Some(Key::Version {
            module, version, ..
        }) => Ok(Some((module, Some(version)))),
        Some(Key::List { module } | Key::Latest { module }) => Ok(Some((module, None))),
        Some(_) => Ok(None),
        None => Err(()),
    }
}

fn percent_decode(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The tallies of one run, bounded.
struct Tallies {
    /// Request target (as logged) → index into `tallies`, or `None` for a
    /// target that names no module (so it is judged once). Bounded by
    /// [`MAX_KEYS`] too.
    targets: HashMap<Box<[u8]>, Option<usize>>,
    by_key: HashMap<(String, Option<String>), usize>,
    tallies: Vec<DemandTally>,
    /// Tallies a hit started.
    hit_keys: usize,
    invalid_samples: Vec<String>,
}

impl Tallies {
    fn new() -> Tallies {
        Tallies {
            targets: HashMap::new(),
            by_key: HashMap::new(),
            tallies: Vec::new(),
            hit_keys: 0,
            invalid_samples: Vec::new(),
        }
    }

    /// Counts one request line.
    fn count(&mut self, l: &LogLine<'_>, read: &mut DemandRead, now: i64) {
        let kind = answer(l.status);
        if kind == Answer::Other || !l.fetch {
            return;
        }
        let slot = match self.targets.get(l.target) {
            Some(s) => *s,
            // Not judged yet, and a hit could not start a tally: not parsed.
            None if kind == Answer::Hit && self.hit_keys >= MAX_HIT_KEYS => return,
            None => {
                let slot = match module_request(l.target) {
                    Ok(None) => None,
                    Err(()) => {
                        read.invalid += 1;
                        if self.invalid_samples.len() < SAMPLES {
                            self.invalid_samples
                                .push(shown::bytes(&l.target[..l.target.len().min(SAMPLE_CHARS)]));
                        }
                        // Not remembered: a flood of junk must not fill the map.
                        return;
                    }
                    Ok(Some(key)) => match self.by_key.get(&key) {
                        Some(&i) => Some(i),
                        // Hits only keep requests known to be in use: on
                        // a busy mirror they must not crowd out misses.
                        None if kind == Answer::Hit && self.hit_keys >= MAX_HIT_KEYS => return,
                        None if self.tallies.len() >= MAX_KEYS => {
                            read.dropped += 1;
                            return;
                        }
                        None => {
                            if kind == Answer::Hit {
                                self.hit_keys += 1;
                            }
                            let i = self.tallies.len();
                            self.tallies.push(DemandTally {
                                module: key.0.clone(),
                                version: key.1.clone(),
                                ..DemandTally::default()
                            });
                            self.by_key.insert(key, i);
                            Some(i)
                        }
                    },
                };
                if self.targets.len() < MAX_KEYS {
                    self.targets.insert(l.target.into(), slot);
                }
                slot
            }
        };
        let Some(i) = slot else { return };
        let t = &mut self.tallies[i];
        match kind {
            Answer::Miss => {
                read.misses += 1;
                t.misses += 1;
                let at = l.time().unwrap_or(now);
                t.first_missed = Some(t.first_missed.map_or(at, |f| f.min(at)));
                t.last_missed = Some(t.last_missed.map_or(at, |f| f.max(at)));
            }
            Answer::Hit => t.hits += 1,
            Answer::Other => {}
        }
    }
}

/// A file of a log, opened, with what identifies it.
struct Opened {
    file: std::fs::File,
    dev: u64,
    ino: u64,
    size: u64,
    head: Vec<u8>,
}

fn open_log(path: &Path) -> Result<Option<Opened>, String> {
    let (file, size) = match crate::bounded::open_regular(path, u64::MAX) {
        Ok(f) => f,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let meta = file.metadata().map_err(|e| e.to_string())?;
    let mut head = vec![0u8; HEAD.min(size as usize)];
    let mut got = 0;
    while got < head.len() {
        match file.read_at(&mut head[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    head.truncate(got);
    Ok(Some(Opened {
        file,
        dev: meta.dev(),
        ino: meta.ino(),
        size,
        head,
    }))
}

impl Opened {
    /// Whether this is the file `p` was read from (and not shorter than
    /// where it was read to).
    fn is(&self, p: &LogPosition) -> bool {
        let same_head = self.head.len() >= p.head.len() && self.head[..p.head.len()] == p.head[..];
        self.size >= p.offset
            && same_head
            && ((self.dev, self.ino) == (p.dev, p.ino) || p.head.len() == HEAD)
    }

    fn position(&self, path: &str, offset: u64) -> LogPosition {
        LogPosition {
            path: path.to_string(),
            dev: self.dev,
            ino: self.ino,
            offset,
            head: self.head.clone(),
        }
    }
}

/// Reads `file` from `from`, line by line, into `tallies`; `to_end`: a
/// last line without its newline counts too (a rotated file is complete).
/// Returns the offset after the last line consumed.
#[allow(clippy::too_many_arguments)]
fn read_from(
    opened: &mut Opened,
    from: u64,
    to_end: bool,
    budget: &mut u64,
    tallies: &mut Tallies,
    read: &mut DemandRead,
    samples: &mut Vec<String>,
    now: i64,
) -> std::io::Result<u64> {
    opened.file.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0u8; 1 << 20];
    // `buf[start..filled]`: read, not consumed yet (at most MAX_LINE bytes
    // are kept between two reads, so there is always room).
    let (mut filled, mut start) = (0usize, 0usize);
    let mut offset = from;
    let mut position = from;
    // Inside a line longer than MAX_LINE: skipping to its end.
    let mut skipping = false;
    let mut line = |l: &[u8], read: &mut DemandRead, samples: &mut Vec<String>| {
        read.lines += 1;
        if l.len() > MAX_LINE {
            read.too_long += 1;
            return;
        }
        match parse_line(l) {
            Some(parsed) => tallies.count(&parsed, read, now),
            None => {
                read.not_understood += 1;
                if samples.len() < SAMPLES {
                    samples.push(shown::bytes(&l[..l.len().min(SAMPLE_CHARS)]));
                }
            }
        }
    };
    loop {
        let mut eof = false;
        if *budget > 0 {
            if start > 0 {
                buf.copy_within(start..filled, 0);
                filled -= start;
                start = 0;
            }
            let room = (buf.len() - filled).min(usize::try_from(*budget).unwrap_or(usize::MAX));
            let n = match opened.file.read(&mut buf[filled..filled + room]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            *budget -= n as u64;
            read.bytes += n as u64;
            position += n as u64;
            filled += n;
            eof = n == 0;
        }
        while let Some(i) = memchr::memchr(b'\n', &buf[start..filled]) {
            if skipping {
                // The end of a line too long to take.
                skipping = false;
            } else {
                line(&buf[start..start + i], read, samples);
            }
            start += i + 1;
            offset += i as u64 + 1;
        }
        if filled - start > MAX_LINE {
            if !skipping {
                read.lines += 1;
                read.too_long += 1;
                skipping = true;
            }
            // Only the end of a long line matters: drop what is buffered.
            offset += (filled - start) as u64;
            start = filled;
        }
        if eof {
            if to_end && filled > start {
                if !skipping {
                    line(&buf[start..filled], read, samples);
                }
                offset += (filled - start) as u64;
            }
            // A long line still being written: the next run starts inside
            // it and skips its rest as a line it does not understand.
            return Ok(offset);
        }
        if *budget == 0 {
            read.more |= filled > start || position < opened.size;
            return Ok(offset);
        }
    }
}

/// Reads what was appended to each of `logs` since `positions` (the
/// state database's, one per log), at most `max_bytes` in all.
pub fn read_logs(
    logs: &[PathBuf],
    positions: &[Option<LogPosition>],
    max_bytes: u64,
    now: i64,
) -> LogReport {
    let mut report = LogReport::default();
    let mut tallies = Tallies::new();
    let mut budget = max_bytes;
    for (i, log) in logs.iter().enumerate() {
        let key = log.display().to_string();
        let shown_path = shown::text(&key);
        let stored = positions.get(i).cloned().flatten();
        let mut samples = Vec::new();
        let before = report.read.clone();
        let outcome = read_one(
            log,
            &key,
            stored.as_ref(),
            &mut budget,
            &mut tallies,
            &mut report,
            &mut samples,
            now,
        );
        match outcome {
            Ok(Some(p)) => report.batch.positions.push(p),
            Ok(None) => {}
            Err(e) => report.warnings.push(format!(
                "demand: cannot read access log {shown_path}: {}",
                shown::text(&e)
            )),
        }
        let r = &report.read;
        if r.not_understood > before.not_understood {
            report.warnings.push(format!(
                "demand: {shown_path}: {} lines in neither the combined nor the JSON log format skipped; the first: {}",
                r.not_understood - before.not_understood,
                samples.join(" | ")
            ));
        }
        if r.too_long > before.too_long {
            report.warnings.push(format!(
                "demand: {shown_path}: {} lines longer than {} bytes skipped",
                r.too_long - before.too_long,
                MAX_LINE
            ));
        }
    }
    if report.read.invalid > 0 {
        report.warnings.push(format!(
            "demand: {} requests for paths that are not a module version skipped; the first: {}",
            report.read.invalid,
            tallies.invalid_samples.join(" | ")
        ));
    }
    if report.read.dropped > 0 {
        report.warnings.push(format!(
            "demand: more than {MAX_KEYS} distinct requests in one run: {} lines about others were not counted",
            report.read.dropped
        ));
    }
    if report.read.more {
        report.warnings.push(format!(
            "demand: read {} MB of access logs this run (the limit); the next run reads on",
            max_bytes >> 20
        ));
    }
    report.batch.tallies = tallies.tallies;
    report.batch.misses = report.read.misses;
    report.batch.lines = report.read.lines;
    report
}

/// One log: the rest of the file it was read from (the rotated one if it
/// moved), then the current one. Returns where it was read to.
#[allow(clippy::too_many_arguments)]
fn read_one(
    log: &Path,
    key: &str,
    stored: Option<&LogPosition>,
    budget: &mut u64,
    tallies: &mut Tallies,
    report: &mut LogReport,
    samples: &mut Vec<String>,
    now: i64,
) -> Result<Option<LogPosition>, String> {
    let shown_path = shown::text(key);
    let current = open_log(log)?;
    let Some(stored) = stored else {
        // A log never read: from its start.
        let Some(mut cur) = current else {
            report.warnings.push(format!(
                "demand: access log {shown_path} does not exist (yet): nothing read"
            ));
            return Ok(None);
        };
        let end = read_from(
            &mut cur,
            0,
            false,
            budget,
            tallies,
            &mut report.read,
            samples,
            now,
        )
        .map_err(|e| e.to_string())?;
        return Ok(Some(cur.position(key, end)));
    };
    if let Some(mut cur) = current
        && cur.is(stored)
    {
        let end = read_from(
            &mut cur,
            stored.offset,
            false,
            budget,
            tallies,
            &mut report.read,
            samples,
            now,
        )
        .map_err(|e| e.to_string())?;
        return Ok(Some(cur.position(key, end)));
    }
    // Rotated since: the rest of the old file, then the new one.
    let mut rotated_os = log.as_os_str().to_owned();
    rotated_os.push(".1");
    let rotated = PathBuf::from(rotated_os);
    let mut old = open_log(&rotated)?;
    let found = old.as_ref().is_some_and(|o| o.is(stored));
    if found && let Some(o) = old.as_mut() {
        let end = read_from(
            o,
            stored.offset,
            true,
            budget,
            tallies,
            &mut report.read,
            samples,
            now,
        )
        .map_err(|e| e.to_string())?;
        if *budget == 0 && end < o.size {
            // Not through the old file yet: go on there next run.
            return Ok(Some(o.position(key, end)));
        }
    } else {
        report.warnings.push(format!(
            "demand: access log {shown_path} was rotated or truncated more than once since the last sync (or {}.1 is compressed): the lines in between were not read",
            shown::text(key)
        ));
    }
    let Some(mut cur) = open_log(log)? else {
        // Rotated and not opened again yet: resume in the old file.
        return Ok(old.filter(|_| found).map(|o| {
            let size = o.size;
            o.position(key, size)
        }));
    };
    let end = read_from(
        &mut cur,
        0,
        false,
        budget,
        tallies,
        &mut report.read,
        samples,
        now,
    )
    .map_err(|e| e.to_string())?;
    Ok(Some(cur.position(key, end)))
}

/// The `[demand]` source: reads the logs, records what they asked for,
/// takes what the limits allow, lists the modules asked for as a whole and
/// names the wanted versions.
pub struct Demand {
    logs: Vec<PathBuf>,
    /// `None` on a mirror with no upstream (fed by `gomirror import`): the
    /// requests are only recorded, for `gomirror requests`.
    origin: Option<Arc<dyn Origin>>,
    max_new_modules: u64,
    max_new_versions: u64,
    keep: Option<Duration>,
    screen: Screen,
}

impl Demand {
    pub fn new(
        logs: Vec<PathBuf>,
        origin: Option<Arc<dyn Origin>>,
        max_new_modules: u64,
        max_new_versions: u64,
        keep: Option<Duration>,
        screen: Screen,
    ) -> Demand {
        Demand {
            logs,
            origin,
            max_new_modules,
            max_new_versions,
            keep,
            screen,
        }
    }
}

/// Reads the logs on the blocking pool (file reads and parsing are not
/// network work) and screens what they asked for.
pub async fn read_and_screen(
    logs: &[PathBuf],
    positions: Vec<Option<LogPosition>>,
    screen: &Screen,
    now: i64,
) -> Result<LogReport, SourceError> {
    let files = logs.to_vec();
    let mut report =
        tokio::task::spawn_blocking(move || read_logs(&files, &positions, MAX_BYTES_PER_RUN, now))
            .await
            .map_err(|e| SourceError::Feed(format!("the access-log reader crashed: {e}")))?;
    let mut refused_samples = Vec::new();
    let mut refused = 0;
    report
        .batch
        .tallies
        .retain(|t| match screen(&t.module, t.version.as_deref()) {
            None => true,
            Some(why) => {
                refused += t.misses;
                if t.misses > 0 && refused_samples.len() < SAMPLES {
                    refused_samples.push(format!("{} ({why})", request_name(t)));
                }
                false
            }
        });
    report.read.refused = refused;
    if refused > 0 {
        report.warnings.push(format!(
            "demand: {refused} misses of requests not allowed skipped: {}",
            refused_samples.join(", ")
        ));
    }
    Ok(report)
}

/// `module@version`, or `module@latest` for the module as a whole.
fn request_name(t: &DemandTally) -> String {
    format!("{}@{}", t.module, t.version.as_deref().unwrap_or("latest"))
}

/// The tagged versions of `module`'s `@v/list` on `origin`.
async fn list_versions(origin: &dyn Origin, module: &str) -> Result<Vec<String>, OriginError> {
    let body = origin.list(module, LIST_BYTES).await?;
    let mut out: Vec<String> = String::from_utf8_lossy(&body)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|v| crate::gomod::check(module, v).is_ok())
        .map(str::to_string)
        .collect();
    out.sort_by(|a, b| semver::sort_cmp(a, b));
    out.dedup();
    Ok(out)
}

impl Discovery for Demand {
    fn describe(&self) -> String {
        let logs: Vec<String> = self
            .logs
            .iter()
            .map(|p| shown::text(&p.display().to_string()))
            .collect();
        format!("access logs ({})", logs.join(", "))
    }

    fn discover<'a>(
        &'a self,
        intake: &'a mut dyn AnyIntake,
    ) -> LocalBoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            let now = crate::clock::now();
            let keys: Vec<String> = self.logs.iter().map(|p| p.display().to_string()).collect();
            let positions = intake.demand_positions(keys).await?;
            let report = read_and_screen(&self.logs, positions, &self.screen, now).await?;
            for w in &report.warnings {
                intake.note(Event::Warning(w.clone()));
            }
            intake.note(Event::Verbose(format!(
                "demand: {} log lines ({} bytes), {} misses of {} requests",
                report.read.lines,
                report.read.bytes,
                report.read.misses,
                report.batch.tallies.len()
            )));
            intake.demand_record(report.batch, report.read).await?;
            let Some(origin) = &self.origin else {
                return Ok(());
            };
            let take = intake
                .demand_take(self.max_new_modules, self.max_new_versions)
                .await?;
            for module in take.to_list {
                match list_versions(&**origin, &module).await {
                    Ok(versions) => intake.demand_listed(module, Some(versions)).await?,
                    Err(e) if e.is_not_found() || matches!(e, OriginError::Name { .. }) => {
                        intake.note(Event::Verbose(format!(
                            "demand: {module}: the upstream has no such module ({e}); asked again later"
                        )));
                        intake.demand_listed(module, None).await?;
                    }
                    Err(e) => intake.note(Event::Warning(format!(
                        "demand: cannot list {module}: {e}; asked again next run"
                    ))),
                }
            }
            intake.demand_name(self.keep).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMBINED: &str = r#"127.0.0.1 - - [10/Oct/2024:13:55:36 +0200] "GET /example.com/m/@v/v1.2.3.zip HTTP/1.1" 404 153 "-" "Go-http-client/1.1""#;

    #[test]
    fn both_formats_are_read() {
        let l = parse_line(COMBINED.as_bytes()).unwrap();
        assert_eq!(
            l,
            LogLine {
                fetch: true,
                target: b"/example.com/m/@v/v1.2.3.zip",
                status: 404,
                time: Some(LoggedTime::Local(b"10/Oct/2024:13:55:36 +0200")),
            }
        );
        assert_eq!(l.time(), Some(1728561336));
        let json = br#"{"time":"2024-10-10T13:55:36+02:00","remote_addr":"127.0.0.1","request":"GET /example.com/!upper/@v/list HTTP/1.1","status":404,"bytes":0,"user_agent":"a \"quoted\" ua, \"status\":200"}"#;
        let l = parse_line(json).unwrap();
        assert_eq!(l.status, 404);
        assert_eq!(l.target, b"/example.com/!upper/@v/list");
        assert_eq!(l.time(), Some(1728561336));
        // Other key names, status as a string, keys in another order.
        let other = br#"{ "status" : "410", "uri": "/example.com/m/@latest", "method": "HEAD" }"#;
        let l = parse_line(other).unwrap();
        assert_eq!(
            (l.status, l.fetch, l.target),
            (410, true, &b"/example.com/m/@latest"[..])
        );
        // A key inside a string value is not a key.
        let fake = br#"{"ua":"x\",\"status\":404,\"request\":\"GET /a.example/m/@v/list","status":200,"request":"GET /b.example/m/@v/list HTTP/1.1"}"#;
        let l = parse_line(fake).unwrap();
        assert_eq!((l.status, l.target), (200, &b"/b.example/m/@v/list"[..]));
        for junk in [
            &b""[..],
            b"garbage",
            b"{\"status\":\"4040\"}",
            b"1.2.3.4 - - [x] \"GET / HTTP/1.1\" abc 1",
            b"\x1b[31m\xff\xfe",
        ] {
            assert!(parse_line(junk).is_none(), "{junk:?}");
        }
    }

    #[test]
    fn only_module_requests_are_taken_and_bad_ones_are_told_apart() {
        let ok = |t: &str| module_request(t.as_bytes());
        assert_eq!(
            ok("/example.com/!upper/@v/v1.0.0.mod?x=1"),
            Ok(Some(("example.com/Upper".into(), Some("v1.0.0".into()))))
        );
        assert_eq!(
            ok("http://mirror.example/example.com/m/@latest"),
            Ok(Some(("example.com/m".into(), None)))
        );
        assert_eq!(
            ok("/example.com/m/@v/v2.0.0%2Bincompatible.info"),
            Ok(Some((
                "example.com/m".into(),
                Some("v2.0.0+incompatible".into())
            )))
        );
        for other in [
            "/",
            "/sumdb/sum.golang.org/latest",
            "/feed/latest",
            "/wp-login.php",
        ] {
            assert_eq!(ok(other), Ok(None), "{other}");
        }
        for bad in [
            "/../../etc/passwd/@v/list",
            "/example.com/m/@v/master.info",
            "/example.com/m/../n/@v/v1.0.0.zip",
            "/example.com/\x1b[2Jm/@v/list",
            "/example.com/Upper/@v/list",
            "/%ff%fe/@v/list",
        ] {
            assert_eq!(ok(bad), Err(()), "{bad}");
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    fn append(path: &Path, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn line(path: &str, status: u16) -> String {
        format!(
            "10.0.0.1 - - [10/Oct/2024:13:55:36 +0000] \"GET {path} HTTP/1.1\" {status} 0 \"-\" \"Go\"\n"
        )
    }

    /// Reads `log` from the stored position, as a sync would; returns the
    /// tallies as `module@version misses/hits` and the new position.
    fn read(log: &Path, pos: Option<LogPosition>) -> (Vec<String>, LogReport) {
        let r = read_logs(&[log.to_path_buf()], &[pos], u64::MAX, 1000);
        let mut t: Vec<String> = r
            .batch
            .tallies
            .iter()
            .map(|t| format!("{} {}/{}", request_name(t), t.misses, t.hits))
            .collect();
        t.sort();
        (t, r)
    }

    #[test]
    fn appended_lines_are_read_once_and_a_partial_line_waits() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        write(
            &log,
            &format!(
                "{}{}{}",
                line("/a.example/m/@v/v1.0.0.zip", 404),
                line("/a.example/m/@v/v1.0.0.info", 404),
                line("/b.example/m/@v/list", 404)
            ),
        );
        let partial = "10.0.0.1 - - [10/Oct/2024:13:55:36 +0000] \"GET /c.ex";
        append(&log, partial);
        let (t, r) = read(&log, None);
        assert_eq!(t, ["a.example/m@v1.0.0 2/0", "b.example/m@latest 1/0"]);
        let pos = r.batch.positions[0].clone();
        assert_eq!(
            pos.offset,
            std::fs::metadata(&log).unwrap().len() - partial.len() as u64,
            "the partial line is not consumed"
        );
        append(
            &log,
            "ample/m/@v/v1.2.0.mod HTTP/1.1\" 404 0 \"-\" \"Go\"\n",
        );
        append(&log, &line("/a.example/m/@v/v1.0.0.zip", 200));
        let (t, r) = read(&log, Some(pos));
        assert_eq!(t, ["a.example/m@v1.0.0 0/1", "c.example/m@v1.2.0 1/0"]);
        let (t, _) = read(&log, Some(r.batch.positions[0].clone()));
        assert!(t.is_empty());
    }

    #[test]
    fn a_rotated_log_is_read_to_its_end_then_the_new_one_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        write(&log, &line("/a.example/m/@v/v1.0.0.zip", 404));
        let (_, r) = read(&log, None);
        let pos = r.batch.positions[0].clone();
        append(&log, &line("/b.example/m/@v/v1.0.0.zip", 404));
        // logrotate's `create`: renamed, a new file opened.
        std::fs::rename(&log, dir.path().join("access.log.1")).unwrap();
        write(&log, &line("/c.example/m/@v/v1.0.0.zip", 404));
        let (t, r) = read(&log, Some(pos));
        assert_eq!(t, ["b.example/m@v1.0.0 1/0", "c.example/m@v1.0.0 1/0"]);
        let pos = r.batch.positions[0].clone();
        assert_eq!(pos.ino, std::fs::metadata(&log).unwrap().ino());

        // `copytruncate`: the same inode, emptied and written again.
        std::fs::copy(&log, dir.path().join("access.log.1")).unwrap();
        append(
            &dir.path().join("access.log.1"),
            &line("/d.example/m/@v/v1.0.0.zip", 404),
        );
        write(&log, &line("/e.example/m/@v/v1.0.0.zip", 404));
        let (t, _) = read(&log, Some(pos.clone()));
        assert_eq!(
            t,
            ["d.example/m@v1.0.0 1/0", "e.example/m@v1.0.0 1/0"],
            "the copy's rest (known by its first bytes), then the emptied file"
        );

        // Rotated twice: what is lost is said.
        std::fs::remove_file(dir.path().join("access.log.1")).unwrap();
        std::fs::remove_file(&log).unwrap();
        write(&log, "x\n");
        let (_, r) = read(&log, Some(pos));
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("rotated or truncated more than once")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn hostile_lines_are_skipped_counted_and_shown_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let huge = format!("{}\n", "A".repeat(5 * MAX_LINE));
        let mut text = String::new();
        text.push_str(&huge);
        text.push_str("\x1b[2J\x1b[31mERROR: forged\x07\n");
        text.push_str(&line("/../../etc/passwd/@v/list", 404));
        text.push_str(&line("/example.com/\u{202e}evil/@v/list", 404));
        text.push_str(&line("/a.example/m/@v/v1.0.0.zip", 404));
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\x00binary\n");
        std::fs::write(&log, &bytes).unwrap();
        let (t, r) = read(&log, None);
        assert_eq!(t, ["a.example/m@v1.0.0 1/0"]);
        assert_eq!(
            (r.read.too_long, r.read.not_understood, r.read.invalid),
            (1, 2, 2)
        );
        assert_eq!(
            r.read.lines, 6,
            "the long line's end is not a line of its own"
        );
        let all = r.warnings.join("\n");
        assert_eq!(r.warnings.len(), 3, "{all}");
        assert!(
            !all.contains('\x1b') && !all.contains('\u{202e}') && !all.contains('\x07'),
            "{all}"
        );
        assert!(all.contains("\\u{1b}[2J"), "{all}");
        assert!(all.len() < 2000, "bounded: {all}");
    }

    #[test]
    fn hits_on_a_busy_mirror_do_not_crowd_out_misses() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let mut text = String::new();
        for i in 0..MAX_HIT_KEYS + 10 {
            text.push_str(&line(&format!("/h.example/m{i}/@v/v1.0.0.zip"), 200));
        }
        text.push_str(&line("/a.example/m/@v/v1.0.0.zip", 404));
        text.push_str(&line("/h.example/m1/@v/v1.0.0.zip", 404));
        write(&log, &text);
        let r = read_logs(std::slice::from_ref(&log), &[None], u64::MAX, 0);
        assert_eq!(r.batch.tallies.len(), MAX_HIT_KEYS + 1);
        assert_eq!(r.read.dropped, 0);
        let missed: Vec<String> = r
            .batch
            .tallies
            .iter()
            .filter(|t| t.misses > 0)
            .map(|t| format!("{} {}/{}", request_name(t), t.misses, t.hits))
            .collect();
        assert_eq!(
            missed,
            ["h.example/m1@v1.0.0 1/1", "a.example/m@v1.0.0 1/0"]
        );
    }

    #[test]
    fn the_byte_budget_stops_at_a_line_and_the_next_run_reads_on() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let one = line("/a.example/m/@v/v1.0.0.zip", 404);
        write(&log, &one.repeat(10));
        let r = read_logs(
            std::slice::from_ref(&log),
            &[None],
            one.len() as u64 * 3 + 5,
            0,
        );
        assert!(r.read.more);
        assert_eq!(r.batch.tallies[0].misses, 3);
        let pos = r.batch.positions[0].clone();
        assert_eq!(pos.offset, one.len() as u64 * 3);
        let r = read_logs(std::slice::from_ref(&log), &[Some(pos)], u64::MAX, 0);
        assert_eq!(r.batch.tallies[0].misses, 7);
        assert!(!r.read.more);
    }

    #[test]
    fn a_fifo_or_a_missing_log_is_a_warning_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.log");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let r = read_logs(
            &[fifo, dir.path().join("missing.log")],
            &[None, None],
            u64::MAX,
            0,
        );
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
        assert!(
            r.warnings[0].contains("not a regular file"),
            "{:?}",
            r.warnings
        );
        assert!(r.warnings[1].contains("does not exist"), "{:?}", r.warnings);
        assert!(r.batch.positions.is_empty());
    }
}
