#!/usr/bin/env bash
# Checks the shipped broker config end to end with real mosquitto and real certificates:
# starts a broker from mosquitto.conf.in on a free port with fresh dev certificates and an
# authorization made by make-dynsec.sh, then publishes and subscribes as devices, as the
# edge, as the collector and as impostors. Prints one line per check and exits non-zero if
# any check failed (tests/tests/acl_isolation.rs runs it in the test suite).
#
#   verify.sh            (needs mosquitto, mosquitto-clients, openssl)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
chmod 755 "$work"
broker_pid=
subs=()
cleanup() {
    for p in "${subs[@]}"; do kill "$p" 2>/dev/null; done
    if [ -n "$broker_pid" ]; then kill "$broker_pid" 2>/dev/null; wait "$broker_pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT

# dev-9 gets a certificate from the CA but is not in the authorization.
"$here/../certs/make-dev-certs.sh" --rogue "$work/certs" dev-1 dev-2 dev-9 || exit 1
"$here/make-dynsec.sh" "$work/dynamic-security.json" dev-1 dev-2 || exit 1

# A free port: try a few random ones, keeping the first this broker really listens on.
start_broker() {
    local _attempt _i
    for _attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 40000))
        "$here/render.sh" "$port" "$work/certs" "$work/mosquitto.conf" "$work/dynamic-security.json" || return 1
        mosquitto -c "$work/mosquitto.conf" >"$work/broker.log" 2>&1 &
        broker_pid=$!
        for _i in $(seq 50); do
            kill -0 "$broker_pid" 2>/dev/null || break
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                sleep 0.2
                kill -0 "$broker_pid" 2>/dev/null && return 0
                break
            fi
            sleep 0.1
        done
        kill "$broker_pid" 2>/dev/null
        wait "$broker_pid" 2>/dev/null
        broker_pid=
    done
    return 1
}

