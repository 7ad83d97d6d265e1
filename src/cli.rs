//! The command line: parse, load and check the configuration, run a command,
//! and map the outcome to the documented exit codes.
//!
//! | exit | meaning |
//! |------|---------|
//! | 0 | all good |
//! | 1 | some versions failed (sync) or problems remain (verify) |
//! | 2 | fatal: configuration, I/O, signature or consistency failure; prune refused |
//! | 3 | another run holds the lock |
//! | 130, 143 | interrupted by SIGINT, SIGTERM (128 + the signal's number) |

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::lock::{LockError, RunLock};
use crate::report::{self, Reporter, Verbosity};
use crate::settings::{ConfigError, Settings};
use crate::{status, sync, verify};

pub const EXIT_OK: i32 = 0;
pub const EXIT_PARTIAL: i32 = 1;
pub const EXIT_FATAL: i32 = 2;
pub const EXIT_LOCKED: i32 = 3;

/// The configuration file read without `-c`.
const DEFAULT_CONFIG: &str = "sync.toml";

#[derive(Parser, Debug)]
#[command(
    name = "gomirror",
    version,
    about = "Keeps a verified mirror of Go modules: a static GOPROXY tree with its checksum database",
    after_help = "Exit codes: 0 all good, 1 some versions failed / problems remain, 2 fatal (or prune refused), 3 another run holds the lock, 130/143 interrupted by SIGINT/SIGTERM.\n\nDocumentation: README.md (quick start, configuration reference) and docs/ in the gomirror source tree. Sample configurations: sync.toml there (a small mirror to try), examples/production/sync.toml (a server install)."
)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        short,
        long,
        global = true,
        default_value = "sync.toml",
        value_name = "FILE"
    )]
    pub config: PathBuf,
    /// Only errors, and the summary when something went wrong (nothing at all on a clean run: for cron).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail while working.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One incremental pass: discover, fetch, verify, publish, prune.
    Sync {
        /// Walk the index and print what would be fetched and deleted; change nothing in the tree.
        #[arg(long)]
        dry_run: bool,
        /// Retry failed versions now instead of waiting for their retry time.
        #[arg(long)]
        retry_failed: bool,
    },
    /// Re-check every published file against the state database.
    Verify {
        /// Refetch, re-verify and republish whatever is damaged or missing.
        #[arg(long)]
        repair: bool,
        /// Compare sizes and modification times only (fast, for very large mirrors).
        #[arg(long, conflicts_with = "repair")]
        quick: bool,
        /// Check only the next slice of the mirror: run daily, the slices
        /// cover it all once per `verify.cycle` (default 30 days).
        #[arg(long)]
        slice: bool,
    },
    /// Delete what the filter or the upstream no longer wants, and strays in the tree.
    Prune {
        /// Print the deletion set; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Delete even past prune.max_delete.
        #[arg(long)]
        force: bool,
    },
    /// Judge candidate upstreams (default: the configured proxy list) on a
    /// sample of published versions: latency, throughput, coverage,
    /// freshness, integrity. Exit 1 if one served bytes that fail verification.
    Probe {
        /// Machine-readable output (an array, one object per candidate).
        #[arg(long)]
        json: bool,
        /// How many published versions to sample (the newest five included).
        #[arg(long, default_value_t = 20, value_name = "N")]
        sample: usize,
        /// Candidate GOPROXY URLs; default: the entries of upstream.proxy.
        #[arg(value_name = "URL")]
        urls: Vec<String>,
    },
    /// Write one bundle for an air-gapped mirror under DIR: what changed
    /// since the last export (or, with --full, the whole mirror). Its path
    /// is the last line on stdout.
    Export {
        /// The whole mirror, not the changes since the last export.
        #[arg(long)]
        full: bool,
        /// Cut the bundle into parts of at most this size (650MB, 4.7GB, 25GiB).
        #[arg(long, value_name = "SIZE", value_parser = parse_max_size)]
        max_size: Option<u64>,
        /// Print what the bundle would carry and how big it would be; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where the bundle directory is created.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Import a bundle from `gomirror export`: every part, file and version
    /// is verified (against this mirror's own sumdb.key) before anything is published.
    Import {
        /// Check the bundle and its place in the sequence, print what it would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The bundle directory (the path `gomirror export` printed).
        #[arg(value_name = "BUNDLE")]
        bundle: PathBuf,
    },
    /// Write a new note signer key NAME.key (secret, for export.signing_key)
    /// and its verifier key NAME.pub (for import.trusted_keys).
    Keygen {
        /// The key's name (e.g. mirror.example.org/bundles).
        #[arg(value_name = "NAME")]
        name: String,
        /// Where to write the two files.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// Per mirrored version: known vulnerabilities (from the mirrored
    /// vulnerability database), retraction, deprecation; and the from_files
    /// project pins affected. Exit 1 with --fail-on when something matched.
    Audit {
        /// Machine-readable output (one JSON object).
        #[arg(long)]
        json: bool,
        /// Exit 1 when a version is vulnerable, retracted or deprecated
        /// (repeat, or separate with commas).
        #[arg(long, value_enum, value_delimiter = ',', value_name = "FINDING")]
        fail_on: Vec<crate::audit::FailOn>,
        /// List every version checked, not only those with a finding.
        #[arg(long)]
        all: bool,
        /// Modules to audit: paths or GOPRIVATE-style patterns, or module@version (default: all).
        #[arg(value_name = "MODULE")]
        modules: Vec<String>,
    },
    /// What clients asked for and did not get (read from demand.access_logs
    /// first), as a module list for another mirror's filter.from_files.
    Requests {
        /// Only requests missed since then: an RFC 3339 time or a duration ago (7d, 12h).
        #[arg(long, value_name = "TIME", value_parser = crate::requests::parse_since)]
        since: Option<i64>,
        /// Write the list to FILE (replaced whole) instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Cursor, freshness (how far behind the index), counts, recent runs and failures.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Do not ask the index how far behind the mirror is (no network).
        #[arg(long)]
        offline: bool,
    },
}

/// Parses arguments, runs, and returns the exit code.
pub fn main() -> i32 {
    let code = match Cli::try_parse() {
        Ok(cli) => run(cli),
        Err(e) => {
            // clap's own `exit` would drop a failed write of `--help` and exit 0.
            if let Err(io) = e.print()
                && !e.use_stderr()
            {
                report::stdout_failed(io);
            }
            e.exit_code()
        }
    };
    report::finish_output(code)
}

fn run(cli: Cli) -> i32 {
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let out = Reporter::new(verbosity);
    crate::http::on_retry(report::retrying);
    if let Command::Keygen { name, dir } = &cli.command {
        return match crate::keygen::run(name, dir) {
            Ok(lines) => {
                for l in lines {
                    report::outln(l);
                }
                EXIT_OK
            }
            Err(e) => {
                report::errln(format_args!("error: {e}"));
                EXIT_FATAL
            }
        };
    }
    let settings = match Settings::load(&cli.config) {
        Ok(s) => s,
        Err(e) => {
            print_error(&e);
            if let ConfigError::Read { source, .. } = &e
                && source.kind() == std::io::ErrorKind::NotFound
                && cli.config == Path::new(DEFAULT_CONFIG)
            {
                report::errln(format_args!(
                    "hint: without -c, gomirror reads ./{DEFAULT_CONFIG}; an installed mirror's is usually `-c /etc/gomirror/sync.toml` (a sample: examples/production/sync.toml)"
                ));
            }
            return EXIT_FATAL;
        }
    };
    match cli.command {
        Command::Status { json, offline } => match status::run(&settings, json, offline) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                // Its message already carries SQLite's: no `Caused by:` repeating it.
                report::errln(format_args!("error: {e}"));
                EXIT_FATAL
            }
        },
        Command::Audit {
            json,
            fail_on,
            all,
            modules,
        } => {
            let opts = crate::audit::AuditOptions {
                json,
                fail_on,
                all,
                modules,
            };
            match crate::audit::run(&settings, &opts) {
                Ok(report) => {
                    if json {
                        report::outln(serde_json::to_string_pretty(&report).expect("serializable"));
                    } else {
                        let lines = report.render();
                        let n = lines.len();
                        // -q: the findings only, not the summary line (for cron).
                        for (i, line) in lines.into_iter().enumerate() {
                            if !(cli.quiet && i + 1 == n) {
                                report::outln(line);
                            }
                        }
                    }
                    report.exit_code()
                }
                Err(e) => {
                    print_error(&e);
                    e.exit_code()
                }
            }
        }
        Command::Probe { json, sample, urls } => {
            let opts = crate::probe::ProbeOptions { json, sample, urls };
            match crate::probe::run(&settings, &opts, &out) {
                Ok(false) => EXIT_OK,
                Ok(true) => EXIT_PARTIAL,
                Err(e) => {
                    report::errln(format_args!("error: {e}"));
                    EXIT_FATAL
                }
            }
        }
        Command::Sync {
            dry_run,
            retry_failed,
        } => {
            let lock = match take_lock(&settings, cli.quiet) {
                Ok(l) => l,
                Err(code) => return code,
            };
            let opts = sync::SyncOptions {
                dry_run,
                retry_failed,
            };
            let report = sync::run(&settings, &opts, &out, &lock);
            let code = report.exit_code();
            // -q: a clean run prints nothing, so cron mails only trouble.
            if !(cli.quiet && code == EXIT_OK) {
                print_block(&report.render());
            }
            for line in report.render_errors() {
                report::errln(line);
            }
            code
        }
        Command::Keygen { .. } => unreachable!("handled before the configuration is read"),
        Command::Export {
            full,
            max_size,
            dry_run,
            dir,
        } => {
            let lock = match take_lock(&settings, cli.quiet) {
                Ok(l) => l,
                Err(code) => return code,
            };
            let opts = crate::export::ExportOptions {
                dir,
                full,
                max_size,
                dry_run,
            };
            match crate::export::run(&settings, &opts, &out, &lock) {
                Ok(report) => {
                    let lines = report.render();
                    let n = lines.len();
                    for (i, line) in lines.into_iter().enumerate() {
                        // -q keeps the path (the last line): scripts read it.
                        if !cli.quiet || (i + 1 == n && report.bundle.is_some()) {
                            report::outln(line);
                        }
                    }
                    EXIT_OK
                }
                Err(e) => {
                    print_error(&e);
                    e.exit_code()
                }
            }
        }
        Command::Import { dry_run, bundle } => {
            let lock = match take_lock(&settings, cli.quiet) {
                Ok(l) => l,
                Err(code) => return code,
            };
            let opts = crate::import::ImportOptions { bundle, dry_run };
            let report = crate::import::run(&settings, &opts, &out, &lock);
            let code = report.exit_code();
            if !(cli.quiet && code == EXIT_OK) {
                for line in report.render() {
                    report::outln(line);
                }
            }
            for line in report.render_errors() {
                report::errln(line);
            }
            code
        }
        Command::Verify {
            repair,
            quick,
            slice,
        } => {
            let lock = match take_lock(&settings, cli.quiet) {
                Ok(l) => l,
                Err(code) => return code,
            };
            let opts = verify::VerifyOptions {
                repair,
                quick,
                slice,
            };
            match verify::run(&settings, &opts, &out, &lock) {
                Ok(report) => {
                    let code = report.exit_code();
                    if !(cli.quiet && code == EXIT_OK) {
                        print_block(&report.render());
                    }
                    code
                }
                Err(e) => {
                    print_error(&e);
                    e.exit_code()
                }
            }
        }
        Command::Requests { since, output } => {
            let lock = match take_lock(&settings, cli.quiet) {
                Ok(l) => l,
                Err(code) => return code,
            };
            let opts = crate::requests::RequestsOptions { since, output };
            match crate::requests::run(&settings, &opts, &out, &lock) {
                Ok(report) => {
                    if let Some(path) = &report.output
                        && !cli.quiet
                    {
                        report::outln(format_args!(
                            "{} requests written to {path}",
                            report.requests
                        ));
                    }
                    EXIT_OK
                }
                Err(e) => {
                    print_error(&e);
                    e.exit_code()
                }
            }
        }
        Command::Prune { dry_run, force } => {
            let lock = match take_lock(&settings, cli.quiet) {
                Ok(l) => l,
                Err(code) => return code,
            };
            match crate::prune::run_command(&settings, dry_run, force, &out, &lock) {
                Ok(summary) => {
                    if summary.refused {
                        // The refusal is already on stderr, the deletion set on stdout.
                        EXIT_FATAL
                    } else {
                        if !cli.quiet || dry_run {
                            report::outln(summary.render_line());
                        }
                        EXIT_OK
                    }
                }
                Err(e) => {
                    print_error(&e);
                    e.exit_code()
                }
            }
        }
    }
}

