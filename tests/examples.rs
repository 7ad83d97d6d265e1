//! The files in `examples/` work as shipped: the production layout
//! (`examples/production/`: config, systemd units, cron line, nginx site) is
//! consistent and passes the real tools' checks (`nginx -t`,
//! `systemd-analyze verify` where systemd is installed), its commands run
//! against a mirror, the Prometheus rules pass `promtool check rules` and their
//! unit tests, and the offline demo runs end to end. (The nginx site also
//! serves the end-to-end tests.)

use std::path::Path;
use std::process::Command;

use crate::common::*;
use crate::support::Corpus;

/// The command of a shipped example line, with the binary and config paths
/// pointed at this test's mirror.
fn shipped_command(line: &str, m: &Mirror) -> Vec<String> {
    let start = line
        .find("/usr/local/bin/gomirror")
        .expect("command uses /usr/local/bin/gomirror");
    line[start..]
        .split_whitespace()
        .map(|w| match w {
            "/usr/local/bin/gomirror" => env!("CARGO_BIN_EXE_gomirror").to_string(),
            "/etc/gomirror/sync.toml" => m.config_path().display().to_string(),
            other => other.to_string(),
        })
        .collect()
}

/// `cargo test` only type-checks examples; build the fake-upstream example
/// binary (a no-op when it is current) and return the directory holding
/// `gomirror` and `examples/fake-upstream`. Cargo's own variables are removed
/// from the environment so the nested build shares the outer one's artifacts.
fn build_fake_upstream_example() -> std::path::PathBuf {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "--example", "fake-upstream"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") || k == "RUSTFLAGS" || k == "RUSTDOCFLAGS" {
            cmd.env_remove(&k);
        }
    }
    let status = cmd.status().expect("run cargo");
    assert!(
        status.success(),
        "cargo build --example fake-upstream failed"
    );
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_gomirror"))
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(bin.join("examples/fake-upstream").exists());
    bin
}

fn run_shipped(line: &str, m: &Mirror) -> Run {
    let argv = shipped_command(line, m);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    run_command(cmd)
}

#[test]
fn cron_line_runs_a_quiet_sync() {
    let cron = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/production/cron"
    ))
    .unwrap();
    let mut lines = cron
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    // Where cron mails what -q lets through.
    assert!(lines.next().unwrap().starts_with("MAILTO="), "{cron}");
    let line = lines.next().unwrap();
    assert!(line.starts_with("*/5 * * * * gomirror "), "{line}");
    let m = Mirror::new(Corpus::generated(2, 2, 1));
    let r = run_shipped(line, &m);
    r.expect(0);
    assert!(
        r.stderr.is_empty() && r.stdout.is_empty(),
        "-q keeps cron mail empty on a clean run: {}{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(m.status()["counts"]["published"], 4);
}

fn production(file: &str) -> String {
    let p = format!("{}/examples/production/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// The value of `key = "…"` in the shipped production config.
fn config_value(cfg: &str, key: &str) -> String {
    cfg.lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix(key)?.trim_start().strip_prefix('=')?;
            Some(rest.trim().split('"').nth(1)?.to_string())
        })
        .unwrap_or_else(|| panic!("no {key} in the production sync.toml"))
}

#[test]
fn production_layout_is_one_consistent_set_of_paths() {
    let cfg = production("sync.toml");
    let unit = production("gomirror-sync.service");
    let site = production("nginx/gomirror.conf");
    let cron = production("cron");
    let (output, state, metrics) = (
        config_value(&cfg, "output"),
        config_value(&cfg, "state"),
        config_value(&cfg, "metrics_file"),
    );
    for p in [&output, &state, &metrics] {
        assert!(p.starts_with('/'), "absolute paths only: {p}");
    }
    // nginx serves the tree the config writes.
    assert!(site.contains(&format!("root {output};")), "{site}");
    // The unit may write everything the config writes, and nothing else.
    let rw: Vec<&str> = unit
        .lines()
        .find_map(|l| l.strip_prefix("ReadWritePaths="))
        .expect("ReadWritePaths")
        .split_whitespace()
        // `-/path`: optional (ignored where it does not exist).
        .map(|d| d.trim_start_matches('-'))
        .collect();
    for p in [&output, &state, &metrics] {
        assert!(
            rw.iter().any(|dir| p.starts_with(&format!("{dir}/"))),
            "{p} is not under the unit's ReadWritePaths {rw:?}"
        );
    }
    assert!(unit.contains("ProtectSystem=strict"));
    // Unit and cron line run the installed binary on the installed config.
    for text in [&unit, &cron] {
        assert!(
            text.contains("/usr/local/bin/gomirror sync")
                && text.contains("-c /etc/gomirror/sync.toml"),
            "{text}"
        );
    }
    // The README's install steps use the same paths.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for needle in [
        "install -m 0755 target/release/gomirror /usr/local/bin/gomirror",
        "examples/production/sync.toml /etc/gomirror/sync.toml",
        "/etc/systemd/system/",
        "systemctl enable --now gomirror-sync.timer",
        "/etc/nginx/sites-available/gomirror",
        "useradd",
        "/srv/gomirror/state",
    ] {
        assert!(readme.contains(needle), "README lacks {needle:?}");
    }
}

