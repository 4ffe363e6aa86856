#!/usr/bin/env python3
"""The simulator summaries of BENCHMARKS.md ("Overload and the hindsight reference"), regenerated.

Runs `ferry-sim` over every shipped and recorded trace on each board and load, and prints one
Markdown table per scenario: whether the per-request oracle is valid, adaptive against it, the
deadline-met shares, the in-time means against the hindsight reference, adaptive's latest
answer past its deadline and its probes. `(miss)` marks a bar missed. Then, with `--full`, the
full ferry-sim tables of the recorded traces.

    cargo build --release -p ferry-decide --bin ferry-sim
    python3 tests/traces/summarize.py [--sim target/release/ferry-sim] [--full] > /tmp/summaries.md

Everything it prints comes from ferry-sim's own output lines (see `bars` in
offload/decide/src/bin/ferry-sim.rs); nothing is computed here but the layout.
"""

import argparse
import glob
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SCENARIOS = [
    ("Pi-class (`rpi4.toml`), with each trace's background load — the overload", "rpi4", "trace"),
    ("Pi-class, no background load (`--load none`)", "rpi4", "none"),
    ("legacy-constants (the default board), 1×, with load", None, "trace"),
    ("legacy-constants, 1×, no background load", None, "none"),
    ("vm-dev (measured on a busy VM; stale, see `tests/traces/boards/README.md`), 1×, with load", "vm-dev", "trace"),
    ("vm-dev, 1×, no background load", "vm-dev", "none"),
]

ORACLE = re.compile(
    r"per-request oracle (valid|not valid) here \(reference-run-all made ([\d.]+) % of requests wait.*?\): "
    r"adaptive vs oracle(?:, mean over every answer,)? ([+-][\d.]+) %(?: \(bar ≤ \+10 %: (met|MISSED)\))?"
)
REFERENCE = re.compile(
    r"adaptive vs hindsight reference, mean over answers in time: ([+-][\d.]+ %) \(bar ≤ \+10 %: (met|MISSED)\); "
    r"over the (\d+) requests both answered in time: ([\d.]+) vs ([\d.]+) ms, ([+-][\d.]+ %)"
)
MET = re.compile(
    r"deadline met: adaptive ([\d.]+) %, best static ([\d.]+) % \(([^)]+)\), reference ([\d.]+) % .*: (met|MISSED)\)"
)
TAIL = re.compile(r"adaptive: lost (\d+), duplicated (\d+), latest answer (\d+) ms past its deadline; (\d+) probes, (\d+) B/s")
TITLE = re.compile(r"^### (\S+) — ")
ADAPTIVE_ROW = re.compile(r"^\| adaptive \|")


def traces():
    paths = sorted(glob.glob(os.path.join(ROOT, "tests/traces/recorded/*.toml")))
    paths += sorted(glob.glob(os.path.join(ROOT, "tests/traces/*.toml")))
    return paths


def run(sim, board, load, paths):
    cmd = [sim]
    if board:
        cmd += ["--board", os.path.join(ROOT, f"tests/traces/boards/{board}.toml")]
    cmd += ["--load", load] + paths
    env = dict(os.environ, RUST_BACKTRACE="0")
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout


def command(board, load):
    b = f"--board tests/traces/boards/{board}.toml " if board else ""
    return f"ferry-sim {b}--load {load} tests/traces/recorded/*.toml tests/traces/*.toml"


def miss(ok):
    return "" if ok else " **(miss)**"


def summary(out):
    rows = []
    for block in re.split(r"(?m)^(?=### )", out):
        title = TITLE.search(block)
        if not title:
            continue
        o, r, m, t = ORACLE.search(block), REFERENCE.search(block), MET.search(block), TAIL.search(block)
        if not (o and r and m and t):
            sys.exit(f"summarize.py: could not read ferry-sim's lines for {title.group(1)}")
        in_time = [c.strip() for c in next(l for l in block.splitlines() if ADAPTIVE_ROW.match(l)).split("|")]
        valid = o.group(1) == "valid"
        oracle = f"{o.group(3)} %" + (miss(o.group(4) == "met") if valid else "")
        rows.append(
            f"| {title.group(1)} | {'yes' if valid else 'no'} ({o.group(2)} % wait) | {oracle} | "
            f"{m.group(1)} % / {m.group(2)} % ({m.group(3)}) / {m.group(4)} %{miss(m.group(5) == 'met')} | "
            f"{in_time[10]} ms vs reference ({r.group(1)}{miss(r.group(2) == 'met')}) | "
            f"{r.group(4)} vs {r.group(5)} ms over {r.group(3)} ({r.group(6)}) | {t.group(3)} ms | "
            f"{t.group(4)}, {t.group(5)} | lost {t.group(1)}, duplicated {t.group(2)} |"
        )
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", default=os.path.join(ROOT, "target/release/ferry-sim"))
    ap.add_argument("--full", action="store_true", help="also the full tables of the recorded traces")
    a = ap.parse_args()
    paths = traces()
    for title, board, load in SCENARIOS:
        out = run(a.sim, board, load, paths)
        print(f"#### {title}\n\n`{command(board, load)}`\n")
        print("| trace | oracle valid | adaptive vs oracle | deadline met: adaptive / best static / reference "
              "| in time, mean: adaptive (vs reference) | same requests in time: adaptive vs reference "
              "| adaptive: latest past deadline | adaptive: probes, B/s | adaptive: lost, duplicated |")
        print("|---|---|---|---|---|---|---|---|---|")
        print("\n".join(summary(out)) + "\n")
    if a.full:
        recorded = [p for p in paths if "/recorded/" in p]
        for title, board, load in SCENARIOS:
            out = run(a.sim, board, load, recorded)
            print(f"<details><summary>Full tables: recorded traces, {title}</summary>\n")
            print(out.replace("\n### ", "\n##### ").replace("### ", "##### ", 1))
            print("</details>\n")


if __name__ == "__main__":
    main()
