#!/usr/bin/python3
"""Prometheus exposition (docs/metrics.md) with a real Prometheus: subscribers' UDP flows
through ephemera in the namespace lab, and what PromQL over the scraped /metrics says about them,
compared with what the lab sent. promtool checks the exposition itself.

    /usr/bin/python3 metrics_tests.py TEST_NAME EPHEMERA_BINARY

Prometheus runs in the NAT's namespace, beside ephemera's listener on 127.0.0.1 there, with its
own config and TSDB in a temp directory. Without Debian's prometheus package the test fails,
saying so. Every namespace, process and file is removed on every exit path.
"""

import os
import subprocess
import sys

from collectors import PROMTOOL, Prometheus
from nslab import (POOL, SERVER, TestFailure, check, ephemera_session, lab_session, log, main,
                   make_config, parse_echo, sub_addr, udp_exchange, wait_until)

WORKERS = 2
LISTEN = "127.0.0.1:9469"  # in the lab's NAT namespace, which nothing else uses
ECHO_PORT = 7000
DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                   "docs", "metrics.md")


def http_get(lab, path):
    """(status, content type, body) of GET path on ephemera's listener."""
    cp = lab.run(lab.ns("nat"), ["curl", "-sS", "--max-time", "5", "-o", "/dev/stdout", "-w",
                                 "\n%{http_code} %{content_type}", "http://%s%s" % (LISTEN, path)],
                 timeout=15)
    check(cp.returncode == 0, "curl %s exited %d: %s" % (path, cp.returncode, cp.stderr))
    body, _, tail = cp.stdout.rpartition("\n")
    status, _, content_type = tail.partition(" ")
    return int(status), content_type, body + "\n" if body else ""


