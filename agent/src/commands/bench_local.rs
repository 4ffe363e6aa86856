//! `ferry bench local`: how fast each model runs here, FP32 against INT8.
//!
//! Latencies are measured with both variants loaded in one process and run interleaved (so a
//! noisy neighbour slows both alike); peak RSS is measured for each variant alone, in a child
//! process that loads only that variant, since one process holding both cannot tell them apart.
//!
//! `--profile-out FILE` runs all of it at 1 and at 2 threads and writes a board profile for
//! `ferry-sim` from the figures ([`profile`]).

mod load;
mod machine;
mod profile;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ferry_hal::Precision;
use ferry_runtime::{LocalModel, ModelStore, Threads, TractEngine};

use crate::cli::BenchLocalArgs;
use crate::rss;

/// One variant's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VariantFigures {
    /// The model.
    pub model: String,
    /// The precision.
    pub precision: Precision,
    /// Mean compute time, ms, of the runs inside Tukey's far fences (see [`fenced`]).
    pub mean_ms: f64,
    /// Standard deviation of those runs, ms.
    pub sigma_ms: f64,
    /// Runs outside the fences (left out of the mean and σ; p50/p95 include them).
    pub far_out: usize,
    /// Median compute time, ms.
    pub p50_ms: f64,
    /// 95th percentile compute time, ms.
    pub p95_ms: f64,
    /// Load + optimize time, ms.
    pub load_ms: f64,
    /// Peak RSS of a process that loaded and ran only this variant, MiB.
    pub peak_rss_mib: f64,
    /// Timed runs.
    pub iterations: u32,
    /// Matrix-product threads.
    pub threads: u16,
}

/// Runs `ferry bench local`.
pub fn run(args: &BenchLocalArgs) -> Result<()> {
    let store = super::store(&args.models);
    if let Some(child) = &args.rss_child {
        return rss_child(args, &store, &TractEngine::new(Threads(args.threads.into())), child);
    }
    let names = if args.models_to_run.is_empty() { store.names() } else { args.models_to_run.clone() };
    if names.is_empty() {
        bail!("{}: no models found (expected <name>/manifest.toml folders)", store.dir().display());
    }
    // The profile says how busy the machine was (other jobs inflate every figure).
    let load_avg = machine::load_average();
    // A profile holds both thread counts; a plain run measures the one asked for.
    let thread_counts: &[u16] = if args.profile_out.is_some() { &[1, 2] } else { &[args.threads] };
    let mut all = Vec::new();
    for &threads in thread_counts {
        let engine = TractEngine::new(Threads(threads.into()));
        let mut figures = Vec::new();
        for name in &names {
            figures.extend(bench_model(args, &store, &engine, threads, name)?);
        }
        print(args, threads, &figures);
        all.extend(figures);
    }
    if let Some(path) = &args.profile_out {
        profile::write(args, &store, &all, path, &load_avg)?;
        println!("board profile written to {}", path.display());
    }
    Ok(())
}

fn bench_model(
    args: &BenchLocalArgs,
    store: &ModelStore,
    engine: &TractEngine,
    threads: u16,
    name: &str,
) -> Result<Vec<VariantFigures>> {
    let manifest = Arc::new(store.manifest(name)?);
    let mut variants: Vec<LocalModel> = Vec::new();
    for p in Precision::ALL {
        if manifest.variant(p).is_ok() {
            variants.push(LocalModel::load(engine, manifest.clone(), p)?);
        }
    }
    let input = bench_input(manifest.input_len());
    let shape = manifest.input.shape.clone();
    for model in &variants {
        for _ in 0..args.warmup {
            model.infer_tensor(&shape, &input, 1)?;
        }
    }
    // Interleave, alternating which variant goes first, so drift and noise hit all alike.
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(args.iterations as usize); variants.len()];
    for i in 0..args.iterations as usize {
        for j in 0..variants.len() {
            let k = if i % 2 == 0 { j } else { variants.len() - 1 - j };
            times[k].push(variants[k].infer_tensor(&shape, &input, 1)?.compute);
        }
    }
    let mut out = Vec::new();
    for (model, t) in variants.iter().zip(times.iter_mut()) {
        t.sort();
        let peak = child_peak_rss(args, store, threads, name, model.precision())?;
        let (kept, far_out) = fenced(t);
        let (mean_ms, sigma_ms) = mean_sigma(&kept);
        out.push(VariantFigures {
            model: name.to_string(),
            precision: model.precision(),
            mean_ms,
            sigma_ms,
            far_out,
            p50_ms: percentile(t, 0.50),
            p95_ms: percentile(t, 0.95),
            load_ms: model.load_time().as_secs_f64() * 1e3,
            peak_rss_mib: peak as f64 / 1024.0,
            iterations: args.iterations,
            threads,
        });
    }
    Ok(out)
}

