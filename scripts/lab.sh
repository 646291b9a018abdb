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
# With scale-out (`up LAB N scale`), two NAT boxes with their own pools (docs/ha.md,
# "Scale-out across boxes") behind two Linux routers, the outside one learning each box's pool
# prefix by BGP from a BIRD 2 run in the box's namespace:
#   <lab>-sub1 .. <lab>-subN   100.64.0.(10+i)/24, default route via 100.64.0.1 (<lab>-rin)
#   <lab>-lan    br0           ports sub<i> and rinl (rin's lan0)
#   <lab>-rin    lan0 100.64.0.1/24, tr0 100.64.255.254/24: the inside router; default route
#        |       ECMP via 100.64.255.1 (box A) and 100.64.255.2 (box B), hashed on the source
#        |       address only (fib_multipath_hash_policy 3, fib_multipath_hash_fields 0x0001)
#   <lab>-lan    br1           ports rint (rin's tr0), nat (box A's in0) and nat2 (box B's in0)
#        |             |
#   <lab>-nat    in0 / out0   box A          <lab>-nat2   in0 / out0   box B
#   (gateway 100.64.255.1, pool .100-.101)   (gateway 100.64.255.2, pool .102-.103)
#        |   ctl0 198.19.1.1/30  ... BGP ...  ctl0 198.19.2.1/30       |  (kernel-addressed:
#        |     AS 64513, announces            AS 64514, announces      |   each box's BIRD,
#        |                                                             |   and the hand-over
#        |                                                             |   link via rout)
#        |     198.18.0.100/31 via .100       198.18.0.102/31 via .102 |
#   <lab>-wan    br0           ports nat (box A's out0), nat2 (box B's out0) and rout
#        |
#   <lab>-rout   wan0 198.18.0.1/24 (both boxes' next hop), srv0 198.18.2.1/24, ctla
#        |       198.19.1.2/30 and ctlb 198.19.2.2/30: the outside router, AS 64512, whose BIRD
#        |       puts the boxes' pool prefixes into its kernel table
#   <lab>-srv    eth0          the server: 198.18.2.2/24, default route via 198.18.2.1
# The BIRDs' configs, control sockets (birdc -s), pid files and logs are in
# /tmp/ephemera-lab.<lab>/ (bird-<node>.conf, .ctl, .pid, .log; node nat, nat2 or rout); `down`
# stops them (they run in the lab's namespaces) and removes the directory.
#
# The pool (198.18.0.100-101) lies in the server's /24, so the server reaches the pool
# addresses by ARP, which ephemera answers. Every interface lives inside the lab's namespaces
# (none in the caller's), so interface names never collide between labs, and deleting the
# namespaces removes every veth. IPv6 is off everywhere so that only the test's traffic flows.
#
# As a command:   scripts/lab.sh up LAB [SUBSCRIBERS] [router|ha|scale]   (default 1 subscriber)
#                 scripts/lab.sh down LAB
#                 scripts/lab.sh list LAB                 (the lab's namespaces)
# As a library:   source scripts/lab.sh; lab_up LAB 3 [router|ha|scale]; ...; lab_down LAB
#                 lab_exec LAB NODE CMD...  runs CMD in <LAB>-<NODE> (NODE: nat, nat2, lan, wan,
#                 srv, rtr, rin, rout, sub1..)
#
# Addresses: only 100.64.0.0/10 (subscriber side) and 198.18.0.0/15 (public side; the sync and
# BGP links use 198.19.0.0/16, inside it).

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
# Scale-out mode only: the inside router's legs and the boxes' inside gateways (its ECMP next
# hops), the outside router's legs, the server behind it, each box's pool, pool prefix and BGP
# link (box, router), and the ASNs.
LAB_SCALE_RIN_LAN=100.64.0.1
LAB_SCALE_RIN_TRANSIT=100.64.255.254
LAB_SCALE_GW_A=100.64.255.1
LAB_SCALE_GW_B=100.64.255.2
LAB_SCALE_ROUT_WAN=198.18.0.1
LAB_SCALE_ROUT_SRV=198.18.2.1
LAB_SCALE_SERVER=198.18.2.2
LAB_SCALE_POOL_A="198.18.0.100 198.18.0.101"
LAB_SCALE_POOL_B="198.18.0.102 198.18.0.103"
LAB_SCALE_PREFIX_A=198.18.0.100/31
LAB_SCALE_PREFIX_B=198.18.0.102/31
LAB_SCALE_CTL_IF=ctl0
LAB_SCALE_CTL_A="198.19.1.1 198.19.1.2"
LAB_SCALE_CTL_B="198.19.2.1 198.19.2.2"
LAB_SCALE_AS_ROUTER=64512
LAB_SCALE_AS_A=64513
LAB_SCALE_AS_B=64514

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
    grep -E "^${lab//./\\.}-(nat|nat2|lan|wan|srv|rtr|rin|rout|sub[0-9]+)$" || true
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
  # Scale-out mode: the BIRDs (stopped above with everything else in the namespaces) leave
  # their configs, sockets, pid files and logs.
  rm -rf "$(lab_bird_dir "$lab")"
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

