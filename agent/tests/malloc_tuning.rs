//! `ferry_agent::malloc::tune` makes freed large blocks go back to the kernel. The pattern
//! that grew the agent's RSS in the soak: one large block freed (glibc then raises its mmap
//! threshold to that size), then blocks of that size allocated and freed on fresh threads,
//! which glibc carves out of its per-thread arenas and keeps. One test in this binary: it
//! reads the whole process's resident memory.

use std::time::Duration;

/// About what the agent freed per telemetry connection before the inflight bound.
const BLOCK: usize = 14 * 1024 * 1024;

fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("RssAnon in /proc/self/status")
}

/// A block of `BLOCK` bytes, every page written (so it is resident), then freed.
fn touch_and_free() {
    let block = vec![1u8; BLOCK];
    std::hint::black_box(&block);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn large_blocks_freed_on_fresh_threads_leave_no_resident_memory_behind() {
    let tuned = ferry_agent::malloc::tune();
    assert!(tuned.mmap_threshold && tuned.trim_threshold, "{tuned:?}");
    touch_and_free();
    let before = rss_anon_kib();
    for _ in 0..4 {
        std::thread::spawn(touch_and_free).join().expect("thread");
        // Fresh threads, as the runtime's blocking pool makes them after an idle spell.
        std::thread::sleep(Duration::from_millis(10));
    }
    let grown = rss_anon_kib().saturating_sub(before);
    assert!(
        grown < 4 * 1024,
        "{grown} KiB of freed {} MiB blocks stayed resident",
        BLOCK / (1024 * 1024)
    );
}
