//! Hostile peers and the measures that judge gomirror against them: a raw
//! HTTP peer that answers whatever a test routes to it (endless
//! bodies, trickles, giant lines, escapes), a proxy that accepts
//! connections slowly, files that are not what their names say (sparse,
//! FIFOs, links to devices), the peak memory and descriptors of a child
//! process, and the fingerprint of a tree and its state database.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::FromRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// What the peer answers to one request.
pub enum Answer {
    /// 200 with a Content-Length.
    Ok(Vec<u8>),
    /// This status, empty body.
    Status(u16),
    /// 200 without a length: `head` once, then `pattern` for ever (until
    /// the client goes away).
    Endless { head: Vec<u8>, pattern: Vec<u8> },
    /// This status and these header lines (each ending in `\r\n`), then
    /// `pattern` for ever: an error page that never ends.
    EndlessStatus {
        status: u16,
        headers: String,
        pattern: Vec<u8>,
    },
    /// 200 with the body's length, one byte every `gap`.
    Trickle { body: Vec<u8>, gap: Duration },
    /// What GET `url` answers (the fake upstream's file), passed on.
    Forward(String),
}

type Route = dyn Fn(&str) -> Answer + Send + Sync;

/// A raw HTTP/1.1 peer on 127.0.0.1: every request's path is logged and
/// answered by the route. One thread per connection; each answer closes
/// its connection. Runs until dropped.
pub struct Peer {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Peer {
    pub fn start(route: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("hostile peer: bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let route: Arc<Route> = Arc::new(route);
        let (l, s) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (route, log, stop) = (route.clone(), l.clone(), s.clone());
                        std::thread::spawn(move || serve(stream, &*route, &log, &stop));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Peer { addr, log, stop }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests whose path starts with `prefix`.
    pub fn requests(&self, prefix: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.starts_with(prefix))
            .count()
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The path of the request on `stream`, once its head has arrived.
fn request_path(mut stream: &TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 << 10 || stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    Some(head.split(' ').nth(1)?.to_string())
}

fn serve(mut stream: TcpStream, route: &Route, log: &Mutex<Vec<String>>, stop: &AtomicBool) {
    stream.set_nonblocking(false).ok();
    let Some(path) = request_path(&stream) else {
        return;
    };
    log.lock().unwrap().push(path.clone());
    let head = |len: Option<usize>| match len {
        Some(n) => format!("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {n}\r\n\r\n"),
        None => "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string(),
    };
    match route(&path) {
        Answer::Ok(body) => {
            let _ = stream.write_all(head(Some(body.len())).as_bytes());
            let _ = stream.write_all(&body);
        }
        Answer::Status(code) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {code} X\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            );
        }
        Answer::Endless {
            head: first,
            pattern,
        } => {
            let _ = stream.write_all(head(None).as_bytes());
            let _ = stream.write_all(&first);
            let chunk: Vec<u8> = pattern.iter().copied().cycle().take(64 << 10).collect();
            while !stop.load(Ordering::Relaxed) && stream.write_all(&chunk).is_ok() {}
        }
        Answer::EndlessStatus {
            status,
            headers,
            pattern,
        } => {
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nConnection: close\r\n{headers}\r\n"
            );
            let chunk: Vec<u8> = pattern.iter().copied().cycle().take(64 << 10).collect();
            while !stop.load(Ordering::Relaxed) && stream.write_all(&chunk).is_ok() {}
        }
        Answer::Trickle { body, gap } => {
            let _ = stream.write_all(head(Some(body.len())).as_bytes());
            for b in body {
                if stop.load(Ordering::Relaxed) || stream.write_all(&[b]).is_err() {
                    return;
                }
                std::thread::sleep(gap);
            }
        }
        Answer::Forward(url) => match super::http::get(&url) {
            Ok(r) if r.status == 200 => {
                let _ = stream.write_all(head(Some(r.body.len())).as_bytes());
                let _ = stream.write_all(&r.body);
            }
            Ok(r) => {
                let _ = write!(
                    stream,
                    "HTTP/1.1 {} X\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                    r.status
                );
            }
            Err(_) => {}
        },
    }
}

/// A TCP proxy to `target` that accepts one connection every `every`, with
/// a listen backlog of `backlog`: connection attempts beyond it wait (their
/// SYNs dropped) the way they do at an overloaded server. Accepted
/// connections are forwarded both ways. Runs until dropped.
pub struct SlowAccept {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl SlowAccept {
    pub fn start(target: SocketAddr, backlog: i32, every: Duration) -> SlowAccept {
        let listener = small_backlog_listener(backlog);
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(every);
                let Ok((client, _)) = listener.accept() else {
                    continue;
                };
                client.set_nonblocking(false).ok();
                let Ok(upstream) = TcpStream::connect(target) else {
                    continue;
                };
                let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                std::thread::spawn(move || pipe(client, upstream));
                std::thread::spawn(move || pipe(u2, c2));
            }
        });
        SlowAccept { addr, stop }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SlowAccept {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// A listener on 127.0.0.1 with the given backlog (std's is fixed).
fn small_backlog_listener(backlog: i32) -> TcpListener {
    // SAFETY: plain socket calls on a descriptor we own; the address is a
    // valid sockaddr_in for the length given.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket");
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        a.sin_port = 0;
        let rc = libc::bind(
            fd,
            (&a as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "bind");
        assert_eq!(libc::listen(fd, backlog), 0, "listen");
        TcpListener::from_raw_fd(fd)
    }
}

/// A sparse file of `size` bytes: it costs no disk, and any reader that
/// reads it whole costs `size`.
pub fn sparse_file(path: &Path, size: u64) {
    std::fs::File::create(path).unwrap().set_len(size).unwrap();
}

/// A FIFO nobody writes to: a reader that opens it waits for ever.
pub fn fifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// What a measured child did.
#[derive(Debug)]
pub struct Measured {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The child's peak resident memory (its VmHWM, sampled), KiB.
    pub peak_rss_kib: u64,
    /// The most descriptors it had open at once (sampled every 10 ms).
    pub max_fds: usize,
    pub took: Duration,
    /// Killed at the timeout.
    pub killed: bool,
}

impl Measured {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    pub fn peak_rss_mib(&self) -> u64 {
        self.peak_rss_kib / 1024
    }
}

/// Runs `cmd` to its end (killed after `timeout`), measuring its peak
/// memory (VmHWM, sampled continuously for 200 ms, then every 5 ms, once it
/// runs the program: a high-water mark, so only a peak in its last
/// milliseconds could be missed; not
/// wait4's ru_maxrss, which counts the test process's pages the child had
/// between fork and exec) and its open descriptors (sampled);
/// `max_files`, if set, is its RLIMIT_NOFILE (as `ulimit -n`).
pub fn run_measured(mut cmd: Command, max_files: Option<u64>, timeout: Duration) -> Measured {
    use std::os::unix::process::CommandExt;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(n) = max_files {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
        unsafe {
            cmd.pre_exec(move || {
                let l = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn the measured command");
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let program = std::fs::canonicalize(cmd.get_program()).ok();
    let done = Arc::new(AtomicBool::new(false));
    let max_fds = Arc::new(Mutex::new(0usize));
    let peak = Arc::new(Mutex::new(0u64));
    let sampler = {
        let (done, max_fds, peak) = (done.clone(), max_fds.clone(), peak.clone());
        std::thread::spawn(move || {
            let mut killed = false;
            let dir = format!("/proc/{pid}/fd");
            let mut execed = false;
            while !done.load(Ordering::Relaxed) {
                // Before exec, the child is a copy of this test process.
                execed = execed || std::fs::read_link(format!("/proc/{pid}/exe")).ok() == program;
                if execed {
                    if let Ok(entries) = std::fs::read_dir(&dir) {
                        let n = entries.count();
                        let mut m = max_fds.lock().unwrap();
                        *m = (*m).max(n);
                    }
                    if let Some(kib) = vm_hwm_kib(pid) {
                        let mut p = peak.lock().unwrap();
                        *p = (*p).max(kib);
                    }
                }
                if !killed && started.elapsed() > timeout {
                    // SAFETY: the child is ours and not reaped yet (the
                    // waiting thread reaps it only after it exits).
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    killed = true;
                }
                // A refusal takes a few milliseconds: look without pausing at
                // first, so that even a short run is seen after its exec.
                if started.elapsed() < Duration::from_millis(200) {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            killed
        })
    };
    let mut status = 0;
    // SAFETY: waits for our own child; std's Child is never waited on.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid, "waitpid");
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let killed = sampler.join().unwrap();
    std::mem::forget(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let max_fds = *max_fds.lock().unwrap();
    let peak_rss_kib = *peak.lock().unwrap();
    Measured {
        code,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        peak_rss_kib,
        max_fds,
        took,
        killed,
    }
}

/// A process's VmHWM (peak resident set of its program), KiB.
fn vm_hwm_kib(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Every file under `out` with its SHA-256, and every row of the state
/// database's tables that a refused input must not change (versions, the
/// index and follow cursors and other meta, imports, trusted heads).
pub fn fingerprint(out: &Path, db: &Path) -> (BTreeMap<String, String>, Vec<String>) {
    let mut tree = BTreeMap::new();
    if out.exists() {
        for e in walkdir::WalkDir::new(out).follow_links(false).min_depth(1) {
            let e = e.unwrap();
            if e.file_type().is_dir() {
                continue;
            }
            let rel = e
                .path()
                .strip_prefix(out)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            tree.insert(rel, hex::encode(Sha256::digest(&bytes)));
        }
    }
    let mut state = Vec::new();
    if db.exists() {
        let c =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        for sql in [
            "SELECT m.path || ' ' || v.version || ' ' || v.state || ' ' || v.in_tree FROM versions v JOIN modules m ON m.id = v.module_id ORDER BY 1",
            "SELECT key || '=' || value FROM meta WHERE key NOT LIKE 'run.%' ORDER BY 1",
            "SELECT id || ' ' || seq FROM imports ORDER BY 1",
            "SELECT size || ' ' || hash FROM sumdb_trees ORDER BY 1",
        ] {
            let mut q = c.prepare(sql).unwrap();
            let rows = q.query_map([], |r| r.get::<_, String>(0)).unwrap();
            for r in rows {
                state.push(r.unwrap());
            }
        }
    }
    (tree, state)
}
