//! What people see: messages, a progress bar on a terminal (plain periodic
//! lines otherwise, for cron mail and journald), and byte and time formatting.
//!
//! Every byte gomirror prints goes through [`outln`] (results: summaries,
//! JSON, dry-run listings) or [`errln`] (diagnostics), never `print!`: std's
//! printing macros panic when a write fails, so `gomirror status | head -1`
//! or a cron job whose mail spool is full would die with exit 101, and a sync
//! would stop half-way, its run unrecorded. Here a reader that went away
//! (`BrokenPipe`) only silences the stream: the command finishes its work and
//! keeps its exit code, as `head` users expect. Any other failure (a full
//! disk behind `> file`) silences it too, and [`finish_output`] then turns it
//! into an error on stderr and exit 2, because an operator's script relies on
//! that output being complete. SIGPIPE stays ignored, as the Rust runtime
//! sets it before `main`: the signal would kill a sync mid-publish.

pub use crate::clock::now;

pub mod metrics;
pub mod summary;
pub mod trace;

use std::fmt::Display;
use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How chatty to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Prints to stderr; results (summaries, JSON) go to stdout elsewhere.
pub struct Reporter {
    verbosity: Verbosity,
    terminal: bool,
    bar: Mutex<Option<ProgressBar>>,
    plain: Mutex<PlainProgress>,
}

struct PlainProgress {
    label: String,
    /// `None`: no display running; `Some(None)`: running, total unknown.
    total: Option<Option<u64>>,
    last: Instant,
    started: Instant,
}

impl Reporter {
    pub fn new(verbosity: Verbosity) -> Reporter {
        *ACTIVE.lock().unwrap_or_else(PoisonError::into_inner) = ActiveDisplay {
            verbosity,
            bar: None,
        };
        Reporter {
            verbosity,
            terminal: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
            plain: Mutex::new(PlainProgress {
                label: String::new(),
                total: None,
                last: Instant::now(),
                started: Instant::now(),
            }),
        }
    }

    fn print(&self, line: &str) {
        match self.bar.lock().unwrap().as_ref() {
            // indicatif draws only on a terminal and drops its own write errors.
            Some(bar) => bar.println(line),
            None => errln(line),
        }
    }

    /// A failure that does not stop the run.
    pub fn error(&self, msg: &str) {
        self.print(&format!("error: {msg}"));
    }

    pub fn warn(&self, msg: &str) {
        if self.verbosity > Verbosity::Quiet {
            self.print(&format!("warning: {msg}"));
        }
    }

    pub fn info(&self, msg: &str) {
        if self.verbosity > Verbosity::Quiet {
            self.print(msg);
        }
    }

    pub fn verbose(&self, msg: &str) {
        if self.verbosity >= Verbosity::Verbose {
            self.print(msg);
        }
    }

    /// Starts a progress display for `total` items (`None`: unknown, a spinner).
    pub fn start(&self, label: &str, total: Option<u64>) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        if self.terminal {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let style = match total {
                Some(_) => ProgressStyle::with_template(
                    "{prefix:>10} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
                None => {
                    ProgressStyle::with_template("{prefix:>10} {spinner} {pos} {msg} ({elapsed})")
                        .expect("valid template")
                }
            };
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            ACTIVE.lock().unwrap_or_else(PoisonError::into_inner).bar = Some(bar.clone());
            *self.bar.lock().unwrap() = Some(bar);
        } else {
            let mut p = self.plain.lock().unwrap();
            p.label = label.to_string();
            p.total = Some(total);
            p.last = Instant::now();
            p.started = Instant::now();
        }
    }

    /// Updates the progress display: `done` items, `detail` shown beside it.
    pub fn progress(&self, done: u64, detail: &str) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        if let Some(bar) = self.bar.lock().unwrap().as_ref() {
            bar.set_position(done);
            bar.set_message(detail.to_string());
            return;
        }
        let mut p = self.plain.lock().unwrap();
        let Some(total) = p.total else { return };
        if p.last.elapsed() >= Duration::from_secs(10) {
            p.last = Instant::now();
            let of = total.map(|t| format!("/{t}")).unwrap_or_default();
            errln(format_args!(
                "{}: {done}{of} {detail} ({})",
                p.label,
                duration(p.started.elapsed())
            ));
        }
    }

    pub fn finish(&self) {
        ACTIVE.lock().unwrap_or_else(PoisonError::into_inner).bar = None;
        if let Some(bar) = self.bar.lock().unwrap().take() {
            bar.finish_and_clear();
        }
        self.plain.lock().unwrap().total = None;
    }
}

/// What [`retrying`] needs of the one display: the verbosity, and the
/// progress bar when one is drawn.
struct ActiveDisplay {
    verbosity: Verbosity,
    bar: Option<ProgressBar>,
}

static ACTIVE: Mutex<ActiveDisplay> = Mutex::new(ActiveDisplay {
    verbosity: Verbosity::Normal,
    bar: None,
});

/// A request is being retried (the HTTP client's hook, `http::on_retry`):
/// on a terminal the progress line says so. Without a terminal (journald,
/// cron mail) a `retrying:` line goes to stderr when the failed attempt hung
/// for [`SLOW_ATTEMPT`] or more — an upstream that accepts and never answers
/// must not look like silence — or always with `-v`; never with `-q`.
pub fn retrying(message: &str, attempt_took: Duration) {
    let active = ACTIVE.lock().unwrap_or_else(PoisonError::into_inner);
    match (&active.bar, active.verbosity) {
        (_, Verbosity::Quiet) => {}
        (Some(bar), _) => bar.set_message(format!("retrying: {message}")),
        (None, Verbosity::Verbose) => errln(format_args!("retrying: {message}")),
        (None, _) if attempt_took >= SLOW_ATTEMPT => errln(format_args!(
            "retrying: {message}; the attempt took {}",
            duration(attempt_took)
        )),
        (None, _) => {}
    }
}

