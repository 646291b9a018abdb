#!/usr/bin/python3
"""Subscribers by port use (`ephemeractl top`, /ephemera/top, the ephemera_subscriber_* and
ephemera_top_subscriber_* metrics) against real flows: subscribers open different numbers of
UDP flows through two workers, one is refused past its port limit, and the top N, the
histogram and the refusal count say exactly what the lab did.

    /usr/bin/python3 top_tests.py TEST_NAME EPHEMERA_BINARY EPHEMERACTL_BINARY
"""

import os
import json
import subprocess
import sys
import time

from collectors import PROMTOOL
from metrics_tests import check_documented, http_get, promtool_check, sample_sum
from nslab import (POOL, SERVER, TestFailure, check, ephemera_session, lab_session, log, main,
                   make_config, sub_addr, udp_exchange)

LISTEN = "127.0.0.1:9469"  # metrics_tests.py's: netns tests never run side by side
ECHO_PORT = 7000


def ctl(ctl_binary, prefix, *args):
    argv = [ctl_binary, "--prefix", prefix] + list(args)
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    check(cp.returncode == 0, "%s exited %d: %s%s" % (" ".join(argv), cp.returncode, cp.stdout,
                                                      cp.stderr))
    return cp.stdout


def port_bucket(ports):
    """/ephemera/top's histogram bucket (upper bounds 0, 1, 2, 4, ..., 65536)."""
    return 0 if ports == 0 else min(17, 1 + (ports - 1).bit_length())


def test_subscriber_top(binary, ctl_binary):
    """Three subscribers open 1, 3 and 6 UDP flows (the last one past its limit of 5 ports):
    ranked 5, 3, 1 by ports, the third the one refused once, one subscriber in each of the
    buckets <= 1, <= 4 and <= 8, in telemetry, in `ephemeractl top --once` and in /metrics."""
    flows = {1: 1, 2: 3, 3: 6}
    limit = 5
    held = {i: min(n, limit) for i, n in flows.items()}
    config = make_config(sections={"metrics": {"listen": LISTEN},
                                   "limits": {"subscriber_ports_udp": limit}})
    with lab_session(len(flows)) as lab, ephemera_session(binary, lab, 2, config) as eph:
        srv = lab.agent(lab.ns("srv"))
        srv.open("echo", SERVER, ECHO_PORT)
        srv.serve_echo("echo")
        for i, n in flows.items():
            agent = lab.agent(lab.sub(i))
            for k in range(n):
                agent.open("s%d" % k, port=41000 + k)
                if k < limit:
                    udp_exchange(agent, "s%d" % k, (SERVER, ECHO_PORT), "sub%d flow %d" % (i, k))
                else:
                    agent.send("s%d" % k, (SERVER, ECHO_PORT), "refused")  # one datagram
        refused = {i: n - held[i] for i, n in flows.items() if n > held[i]}
        ranked = sorted(flows, key=lambda i: -held[i])

        def top_settled():
            t = eph.telemetry.query("/ephemera/top")
            return t if t and sum(t["top_refusals_refusals"]) == sum(refused.values()) else None

        deadline = time.monotonic() + 5
        top = top_settled()
        while top is None and time.monotonic() < deadline:
            time.sleep(0.1)
            top = top_settled()
        top = top or eph.telemetry.query("/ephemera/top")
        log("/ephemera/top: %s" % top)
        check(top["subscribers"] == len(flows), "subscribers %s" % top["subscribers"])
        check(top["top_ports_subscriber"] == [sub_addr(i) for i in ranked],
              "ranked %s, opened %s" % (top["top_ports_subscriber"], flows))
        check(top["top_ports_udp"] == [held[i] for i in ranked],
              "udp ports %s, expected %s" % (top["top_ports_udp"], [held[i] for i in ranked]))
        check(top["top_ports_sessions"] == [held[i] for i in ranked],
              "sessions %s" % top["top_ports_sessions"])
        check(top["top_refusals_subscriber"] == [sub_addr(i) for i in refused] and
              top["top_refusals_refusals"] == list(refused.values()),
              "refusals: %s %s, expected %s" % (top["top_refusals_subscriber"],
                                                top["top_refusals_refusals"], refused))
        expected = [0] * 18
        for n in held.values():
            expected[port_bucket(n)] += 1
        check(top["ports_le"] == [0] + [1 << b for b in range(17)], "ports_le %s" % top["ports_le"])
        check(top["ports_count"] == expected,
              "ports_count %s, expected %s" % (top["ports_count"], expected))
        check(top["ports_sum"] == sum(held.values()), "ports_sum %s" % top["ports_sum"])
        check("block_fill_count" not in top, "block fill outside blocks mode: %s" % top)

        # The same in the terminal view.
        out = ctl(ctl_binary, eph.prefix, "top", "--once")
        log("ephemeractl top --once:\n%s" % out)
        lines = out.splitlines()
        rows = lines[lines.index("top %d by ports" % len(flows)) + 2:][:len(flows)]
        check([r.split()[1] for r in rows] == [sub_addr(i) for i in ranked],
              "ephemeractl top ranks %s" % [r.split()[1] for r in rows])
        check([int(r.split()[3]) for r in rows] == [held[i] for i in ranked],
              "ephemeractl top udp column %s" % [r.split()[3] for r in rows])
        out = ctl(ctl_binary, eph.prefix, "top", "--once", "--by", "refusals")
        check(sub_addr(3) in out.splitlines()[4], "top by refusals:\n%s" % out)

        # ephemeractl plan reads the same live distribution: three subscribers holding at most 5
        # ports each cannot exhaust one address, so the pool it needs is one address and the
        # rate it estimates for the running pool is none refused.
        plan = json.loads(ctl(ctl_binary, eph.prefix, "--json", "plan", "--target", "0.01"))
        log("ephemeractl plan --json: %s" % plan)
        check(plan["subscribers"] == len(flows), "plan saw %s subscribers" % plan["subscribers"])
        check(plan["pool_size"] == len(POOL) and plan["workers"] == 2,
              "plan read the running pool: %s" % plan)
        check(plan["refusal_rate"] == 0 and plan["meets_target"], "refused now: %s" % plan)
        check(plan["pool_size_needed"] == 1, "pool needed: %s" % plan)

        # And in /metrics: rank-labelled gauges and a cumulative histogram.
        status, _, text = http_get(lab, "/metrics")
        check(status == 200, "GET /metrics: %d" % status)
        for rank, i in enumerate(ranked, 1):
            got = sample_sum(text, "ephemera_top_subscriber_ports", rank=str(rank),
                             subscriber=sub_addr(i))
            check(got == held[i], "rank %d (%s): %s ports, expected %d" % (rank, sub_addr(i),
                                                                          got, held[i]))
        got = sample_sum(text, "ephemera_top_subscriber_refusals", rank="1",
                         subscriber=sub_addr(3))
        check(got == refused[3], "refusals of rank 1: %s" % got)
        cumulative = 0
        for b, n in enumerate(expected):
            cumulative += n
            le = str(top["ports_le"][b])
            got = sample_sum(text, "ephemera_subscriber_ports_bucket", le=le)
            check(got == cumulative, "bucket le=%s: %s, expected %d" % (le, got, cumulative))
        check(sample_sum(text, "ephemera_subscriber_ports_bucket", le="+Inf") == len(flows) and
              sample_sum(text, "ephemera_subscriber_ports_count") == len(flows) and
              sample_sum(text, "ephemera_subscriber_ports_sum") == sum(held.values()) and
              sample_sum(text, "ephemera_subscriber_view_known") == 1,
              "histogram totals:\n%s" % "\n".join(
                  line for line in text.splitlines() if "subscriber" in line))
        check_documented(text)
        if os.access(PROMTOOL, os.X_OK):
            promtool_check(text)