# ------------------------------------------------------------------------------ scale-out mode

lab_bird_dir() { # LAB -> where the lab's BIRDs keep their configs, sockets, pid files and logs
  echo "/tmp/ephemera-lab.$1"
}

lab_bird_sock() { # LAB NODE -> the control socket of NODE's BIRD (birdc -s SOCK)
  echo "$(lab_bird_dir "$1")/bird-$2.ctl"
}

# Starts BIRD in <LAB>-<NODE> with the config on stdin; it daemonizes, so `down` stops it with
# everything else running in the namespace.
_lab_bird_start() { # LAB NODE < CONFIG
  local dir base
  dir=$(lab_bird_dir "$1")
  base="$dir/bird-$2"
  mkdir -p "$dir"
  cat >"$base.conf"
  ip netns exec "$1-$2" bird -c "$base.conf" -s "$base.ctl" -P "$base.pid"
}

# A box's BIRD: announces the box's pool prefix to the outside router over eBGP on ctl0. The
# prefix is a static route in BIRD's own table only (no kernel protocol: the box's kernel
# routes nothing); the export filter sets bgp_next_hop to the box's first pool address, which
# ephemera answers ARP for on the outside segment. A next hop set in the export filter is kept
# as it is on eBGP (BIRD otherwise puts its own session address, on ctl0, which carries no
# traffic).
_lab_bird_box() { # LAB NODE ASN PREFIX NEXT_HOP "BOX_ADDR ROUTER_ADDR"
  local lab=$1 node=$2 asn=$3 prefix=$4 nh=$5 box router
  read -r box router <<<"$6"
  _lab_bird_start "$lab" "$node" <<EOC
log "$(lab_bird_dir "$lab")/bird-$node.log" all;
router id $box;
protocol device { scan time 10; }
protocol static pool {
  ipv4;
  route $prefix blackhole;
}
protocol bgp uplink {
  description "the outside router";
  local $box as $asn;
  neighbor $router as $LAB_SCALE_AS_ROUTER;
  hold time 9;
  connect retry time 1;
  error wait time 1, 5;
  ipv4 {
    import none;
    export filter {
      if proto = "pool" then { bgp_next_hop = $nh; accept; }
      reject;
    };
  };
}
EOC
}

# The outside router's BIRD: one eBGP session per box, the learnt pool prefixes exported to the
# router's kernel table. Each next hop (a box's first pool address, on wan0's 198.18.0.0/24) is
# not on the session's interface (ctla/ctlb). BIRD 2.0.12's `gateway direct` (the default for a
# single-hop eBGP session, spelt out here) accepts any next hop that is a neighbour on one of
# the router's connected networks, whatever the interface (the device protocol knows them), and
# the kernel route becomes `<prefix> via <pool address> dev wan0`. `gateway recursive` does not
# do here: the next hop lies inside the prefix it is the next hop of, so resolving it finds the
# route itself, and BIRD makes the route unreachable ("Next hop address ... resolvable through
# recursive route"); it would need an `igp table` holding only the connected routes.
_lab_bird_router() { # LAB
  local lab=$1 a_box a_router b_box b_router
  read -r a_box a_router <<<"$LAB_SCALE_CTL_A"
  read -r b_box b_router <<<"$LAB_SCALE_CTL_B"
  _lab_bird_start "$lab" rout <<EOC
log "$(lab_bird_dir "$lab")/bird-rout.log" all;
router id $a_router;
protocol device { scan time 10; }
protocol kernel {
  ipv4 { import none; export where source = RTS_BGP; };
}
template bgp box {
  local as $LAB_SCALE_AS_ROUTER;
  hold time 9;
  connect retry time 1;
  error wait time 1, 5;
  ipv4 { import all; export none; gateway direct; };
}
protocol bgp box_a from box { description "box A"; neighbor $a_box as $LAB_SCALE_AS_A; }
protocol bgp box_b from box { description "box B"; neighbor $b_box as $LAB_SCALE_AS_B; }
EOC
}

