#!/usr/bin/env bash
# Prints the fuzzing results table (Markdown) from the logs fuzz/run.sh leaves in fuzz/logs/
# and the kept corpora: per target, the run's length and executions, the corpus after cmin,
# the findings kept as regressions.
set -euo pipefail
cd "$(dirname "$0")"
declare -A rss=([envelope]=256 [image]=512 [config]=256 [spool]=256)
echo "| target | run (s) | executions | exec/s | corpus files | corpus bytes | regressions kept | RSS limit (MB) | finished |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
for t in envelope image config spool; do
  log="logs/$t.log"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" 2>/dev/null | tail -1 | grep -o '[0-9]*$' || echo "?")
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" 2>/dev/null | tail -1 | awk '{print $5}' || true)
  [ -n "$secs" ] || secs="?"
  rate="?"
  if [[ "$runs" =~ ^[0-9]+$ && "$secs" =~ ^[0-9]+$ && "$secs" -gt 0 ]]; then rate=$((runs / secs)); fi
  files=$(find "corpus/$t" -type f | wc -l)
  bytes=$(find "corpus/$t" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
  kept=$(find "regressions/$t" -type f 2>/dev/null | wc -l)
  when=$(date -u -r "$log" '+%Y-%m-%d %H:%M UTC' 2>/dev/null || echo "?")
  echo "| \`$t\` | $secs | $runs | $rate | $files | $bytes | $kept | ${rss[$t]} | $when |"
done
echo
echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores (shared with other builds); $(rustc +nightly --version)."
