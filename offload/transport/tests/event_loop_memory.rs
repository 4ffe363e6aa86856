//! What one rumqttc event loop built from [`mqtt_options`] costs in memory. The telemetry
//! publisher builds a fresh one per connection attempt, so this cost is paid at every
//! reconnect: with rumqttc's default (no inflight bound: a table for `u16::MAX` packet ids)
//! it was 13.6 MB allocated and written each time, and glibc kept those blocks in its
//! per-thread arenas — the agent's RSS grew in 13.6 MB steps over a soak of broker restarts.
//! A counting global allocator measures the bytes (per thread, so parallel tests in this
//! binary do not disturb each other).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ferry_transport::mqtt::{mqtt_options, MqttConfig, MAX_OUTGOING_INFLIGHT};
use rumqttc::v5::mqttbytes::v5::Publish;
use rumqttc::v5::AsyncClient;

struct Counting;

thread_local! {
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    let _ = BYTES.try_with(|c| c.set(c.get() + bytes));
}

// SAFETY: defers every operation to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated on this thread while `f` runs (what it frees is not subtracted).
fn bytes_during<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = BYTES.with(Cell::get);
    let r = f();
    (BYTES.with(Cell::get) - before, r)
}

fn plain_config() -> MqttConfig {
    // Plain TCP keeps certificates out of it; TLS adds nothing to the event loop's state.
    let mut config = MqttConfig::new("mqtt://127.0.0.1:1883");
    config.insecure = true;
    config
}

#[test]
fn an_event_loop_from_mqtt_options_allocates_under_256_kib() {
    let options = mqtt_options(&plain_config(), "dev-1").expect("options");
    let (bytes, client) = bytes_during(|| AsyncClient::new(options, 64));
    drop(client);
    eprintln!("one event loop allocated {bytes} bytes");
    assert!(
        bytes < 256 * 1024,
        "one event loop allocated {bytes} bytes ({:.1} MiB): is the outgoing inflight bound gone?",
        bytes as f64 / (1024.0 * 1024.0)
    );
}

#[test]
fn mqtt_options_bound_the_publishes_in_flight() {
    let options = mqtt_options(&plain_config(), "dev-1").expect("options");
    assert_eq!(
        options.get_outgoing_inflight_upper_limit(),
        Some(MAX_OUTGOING_INFLIGHT)
    );
    // The bound's table (one slot per packet id) stays under glibc's default mmap threshold
    // (128 KiB), so it comes from and returns to the ordinary heap.
    let table = (usize::from(MAX_OUTGOING_INFLIGHT) + 1) * std::mem::size_of::<Option<Publish>>();
    eprintln!("the outgoing table takes {table} bytes");
    assert!(table < 128 * 1024, "the outgoing table takes {table} bytes");
}
