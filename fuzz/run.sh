#!/usr/bin/env bash
# Builds the fuzz targets and runs them one after the other, each for SECONDS (default 600),
# at the lowest priority on one core, then minimizes each corpus. Logs: fuzz/logs/<target>.log.
#   fuzz/run.sh [SECONDS] [TARGET...]        (targets: envelope image config spool)
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(envelope image config spool)

# -s none: no sanitizer (the code is safe Rust; a panic is the finding, and ASan would halve
# the executions). -a: debug assertions and overflow checks, so an arithmetic overflow panics.
build=(-s none -a)
CARGO_BUILD_JOBS=2 cargo +nightly fuzz build "${build[@]}"

# The image target decodes up to MAX_IMAGE_ALLOC (256 MiB) and its body asserts, with a
# counting allocator, at most 272 MiB for a decode and a bound from the resize side for the
# preprocessing; 512 MB of RSS covers both plus the process. The other targets hold at most
# a few copies of a 4 KiB-ish input.
declare -A rss=([envelope]=256 [image]=512 [config]=256 [spool]=256)
declare -A timeout=([envelope]=10 [image]=60 [config]=10 [spool]=10)
mkdir -p logs
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  nice -n 19 cargo +nightly fuzz run "${build[@]}" "$t" "corpus/$t" -- \
    -max_total_time="$secs" -jobs=1 -workers=1 \
    -rss_limit_mb="${rss[$t]}" -timeout="${timeout[$t]}" -print_final_stats=1 \
    >"logs/$t.run.log" 2>&1 || echo "$t: the fuzzer stopped with a finding, see logs/$t.log and artifacts/$t/"
  # -jobs=1 runs the fuzzer in a child that writes fuzz-0.log here.
  [ -f fuzz-0.log ] && mv fuzz-0.log "logs/$t.log"
  nice -n 19 cargo +nightly fuzz cmin "${build[@]}" "$t" "corpus/$t" >"logs/$t.cmin.log" 2>&1
done
