//! A real S3-compatible store for the object-storage tests: one Garage node
//! on loopback, in a temporary directory, with a key and buckets made with
//! its own CLI and website access allowed, as an operator would set it up.
//!
//! The binary is `$GOMIRROR_GARAGE`, else `target/garage/bin/garage` (where
//! `scripts/test` installs it with `cargo install garage`), else `garage` on
//! the PATH. Without one the tests fail and say how to get it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn garage_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("GOMIRROR_GARAGE") {
        return PathBuf::from(p);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/garage/bin/garage");
    if local.exists() {
        return local;
    }
    if let Ok(out) = Command::new("sh")
        .args(["-c", "command -v garage"])
        .output()
        && out.status.success()
    {
        return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    }
    panic!(
        "the object-storage tests need Garage: run scripts/test (it runs `cargo install garage --locked --root target/garage`), or set GOMIRROR_GARAGE to a garage binary"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Garage {
    child: Child,
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub s3_port: u16,
    pub web_port: u16,
    pub key_id: String,
    pub secret: String,
}

static BUCKETS: AtomicU32 = AtomicU32::new(0);

impl Garage {
    pub fn start() -> Garage {
        let bin = garage_binary();
        let dir = tempfile::tempdir().unwrap();
        let (rpc, s3_port, web_port, admin) = (free_port(), free_port(), free_port(), free_port());
        let secret: String = (0..64)
            .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap())
            .collect();
        let cfg = format!(
            r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[s3_web]
bind_addr = "127.0.0.1:{web_port}"
root_domain = ".web.garage.localhost"
index = "index.html"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
            d = dir.path().display()
        );
        std::fs::write(dir.path().join("garage.toml"), cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("garage.log")).unwrap();
        let child = Command::new(&bin)
            .arg("-c")
            .arg(dir.path().join("garage.toml"))
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start garage");
        let mut g = Garage {
            child,
            dir,
            bin,
            s3_port,
            web_port,
            key_id: String::new(),
            secret: String::new(),
        };
        g.wait_for_port(s3_port);
        let id = g.cli_retrying(&["node", "id", "-q"]);
        let id = id.trim().split('@').next().unwrap().to_string();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
        g.cli(&["layout", "apply", "--version", "1"]);
        let key = g.cli(&["key", "create", "gomirror-test"]);
        g.key_id = field(&key, "Key ID");
        g.secret = field(&key, "Secret key");
        g
    }

    fn wait_for_port(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "garage did not listen on {port}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    /// Runs the garage CLI against this node; panics with its output on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .args(args)
            .output()
            .expect("run garage");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "garage {args:?} failed:\n{text}");
        text
    }

    /// The CLI while the node is still starting.
    fn cli_retrying(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(&self.bin)
                .arg("-c")
                .arg(self.dir.path().join("garage.toml"))
                .args(args)
                .output()
                .expect("run garage");
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "garage {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A new bucket the test key may read, write and own, served as a website.
    pub fn bucket(&self) -> String {
        let name = format!(
            "gomirror-{}-{}",
            std::process::id(),
            BUCKETS.fetch_add(1, Ordering::SeqCst)
        );
        self.cli(&["bucket", "create", &name]);
        self.cli(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            &name,
            "--key",
            &self.key_id,
        ]);
        self.cli(&["bucket", "website", "--allow", &name]);
        name
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The Host header the website endpoint serves `bucket` under.
    pub fn web_host(bucket: &str) -> String {
        format!("{bucket}.web.garage.localhost")
    }

    /// The credentials the AWS chain reads.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_REGION", "garage".into()),
        ]
    }
}

fn field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name:?} in:\n{text}"))
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
