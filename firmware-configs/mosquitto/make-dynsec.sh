#!/usr/bin/env bash
# Writes the broker's authorization for a fleet: the JSON config of Mosquitto's
# dynamic-security plugin, listing every identity (client-certificate CN, which the broker
# uses as the username) and exactly what it may do. Anything not granted is refused,
# subscriptions included: a device subscribing to the edges' shared group gets SUBACK 135
# (Not authorized) instead of silently taking its turn in the round robin.
#
#   make-dynsec.sh OUT_JSON DEVICE_ID...
#
# Identities and their rights (topic layout: ferry-protocol's protocol::topics):
#   ferry-edge       subscribe $share/<any group>/ferry/+/req/+ (and ferry/+/req/+), receive
#                    ferry/+/req/+, publish ferry/+/resp
#   ferry-collector  subscribe and receive ferry/+/telemetry/# (Telegraf, the telemetry tests)
#   <device>         publish ferry/<device>/req/+ and ferry/<device>/telemetry/#, subscribe to
#                    and receive ferry/<device>/resp; nothing else (not even its own
#                    telemetry or requests back)
# A certificate the CA issued to a name not listed here can connect but do nothing: the
# plugin defers on unknown usernames, and with no other ACL source Mosquitto then denies.
# Mosquitto 2.0's dynamic-security plugin has no %u patterns, so every device has its own role
# with literal topics; Mosquitto's acl_file cannot do this job (it grants every SUBSCRIBE).
#
# Device ids as in make-dev-certs.sh: 1-64 characters of [A-Za-z0-9_.-], not "broker",
# "ferry-edge" or "ferry-collector". Output is deterministic (same ids, same bytes).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUT_JSON DEVICE_ID..." >&2; exit 2; }
out=$1
shift
for id in "$@"; do
    [[ "$id" =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || { echo "invalid device id '$id': use 1-64 characters of [A-Za-z0-9_.-]" >&2; exit 2; }
    case "$id" in broker | ferry-edge | ferry-collector) echo "device id '$id' is reserved" >&2; exit 2 ;; esac
done

# join SEP ITEM...: the items with SEP between them
join() {
    local sep=$1 first=1 item
    shift
    for item in "$@"; do
        [ "$first" = 1 ] || printf '%s' "$sep"
        printf '%s' "$item"
        first=0
    done
}
# role NAME TYPE TOPIC [TYPE TOPIC]...: a role granting each (ACL type, topic)
role() {
    local name=$1 acls=()
    shift
    while [ $# -ge 2 ]; do
        acls+=("$(printf '        {"acltype": "%s", "topic": "%s", "allow": true}' "$1" "$2")")
        shift 2
    done
    printf '    {\n      "rolename": "%s",\n      "acls": [\n%s\n      ]\n    }' "$name" "$(join $',\n' "${acls[@]}")"
}
client() { # client USERNAME TEXTNAME ROLE
    printf '    {"username": "%s", "textname": "%s", "roles": [{"rolename": "%s"}]}' "$1" "$2" "$3"
}

clients=("$(client ferry-edge "edge servers" ferry-edge)" "$(client ferry-collector "telemetry collector" ferry-collector)")
roles=(
    "$(role ferry-edge \
        subscribePattern '$share/+/ferry/+/req/+' \
        subscribePattern 'ferry/+/req/+' \
        publishClientReceive 'ferry/+/req/+' \
        publishClientSend 'ferry/+/resp')"
    "$(role ferry-collector \
        subscribePattern 'ferry/+/telemetry/#' \
        publishClientReceive 'ferry/+/telemetry/#')"
)
for id in "$@"; do
    clients+=("$(client "$id" device "device-$id")")
    roles+=("$(role "device-$id" \
        publishClientSend "ferry/$id/req/+" \
        publishClientSend "ferry/$id/telemetry/#" \
        subscribeLiteral "ferry/$id/resp" \
        publishClientReceive "ferry/$id/resp")")
done

tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
{
    printf '{\n'
    printf '  "defaultACLAccess": {"publishClientSend": false, "publishClientReceive": false, "subscribe": false, "unsubscribe": true},\n'
    printf '  "clients": [\n%s\n  ],\n' "$(join $',\n' "${clients[@]}")"
    printf '  "groups": [],\n'
    printf '  "roles": [\n%s\n  ]\n' "$(join $',\n' "${roles[@]}")"
    printf '}\n'
} >"$tmp"
# Nothing secret in it; mosquitto reads it after dropping to its own user.
chmod 644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
