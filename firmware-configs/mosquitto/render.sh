#!/usr/bin/env bash
# Renders mosquitto.conf.in: render.sh PORT CERT_DIR OUT_CONF [DYNSEC_FILE] [BIND]
# DYNSEC_FILE (the authorization, made by make-dynsec.sh) defaults to the lab's
# dynamic-security.json beside this script, BIND to 127.0.0.1. Paths are made absolute,
# since mosquitto resolves relative ones against its working directory. Refuses a missing
# authorization file: mosquitto would start without it and refuse every client everything.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 PORT CERT_DIR OUT_CONF [DYNSEC_FILE] [BIND]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
port=$1
certs=$(cd "$2" && pwd)
out=$3
authz=${4:-$here/dynamic-security.json}
[ -f "$authz" ] || { echo "$0: authorization file $authz not found: make it with $here/make-dynsec.sh $authz DEVICE_ID..." >&2; exit 2; }
authz=$(cd "$(dirname "$authz")" && pwd)/$(basename "$authz")
bind=${5:-127.0.0.1}
[[ "$port" =~ ^[0-9]+$ ]] || { echo "bad port: $port" >&2; exit 2; }
sed -e "s|@PORT@|$port|g" -e "s|@BIND@|$bind|g" -e "s|@CERT_DIR@|$certs|g" \
    -e "s|@DYNSEC_FILE@|$authz|g" "$here/mosquitto.conf.in" >"$out"
