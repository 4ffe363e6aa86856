//! `cpu.load_k` for `ferry bench local --profile-out`: how much slower local compute gets when
//! every core is busy with something else (the simulator's background load 1).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use ferry_runtime::{ModelStore, Precision, Threads, TractEngine};

use super::profile::round4;
use super::{bench_input, fenced, mean_sigma};
use crate::cli::BenchLocalArgs;

/// `cpu.load_k`: efficientnet-lite0 FP32 at one thread, runs alternating between an idle
/// machine and one spinning thread per core, and how it was measured.
pub(super) fn load_k(args: &BenchLocalArgs, store: &ModelStore) -> Result<(f64, String)> {
    let engine = TractEngine::new(Threads(1));
    let model = store.load(&engine, "efficientnet-lite0", Precision::Fp32)?;
    let input = bench_input(model.manifest().input_len());
    let shape = model.manifest().input.shape.clone();
    for _ in 0..args.warmup {
        model.infer_tensor(&shape, &input, 1)?;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let spin = Spinners::start(cores);
    let (mut idle, mut busy) = (Vec::new(), Vec::new());
    for i in 0..args.iterations {
        // Alternate which comes first, as the main benchmark does, so drift hits both alike.
        for loaded in [i % 2 == 0, i % 2 != 0] {
            spin.set(loaded);
            let t = model.infer_tensor(&shape, &input, 1)?.compute;
            if loaded { busy.push(t) } else { idle.push(t) }
        }
    }
    drop(spin);
    idle.sort();
    busy.sort();
    let ((idle_ms, idle_sd), (busy_ms, busy_sd)) = (mean_sigma(&fenced(&idle).0), mean_sigma(&fenced(&busy).0));
    let k = busy_ms / idle_ms - 1.0;
    let how = format!(
        "measured: efficientnet-lite0 FP32 at 1 thread, {} runs each alternating between idle and {cores} spinning \
         threads (one per core: background load 1), mean {idle_ms:.2} ms (σ {idle_sd:.2}) idle vs {busy_ms:.2} ms \
         (σ {busy_sd:.2}) loaded (within the far fences), k = loaded / idle − 1 = {k:.3}{}",
        args.iterations,
        if k < 0.0 { ", written as 0 (a load cannot speed compute up: noise)" } else { "" },
    );
    Ok((round4(k.max(0.0)), how))
}

/// One busy-looping thread per core, spinning while `set(true)`.
struct Spinners {
    busy: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Spinners {
    fn start(n: usize) -> Spinners {
        let (busy, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let threads = (0..n)
            .map(|_| {
                let (busy, stop) = (busy.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut x = 1.0f64;
                    while !stop.load(Ordering::Relaxed) {
                        if busy.load(Ordering::Relaxed) {
                            for _ in 0..10_000 {
                                x = std::hint::black_box(x * 1.000_001 + 1e-9);
                            }
                        } else {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                })
            })
            .collect();
        Spinners { busy, stop, threads }
    }

    /// Switches the load on or off, then waits for the threads to have followed (they poll
    /// every 200 µs when idle, every ~10 µs of work when busy).
    fn set(&self, on: bool) {
        self.busy.store(on, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(if on { 10 } else { 2 }));
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

