//! A background CPU load for the demo: one spinning thread, switched on and off.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The load's switch; the thread stops when this is dropped.
pub struct CpuLoad {
    on: Arc<AtomicBool>,
    alive: Arc<AtomicBool>,
}

impl CpuLoad {
    /// Starts the (idle) load thread.
    pub fn start() -> Self {
        let on = Arc::new(AtomicBool::new(false));
        let alive = Arc::new(AtomicBool::new(true));
        let (o, a) = (on.clone(), alive.clone());
        let _ = std::thread::Builder::new()
            .name("demo-cpu-load".to_string())
            .spawn(move || {
                let mut x = 0u64;
                while a.load(Ordering::Relaxed) {
                    if o.load(Ordering::Relaxed) {
                        for i in 0..100_000u64 {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
                        }
                        std::hint::black_box(x);
                    } else {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            });
        Self { on, alive }
    }

    /// Switches the load on or off.
    pub fn set(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Relaxed);
    }
}