def fill_bucket(in_use, capacity):
    """/ephemera/top's block fill bucket (upper bounds 10 %, 20 %, ..., 100 %)."""
    return 0 if in_use == 0 else min(10, max(1, -(-in_use * 10 // capacity))) - 1


def test_subscriber_top_blocks(binary, ctl_binary):
    """Port blocks of 64: subscribers with 2 and 40 flows hold one block each, filled to
    1/32 and 5/8; the block fill histogram (telemetry, ephemeractl, /metrics) says so."""
    flows = {1: 2, 2: 40}
    block = 64
    config = make_config(sections={"metrics": {"listen": LISTEN}, "pool": {"mode": "blocks"},
                                   "pool.blocks": {"block_size": block, "max_blocks": 1}})
    with lab_session(len(flows)) as lab, ephemera_session(binary, lab, 2, config) as eph:
        srv = lab.agent(lab.ns("srv"))
        srv.open("echo", SERVER, ECHO_PORT)
        srv.serve_echo("echo")
        for i, n in flows.items():
            agent = lab.agent(lab.sub(i))
            for k in range(n):
                agent.open("s%d" % k, port=41000 + k)
                udp_exchange(agent, "s%d" % k, (SERVER, ECHO_PORT), "sub%d flow %d" % (i, k))
        top = eph.telemetry.query("/ephemera/top")
        log("/ephemera/top: %s" % top)
        ranked = sorted(flows, key=lambda i: -flows[i])
        check(top["top_ports_subscriber"] == [sub_addr(i) for i in ranked] and
              top["top_ports_udp"] == [flows[i] for i in ranked] and
              top["top_ports_blocks"] == [1] * len(flows),
              "ranked %s %s, blocks %s" % (top["top_ports_subscriber"], top["top_ports_udp"],
                                            top["top_ports_blocks"]))
        expected = [0] * 10
        for n in flows.values():
            expected[fill_bucket(n, block)] += 1
        check(top.get("subscribers_with_blocks") == len(flows) and
              top.get("block_fill_le_percent") == list(range(10, 101, 10)) and
              top.get("block_fill_count") == expected,
              "block fill %s, expected %s" % (top.get("block_fill_count"), expected))
        out = ctl(ctl_binary, eph.prefix, "top", "--once")
        log("ephemeractl top --once:\n%s" % out)
        check("block fill (subscribers holding blocks)" in out, "no block fill chart:\n%s" % out)
        status, _, text = http_get(lab, "/metrics")
        check(status == 200, "GET /metrics: %d" % status)
        cumulative = 0
        for b, n in enumerate(expected):
            cumulative += n
            le = "%g" % ((b + 1) / 10)
            got = sample_sum(text, "ephemera_subscriber_block_fill_bucket", le=le)
            check(got == cumulative, "block fill le=%s: %s, expected %d" % (le, got, cumulative))
        check(sample_sum(text, "ephemera_subscriber_block_fill_count") == len(flows),
              "block fill count")
        check_documented(text)
        if os.access(PROMTOOL, os.X_OK):
            promtool_check(text)


TESTS = {name[len("test_"):]: fn for name, fn in globals().items()
         if name.startswith("test_") and callable(fn)}

if __name__ == "__main__":
    try:
        sys.exit(main(TESTS, tools=("ephemeractl",)))
    except TestFailure as e:  # raised outside a test's body (a fixture's cleanup)
        log("FAIL: %s" % e)
        sys.exit(1)
