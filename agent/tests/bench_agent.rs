//! Benchmark (ignored by default; figures go to BENCHMARKS.md): the running agent's memory idle
//! and under load, its idle CPU use, and the local API's overhead per request against calling
//! the runtime directly, measured in the same run.
//!
//! `cargo test --release -p ferry-agent --test bench_agent -- --ignored --nocapture`

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_agent::client::{infer, Endpoint};
use ferry_runtime::{preprocess, ModelStore, Precision, Threads, TractEngine};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find_map(|l| l.strip_prefix(field)).and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap()
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore]
fn agent_footprint_and_local_api_overhead() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndevice_id = \"bench\"\nboard = \"{}\"\nmodels = \"{}\"\n[api]\nunix = \"{}\"\n",
            repo().join("firmware-configs/x86-dev.toml").display(),
            repo().join("models").display(),
            sock.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry")).args(["run", "--config"]).arg(&config).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(2));
    let rss_idle = status_kib(pid, "VmRSS:");
    let t0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(10));
    let idle_cpu_pct = (cpu_ticks(pid) - t0) as f64 / 100.0 / 10.0 * 100.0;

    // API vs direct, interleaved, on the digits model (compute is tiny, so the overhead shows).
    let ep = Endpoint::Unix(sock.clone());
    let png = std::fs::read(repo().join("models/images/digit-7.png")).unwrap();
    let model = ModelStore::new(repo().join("models")).load(&TractEngine::new(Threads(1)), "digits", Precision::Fp32).unwrap();
    let (mut api, mut direct) = (Vec::new(), Vec::new());
    for i in 0..400 {
        if i % 2 == 0 {
            let t = Instant::now();
            infer(&ep, "digits", "image/png", &png, None).unwrap();
            api.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let t = Instant::now();
        let img = preprocess::decode_image(&png, "digit").unwrap();
        model.infer_image(&img, 5).unwrap();
        direct.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // Under load: EfficientNet-Lite0 requests back to back.
    let jpeg = std::fs::read(repo().join("models/images/espresso.jpg")).unwrap();
    for _ in 0..40 {
        infer(&ep, "efficientnet-lite0", "image/jpeg", &jpeg, None).unwrap();
    }
    let rss_load = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    let (a, d) = (p50(api), p50(direct));
    println!("agent RSS idle (efficientnet-lite0 FP32+INT8 and digits FP32+INT8 loaded): {:.1} MiB", rss_idle as f64 / 1024.0);
    println!("agent RSS after 40 efficientnet-lite0 requests: {:.1} MiB (peak {:.1} MiB)", rss_load as f64 / 1024.0, hwm as f64 / 1024.0);
    println!("agent idle CPU over 10 s: {idle_cpu_pct:.2} % of one core");
    println!("digits per request, p50: via local API (Unix socket) {a:.3} ms, runtime called directly {d:.3} ms, overhead {:.3} ms ({:.2}x)", a - d, a / d);
}
