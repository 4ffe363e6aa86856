//! A healthy sweep of every system probe allocates nothing after start-up, proven with a
//! counting global allocator (counting only on this test's thread).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;

use ferry_drivers::registry::LinuxBuses;
use ferry_drivers::set::Health;
use ferry_drivers::{BoardConfig, Registry, SensorSet};
use ferry_hal::Timestamp;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNTING.try_with(|c| {
            if c.get() {
                ALLOCATIONS.with(|a| a.set(a.get() + 1));
            }
        });
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNTING.try_with(|c| {
            if c.get() {
                ALLOCATIONS.with(|a| a.set(a.get() + 1));
            }
        });
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(|a| a.get())
}

#[test]
fn a_full_sweep_of_all_system_probes_allocates_nothing() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = BoardConfig::load(manifest.join("../firmware-configs/x86-dev.toml")).unwrap();
    let mut proven = 0;
    for root in [manifest.join("tests/fixtures/jetson-nano"), manifest.join("tests/fixtures/rpi4"), "/".into()] {
        let mut set = SensorSet::build_with(&cfg, &Registry::builtin(), Arc::new(LinuxBuses), Some(&root));
        let healthy = set.sweep_at(Timestamp(0)).iter().filter(|s| s.health == Health::Healthy).count();
        assert!(healthy >= 3, "{}", root.display());
        let n = allocations_during(|| {
            for i in 1..=100u64 {
                // 10 s apart: every healthy probe is due on every sweep.
                let statuses = set.sweep_at(Timestamp(i * 10_000));
                std::hint::black_box(statuses);
            }
        });
        // On a machine without thermal/cpufreq/hwmon those probes are retried (a rebuild
        // allocates), so count only where all of them exist.
        if set.statuses().iter().all(|s| s.health == Health::Healthy) {
            assert_eq!(n, 0, "{} allocations in 100 sweeps of {}", n, root.display());
            proven += 1;
        }
    }
    assert!(proven >= 1, "the Jetson fixture has every probe, so at least it must be proven");
}

#[test]
fn the_counter_sees_allocations() {
    let n = allocations_during(|| {
        std::hint::black_box(vec![1u8; 10]);
    });
    assert_eq!(n, 1);
}