def sample_sum(text, name, **labels):
    """The sum of the samples of `name` in exposition text whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not (line.startswith(name + "{") or
                                        line.startswith(name + " ")):
            continue
        series, value = line.rsplit(" ", 1)
        if all('%s="%s"' % kv in series for kv in labels.items()):
            total += float(value)
    return total


def promtool_check(text):
    cp = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                        text=True, timeout=30)
    check(cp.returncode == 0 and not (cp.stdout + cp.stderr).strip(),
          "promtool check metrics exited %d: %s%s" % (cp.returncode, cp.stdout, cp.stderr))
    log("promtool check metrics: no problems in %d lines" % len(text.splitlines()))


def check_documented(text):
    """Every metric in the exposition has its row in docs/metrics.md."""
    with open(DOC) as f:
        doc = f.read()
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    missing = [n for n in names if "`%s`" % n not in doc]
    check(not missing, "not in docs/metrics.md: %s" % missing)
    log("all %d metrics are in docs/metrics.md" % len(names))


def udp_flows(lab, subscribers, per_subscriber):
    """Each subscriber's UDP sockets to the server's echo, one exchange each; the agents."""
    srv = lab.agent(lab.ns("srv"))
    srv.open("echo", SERVER, ECHO_PORT)
    srv.serve_echo("echo")
    agents = {}
    seen = set()
    for i in range(1, subscribers + 1):
        agent = agents[i] = lab.agent(lab.sub(i))
        for k in range(per_subscriber):
            agent.open("s%d" % k, port=41000 + k)
            _, text = udp_exchange(agent, "s%d" % k, (SERVER, ECHO_PORT), "sub%d flow %d" % (i, k))
            seen.add((sub_addr(i), tuple(parse_echo(text)[0])))
    log("the server saw %d flows" % len(seen))
    return agents, seen


def test_prometheus_scrape(binary):
    """A real Prometheus scrapes /metrics every second: up is 1; the UDP sessions, mappings
    and pool ports in use it reports are the flows the lab made; the in2out translated-packets
    counter grows by exactly the datagrams sent after a baseline; promtool finds no problem in
    the exposition; any other path is 404."""
    subscribers, per, burst = 2, 3, 40
    config = make_config(sections={"metrics": {"listen": LISTEN}})
    with lab_session(subscribers) as lab, ephemera_session(binary, lab, WORKERS, config) as eph, \
            Prometheus(lab.ns("nat"), LISTEN, port=9090) as prom:
        check("ephemera: metrics on http://%s/metrics" % LISTEN in eph.read_log(),
              "ephemera did not say where /metrics is:\n%s" % eph.read_log())
        listen = eph.telemetry.query("/ephemera/config").get("metrics_listen")
        check(listen == LISTEN, "/ephemera/config says metrics_listen %r" % listen)
        status, content_type, text = http_get(lab, "/metrics")
        check(status == 200 and content_type.startswith("text/plain; version=0.0.4"),
              "GET /metrics: %d %s" % (status, content_type))
        check(http_get(lab, "/nothing")[0] == 404, "GET /nothing is not 404")
        promtool_check(text)

        check(wait_until(lambda: prom.value('up{job="ephemera"}') == 1, 15),
              "up{job=\"ephemera\"} is %s" % prom.value('up{job="ephemera"}'))

        agents, seen = udp_flows(lab, subscribers, per)
        flows = subscribers * per
        check(len(seen) == flows, "%d flows seen by the server, %d made" % (len(seen), flows))
        udp_sessions = 'sum(ephemera_sessions{protocol="udp"})'
        check(wait_until(lambda: prom.value(udp_sessions) == flows, 15),
              "%s is %s, the lab made %d UDP flows" % (udp_sessions, prom.value(udp_sessions),
                                                       flows))
        expectations = [
            ("sum(ephemera_mappings)", flows),
            ('sum(ephemera_pool_ports_used{protocol="udp"})', flows),
            ('count(ephemera_pool_ports_usable{protocol="udp"})', len(POOL)),
            ("ephemera_port_use_known", 1),
            ("count(count by (worker) (ephemera_sessions))", WORKERS),
            ('sum(ephemera_drops_total{reason="ports_exhausted"})', 0),
            # The pool alarms, one series per protocol; a handful of flows raises none.
            ("count(ephemera_pool_port_alarm)", 3),
            ("sum(ephemera_pool_port_alarm)", 0),
        ]
        for promql, want in expectations:
            got = prom.value(promql)
            check(got == want, "%s is %s, expected %s" % (promql, got, want))
            log("%s = %s" % (promql, got))

        # The exposition under traffic, with port use and every worker's figures.
        status, _, text = http_get(lab, "/metrics")
        check(status == 200, "GET /metrics: %d" % status)
        promtool_check(text)
        check_documented(text)

        # A baseline Prometheus and ephemera agree on, then `burst` more datagrams in2out.
        translated = 'sum(ephemera_translated_packets_total{direction="in2out"})'
        direct = []

        def settled():
            direct[:] = [sample_sum(http_get(lab, "/metrics")[2],
                                    "ephemera_translated_packets_total", direction="in2out")]
            return prom.value(translated) == direct[0]

        check(wait_until(settled, 10, interval=0.5),
              "%s is %s, /metrics says %s" % (translated, prom.value(translated), direct))
        before = direct[0]
        agent = agents[1]
        for n in range(burst):
            agent.send("s0", (SERVER, ECHO_PORT), "burst %d" % n)
        echoes = agent.drain("s0", window=1.0)
        log("sent %d datagrams, %d echoes came back" % (burst, len(echoes)))
        check(wait_until(lambda: prom.value(translated) == before + burst, 10, interval=0.5),
              "%s went from %s to %s after %d datagrams" % (translated, before,
                                                            prom.value(translated), burst))
        log("%s: %s -> %s after %d datagrams" % (translated, before, before + burst, burst))
        received = prom.value('sum(ephemera_received_packets_total{direction="out2in"})')
        check(received is not None and received >= len(echoes),
              "out2in received %s, %d echoes came back" % (received, len(echoes)))


def test_metrics_listen_in_use(binary):
    """A metrics.listen address that cannot be bound stops ephemera at start, before any
    packet is forwarded, with a message naming the key and the address."""
    with lab_session(1) as lab:
        holder = lab.popen(lab.ns("nat"), [
            "/usr/bin/python3", "-c",
            "import socket, sys, time\n"
            "s = socket.socket(); s.bind(('127.0.0.1', %s)); s.listen(); print('held', flush=True)\n"
            "time.sleep(120)" % LISTEN.split(":")[1]], stdout=subprocess.PIPE, text=True)
        try:
            check(holder.stdout.readline().strip() == "held", "could not hold %s" % LISTEN)
            config = make_config(sections={"metrics": {"listen": LISTEN}})
            try:
                with ephemera_session(binary, lab, 1, config):
                    pass
            except TestFailure as e:
                text = str(e)
                check("exited 3 at start" in text,  # main.cpp's kExitStartup
                      "ephemera did not stop at start: %s" % text)
                check("metrics.listen: cannot listen on %s" % LISTEN in text,
                      "the start-up error does not name metrics.listen and %s: %s" % (LISTEN,
                                                                                       text))
                log("refused at start: %s" % [line for line in text.splitlines()
                                              if "metrics.listen" in line][0])
                return
            raise TestFailure("ephemera started although %s was taken" % LISTEN)
        finally:
            holder.kill()
            holder.wait()


TESTS = {name[len("test_"):]: fn for name, fn in globals().items()
         if name.startswith("test_") and callable(fn)}

if __name__ == "__main__":
    try:
        sys.exit(main(TESTS))
    except TestFailure as e:  # raised outside a test's body (a fixture's cleanup)
        log("FAIL: %s" % e)
        sys.exit(1)