# A Linux router namespace: forwarding on, no reverse-path filter.
# Scale-out mode: the inside router sends the subscribers of PREFIX to the box whose inside
# gateway is GATEWAY, whatever the ECMP hash says (a source rule into a table of its own). What
# an ha.migrate_hook does after `ephemeractl migrate` (docs/ha.md, "Moving live subscribers").
lab_steer() { # LAB PREFIX GATEWAY
  local rin="$1-rin" table
  table=$((100 + ${3##*.}))
  ip -n "$rin" route replace default via "$3" dev tr0 table "$table"
  ip -n "$rin" rule del from "$2" 2>/dev/null || true
  # Nothing to flush after: IPv4 has had no route cache since Linux 3.6, and a rule change
  # invalidates the routes sockets and nexthops hold by itself.
  ip -n "$rin" rule add from "$2" lookup "$table" pref "$table"
}

_lab_router_ns() { # NS
  ip netns exec "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
    net.ipv4.conf.default.rp_filter=0 >/dev/null
}

_lab_scale_up() { # LAB (inside lab_up's errexit subshell; nat, lan and srv exist, lan has br0)
  local lab=$1 nat="$1-nat" nat2="$1-nat2" lan="$1-lan" wan="$1-wan" srv="$1-srv"
  local rin="$1-rin" rout="$1-rout" ns dev box router
  for ns in "$nat2" "$wan" "$rin" "$rout"; do
    ip netns add "$ns"
    _lab_quiet_ns "$ns"
  done
  _lab_router_ns "$rin"
  _lab_router_ns "$rout"

  # Inside router: lan0 on br0 (the subscribers' gateway), tr0 on br1 with both boxes' in0.
  ip -n "$lan" link add br1 type bridge
  ip -n "$lan" link set br1 up
  ip -n "$rin" link add lan0 type veth peer name rinl netns "$lan"
  ip -n "$rin" link add tr0 type veth peer name rint netns "$lan"
  _lab_no_offload "$lan" rinl
  _lab_no_offload "$lan" rint
  ip -n "$lan" link set rinl master br0 up
  ip -n "$lan" link set rint master br1 up
  for dev in lan0 tr0; do
    _lab_no_offload "$rin" "$dev"
    ip -n "$rin" link set "$dev" up
  done
  ip -n "$rin" addr add "$LAB_SCALE_RIN_LAN/24" dev lan0
  ip -n "$rin" addr add "$LAB_SCALE_RIN_TRANSIT/24" dev tr0
  # All of a subscriber's flows to one box: the multipath hash covers the source address only.
  ip netns exec "$rin" sysctl -qw net.ipv4.fib_multipath_hash_policy=3 \
    net.ipv4.fib_multipath_hash_fields=0x0001 >/dev/null
  ip -n "$rin" route add default nexthop via "$LAB_SCALE_GW_A" dev tr0 \
    nexthop via "$LAB_SCALE_GW_B" dev tr0

  # The boxes: in0 on br1, out0 on the wan bridge, ctl0 to the outside router.
  ip -n "$nat" link add "$LAB_INSIDE_IF" type veth peer name nat netns "$lan"
  ip -n "$nat2" link add "$LAB_INSIDE_IF" type veth peer name nat2 netns "$lan"
  _lab_bridge "$wan"
  ip -n "$nat" link add "$LAB_OUTSIDE_IF" type veth peer name nat netns "$wan"
  ip -n "$nat2" link add "$LAB_OUTSIDE_IF" type veth peer name nat2 netns "$wan"
  ip -n "$rout" link add wan0 type veth peer name rout netns "$wan"
  for dev in nat nat2; do
    _lab_no_offload "$lan" "$dev"
    ip -n "$lan" link set "$dev" master br1 up
  done
  for dev in nat nat2 rout; do
    _lab_no_offload "$wan" "$dev"
    ip -n "$wan" link set "$dev" master br0 up
  done
  _lab_nat_up "$nat"
  _lab_nat_up "$nat2"
  read -r box router <<<"$LAB_SCALE_CTL_A"
  ip -n "$nat" link add "$LAB_SCALE_CTL_IF" type veth peer name ctla netns "$rout"
  ip -n "$nat" addr add "$box/30" dev "$LAB_SCALE_CTL_IF"
  ip -n "$rout" addr add "$router/30" dev ctla
  read -r box router <<<"$LAB_SCALE_CTL_B"
  ip -n "$nat2" link add "$LAB_SCALE_CTL_IF" type veth peer name ctlb netns "$rout"
  ip -n "$nat2" addr add "$box/30" dev "$LAB_SCALE_CTL_IF"
  ip -n "$rout" addr add "$router/30" dev ctlb
  ip -n "$nat" link set "$LAB_SCALE_CTL_IF" up
  ip -n "$nat2" link set "$LAB_SCALE_CTL_IF" up
  # The boxes' control sides reach each other through the outside router: the hand-over link
  # of a drain (ha.handover, docs/ha.md "Draining a box") runs between their ctl0 addresses.
  ip -n "$nat" route add "${LAB_SCALE_CTL_B%% *}/32" via "${LAB_SCALE_CTL_A##* }"
  ip -n "$nat2" route add "${LAB_SCALE_CTL_A%% *}/32" via "${LAB_SCALE_CTL_B##* }"

  # Outside router: wan0 (the boxes' next hop), srv0 to the server, ctla/ctlb.
  ip -n "$rout" link add srv0 type veth peer name eth0 netns "$srv"
  for dev in wan0 srv0 ctla ctlb; do
    _lab_no_offload "$rout" "$dev"
    ip -n "$rout" link set "$dev" up
  done
  ip -n "$rout" addr add "$LAB_SCALE_ROUT_WAN/24" dev wan0
  ip -n "$rout" addr add "$LAB_SCALE_ROUT_SRV/24" dev srv0
  _lab_no_offload "$srv" eth0
  ip -n "$srv" addr add "$LAB_SCALE_SERVER/24" dev eth0
  ip -n "$srv" link set eth0 up
  ip -n "$srv" route add default via "$LAB_SCALE_ROUT_SRV"

  # The BIRDs: the router's first, then each box's.
  rm -rf "$(lab_bird_dir "$lab")"
  _lab_bird_router "$lab"
  _lab_bird_box "$lab" nat "$LAB_SCALE_AS_A" "$LAB_SCALE_PREFIX_A" "${LAB_SCALE_POOL_A%% *}" \
    "$LAB_SCALE_CTL_A"
  _lab_bird_box "$lab" nat2 "$LAB_SCALE_AS_B" "$LAB_SCALE_PREFIX_B" "${LAB_SCALE_POOL_B%% *}" \
    "$LAB_SCALE_CTL_B"
}

lab_up() { # LAB [SUBSCRIBERS] [router|ha|scale]
  local lab=$1 subs=${2:-1} mode=${3:-} i
  _lab_check_name "$lab" || return 1
  if [[ -n $mode && $mode != router && $mode != ha && $mode != scale ]]; then
    echo "lab.sh: third argument must be 'router', 'ha', 'scale' or absent, not '$mode'" >&2
    return 1
  fi
  if [[ $mode == scale ]] && ! command -v bird >/dev/null; then
    echo "lab.sh: scale mode needs BIRD 2 (bird, birdc: Debian package bird2)" >&2
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

    if [[ $mode == scale ]]; then
      _lab_scale_up "$lab"
    else
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
usage: $0 up LAB [SUBSCRIBERS] [router|ha|scale]
                                 create lab LAB (namespaces LAB-nat, LAB-lan, LAB-srv, LAB-sub<i>;
                                 with router also LAB-rtr between the NAT and the server; with ha
                                 also LAB-nat2, a second NAT box, and LAB-wan, the outside bridge;
                                 with scale LAB-nat2, LAB-wan, the routers LAB-rin and LAB-rout,
                                 and a BIRD in LAB-nat, LAB-nat2 and LAB-rout)
       $0 down LAB               delete every namespace of lab LAB
       $0 list LAB               list lab LAB's namespaces
       $0 steer LAB PREFIX GATEWAY
                                 scale mode: the inside router sends PREFIX's subscribers to the
                                 box whose inside gateway is GATEWAY
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
  steer)
    [[ $# -ge 4 ]] || { _lab_usage; exit 2; }
    lab_steer "$2" "$3" "$4"
    ;;
  *)
    _lab_usage
    exit 2
    ;;
  esac
fi
