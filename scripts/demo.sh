#!/usr/bin/env bash
# ephemera demo: three subscribers behind the NAT talk to one server, and we look at what each
# side saw and at ephemera's own view (telemetry), then stop it and tear everything down.
#
#   sudo scripts/demo.sh [PATH/TO/ephemera]      (or EPHEMERA=PATH scripts/demo.sh)
#
# Default binary: build/control/ephemera. Needs root (network namespaces) and the packages
# scripts/install-deps.sh installs (iproute2, ethtool, socat, iputils-ping, python3, dpdk).
# Environment: LAB (lab name, default "demo"), WORKERS (default 2), CONFIG (default
# conf/demo.toml), DOWNLOAD_MB (default 20).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lab.sh
source "$ROOT/scripts/lab.sh"

EPHEMERA=${1:-${EPHEMERA:-$ROOT/build/control/ephemera}}
LAB=${LAB:-demo}
WORKERS=${WORKERS:-2}
CONFIG=${CONFIG:-$ROOT/conf/demo.toml}
DOWNLOAD_MB=${DOWNLOAD_MB:-20}
SUBS=3
PREFIX="ephemera-$LAB" # DPDK --file-prefix: telemetry socket /var/run/dpdk/$PREFIX/
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)

bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
[[ -t 1 ]] || { bold='' dim='' off=''; }
heading() { printf '\n%s== %s ==%s\n' "$bold" "$*" "$off"; }
sub_heading() { printf '\n%s-- %s --%s\n' "$bold" "$*" "$off"; }
note() { printf '%s%s%s\n' "$dim" "$*" "$off"; }
die() {
  echo "demo: $*" >&2
  exit 1
}

# ------------------------------------------------------------------------------- preconditions
[[ $EUID -eq 0 ]] || die "run as root (it creates network namespaces): sudo $0 $*"
[[ -x $EPHEMERA ]] || die "no ephemera binary at $EPHEMERA; build first (meson setup build && ninja -C build) or pass its path"
[[ -r $CONFIG ]] || die "no config at $CONFIG"
for tool in ip ethtool socat ping "$PY"; do
  command -v "$tool" >/dev/null || die "missing $tool; run scripts/install-deps.sh"
done
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "WORKERS must be a positive number"

