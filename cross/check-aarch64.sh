#!/usr/bin/env bash
# Builds `ferry` for aarch64 (the Raspberry Pi 4/5 and Jetson target) and checks under
# qemu-aarch64-static that local inference runs on tract's ARM kernels and agrees with the
# x86_64 build: for every bundled image and both variants (FP32, INT8) of efficientnet-lite0,
# and for digits, the same top-1 class, with its probability within 0.02.
# Timing under emulation means nothing; only correctness is checked.
#
#   cross/check-aarch64.sh            # installs what it needs (Debian), builds, compares
#
# Installs (apt) qemu-user-static, gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, python3 and the Rust
# target aarch64-unknown-linux-gnu when missing. A cold aarch64 build takes ~15 min here.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
need=()
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -d /usr/aarch64-linux-gnu/lib ] || need+=(libc6-dev-arm64-cross)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "check-aarch64: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
cargo build --release --locked -p ferry-agent --bin ferry
cargo build --release --locked --target "$TARGET" -p ferry-agent --bin ferry

x86=target/release/ferry
arm=(qemu-aarch64-static -L /usr/aarch64-linux-gnu "target/$TARGET/release/ferry")
# ELF e_machine 0xB7 is AArch64.
python3 -c 'import sys; h = open(sys.argv[1], "rb").read(20); sys.exit(0 if h[:4] == b"\x7fELF" and h[18] == 0xB7 else 1)' \
  "target/$TARGET/release/ferry" || { echo "check-aarch64: not an aarch64 binary" >&2; exit 1; }

images=(models/images/*.jpg)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0
check() { # name, then the infer arguments
  local name=$1
  shift
  "$x86" infer --json --models models "$@" >"$out/x86.jsonl"
  "${arm[@]}" infer --json --models models "$@" >"$out/arm.jsonl"
  if ! python3 - "$name" "$out/x86.jsonl" "$out/arm.jsonl" <<'EOF'; then fail=1; fi
import json, sys
name, a, b = sys.argv[1], sys.argv[2], sys.argv[3]
x86 = [json.loads(l) for l in open(a) if l.strip()]
arm = [json.loads(l) for l in open(b) if l.strip()]
ok = len(x86) == len(arm) and len(x86) > 0
for p, q in zip(x86, arm):
    t1, t2 = p["top"][0], q["top"][0]
    same = t1["index"] == t2["index"] and abs(t1["score"] - t2["score"]) <= 0.02
    ok &= same
    print(f"  {name:<24} {p.get('input', '?'):<36} x86 {t1['label'][:18]:<18} {t1['score']:.4f}  aarch64 {t2['label'][:18]:<18} {t2['score']:.4f}  {'ok' if same else 'DIFFERS'}")
sys.exit(0 if ok else 1)
EOF
}
echo "check-aarch64: x86_64 vs aarch64 under qemu ($(qemu-aarch64-static --version | head -1))"
check efficientnet-lite0/fp32 --model efficientnet-lite0 --precision fp32 "${images[@]}"
check efficientnet-lite0/int8 --model efficientnet-lite0 --precision int8 "${images[@]}"
check digits/fp32 --model digits --precision fp32 models/images/digit-3.png models/images/digit-7.png
check digits/int8 --model digits --precision int8 models/images/digit-3.png models/images/digit-7.png
if ((fail)); then
  echo "check-aarch64: aarch64 and x86_64 disagree" >&2
  exit 1
fi
echo "check-aarch64: every variant agrees"