/// The production config with only what points outside this test replaced:
/// upstream URLs and key, and the absolute paths moved under `root`.
fn production_config_for(m: &Mirror, root: &Path) -> String {
    let cfg = production("sync.toml");
    let mut out = String::new();
    for line in cfg.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        let line = match key {
            "proxy" => format!("proxy = \"{}\"", m.upstream.proxy_url()),
            "key" => format!("key = \"{}\"", m.upstream.sumdb_key()),
            "url" => format!("url = \"{}\"", m.upstream.sumdb_url()),
            "include" | "seed" => {
                format!("{key} = [\"example.com/gen/m0\", \"example.com/gen/m1\"]")
            }
            _ => line
                .replace("\"/srv/", &format!("\"{}/srv/", root.display()))
                .replace("\"/var/", &format!("\"{}/var/", root.display())),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn systemd_unit_command_runs_the_production_config() {
    let unit = production("gomirror-sync.service");
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    let m = Mirror::new(Corpus::generated(2, 2, 2));
    let root = tempfile::tempdir().unwrap();
    // As README's install steps create them.
    std::fs::create_dir_all(root.path().join("var/lib/prometheus/node-exporter")).unwrap();
    std::fs::write(m.config_path(), production_config_for(&m, root.path())).unwrap();
    run_shipped(exec, &m).expect(0);
    let srv = root.path().join("srv/gomirror");
    assert!(srv.join("state/state.db").exists());
    assert!(srv.join("mirror/example.com/gen/m0/@v/list").exists());
    let metrics = std::fs::read_to_string(
        root.path()
            .join("var/lib/prometheus/node-exporter/gomirror.prom"),
    )
    .expect("the unit's run wrote the metrics file");
    assert!(
        metrics.contains("gomirror_last_exit_code{command=\"sync\"} 0"),
        "{metrics}"
    );
    let timer = production("gomirror-sync.timer");
    assert!(timer.contains("OnUnitInactiveSec=5min"));
    assert!(timer.contains("WantedBy=timers.target"));
    // Another run holding the lock, and a stop by SIGTERM, are no failure.
    assert!(unit.contains("SuccessExitStatus=3 143"));
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
    else {
        // Optional: not every machine has systemd. Said, not hidden.
        eprintln!("SKIPPED: systemd-analyze is not installed; the units were not verified");
        return;
    };
    let units = Path::new("/usr/lib/systemd/system");
    assert!(
        units.is_dir(),
        "systemd-analyze without {}",
        units.display()
    );
    // A root holding the shipped units, the binary where ExecStart names it,
    // and a copy of the system's units (the targets they are ordered after).
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/local/bin")).unwrap();
    std::fs::create_dir_all(r.join("etc/systemd/system")).unwrap();
    std::fs::create_dir_all(r.join("usr/lib/systemd")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_gomirror"),
        r.join("usr/local/bin/gomirror"),
    )
    .unwrap();
    for u in ["gomirror-sync.service", "gomirror-sync.timer"] {
        std::fs::write(r.join("etc/systemd/system").join(u), production(u)).unwrap();
    }
    let copied = Command::new("cp")
        .arg("-a")
        .arg(units)
        .arg(r.join("usr/lib/systemd/system"))
        .status()
        .unwrap();
    assert!(copied.success());
    let out = Command::new(analyze)
        .arg(format!("--root={}", r.display()))
        .args(["verify", "gomirror-sync.service", "gomirror-sync.timer"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {:?}\n{stderr}",
        out.status
    );
}

#[test]
fn nginx_site_passes_nginx_t_as_shipped() {
    let nginx = crate::e2e::require("nginx");
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    // Debian's layout: nginx.conf includes sites-enabled/* in http {}, and a
    // site is a link to sites-available/. The site is the shipped file, its
    // access log moved into the test's directory (`nginx -t` opens it).
    std::fs::create_dir_all(dir.join("sites-enabled")).unwrap();
    std::fs::create_dir_all(dir.join("sites-available")).unwrap();
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/production/nginx/gomirror.conf"
    ))
    .unwrap();
    const LOG: &str = "/var/log/nginx/gomirror.access.log";
    assert!(shipped.contains(LOG));
    std::fs::write(
        dir.join("sites-available/gomirror"),
        shipped.replace(LOG, &format!("{}/gomirror.access.log", dir.display())),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        dir.join("sites-available/gomirror"),
        dir.join("sites-enabled/gomirror"),
    )
    .unwrap();
    let main = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  include {d}/sites-enabled/*;\n}}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let check = |conf: &Path| {
        Command::new(&nginx)
            .arg("-t")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .output()
            .unwrap()
    };
    let out = check(&dir.join("nginx.conf"));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("test is successful"),
        "nginx -t: {text}"
    );
    // The check can fail: a broken site is refused.
    std::fs::write(
        dir.join("sites-enabled/broken"),
        "server { listen 80; bogus on; }\n",
    )
    .unwrap();
    let out = check(&dir.join("nginx.conf"));
    assert!(!out.status.success(), "nginx -t accepted a bogus directive");
}

#[test]
fn prometheus_rules_pass_promtool_check_and_their_unit_tests() {
    let promtool = crate::operations::promtool();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/prometheus");
    for args in [
        &["check", "rules", "gomirror.rules.yml"][..],
        &["test", "rules", "gomirror.rules.test.yml"][..],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The rules name metrics gomirror writes (not a typo that never fires).
    let rules = std::fs::read_to_string(format!("{dir}/gomirror.rules.yml")).unwrap();
    let metrics = gomirror_metric_names();
    for name in rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("gomirror_"))
    {
        assert!(
            metrics.contains(&name.to_string()),
            "{name} is not a gomirror metric"
        );
    }
}

/// The metric names gomirror writes, from a real run's metrics file.
fn gomirror_metric_names() -> Vec<String> {
    let m = Mirror::new(Corpus::generated(1, 1, 3));
    let text = std::fs::read_to_string(m.config_path()).unwrap();
    std::fs::write(
        m.config_path(),
        format!("{text}\n[report]\nmetrics_file = \"m.prom\"\n"),
    )
    .unwrap();
    m.sync().expect(0);
    std::fs::read_to_string(m.dir.path().join("m.prom"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

#[test]
fn offline_demo_runs_end_to_end() {
    crate::e2e::require("go");
    let work = tempfile::tempdir().unwrap();
    let bin = build_fake_upstream_example();
    let mut cmd = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/offline-demo.sh"
    ));
    cmd.arg(work.path()).env("BIN_DIR", &bin);
    let r = run_command(cmd);
    r.expect(0)
        .contains("gomirror sync: done:")
        .contains("\"Version\"");
    assert!(!r.all().contains("\"Error\""), "{}", r.all());
    // The generated config is the shipped one, re-pointed.
    let cfg = std::fs::read_to_string(work.path().join("sync.toml")).unwrap();
    assert!(
        cfg.contains("include = [\"*\"]") && cfg.contains("127.0.0.1"),
        "{cfg}"
    );
}

#[test]
fn fake_upstream_help_explains_every_flag() {
    let bin = build_fake_upstream_example().join("examples/fake-upstream");
    let out = Command::new(&bin).arg("--help").output().unwrap();
    assert!(out.status.success(), "--help exits 0: {:?}", out.status);
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--modules",
        "--versions",
        "--seed",
        "--filler",
        "--extra-index",
        "--large-zip",
        "--port",
        "--grow-every",
        "--no-special",
        "sumdb_key",
        "/proxy/",
        "/index",
        "/sumdb/",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    let bad = Command::new(&bin).arg("--nope").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--help"));
}
