#!/usr/bin/env bash
# A network-namespace lab for ephemera: subscribers, the NAT's two veths, and a server.
#
#   <lab>-sub1 .. <lab>-subN   subscribers, 100.64.0.(10+i)/24, default route via 100.64.0.1
#        | eth0                  (the inside gateway, which ephemera answers for)
#   <lab>-lan                  a Linux bridge br0 joining the subscribers and the NAT's inside
#        | nat                   veth (ports sub<i> and nat)
#   <lab>-nat    in0 / out0    the two veth ends ephemera opens with net_af_packet
#        | srv                   (run ephemera with `ip netns exec <lab>-nat ...`)
#   <lab>-srv    eth0          the server: 198.18.0.2/24 (ephemera's next hop) and 198.18.0.3/24,
#                              its ICMP errors not rate limited
#
# With the optional router (`up LAB N router`), a Linux router sits between the NAT and the
# server, so that packets cross a real hop (TTL, Time Exceeded, ICMP errors from a router):
#   <lab>-nat    out0  <->  <lab>-rtr nat0 198.18.1.1/24 (ephemera's next hop), route to the pool
#                           <lab>-rtr srv0 198.18.0.1/24  <->  <lab>-srv eth0 (as above, with a
#                                                           route to the pool via 198.18.0.1)
#
# With the HA pair (`up LAB N ha`), two NAT boxes, active and standby, share both sides:
#   <lab>-sub1 .. <lab>-subN   as above, on br0 in <lab>-lan
#   <lab>-lan    br0           ports sub<i>, nat (box A's in0) and nat2 (box B's in0)
#        |             |
#   <lab>-nat    in0 / out0   box A          <lab>-nat2   in0 / out0   box B
#        |   sync0 198.19.255.1/30  <---->  sync0 198.19.255.2/30   |   (kernel-addressed: the
#        |                                                          |    boxes' session sync)
#   <lab>-wan    br0           ports nat (box A's out0), nat2 (box B's out0) and srv
#        |
#   <lab>-srv    eth0          the server, as above
# Whichever box answers ARP (for the gateway inside, for the pool outside) gets the traffic; a
# box taking over announces itself by gratuitous ARP. Subscribers and server accept a new
# link-layer address at once (neigh locktime 0), and the bridges age their entries in 3 s, so
# frames follow the box that sends.
#
# The pool (198.18.0.100-101) lies in the server's /24, so the server reaches the pool
# addresses by ARP, which ephemera answers. Every interface lives inside the lab's namespaces
# (none in the caller's), so interface names never collide between labs, and deleting the
# namespaces removes every veth. IPv6 is off everywhere so that only the test's traffic flows.
#
# As a command:   scripts/lab.sh up LAB [SUBSCRIBERS] [router|ha]   (default 1 subscriber)
#                 scripts/lab.sh down LAB
#                 scripts/lab.sh list LAB                 (the lab's namespaces)
# As a library:   source scripts/lab.sh; lab_up LAB 3 [router|ha]; ...; lab_down LAB
#                 lab_exec LAB NODE CMD...  runs CMD in <LAB>-<NODE> (NODE: nat, nat2, lan, wan,
#                 srv, rtr, sub1..)
#
# Addresses: only 100.64.0.0/10 (subscriber side) and 198.18.0.0/15 (public side).

# Constants for the scripts that source this file.
# shellcheck disable=SC2034
LAB_GATEWAY=100.64.0.1
LAB_SERVER=198.18.0.2
LAB_SERVER2=198.18.0.3
LAB_POOL_FIRST=198.18.0.100
LAB_POOL_LAST=198.18.0.101
LAB_INSIDE_IF=in0
LAB_OUTSIDE_IF=out0
LAB_MAX_SUBSCRIBERS=200
# Router mode only: the router's two addresses and the prefix it routes to the NAT (the pool
# and room around it, never the server's addresses).
LAB_ROUTER_NAT_SIDE=198.18.1.1
LAB_ROUTER_SRV_SIDE=198.18.0.1
LAB_ROUTER_POOL_ROUTE=198.18.0.96/27
# HA mode only: the sync link between box A (<lab>-nat) and box B (<lab>-nat2), and the bridge
# ageing time (centiseconds) on both sides.
LAB_SYNC_IF=sync0
LAB_SYNC_A=198.19.255.1
LAB_SYNC_B=198.19.255.2
LAB_SYNC_PREFIX=30
LAB_HA_BRIDGE_AGEING=300

