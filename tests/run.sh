#!/usr/bin/env bash
# The whole Ferry test suite, on a fresh Debian machine with Rust: installs the system packages
# the end-to-end tests start for real (broker, CoAP client, namespaces, systemd's verifier),
# builds everything once in the release profile (tract in a debug build is too slow to test
# with), then runs every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package that provides it
declare -A PACKAGES=(
  [openssl]=openssl
  [mosquitto]=mosquitto
  [mosquitto_pub]=mosquitto-clients
  [mosquitto_sub]=mosquitto-clients
  [systemd-analyze]=systemd
  [ip]=iproute2
  [tc]=iproute2
  # tests/tests/systemd_unit.rs boots a real systemd over a Debian root it makes with this
  [debootstrap]=debootstrap
  [unshare]=util-linux
  [nsenter]=util-linux
)
missing=()
for cmd in "${!PACKAGES[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${PACKAGES[$cmd]}")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "tests/run.sh: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"
# The testbed (tests/tests/testbed.rs) builds network namespaces and shapes a veth link with
# tc: it needs root, which CI has; elsewhere run this script with sudo.

cargo build --release --workspace --all-targets --locked
cargo test --release --workspace --locked
