#!/usr/bin/env python3
"""onnxruntime on the same model files, measured the way `ferry bench local` measures tract.

    python models/bench_ort.py [--iterations 50] [--warmup 5] [--threads 1] [MODEL ...]

Single-threaded by default; FP32 and INT8 loaded in one process and run interleaved; peak RSS of
each variant measured alone in a child process. Prints a table, or JSON lines with --json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent


def session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def bench_input(shape: list[int]) -> np.ndarray:
    rng = np.random.default_rng(0x9E3779B9)
    return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)


def variants(model: str) -> tuple[dict, list[tuple[str, Path]]]:
    manifest = tomllib.loads((HERE / model / "manifest.toml").read_text())
    return manifest, [(v["precision"], HERE / model / v["file"]) for v in manifest["variant"]]


def rss_child(path: str, shape: list[int], threads: int, warmup: int, q) -> None:
    s = session(Path(path), threads)
    x = bench_input(shape)
    name = s.get_inputs()[0].name
    for _ in range(max(3, warmup)):
        s.run(None, {name: x})
    # VmHWM, not getrusage's ru_maxrss: the latter survives execve, so a spawned child would
    # report the parent's peak (with every variant loaded) instead of its own.
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    q.put(peak)  # KiB


def percentile(sorted_ms: list[float], q: float) -> float:
    rank = min(len(sorted_ms), max(1, int(np.ceil(q * len(sorted_ms)))))
    return sorted_ms[rank - 1]


def bench_model(model: str, args) -> list[dict]:
    manifest, vs = variants(model)
    shape = manifest["input"]["shape"]
    x = bench_input(shape)
    loaded = []
    for precision, path in vs:
        t0 = time.perf_counter()
        s = session(path, args.threads)
        loaded.append((precision, path, s, (time.perf_counter() - t0) * 1e3))
    name = loaded[0][2].get_inputs()[0].name
    for _, _, s, _ in loaded:
        for _ in range(args.warmup):
            s.run(None, {name: x})
    times = [[] for _ in loaded]
    for i in range(args.iterations):
        order = range(len(loaded)) if i % 2 == 0 else reversed(range(len(loaded)))
        for k in order:
            t0 = time.perf_counter()
            loaded[k][2].run(None, {name: x})
            times[k].append((time.perf_counter() - t0) * 1e3)
    out = []
    ctx = mp.get_context("spawn")
    for (precision, path, _, load_ms), t in zip(loaded, times):
        q = ctx.Queue()
        p = ctx.Process(target=rss_child, args=(str(path), shape, args.threads, args.warmup, q))
        p.start()
        peak_kib = q.get(timeout=300)
        p.join()
        t.sort()
        out.append(
            {
                "engine": "onnxruntime " + ort.__version__,
                "model": model,
                "precision": precision,
                "p50_ms": percentile(t, 0.5),
                "p95_ms": percentile(t, 0.95),
                "load_ms": load_ms,
                "peak_rss_mib": peak_kib / 1024.0,
                "iterations": args.iterations,
                "threads": args.threads,
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    models = args.models or sorted(p.parent.name for p in HERE.glob("*/manifest.toml"))
    rows = [r for m in models for r in bench_model(m, args)]
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"onnxruntime {ort.__version__}, {args.threads} thread(s), {args.iterations} timed runs per variant after {args.warmup} warm-up, interleaved")
    print(f"{'model':<20} {'prec':<5} {'p50 ms':>9} {'p95 ms':>9} {'load ms':>9} {'peak RSS MiB':>13}")
    for r in rows:
        print(f"{r['model']:<20} {r['precision']:<5} {r['p50_ms']:>9.2f} {r['p95_ms']:>9.2f} {r['load_ms']:>9.1f} {r['peak_rss_mib']:>13.1f}")


if __name__ == "__main__":
    main()
