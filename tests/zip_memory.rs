//! The zip checker's memory, counted byte for byte: a global allocator that
//! keeps, per thread, the bytes live and the peak since a test reset it. Per
//! thread, because the other tests in this binary run beside it; the checker
//! runs on the calling thread, so nothing it allocates is missed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use gomirror::gomod::zip::check_and_hash_zip;

struct CountingAllocator;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn count(delta: i64) {
    // `try_with`: an allocation during thread teardown must not panic.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            count(new_size as i64 - layout.size() as i64);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The peak of bytes allocated on this thread while `f` runs, above what was
/// live when it started.
fn peak_allocated<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - start).max(0) as u64)
}

/// A stored (uncompressed) zip of `n` empty files under `prefix`, written
/// directly: the zip crate's writer would take longer than the check.
fn tiny_entries_zip(prefix: &str, n: usize) -> Vec<u8> {
    const EMPTY_CRC: u32 = 0;
    let mut local = Vec::new();
    let mut central = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}d{}/f{i}", i / 1000);
        let offset = local.len() as u32;
        local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        local.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        local.extend_from_slice(&EMPTY_CRC.to_le_bytes());
        local.extend_from_slice(&[0; 8]);
        local.extend_from_slice(&(name.len() as u16).to_le_bytes());
        local.extend_from_slice(&[0, 0]);
        local.extend_from_slice(name.as_bytes());
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&EMPTY_CRC.to_le_bytes());
        central.extend_from_slice(&[0; 8]);
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let mut zip = local;
    let directory_offset = zip.len() as u32;
    let directory_size = central.len() as u32;
    zip.extend_from_slice(&central);
    zip.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    zip.extend_from_slice(&[0, 0, 0, 0]);
    zip.extend_from_slice(&(n as u16).to_le_bytes());
    zip.extend_from_slice(&(n as u16).to_le_bytes());
    zip.extend_from_slice(&directory_size.to_le_bytes());
    zip.extend_from_slice(&directory_offset.to_le_bytes());
    zip.extend_from_slice(&[0, 0]);
    zip
}

/// Issue 9.9: the checker held every central-directory record, a map of
/// every path and a list of every name with its digest, about 270 bytes an
/// entry, so a maximal zip of tiny files cost about 1 GiB per worker.
#[test]
fn zip_of_many_tiny_entries_is_checked_in_bounded_memory() {
    const ENTRIES: usize = 60_000;
    // Buffers of fixed size: the data reader's 256 KiB and a copy buffer of
    // the same size, the directory reader's 64 KiB, and change.
    const FIXED: u64 = 1 << 20;
    // Digest (32), name end (4), sort slot (4), name after the prefix (9 or
    // 10 bytes here); the collision check's 16-byte slots are freed before.
    const PER_ENTRY: u64 = 64;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.zip");
    std::fs::write(&path, tiny_entries_zip("example.com/m@v1.0.0/", ENTRIES)).unwrap();

    let (summary, peak) = peak_allocated(|| check_and_hash_zip(&path, "example.com/m", "v1.0.0"));
    assert_eq!(summary.unwrap().files, ENTRIES as u64);
    let bound = FIXED + PER_ENTRY * ENTRIES as u64;
    assert!(
        peak <= bound,
        "checking {ENTRIES} entries allocated {peak} bytes at peak ({} per entry); bound {bound}",
        peak / ENTRIES as u64
    );
}