WORK=$(mktemp -d /tmp/ephemera-demo.XXXXXX)
EPH_PID=
cleanup() {
  local rc=$?
  set +e
  if [[ -n $EPH_PID ]] && kill -0 "$EPH_PID" 2>/dev/null; then
    kill -INT "$EPH_PID"
    wait "$EPH_PID" 2>/dev/null
  fi
  lab_down "$LAB"
  rm -rf "$WORK" "/var/run/dpdk/$PREFIX"
  if ((rc == 0)); then
    printf '\n%sDemo finished; lab %s removed.%s\n' "$bold" "$LAB" "$off"
  else
    printf '\ndemo: failed (exit %d); lab %s removed.\n' "$rc" "$LAB" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --------------------------------------------------------------------- helper programs (Python)
# UDP echo server: logs who sent what (the address and port the server sees) and answers.
cat >"$WORK/udp_echo.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
log = open(sys.argv[3], "a", buffering=1)
while True:
    data, (addr, port) = s.recvfrom(2048)
    text = data.decode(errors="replace").strip()
    log.write("UDP  from %s:%d  said %r\n" % (addr, port, text))
    s.sendto(("server saw you as %s:%d" % (addr, port)).encode(), (addr, port))
EOF

# HTTP file server that logs the client's address and port (http.server logs only the address).
cat >"$WORK/http_server.py" <<'EOF'
import http.server, os, sys
os.chdir(sys.argv[3])
log = open(sys.argv[4], "a", buffering=1)
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        log.write("TCP  from %s:%d  HTTP %s\n" % (self.client_address[0], self.client_address[1],
                                                fmt % args))
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
EOF

# HTTP client for machines without curl.
cat >"$WORK/http_get.py" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as r, open(sys.argv[2], "wb") as f:
    while chunk := r.read(1 << 16):
        f.write(chunk)
EOF

# Telemetry client: the same JSON as `echo CMD | dpdk-telemetry.py -f PREFIX`, formatted.
cat >"$WORK/telemetry.py" <<'EOF'
import json, socket, sys
prefix, cmd, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect("/var/run/dpdk/%s/dpdk_telemetry.v2" % prefix)
info = json.loads(s.recv(4096))
s.send(cmd.encode())
reply = json.loads(s.recv(info["max_output_len"] + 1024))[cmd.split(",")[0]]
if fmt == "json":
    print(json.dumps(reply))
elif fmt == "lines":
    for line in reply or ["(none)"]:
        print("  " + line)
elif fmt == "stats":
    explain = {
        "workers": "worker lcores translating packets",
        "live_sessions": "5-tuple sessions now open",
        "live_mappings": "subscriber address:port -> public address:port translations now open",
        "in2out_rx": "packets received from subscribers",
        "out2in_rx": "packets received from the outside",
        "in2out_tx": "packets sent to the outside",
        "out2in_tx": "packets sent to subscribers",
        "in2out_translated": "subscriber -> outside packets translated",
        "out2in_translated": "outside -> subscriber packets translated",
        "mappings_created": "new public address:port mappings (RFC 4787 REQ-1)",
        "sessions_created": "new 5-tuple sessions",
        "port_preserved": "mappings that kept the subscriber's own port",
        "blocks_opened": "port blocks given to subscribers (pool.mode blocks)",
        "blocks_released": "port blocks freed with their last mapping, now held down",
        "handoff_tx": "packets passed to the worker that owns their flow",
        "handoff_rx": "packets received from another worker",
        "arp_replies_sent": "ARP answers (gateway 100.64.0.1, pool addresses)",
        "arp_requests_sent": "ARP questions for the next hop's MAC",
        "icmp_echo_replies_sent": "pings to the gateway answered",
        "pool_echo_replies_sent": "pings to a pool address answered",
        "hairpinned": "subscriber packets to a pool address turned back inside (RFC 4787 REQ-9)",
        "icmp_time_exceeded_sent": "Time Exceeded sent (TTL ran out here: traceroute)",
        "icmp_errors_out2in": "ICMP errors from outside translated for a subscriber",
        "icmp_errors_in2out": "ICMP errors from a subscriber translated outward",
        "drop_ttl_expired": "packets whose TTL ran out here (answered with Time Exceeded)",
    }
    for key, value in reply.items():
        if value or key in ("live_sessions", "live_mappings"):
            note = explain.get(key, "packets dropped for this reason" if key.startswith("drop_") else "")
            print("  %-24s %10d   %s" % (key, value, note))
EOF

telemetry() { # CMD FORMAT
  "$PY" "$WORK/telemetry.py" "$PREFIX" "$1" "$2"
}

# ------------------------------------------------------------------------------------ the story
heading "ephemera demo: a carrier-grade NAT44 between 3 subscribers and a server"
cat <<EOF
  sub1 100.64.0.11 --+
  sub2 100.64.0.12 --+-- bridge --[in0] ephemera [out0]-- server 198.18.0.2
  sub3 100.64.0.13 --+              (DPDK)                 (also 198.18.0.3)
  Subscribers use gateway 100.64.0.1, which ephemera answers. Their traffic leaves with a
  public source address from the pool $LAB_POOL_FIRST-$LAB_POOL_LAST and a port ephemera picks.
  Every box is a Linux network namespace on this machine (lab "$LAB"); nothing leaves it.
EOF

heading "1. Building the lab (network namespaces and veths)"
lab_up "$LAB" "$SUBS"
for ((i = 1; i <= SUBS; i++)); do
  echo "  $LAB-sub$i: $(lab_sub_addr "$i")/24, default route via $LAB_GATEWAY"
done
echo "  $LAB-nat:  in0 and out0, the two veths ephemera drives with DPDK's net_af_packet"
echo "  $LAB-srv:  eth0 with $LAB_SERVER/24 and $LAB_SERVER2/24"

heading "2. Starting ephemera with $WORKERS worker(s)"
cpus=$(nproc)
lcores=""
for ((l = 0; l <= WORKERS; l++)); do lcores+="${lcores:+,}$l@$((l % cpus))"; done
EPH_ARGS=(--no-huge -m 1024 --no-pci --file-prefix "$PREFIX" --lcores "$lcores"
  --log-level lib.eal:notice
  --vdev "net_af_packet0,iface=$LAB_INSIDE_IF,qpairs=$WORKERS,framesz=8192,blocksz=8192"
  --vdev "net_af_packet1,iface=$LAB_OUTSIDE_IF,qpairs=$WORKERS,framesz=8192,blocksz=8192"
  -- --config "$CONFIG")
note "  ip netns exec $LAB-nat $EPHEMERA ${EPH_ARGS[*]}"
ip netns exec "$LAB-nat" "$EPHEMERA" "${EPH_ARGS[@]}" >"$WORK/ephemera.log" 2>&1 &
EPH_PID=$!
# Ready when telemetry answers and the next hop's MAC has been learned by ARP.
ready=0
for ((t = 0; t < 150; t++)); do
  kill -0 "$EPH_PID" 2>/dev/null || { cat "$WORK/ephemera.log"; die "ephemera exited at start"; }
  if telemetry /ephemera/config json 2>/dev/null | grep -q '"next_hop_mac": "[0-9a-f]'; then
    ready=1
    break
  fi
  sleep 0.2
done
((ready)) || { cat "$WORK/ephemera.log"; die "ephemera did not become ready"; }
grep -E '^(pool|port range|filtering|ephemera:)' "$WORK/ephemera.log" | sed 's/^/  /'

# Server side: UDP echo on 5000, a socat "who am I" on 6000, an HTTP file server on 8080.
SRV_LOG="$WORK/server.log"
: >"$SRV_LOG"
head -c $((DOWNLOAD_MB * 1024 * 1024)) /dev/urandom >"$WORK/blob"
mkdir -p "$WORK/www" && mv "$WORK/blob" "$WORK/www/blob"
BLOB_SHA=$(sha256sum "$WORK/www/blob" | cut -d' ' -f1)
# Background servers run as simple commands (no wrapping subshell that would report their end)
# and are disowned: teardown kills them (lab_down ends every process in the lab's namespaces).
ip netns exec "$LAB-srv" "$PY" "$WORK/udp_echo.py" "$LAB_SERVER" 5000 "$SRV_LOG" &
disown
# socat runs this for each connection, with the client's address and port in its environment.
cat >"$WORK/whoami.sh" <<EOF
#!/bin/sh
echo "TCP  from \$SOCAT_PEERADDR:\$SOCAT_PEERPORT  socat asked who it is" >>"$SRV_LOG"
echo "server saw you as \$SOCAT_PEERADDR:\$SOCAT_PEERPORT"
EOF
chmod +x "$WORK/whoami.sh"
ip netns exec "$LAB-srv" socat TCP4-LISTEN:6000,bind="$LAB_SERVER",reuseaddr,fork \
  EXEC:"$WORK/whoami.sh" &
disown
ip netns exec "$LAB-srv" "$PY" "$WORK/http_server.py" "$LAB_SERVER" 8080 "$WORK/www" "$SRV_LOG" &
disown
for port in 5000 6000 8080; do # wait until the servers listen
  for ((t = 0; t < 50; t++)); do
    lab_exec "$LAB" srv ss -lntu | grep -q "$LAB_SERVER:$port " && break
    sleep 0.1
  done
done

heading "3. What each subscriber sends"
note "  Every subscriber uses the SAME UDP source port 40000: ephemera must still give each one"
note "  its own public address:port (RFC 4787 REQ-3), and the reply must come back to the right one."
for ((i = 1; i <= SUBS; i++)); do
  addr=$(lab_sub_addr "$i")
  sub_heading "sub$i ($addr)"
  ping_out=$(lab_exec "$LAB" "sub$i" ping -n -c 3 -i 0.3 -W 2 "$LAB_SERVER" | grep 'packets transmitted' || true)
  echo "  ICMP  ping $LAB_SERVER (3 echo requests):  ${ping_out:-no answer}"
  gw_out=$(lab_exec "$LAB" "sub$i" ping -n -c 1 -W 2 "$LAB_GATEWAY" | grep 'packets transmitted' || true)
  echo "  ICMP  ping gateway $LAB_GATEWAY:             ${gw_out:-no answer}"
  reply=$(echo "hello from sub$i" | lab_exec "$LAB" "sub$i" socat -t 2 - \
    UDP4:"$LAB_SERVER":5000,sourceport=40000 || true)
  echo "  UDP   $addr:40000 -> $LAB_SERVER:5000  sent \"hello from sub$i\"; reply: \"${reply:-none}\""
  reply=$(lab_exec "$LAB" "sub$i" socat -T 5 - TCP4:"$LAB_SERVER":6000 </dev/null || true)
  echo "  TCP   socat to $LAB_SERVER:6000; reply: \"${reply:-none}\""
  out="$WORK/download$i"
  start=$(date +%s%N)
  if command -v curl >/dev/null; then
    lab_exec "$LAB" "sub$i" curl -sS --max-time 60 -o "$out" "http://$LAB_SERVER:8080/blob" || true
    client=curl
  else
    lab_exec "$LAB" "sub$i" "$PY" "$WORK/http_get.py" "http://$LAB_SERVER:8080/blob" "$out" || true
    client="python urllib"
  fi
  ms=$((($(date +%s%N) - start) / 1000000))
  got=$(stat -c %s "$out" 2>/dev/null || echo 0)
  sha=$(sha256sum "$out" 2>/dev/null | cut -d' ' -f1 || true)
  verdict="DIFFERENT from the server's file"
  [[ $sha == "$BLOB_SHA" ]] && verdict="identical to the server's file"
  echo "  TCP   HTTP download of ${DOWNLOAD_MB} MB with $client: $got bytes in $((ms / 1000)).$(printf %03d $((ms % 1000))) s, sha256 ${sha:0:16}... $verdict"
done

heading "4. What the server saw (source address:port of each request)"
note "  Subscribers' private 100.64.0.x addresses never reach the server: it sees pool addresses."
sort -s -k1,1 "$SRV_LOG" | sed 's/^/  /'
sub_heading "the server's ARP table: the pool addresses answer from ephemera's outside MAC"
lab_exec "$LAB" srv ip neigh show dev eth0 | sed 's/^/  /'

heading "5. Subscriber to subscriber through ephemera (hairpinning), and traceroute"
note "  sub2 talks to the server from UDP port 41000; the server's answer tells it its public"
note "  address:port. sub1 sends to that public address:port: ephemera turns the datagram back"
note "  inside (RFC 4787 REQ-9), and sub2 sees sub1's PUBLIC address:port, as any peer would."
reply=$(echo "hello" | lab_exec "$LAB" sub2 socat -t 2 - UDP4:"$LAB_SERVER":5000,sourceport=41000 || true)
ext=${reply#server saw you as }
if [[ $ext =~ ^[0-9.]+:[0-9]+$ ]]; then
  echo "  sub2 ($(lab_sub_addr 2):41000) is seen outside as $ext"
  # One datagram: sub2 prints who sent it (socat puts the sender in SOCAT_PEERADDR/PORT).
  lab_exec "$LAB" sub2 timeout 5 socat -u UDP4-RECVFROM:41000,reuseaddr \
    SYSTEM:'echo sub2 received \"$(cat)\" from $SOCAT_PEERADDR port $SOCAT_PEERPORT' | sed 's/^/  /' &
  listener=$!
  sleep 0.5
  echo "hi sub2, this is sub1" | lab_exec "$LAB" sub1 socat -u - UDP4:"${ext%:*}":"${ext##*:}",sourceport=42000 || true
  wait "$listener" || echo "  sub2 received nothing"
  ping_out=$(lab_exec "$LAB" sub1 ping -n -c 2 -i 0.3 -W 2 "${ext%:*}" | grep 'packets transmitted' || true)
  echo "  sub1 pings ${ext%:*} (a pool address, answered by ephemera): ${ping_out:-no answer}"
else
  echo "  sub2 got no answer from the server (\"$reply\")"
fi
if command -v traceroute >/dev/null; then
  sub_heading "traceroute -n $LAB_SERVER from sub1: ephemera is hop 1 (Time Exceeded from the gateway)"
  lab_exec "$LAB" sub1 traceroute -n -q 1 -w 2 -m 5 "$LAB_SERVER" 2>&1 | sed 's/^/  /' || true
fi

heading "6. Live translations (telemetry /ephemera/mappings)"
note "  protocol  subscriber address:port -> public address:port  sessions  worker"
note "  (the same with: echo /ephemera/mappings,64 | dpdk-telemetry.py -f $PREFIX)"
telemetry /ephemera/mappings,64 lines

heading "7. Counters (telemetry /ephemera/stats, non-zero ones)"
note "  (the same with: echo /ephemera/stats | dpdk-telemetry.py -f $PREFIX)"
telemetry /ephemera/stats stats

heading "8. Stopping ephemera (SIGINT); its exit report, per worker"
kill -INT "$EPH_PID"
wait "$EPH_PID" || true
EPH_PID=
sed -n '/signal/,$p' "$WORK/ephemera.log" | sed 's/^/  /'

heading "Teardown"
echo "  removing lab $LAB (all its namespaces and veths)"