fn parse_max_size(s: &str) -> Result<u64, String> {
    crate::bundle::parse_size(s)
}

/// Prints a rendered summary whose lines already end in newlines.
fn print_block(text: &str) {
    for line in text.lines() {
        report::outln(line);
    }
}

/// The run lock, or the exit code to end with. Under `-q` a lock held by
/// another run is not news (exit 3 alone): a cron line every five minutes
/// during a long first sync would otherwise mail each time, though the
/// systemd unit counts exit 3 as success.
fn take_lock(settings: &Settings, quiet: bool) -> Result<RunLock, i32> {
    match RunLock::acquire(&settings.state) {
        Ok(l) => Ok(l),
        Err(e @ LockError::Busy { .. }) => {
            if !quiet {
                report::errln(format_args!("error: {e}"));
            }
            Err(EXIT_LOCKED)
        }
        Err(e) => {
            print_error(&e);
            Err(EXIT_FATAL)
        }
    }
}

/// `error: …` then each cause on its own `Caused by:` line (a cause whose
/// text the line before already quotes is not repeated): the one renderer of
/// errors on stderr.
pub fn print_error(e: &dyn std::error::Error) {
    for (i, line) in crate::runner::render_chain(e).lines().enumerate() {
        if i == 0 {
            report::errln(format_args!("error: {line}"));
        } else {
            report::errln(format_args!("  {line}"));
        }
    }
}
