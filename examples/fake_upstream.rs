//! Runs the test suite's fake Go module upstream (proxy, index and checksum
//! database on one port) as a standalone server, for demos and manual runs of
//! gomirror or the go command against it.
//!
//! ```text
//! cargo run --example fake-upstream -- --modules 50 --versions 4 --filler 1000 \
//!     --extra-index 100000 --large-zip 100000000 --port 0 --grow-every 10
//! ```
//!
//! Prints one JSON line (`url`, `proxy`, `index`, `sumdb_url`, `sumdb_name`,
//! `sumdb_key`, `versions`) and serves until SIGINT or SIGTERM.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::time::Duration;

use support::{Corpus, FakeOptions, FakeUpstream, ModuleVersionSpec};

struct Args {
    modules: usize,
    versions: usize,
    seed: u64,
    filler: usize,
    extra_index: usize,
    large_zip: Option<u64>,
    port: u16,
    grow_every: Option<f64>,
    special: bool,
}

const HELP: &str = "\
fake-upstream: the test suite's fake Go module upstream, as a standalone server.

One port serves, on 127.0.0.1:
  /proxy/    the GOPROXY protocol (@v/list, .info, .mod, .zip, @latest),
             and /proxy/sumdb/<name>/ (the checksum database through the proxy)
  /index     the module index feed (index.golang.org's ?since=&limit= protocol)
  /sumdb/    a checksum database signed with a test key (not sum.golang.org's)

On start it prints one JSON line: url, proxy, index, sumdb_url, sumdb_name,
sumdb_key, versions. Point a sync.toml at it (upstream.proxy = proxy,
upstream.index = index, sumdb.key = sumdb_key, sumdb.url = sumdb_url), or
examples/offline-demo.sh does it for you. Serves until SIGINT or SIGTERM.

Options:
  --modules N        modules example.com/gen/m0..m<N-1>          [default: 10]
  --versions M       versions per module                       [default: 3]
  --seed S           seed of the generated corpus                [default: 1]
  --filler N         records in the checksum database before the corpus's
                                                               [default: 1000]
  --extra-index N    index entries for modules the proxy does not serve
                                                               [default: 0]
  --large-zip BYTES  add one module with a zip of about this size
  --port P           port to listen on; 0 picks a free one       [default: 0]
  --grow-every SECS  publish a new version every SECS seconds (index, proxy
                     and log grow like the real ones)
  --no-special       leave out the corpus of unusual module paths and versions
  -h, --help         print this help

Example:
  cargo run --example fake-upstream -- --modules 50 --versions 4 --grow-every 10
";

const USAGE: &str = "usage: fake-upstream [--modules N] [--versions M] [--seed S] [--filler N] \
[--extra-index N] [--large-zip BYTES] [--port P] [--grow-every SECS] [--no-special]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        modules: 10,
        versions: 3,
        seed: 1,
        filler: 1000,
        extra_index: 0,
        large_zip: None,
        port: 0,
        grow_every: None,
        special: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.clone(), None),
        };
        if name == "--no-special" {
            args.special = false;
            continue;
        }
        if name == "-h" || name == "--help" {
            return Err(HELP.to_string());
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))?,
        };
        let bad = |e: &dyn std::fmt::Display| format!("{name} {value}: {e}");
        match name.as_str() {
            "--modules" => args.modules = value.parse().map_err(|e| bad(&e))?,
            "--versions" => args.versions = value.parse().map_err(|e| bad(&e))?,
            "--seed" => args.seed = value.parse().map_err(|e| bad(&e))?,
            "--filler" => args.filler = value.parse().map_err(|e| bad(&e))?,
            "--extra-index" => args.extra_index = value.parse().map_err(|e| bad(&e))?,
            "--large-zip" => args.large_zip = Some(value.parse().map_err(|e| bad(&e))?),
            "--port" => args.port = value.parse().map_err(|e| bad(&e))?,
            "--grow-every" => {
                let secs: f64 = value.parse().map_err(|e| bad(&e))?;
                if !(secs > 0.0 && secs.is_finite()) {
                    return Err(format!("{name} must be a positive number of seconds"));
                }
                args.grow_every = Some(secs);
            }
            _ => return Err(format!("unknown flag {name}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        // --help is asked for: stdout, exit 0; a bad flag: stderr, exit 2.
        Err(msg) if msg == HELP => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("{msg}\n(fake-upstream --help says more)");
            return ExitCode::from(2);
        }
    };
    let mut corpus = Corpus::generated(args.modules, args.versions, args.seed);
    if args.special {
        corpus = corpus.extend(Corpus::special());
    }
    if let Some(bytes) = args.large_zip {
        corpus = corpus.with_large_zip(bytes);
    }
    let fake = FakeUpstream::start(
        corpus,
        FakeOptions {
            filler_records: args.filler,
            extra_index_entries: args.extra_index,
            port: args.port,
            ..FakeOptions::default()
        },
    );
    println!(
        "{}",
        serde_json::json!({
            "url": fake.url(),
            "proxy": fake.proxy_url(),
            "index": fake.index_url(),
            "sumdb_url": fake.sumdb_url(),
            "sumdb_name": fake.sumdb_name(),
            "sumdb_key": fake.sumdb_key(),
            "versions": fake.versions().len(),
        })
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building the signal runtime");
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        let period = args.grow_every.map(Duration::from_secs_f64);
        let mut grown = 0u64;
        loop {
            let tick = async {
                match period {
                    Some(p) => tokio::time::sleep(p).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = tick => {
                    grown += 1;
                    let spec = ModuleVersionSpec::new("example.com/grow", &format!("v1.0.{grown}"));
                    fake.add(spec);
                    eprintln!("fake-upstream: added example.com/grow v1.0.{grown}");
                }
            }
        }
    });
    fake.stop();
    ExitCode::SUCCESS
}