lab_sub_addr() { # INDEX -> the subscriber's address
  echo "100.64.0.$((10 + $1))"
}

lab_exec() { # LAB NODE CMD...
  local lab=$1 node=$2
  shift 2
  ip netns exec "$lab-$node" "$@"
}

_lab_check_name() {
  if [[ ! $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,30}$ ]]; then
    echo "lab.sh: bad lab name '$1' (letters, digits, '_', '.', '-'; at most 31)" >&2
    return 1
  fi
}

# Checksum and segmentation offloads off: af_packet hands ephemera frames exactly as they are
# on the wire, so every checksum must be complete and every frame MTU-sized.
_lab_no_offload() { # NS DEV
  ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || {
    echo "lab.sh: ethtool -K $2 in $1 failed" >&2
    return 1
  }
}

_lab_quiet_ns() { # NS: no IPv6 (router solicitations, MLD), loopback up
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
    net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1 || true
  ip -n "$1" link set lo up
}

lab_namespaces() { # LAB -> the lab's namespaces that exist
  local lab=$1
  ip netns list 2>/dev/null | awk '{print $1}' |
    grep -E "^${lab//./\\.}-(nat|nat2|lan|wan|srv|rtr|sub[0-9]+)$" || true
}

lab_down() { # LAB
  local lab=$1 ns
  _lab_check_name "$lab" || return 1
  # Anything still running in the lab (a forgotten ephemera, a server) goes first, so the
  # namespaces really disappear when deleted.
  for ns in $(lab_namespaces "$lab"); do
    local -a pids
    mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null || true)
    if ((${#pids[@]} > 0)); then
      kill "${pids[@]}" 2>/dev/null || true
      sleep 0.5
      mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null || true)
      ((${#pids[@]} == 0)) || kill -9 "${pids[@]}" 2>/dev/null || true
    fi
  done
  for ns in $(lab_namespaces "$lab"); do
    ip netns delete "$ns" 2>/dev/null || true
  done
  # Every veth was created inside the lab's namespaces (ip -n), never in the caller's, so
  # deleting the namespaces above removed both ends of each pair; nothing is left behind.
  return 0
}

# The NAT box in namespace NS: in0 (its inside, port PORT of the lan bridge) and out0 (its
# outside, whose peer the caller makes), both up, offloads off.
_lab_nat_inside() { # NS LAN PORT
  ip -n "$1" link add "$LAB_INSIDE_IF" type veth peer name "$3" netns "$2"
  _lab_no_offload "$2" "$3"
  ip -n "$2" link set "$3" master br0 up
}

_lab_nat_up() { # NS
  local dev
  for dev in "$LAB_INSIDE_IF" "$LAB_OUTSIDE_IF"; do
    _lab_no_offload "$1" "$dev"
    ip -n "$1" link set "$dev" up
  done
}

_lab_bridge() { # NS [AGEING_CS]: bridge br0 in NS, not handed to iptables (br_netfilter)
  ip -n "$1" link add br0 type bridge ${2:+ageing_time "$2"}
  ip netns exec "$1" sysctl -qw net.bridge.bridge-nf-call-iptables=0 >/dev/null 2>&1 || true
  ip -n "$1" link set br0 up
}

# A host that must follow a NAT box's gratuitous ARP: a new link-layer address for a known
# neighbour is taken at once, not after the default locktime of 1 s.
_lab_follow_garp() { # NS DEV
  ip netns exec "$1" sysctl -qw "net.ipv4.neigh.$2.locktime=0" >/dev/null
}

lab_up() { # LAB [SUBSCRIBERS] [router|ha]
  local lab=$1 subs=${2:-1} mode=${3:-} i
  _lab_check_name "$lab" || return 1
  if [[ -n $mode && $mode != router && $mode != ha ]]; then
    echo "lab.sh: third argument must be 'router', 'ha' or absent, not '$mode'" >&2
    return 1
  fi
  if [[ ! $subs =~ ^[0-9]+$ ]] || ((subs < 1 || subs > LAB_MAX_SUBSCRIBERS)); then
    echo "lab.sh: subscribers must be 1..$LAB_MAX_SUBSCRIBERS, not '$subs'" >&2
    return 1
  fi
  lab_down "$lab" # a previous run's leftovers
  # The build runs in a subshell with errexit; it must not be in a tested context (`|| ...`,
  # `if`), where bash ignores errexit, so the caller's errexit is suspended around it instead.
  local had_errexit=0 rc=0
  [[ $- == *e* ]] && had_errexit=1
  set +e
  (
    set -e
    local nat="$lab-nat" lan="$lab-lan" srv="$lab-srv"
    for ns in "$nat" "$lan" "$srv"; do
      ip netns add "$ns"
      _lab_quiet_ns "$ns"
    done

    # The bridge joining subscribers and the NAT's inside port (in HA mode both boxes').
    if [[ $mode == ha ]]; then
      _lab_bridge "$lan" "$LAB_HA_BRIDGE_AGEING"
    else
      _lab_bridge "$lan"
    fi

    # NAT inside: in0 (ephemera) <-> nat (bridge port).
    _lab_nat_inside "$nat" "$lan" nat
    if [[ -z $mode ]]; then
      # NAT outside: out0 (ephemera) <-> eth0 (server).
      ip -n "$nat" link add "$LAB_OUTSIDE_IF" type veth peer name eth0 netns "$srv"
    elif [[ $mode == router ]]; then
      # NAT outside: out0 (ephemera) <-> nat0 (router); router srv0 <-> eth0 (server).
      local rtr="$lab-rtr"
      ip netns add "$rtr"
      _lab_quiet_ns "$rtr"
      ip -n "$nat" link add "$LAB_OUTSIDE_IF" type veth peer name nat0 netns "$rtr"
      ip -n "$rtr" link add srv0 type veth peer name eth0 netns "$srv"
      # Forwarding on; ICMP errors not rate limited, so every traceroute probe is answered.
      ip netns exec "$rtr" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.icmp_ratelimit=0 \
        net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=100000 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 >/dev/null
      for dev in nat0 srv0; do
        _lab_no_offload "$rtr" "$dev"
        ip netns exec "$rtr" sysctl -qw "net.ipv4.conf.$dev.rp_filter=0" >/dev/null
        ip -n "$rtr" link set "$dev" up
      done
      ip -n "$rtr" addr add "$LAB_ROUTER_NAT_SIDE/24" dev nat0
      ip -n "$rtr" addr add "$LAB_ROUTER_SRV_SIDE/24" dev srv0
      ip -n "$rtr" route add "$LAB_ROUTER_POOL_ROUTE" dev nat0
    else
      # HA pair: box B beside box A on the lan bridge; both outsides and the server on the wan
      # bridge; the sync link between the two boxes.
      local nat2="$lab-nat2" wan="$lab-wan"
      for ns in "$nat2" "$wan"; do
        ip netns add "$ns"
        _lab_quiet_ns "$ns"
      done
      _lab_bridge "$wan" "$LAB_HA_BRIDGE_AGEING"
      _lab_nat_inside "$nat2" "$lan" nat2
      ip -n "$nat" link add "$LAB_OUTSIDE_IF" type veth peer name nat netns "$wan"
      ip -n "$nat2" link add "$LAB_OUTSIDE_IF" type veth peer name nat2 netns "$wan"
      ip -n "$srv" link add eth0 type veth peer name srv netns "$wan"
      for dev in nat nat2 srv; do
        _lab_no_offload "$wan" "$dev"
        ip -n "$wan" link set "$dev" master br0 up
      done
      _lab_nat_up "$nat2"
      ip -n "$nat" link add "$LAB_SYNC_IF" type veth peer name "$LAB_SYNC_IF" netns "$nat2"
      ip -n "$nat" addr add "$LAB_SYNC_A/$LAB_SYNC_PREFIX" dev "$LAB_SYNC_IF"
      ip -n "$nat2" addr add "$LAB_SYNC_B/$LAB_SYNC_PREFIX" dev "$LAB_SYNC_IF"
      ip -n "$nat" link set "$LAB_SYNC_IF" up
      ip -n "$nat2" link set "$LAB_SYNC_IF" up
      _lab_follow_garp "$srv" eth0
    fi
    _lab_nat_up "$nat"

    # Server: the next hop and a second address for mapping/filtering tests. Its ICMP errors
    # (port unreachable, Time Exceeded) are not rate limited, so that every probe of a test
    # is answered, not only the first few per destination.
    ip netns exec "$srv" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=100000 \
      net.ipv4.icmp_msgs_burst=100000 >/dev/null
    _lab_no_offload "$srv" eth0
    ip -n "$srv" addr add "$LAB_SERVER/24" dev eth0
    ip -n "$srv" addr add "$LAB_SERVER2/24" dev eth0
    ip -n "$srv" link set eth0 up
    if [[ $mode == router ]]; then
      ip -n "$srv" route add "$LAB_ROUTER_POOL_ROUTE" via "$LAB_ROUTER_SRV_SIDE"
      ip -n "$srv" route add "${LAB_ROUTER_NAT_SIDE%.*}.0/24" via "$LAB_ROUTER_SRV_SIDE"
    fi

    for ((i = 1; i <= subs; i++)); do
      local sub="$lab-sub$i"
      ip netns add "$sub"
      _lab_quiet_ns "$sub"
      ip -n "$sub" link add eth0 type veth peer name "sub$i" netns "$lan"
      _lab_no_offload "$sub" eth0
      _lab_no_offload "$lan" "sub$i"
      [[ $mode != ha ]] || _lab_follow_garp "$sub" eth0
      ip -n "$sub" addr add "$(lab_sub_addr "$i")/24" dev eth0
      ip -n "$sub" link set eth0 up
      ip -n "$sub" route add default via "$LAB_GATEWAY"
      ip -n "$lan" link set "sub$i" master br0 up
    done
  )
  rc=$?
  ((had_errexit)) && set -e
  if ((rc != 0)); then
    echo "lab.sh: setting up lab '$lab' failed; removing what was made" >&2
    lab_down "$lab"
    return 1
  fi
  return 0
}

_lab_usage() {
  cat >&2 <<EOF
usage: $0 up LAB [SUBSCRIBERS] [router|ha]
                                 create lab LAB (namespaces LAB-nat, LAB-lan, LAB-srv, LAB-sub<i>;
                                 with router also LAB-rtr between the NAT and the server; with ha
                                 also LAB-nat2, a second NAT box, and LAB-wan, the outside bridge)
       $0 down LAB               delete every namespace of lab LAB
       $0 list LAB               list lab LAB's namespaces
EOF
}

# CLI when executed, library when sourced.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  if [[ $EUID -ne 0 ]]; then
    echo "lab.sh: needs root (network namespaces)" >&2
    exit 1
  fi
  case ${1:-} in
  up)
    [[ $# -ge 2 ]] || { _lab_usage; exit 2; }
    lab_up "$2" "${3:-1}" "${4:-}"
    ;;
  down)
    [[ $# -ge 2 ]] || { _lab_usage; exit 2; }
    lab_down "$2"
    ;;
  list)
    [[ $# -ge 2 ]] || { _lab_usage; exit 2; }
    lab_namespaces "$2"
    ;;
  *)
    _lab_usage
    exit 2
    ;;
  esac
fi
