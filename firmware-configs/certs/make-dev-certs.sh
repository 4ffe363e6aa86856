#!/usr/bin/env bash
# Makes a development PKI for Ferry's MQTT/TLS path: a CA, the broker's server certificate,
# the edge server's client certificate and one client certificate per device. Never use
# these keys outside a lab.
#
#   make-dev-certs.sh [--rogue] [--expired] [--broker-san SAN[,SAN...]] OUTDIR [DEVICE_ID...]
#
# OUTDIR gets (all EC P-256, PEM):
#   ca.crt ca.key                 the development CA
#   broker.crt broker.key         CN=broker, SAN IP:127.0.0.1, DNS:localhost (server auth),
#                                 plus --broker-san entries (e.g. IP:10.201.0.2 for a broker
#                                 reached across a test network namespace)
#   ferry-edge.crt ferry-edge.key CN=ferry-edge: the identity the broker authorizes as an edge
#   ferry-collector.crt ferry-collector.key
#                                 CN=ferry-collector: reads every device's telemetry (Telegraf)
#   <id>.crt <id>.key             CN=<id> for each device id (client auth)
# with --rogue also:
#   rogue-ca.crt rogue-ca.key     a second, untrusted CA
#   rogue-<id>.crt rogue-<id>.key a client cert with CN=<first device id, or "rogue">
#                                 signed by the rogue CA, for tests that must be refused
# with --expired also, signed by the development CA but valid only on 1 January 2020:
#   expired-broker.crt expired-broker.key
#                                 the broker's certificate (same names), expired
#   expired-<id>.crt expired-<id>.key
#                                 a client cert with CN=<first device id, or "expired">,
#                                 expired
#
# Idempotent: existing files are kept as long as they still verify against their CA (a
# rebuilt CA reissues every certificate under it). Quiet: prints nothing on success; on
# failure prints openssl's output and exits non-zero.
#
# Device ids become MQTT topic levels and broker usernames (use_identity_as_username), so
# they must be 1-64 characters of [A-Za-z0-9_.-] and may not be "broker", "ferry-edge" or
# "ferry-collector". A certificate alone authorizes nothing: the broker grants rights only to
# the names listed in its authorization (firmware-configs/mosquitto/make-dynsec.sh).
set -euo pipefail

EDGE_CN=ferry-edge
COLLECTOR_CN=ferry-collector
DAYS=3650

usage() {
    echo "usage: $0 [--rogue] [--expired] [--broker-san SAN[,SAN...]] OUTDIR [DEVICE_ID...]" >&2
    exit 2
}

rogue=false
expired=false
extra_san=""
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rogue) rogue=true ;;
        --expired) expired=true ;;
        --broker-san)
            [ $# -ge 2 ] || usage
            [[ "$2" =~ ^((IP|DNS):[A-Za-z0-9.:-]+,?)+$ ]] || { echo "bad --broker-san '$2': expected IP:x or DNS:x, comma-separated" >&2; exit 2; }
            extra_san=",${2%,}"
            shift ;;
        -h|--help) usage ;;
        -*) echo "unknown option: $1" >&2; usage ;;
        *) args+=("$1") ;;
    esac
    shift
done
[ "${#args[@]}" -ge 1 ] || usage
out=${args[0]}
devices=("${args[@]:1}")

for id in "${devices[@]}"; do
    if ! [[ "$id" =~ ^[A-Za-z0-9_.-]{1,64}$ ]]; then
        echo "invalid device id '$id': use 1-64 characters of [A-Za-z0-9_.-]" >&2
        exit 2
    fi
    if [ "$id" = broker ] || [ "$id" = "$EDGE_CN" ] || [ "$id" = "$COLLECTOR_CN" ]; then
        echo "device id '$id' is reserved" >&2
        exit 2
    fi
done

command -v openssl >/dev/null || { echo "openssl not found" >&2; exit 1; }
mkdir -p "$out"
umask 077

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Runs openssl, showing its chatter only when it fails.
ossl() {
    if ! openssl "$@" >"$log" 2>&1; then
        echo "openssl $1 failed:" >&2
        cat "$log" >&2
        exit 1
    fi
}

newkey() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# make_ca NAME CN: a self-signed CA, kept if present and still a valid CA certificate.
make_ca() {
    local name=$1 cn=$2
    if [ -s "$out/$name.key" ] && [ -s "$out/$name.crt" ] &&
        openssl x509 -in "$out/$name.crt" -noout -checkend 86400 >/dev/null 2>&1; then
        return
    fi
    newkey "$out/$name.key"
    ossl req -x509 -new -key "$out/$name.key" -sha256 -days "$DAYS" -subj "/O=Ferry dev/CN=$cn" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" \
        -out "$out/$name.crt"
}