/// A deterministic input in the range normalised images take.
fn bench_input(len: usize) -> Vec<f32> {
    let mut x: u32 = 0x9E37_79B9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The sorted durations inside Tukey's far fences, [Q1 − 3·IQR, Q3 + 3·IQR], and how many fell
/// outside. What falls outside is another job taking the CPU mid-run (a 0.08 ms run that took
/// 12 ms): the simulator models other jobs with the trace's background load, so they must not
/// also count as the board's own run-to-run variation.
fn fenced(sorted: &[Duration]) -> (Vec<Duration>, usize) {
    if sorted.len() < 4 {
        return (sorted.to_vec(), 0);
    }
    let (q1, q3) = (percentile(sorted, 0.25), percentile(sorted, 0.75));
    let (lo, hi) = (q1 - 3.0 * (q3 - q1), q3 + 3.0 * (q3 - q1));
    let kept: Vec<Duration> = sorted.iter().copied().filter(|d| (lo..=hi).contains(&(d.as_secs_f64() * 1e3))).collect();
    let out = sorted.len() - kept.len();
    (kept, out)
}

/// Mean and (sample) standard deviation of durations, in ms.
fn mean_sigma(t: &[Duration]) -> (f64, f64) {
    let ms: Vec<f64> = t.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    let n = ms.len().max(1) as f64;
    let mean = ms.iter().sum::<f64>() / n;
    let var = ms.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// Nearest-rank percentile of sorted durations, in ms.
fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

fn child_peak_rss(args: &BenchLocalArgs, store: &ModelStore, threads: u16, name: &str, precision: Precision) -> Result<u64> {
    let exe = std::env::current_exe().context("cannot find the ferry executable to measure RSS in a child")?;
    let out = Command::new(exe)
        .args(["bench", "local", "--rss-child", name, precision.as_str()])
        .args(["--threads", &threads.to_string(), "--warmup", &args.warmup.to_string()])
        .arg("--models")
        .arg(store.dir())
        .output()
        .context("cannot start the RSS child")?;
    if !out.status.success() {
        bail!("RSS child for {name} {precision} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse::<u64>().with_context(|| format!("RSS child printed {text:?}, expected KiB"))
}

fn rss_child(args: &BenchLocalArgs, store: &ModelStore, engine: &TractEngine, child: &[String]) -> Result<()> {
    let [name, precision] = child else { bail!("--rss-child takes MODEL PRECISION") };
    let precision: Precision = precision.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let model = store.load(engine, name, precision)?;
    let input = bench_input(model.manifest().input_len());
    let shape = model.manifest().input.shape.clone();
    for _ in 0..args.warmup.max(3) {
        model.infer_tensor(&shape, &input, 1)?;
    }
    let rss = rss::read().context("cannot read /proc/self/status")?;
    println!("{}", rss.peak_kib);
    Ok(())
}

fn print(args: &BenchLocalArgs, threads: u16, all: &[VariantFigures]) {
    if args.json {
        for f in all {
            println!("{}", serde_json::to_string(f).unwrap_or_default());
        }
        return;
    }
    println!(
        "tract, {threads} thread(s), {} timed runs per variant after {} warm-up, interleaved",
        args.iterations, args.warmup
    );
    println!(
        "{:<20} {:<5} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>13}",
        "model", "prec", "mean ms", "σ ms", "far out", "p50 ms", "p95 ms", "load ms", "peak RSS MiB"
    );
    for f in all {
        println!(
            "{:<20} {:<5} {:>9.3} {:>9.3} {:>7} {:>9.2} {:>9.2} {:>9.1} {:>13.1}",
            f.model, f.precision, f.mean_ms, f.sigma_ms, f.far_out, f.p50_ms, f.p95_ms, f.load_ms, f.peak_rss_mib
        );
    }
    println!("(mean and σ: the runs inside Tukey's far fences; far out: the runs left out, another job's doing)");
    for f32v in all.iter().filter(|f| f.precision == Precision::Fp32) {
        if let Some(i8v) = all.iter().find(|f| f.model == f32v.model && f.precision == Precision::Int8) {
            println!(
                "{}: int8/fp32 p50 ratio {:.2}, peak RSS ratio {:.2}",
                f32v.model,
                i8v.p50_ms / f32v.p50_ms,
                i8v.peak_rss_mib / f32v.peak_rss_mib
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_sigma() {
        let d: Vec<Duration> = [2, 4, 4, 4, 5, 5, 7, 9].into_iter().map(Duration::from_millis).collect();
        let (mean, sigma) = mean_sigma(&d);
        assert!((mean - 5.0).abs() < 1e-12);
        assert!((sigma - (32.0f64 / 7.0).sqrt()).abs() < 1e-12, "{sigma}");
        assert_eq!(mean_sigma(&d[..1]), (2.0, 0.0));
    }

    #[test]
    fn far_fences_drop_a_preempted_run_and_keep_ordinary_spread() {
        let mut d: Vec<Duration> = (0..20).map(|i| Duration::from_micros(80 + i)).collect();
        d.push(Duration::from_millis(12));
        let (kept, out) = fenced(&d);
        assert_eq!((kept.len(), out), (20, 1));
        let even: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(fenced(&even), (even.clone(), 0));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.5), 50.0);
        assert_eq!(percentile(&d, 0.95), 95.0);
        assert_eq!(percentile(&d[..1], 0.95), 1.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