/// An attempt this slow is worth a line without a terminal.
pub const SLOW_ATTEMPT: Duration = Duration::from_secs(10);

/// `1.50 MiB`: indicatif's binary units, as its progress templates show them.
pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

pub use crate::clock::duration;

/// `1 module`, `2 modules`: a count with its noun (an `s` for other than one).
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// What became of a standard stream.
#[derive(Debug, Default)]
enum StreamState {
    #[default]
    Open,
    /// The reader went away: later output is dropped quietly.
    Closed,
    /// Writing failed for another reason: later output is dropped, and the
    /// error is reported once the command is done.
    Failed(io::Error),
}

/// One standard stream that printing to can never panic or stop a command.
struct Stream {
    state: Mutex<StreamState>,
}

impl Stream {
    const fn new() -> Stream {
        Stream {
            state: Mutex::new(StreamState::Open),
        }
    }

    /// Writes `text` through `w` unless an earlier write failed.
    fn write(&self, w: &mut dyn Write, text: &dyn Display) {
        // A panic elsewhere while printing must not silence everything after it.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !matches!(*state, StreamState::Open) {
            return;
        }
        if let Err(e) = writeln!(w, "{text}") {
            *state = StreamState::from(e);
        }
    }

    fn flush(&self, w: &mut dyn Write) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*state, StreamState::Open)
            && let Err(e) = w.flush()
        {
            *state = StreamState::from(e);
        }
    }

    /// The write error that is not a closed pipe, if there was one.
    fn failure(&self) -> Option<String> {
        match &*self.state.lock().unwrap_or_else(PoisonError::into_inner) {
            StreamState::Failed(e) => Some(e.to_string()),
            _ => None,
        }
    }
}

impl From<io::Error> for StreamState {
    fn from(e: io::Error) -> StreamState {
        if e.kind() == io::ErrorKind::BrokenPipe {
            StreamState::Closed
        } else {
            StreamState::Failed(e)
        }
    }
}

static STDOUT: Stream = Stream::new();
static STDERR: Stream = Stream::new();

/// Prints one line of results to stdout (a newline is added).
pub fn outln(line: impl Display) {
    STDOUT.write(&mut io::stdout().lock(), &line);
}

/// Prints one diagnostic line to stderr (a newline is added).
///
/// A stderr that fails is only silenced: there is nowhere left to say so,
/// and the exit code still tells what the command did.
pub fn errln(line: impl Display) {
    STDERR.write(&mut io::stderr().lock(), &line);
}

/// Flushes stdout and returns the exit code to use: `code`, or 2 if results
/// could not be written for another reason than a closed pipe (the error is
/// printed on stderr, naming stdout).
pub fn finish_output(code: i32) -> i32 {
    let code = if *LATE_FAILURE.lock().unwrap_or_else(PoisonError::into_inner) {
        code.max(2)
    } else {
        code
    };
    STDOUT.flush(&mut io::stdout().lock());
    match STDOUT.failure() {
        Some(e) => {
            errln(format_args!(
                "error: cannot write the output to stdout: {e}"
            ));
            code.max(2)
        }
        None => code,
    }
}

/// A failure found after the command's work was done and recorded (the
/// metrics file could not be written): printed at once, and
/// [`finish_output`] raises the exit code to 2.
pub fn late_failure(message: String) {
    errln(format_args!("error: {message}"));
    *LATE_FAILURE.lock().unwrap_or_else(PoisonError::into_inner) = true;
}

static LATE_FAILURE: Mutex<bool> = Mutex::new(false);

/// Records a failed write of something printed elsewhere (clap's help), so
/// that [`finish_output`] reports it like one of ours.
pub fn stdout_failed(e: io::Error) {
    *STDOUT.state.lock().unwrap_or_else(PoisonError::into_inner) = StreamState::from(e);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts `room` bytes, then fails every write with `errno`.
    struct Limited {
        written: Vec<u8>,
        room: usize,
        errno: i32,
        attempts: usize,
    }

    impl Write for Limited {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.attempts += 1;
            if self.written.len() >= self.room {
                return Err(io::Error::from_raw_os_error(self.errno));
            }
            let n = buf.len().min(self.room - self.written.len());
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn limited(room: usize, errno: i32) -> Limited {
        Limited {
            written: Vec::new(),
            room,
            errno,
            attempts: 0,
        }
    }

    #[test]
    fn closed_pipe_silences_the_stream_without_a_failure() {
        let s = Stream::new();
        let mut w = limited(6, libc::EPIPE);
        s.write(&mut w, &"first");
        s.write(&mut w, &"second");
        let attempts = w.attempts;
        s.write(&mut w, &"third");
        assert_eq!(w.written, b"first\n");
        assert_eq!(w.attempts, attempts, "wrote again after the pipe closed");
        assert_eq!(s.failure(), None);
    }

    #[test]
    fn full_disk_is_kept_as_the_failure_to_report() {
        let s = Stream::new();
        let mut w = limited(3, libc::ENOSPC);
        s.write(&mut w, &"first");
        s.write(&mut w, &"second");
        assert_eq!(w.written, b"fir");
        let e = s.failure().expect("a failure");
        assert!(e.contains("No space left on device"), "{e}");
    }

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(5 << 30), "5.00 GiB");
        assert_eq!(duration(Duration::from_millis(3200)), "3.2s");
        assert_eq!(duration(Duration::from_secs(125)), "2m 05s");
        assert_eq!(duration(Duration::from_secs(7260)), "2h 01m");
    }
}