C=$work/certs
failed=0
check() { # check NAME CONDITION...
    local name=$1; shift
    if "$@"; then echo "ok    $name"; else echo "FAIL  $name"; failed=1; fi
}
tls() { # tls IDENTITY: client options for a certificate in $C
    echo "--cafile $C/ca.crt --cert $C/$1.crt --key $C/$1.key -h 127.0.0.1 -p $port -V mqttv5"
}
pub() { # pub IDENTITY TOPIC [-f FILE]: prints the PUBACK reason code (or the error)
    local who=$1 topic=$2; shift 2
    local msg=(-m "from $who")
    [ $# -gt 0 ] && msg=("$@")
    mosquitto_pub $(tls "$who") -t "$topic" "${msg[@]}" -q 1 -d 2>&1 |
        sed -n -e 's/.*PUBACK (Mid: [0-9]*, RC:\([0-9]*\)).*/\1/p' -e 's/^Error: \(.*\)/error: \1/p' | tail -1
}
suback() { # suback IDENTITY TOPIC [OPTIONS...]: prints the SUBACK code (1 = granted QoS 1)
    local who=$1 topic=$2; shift 2
    timeout 5 mosquitto_sub $(tls "$who") "$@" -t "$topic" -q 1 -d -W 1 2>&1 |
        sed -n -e 's/^Subscribed (mid: [0-9]*): \([0-9]*\).*/\1/p' | head -1
}
sub() { # sub OUTFILE IDENTITY TOPIC...: subscribes for 3 s in the background
    local out=$1 who=$2; shift 2
    local args=()
    for t in "$@"; do args+=(-t "$t"); done
    timeout 3 mosquitto_sub $(tls "$who") "${args[@]}" -v -q 1 -d >"$out" 2>&1 &
    subs+=($!)
}
wait_subs() { wait "${subs[@]}"; subs=(); }
eq() { [ "$1" = "$2" ]; }
has() { grep -qxF "$2" "$1"; }
received() { grep -c '^ferry/' "$1"; }
granted_in() { grep -q '^Subscribed (mid: [0-9]*): 1$' "$1"; }

start_broker
check "broker starts with the rendered config" test -n "$broker_pid"
[ -n "$broker_pid" ] || { cat "$work/broker.log"; exit 1; }
check "the broker loaded the authorization" eval '! grep -qi "dynamic security" "$work/broker.log"'

sub "$work/edge" ferry-edge '$share/ferry-edges/ferry/+/req/+'
sub "$work/dev1" dev-1 ferry/dev-1/resp
sub "$work/collector" ferry-collector 'ferry/+/telemetry/#'
sleep 0.7
check "device publishes a request on its own topic (v5 PUBACK 0)" eq "$(pub dev-1 ferry/dev-1/req/mobilenet_v2)" 0
check "device publishes telemetry on its own topic" eq "$(pub dev-2 ferry/dev-2/telemetry/readings)" 0
check "device request on its own topic (dev-2)" eq "$(pub dev-2 ferry/dev-2/req/mobilenet_v2)" 0
check "edge publishes a response to a device" eq "$(pub ferry-edge ferry/dev-1/resp)" 0
check "device cannot publish a request as another device (v5 PUBACK 135)" eq "$(pub dev-1 ferry/dev-2/req/mobilenet_v2)" 135
check "device cannot forge another device's response" eq "$(pub dev-1 ferry/dev-2/resp)" 135
check "device cannot forge its own response" eq "$(pub dev-1 ferry/dev-1/resp)" 135
check "device cannot publish another device's telemetry" eq "$(pub dev-1 ferry/dev-2/telemetry/readings)" 135
check "device cannot publish outside ferry/<id>/" eq "$(pub dev-1 other/topic)" 135
check "edge cannot publish requests" eq "$(pub ferry-edge ferry/dev-1/req/m)" 135
check "edge cannot publish telemetry" eq "$(pub ferry-edge ferry/dev-1/telemetry/readings)" 135
check "collector cannot publish" eq "$(pub ferry-collector ferry/dev-1/telemetry/readings)" 135
check "a certificate the authorization does not list cannot publish" eq "$(pub dev-9 ferry/dev-9/req/m)" 135
wait_subs
check "edge receives requests through the shared subscription" \
    has "$work/edge" "ferry/dev-1/req/mobilenet_v2 from dev-1"
check "edge receives every device's requests" has "$work/edge" "ferry/dev-2/req/mobilenet_v2 from dev-2"
check "device receives its response" has "$work/dev1" "ferry/dev-1/resp from ferry-edge"
check "collector receives telemetry" has "$work/collector" "ferry/dev-2/telemetry/readings from dev-2"

# Subscriptions are refused, not granted and then starved: SUBACK 135 (v5), 128 (v3.1.1).
check "device subscribes to its responses (SUBACK granted QoS 1)" eq "$(suback dev-1 ferry/dev-1/resp)" 1
for filter in '$share/ferry-edges/ferry/+/req/+' '$share/any-group/ferry/+/req/+' 'ferry/+/req/+' \
    'ferry/dev-2/resp' '$share/any-group/ferry/dev-2/resp' 'ferry/dev-2/#' 'ferry/#' '#' \
    'ferry/dev-1/req/+' 'ferry/dev-1/telemetry/#' '$CONTROL/#'; do
    check "device subscription to $filter is refused (SUBACK 135)" eq "$(suback dev-1 "$filter")" 135
done
check "an MQTT 3.1.1 device joining the edges' group is refused (SUBACK 128)" \
    eq "$(suback dev-1 '$share/ferry-edges/ferry/+/req/+' -V mqttv311)" 128
check "a certificate the authorization does not list cannot subscribe" eq "$(suback dev-9 ferry/dev-9/resp)" 135
check "edge cannot subscribe to telemetry" eq "$(suback ferry-edge 'ferry/+/telemetry/#')" 135
check "edge cannot subscribe to #" eq "$(suback ferry-edge '#')" 135
check "collector cannot subscribe to requests" eq "$(suback ferry-collector 'ferry/+/req/+')" 135

# The impostor: a device certificate with several connections asking to join the edges'
# shared group. Refused, it takes no turn in the round robin: the edge gets every request.
sub "$work/edge2" ferry-edge '$share/ferry-edges/ferry/+/req/+'
for i in 1 2 3 4 5; do sub "$work/thief$i" dev-1 '$share/ferry-edges/ferry/+/req/+'; done
sleep 0.7
for i in 1 2 3 4 5 6 7 8; do pub dev-2 ferry/dev-2/req/m >/dev/null; done
wait_subs
check "with 5 impostor connections in the edges' group, the edge got all 8 requests" \
    eq "$(received "$work/edge2")" 8
check "every impostor connection was refused and received nothing" \
    eval '! cat "$work"/thief* | grep -q "^ferry/" && ! granted_in <(cat "$work"/thief*) && [ "$(cat "$work"/thief* | grep -c "^Subscribed (mid: [0-9]*): 135$")" = 5 ]'

check "certificate from another CA (CN=dev-1) is refused" \
    eval '[[ "$(mosquitto_pub --cafile $C/ca.crt --cert $C/rogue-dev-1.crt --key $C/rogue-dev-1.key -h 127.0.0.1 -p $port -t ferry/dev-1/req/m -m x 2>&1)" == Error* ]]'
check "client without certificate is refused" \
    eval '[[ "$(mosquitto_pub --cafile $C/ca.crt -h 127.0.0.1 -p $port -t ferry/dev-1/req/m -m x 2>&1)" == Error* ]]'
check "TLS 1.2 is refused" \
    eval '! echo | timeout 5 openssl s_client -connect 127.0.0.1:$port -tls1_2 -CAfile $C/ca.crt -cert $C/dev-1.crt -key $C/dev-1.key >/dev/null 2>&1'
check "TLS 1.3 handshake verifies the broker as localhost and 127.0.0.1" \
    eval 'echo | timeout 5 openssl s_client -connect 127.0.0.1:$port -tls1_3 -CAfile $C/ca.crt -cert $C/dev-1.crt -key $C/dev-1.key -verify_hostname localhost -verify_ip 127.0.0.1 -verify_return_error 2>&1 | grep -q "Verify return code: 0"'

head -c 600000 /dev/urandom >"$work/600k"
head -c 4300000 /dev/zero >"$work/4m3"
# PUBACK 16 is "no matching subscribers": accepted, nobody listening.
check "600 KB request passes" eval '[[ "$(pub dev-1 ferry/dev-1/req/m -f "$work/600k")" =~ ^(0|16)$ ]]'
# An MQTT 5 client learns max_packet_size from CONNACK and refuses to send by itself; an
# MQTT 3.1.1 client cannot know, so this one shows the broker enforcing it.
mosquitto_pub $(tls dev-1) -V mqttv311 -t ferry/dev-1/req/m -f "$work/4m3" -q 1 >/dev/null 2>&1
big_rc=$?
sleep 0.3
check "broker drops a client publishing beyond max_packet_size" \
    eval '[ "$big_rc" -ne 0 ] && grep -q "disconnected due to oversize packet" "$work/broker.log"'

if [ "$failed" -ne 0 ]; then
    echo "--- broker log"; cat "$work/broker.log"
fi
exit "$failed"