# The validity of the --expired certificates (openssl 3.0's `x509 -req` cannot back-date;
# `openssl ca` can).
EXPIRED_START=20200101000000Z
EXPIRED_END=20200102000000Z

# make_leaf CA NAME CN EXTENSIONS [SAN] [expired]: a certificate signed by CA, kept if it
# still verifies (and, with SAN, still carries exactly those subject alternative names; with
# "expired", verifies but for its dates, which are past).
make_leaf() {
    local ca=$1 name=$2 cn=$3 ext=$4 san=${5:-} validity=${6:-}
    local verify=(openssl verify -CAfile "$out/$ca.crt")
    [ "$validity" = expired ] && verify+=(-no_check_time)
    if [ -s "$out/$name.key" ] && [ -s "$out/$name.crt" ] &&
        "${verify[@]}" "$out/$name.crt" >/dev/null 2>&1 &&
        { [ "$validity" != expired ] || ! openssl x509 -in "$out/$name.crt" -noout -checkend 0 >/dev/null 2>&1; } &&
        { [ -z "$san" ] || [ "$(openssl x509 -in "$out/$name.crt" -noout -ext subjectAltName 2>/dev/null |
            tail -n +2 | tr -d ' ' | sed -e 's/IPAddress:/IP:/g')" = "$san" ]; }; then
        return
    fi
    newkey "$out/$name.key"
    local extfile
    extfile=$(mktemp)
    printf '%s\n' "$ext" >"$extfile"
    ossl req -new -key "$out/$name.key" -subj "/O=Ferry dev/CN=$cn" -out "$out/$name.csr"
    if [ "$validity" = expired ]; then
        sign_expired "$ca" "$name" "$extfile"
    else
        ossl x509 -req -in "$out/$name.csr" -CA "$out/$ca.crt" -CAkey "$out/$ca.key" \
            -CAcreateserial -CAserial "$out/$ca.srl" -sha256 -days "$DAYS" \
            -extfile "$extfile" -out "$out/$name.crt"
    fi
    rm -f "$out/$name.csr" "$extfile"
}

# sign_expired CA NAME EXTFILE: signs NAME.csr for EXPIRED_START..EXPIRED_END with
# `openssl ca` and a throw-away CA database.
sign_expired() {
    local ca=$1 name=$2 extfile=$3 db
    db=$(mktemp -d)
    : >"$db/index.txt"
    openssl rand -hex 16 >"$db/serial"
    cat >"$db/ca.cnf" <<EOF
[ca]
default_ca = dev
[dev]
database = $db/index.txt
new_certs_dir = $db
serial = $db/serial
default_md = sha256
unique_subject = no
policy = any
[any]
organizationName = optional
commonName = supplied
EOF
    ossl ca -batch -notext -config "$db/ca.cnf" -cert "$out/$ca.crt" -keyfile "$out/$ca.key" \
        -startdate "$EXPIRED_START" -enddate "$EXPIRED_END" -extfile "$extfile" \
        -in "$out/$name.csr" -out "$out/$name.crt"
    rm -rf "$db"
}

CLIENT_EXT='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth'
SERVER_EXT='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName='
BROKER_SAN="IP:127.0.0.1,DNS:localhost$extra_san"

make_ca ca "Ferry dev CA"
make_leaf ca broker broker "$SERVER_EXT$BROKER_SAN" "$BROKER_SAN"
make_leaf ca "$EDGE_CN" "$EDGE_CN" "$CLIENT_EXT"
make_leaf ca "$COLLECTOR_CN" "$COLLECTOR_CN" "$CLIENT_EXT"
for id in "${devices[@]}"; do
    make_leaf ca "$id" "$id" "$CLIENT_EXT"
done

if $rogue; then
    rogue_cn=${devices[0]:-rogue}
    make_ca rogue-ca "Ferry rogue CA"
    make_leaf rogue-ca "rogue-$rogue_cn" "$rogue_cn" "$CLIENT_EXT"
fi

if $expired; then
    make_leaf ca expired-broker broker "$SERVER_EXT$BROKER_SAN" "$BROKER_SAN" expired
    expired_cn=${devices[0]:-expired}
    make_leaf ca "expired-$expired_cn" "$expired_cn" "$CLIENT_EXT" "" expired
fi

# Certificates are public; keys stay owner-only (umask above), except the broker's: started
# as root, mosquitto drops to the "mosquitto" user before it loads its key, so that one key
# must be world-readable. Acceptable for a development key only.
chmod 755 "$out"
chmod 644 "$out"/*.crt "$out/broker.key"
if $expired; then chmod 644 "$out/expired-broker.key"; fi
