#!/usr/bin/env bash
# Renders mosquitto.conf.in: render.sh PORT CERT_DIR OUT_CONF [ACL_FILE] [BIND]
# ACL_FILE defaults to the acl beside this script, BIND to 127.0.0.1. Paths are made
# absolute, since mosquitto resolves relative ones against its working directory.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 PORT CERT_DIR OUT_CONF [ACL_FILE] [BIND]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
port=$1
certs=$(cd "$2" && pwd)
out=$3
acl=${4:-$here/acl}
acl=$(cd "$(dirname "$acl")" && pwd)/$(basename "$acl")
bind=${5:-127.0.0.1}
[[ "$port" =~ ^[0-9]+$ ]] || { echo "bad port: $port" >&2; exit 2; }
sed -e "s|@PORT@|$port|g" -e "s|@BIND@|$bind|g" -e "s|@CERT_DIR@|$certs|g" \
    -e "s|@ACL_FILE@|$acl|g" "$here/mosquitto.conf.in" >"$out"
