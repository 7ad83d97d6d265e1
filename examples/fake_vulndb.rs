//! Builds a Go vulnerability database in vuln.go.dev's layout from OSV
//! entries, for a local file server (or `file://`) to serve: the test
//! suite's fake (`tests/support/vulndb.rs`) as a command.
//!
//! ```text
//! cargo run --example fake-vulndb -- --osv DIR --out DIR [--touch N]
//! ```
//!
//! `--osv` is a directory of OSV entries (`*.json`), e.g. the `data/osv`
//! directory of the golang.org/x/vulndb module (`go mod download -json
//! golang.org/x/vulndb@latest` prints where it is). Its files carry zero
//! times (vuln.go.dev fills them in when it deploys); each becomes a time
//! derived from the entry's id. `--touch N` gives the N entries with the
//! lowest ids a `modified` one hour after the database's: an update of N
//! entries. Writes `--out/index/*.json`, `--out/ID/*.json`, each also
//! `.json.gz`, and prints one JSON line: entries, modified, touched, files,
//! bytes.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::ExitCode;

use support::vulndb::VulnDb;

const HELP: &str =
    "fake-vulndb: build a Go vulnerability database (vuln.go.dev's layout) from OSV entries.

Usage: fake-vulndb --osv DIR --out DIR [--touch N]

  --osv DIR    a directory of OSV entries (*.json), e.g. golang.org/x/vulndb's data/osv
  --out DIR    where to write index/ and ID/ (replaced)
  --touch N    give the N entries with the lowest ids a newer modified (an update)
";

fn main() -> ExitCode {
    let mut osv: Option<PathBuf> = None;
    let mut out: Option<PathBuf> = None;
    let mut touch = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--osv" => osv = args.next().map(PathBuf::from),
            "--out" => out = args.next().map(PathBuf::from),
            "--touch" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => touch = n,
                None => {
                    eprintln!("--touch needs a number\n\n{HELP}");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                print!("{HELP}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n\n{HELP}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(osv), Some(out)) = (osv, out) else {
        eprint!("{HELP}");
        return ExitCode::from(2);
    };
    let mut db = VulnDb::from_osv_dir(&osv);
    if db.entries.is_empty() {
        eprintln!("no OSV entries in {}", osv.display());
        return ExitCode::from(1);
    }
    if touch > 0 {
        let newest = db.modified();
        let t = newest
            .parse::<jiff::Timestamp>()
            .expect("an RFC 3339 modified")
            .checked_add(jiff::SignedDuration::from_hours(1))
            .expect("in range");
        let ids: Vec<String> = db.entries.keys().take(touch).cloned().collect();
        for id in &ids {
            db.touch(id, &t.to_string());
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    db.write_dir(&out);
    let files = db.files();
    let bytes: usize = files.values().map(Vec::len).sum();
    println!(
        "{}",
        serde_json::json!({
            "entries": db.entries.len(),
            "modified": db.modified(),
            "touched": touch.min(db.entries.len()),
            "files": files.len(),
            "bytes": bytes,
        })
    );
    ExitCode::SUCCESS
}
