//! What people see: messages, a progress bar on a terminal (plain periodic
//! lines otherwise, for cron mail and journald), and byte and time formatting.

use std::io::IsTerminal;
use std::sync::Mutex;
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
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
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
            eprintln!(
                "{}: {done}{of} {detail} ({})",
                p.label,
                duration(p.started.elapsed())
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap().take() {
            bar.finish_and_clear();
        }
        self.plain.lock().unwrap().total = None;
    }
}

/// `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `2m 05s`, `3.2s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 << 30), "5.0 GiB");
        assert_eq!(duration(Duration::from_millis(3200)), "3.2s");
        assert_eq!(duration(Duration::from_secs(125)), "2m 05s");
        assert_eq!(duration(Duration::from_secs(7260)), "2h 01m");
    }
}
