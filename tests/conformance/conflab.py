"""Shared pieces of the conformance suite: the namespace lab of tests/netns (nslab.py), one-shot
probes run inside the lab's namespaces (probe.py), background servers, packet captures
(tcpdump, read back with scapy) and scapy-built packets sent through a raw socket."""

import json
import os
import select
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "netns"))

import nslab  # noqa: E402  (the lab, ephemera, agents: shared with tests/netns)
from nslab import (GATEWAY, POOL, SERVER, SERVER2, TestFailure, check, log,  # noqa: E402,F401
                   make_config, parse_echo, parse_mapping, sub_addr, udp_exchange)

PROBE = os.path.join(HERE, "probe.py")
PYTHON = nslab.PYTHON


def probe(lab, ns, *args, timeout=60):
    """Runs probe.py in namespace ns; returns its last JSON line."""
    cp = lab.run(ns, [PYTHON, PROBE] + [str(a) for a in args], timeout=timeout)
    lines = cp.stdout.strip().splitlines()
    check(lines, "probe %s in %s printed nothing (exit %d): %s" % (args, ns, cp.returncode,
                                                                   cp.stderr))
    return json.loads(lines[-1])


START_TIMEOUT = nslab.START_TIMEOUT  # a program started in a namespace says it is ready


class Background:
    """A probe.py server (or any command) in a namespace: started, its first JSON line read,
    stopped at the end of the test (lab.down kills what is left)."""

    def __init__(self, lab, ns, argv, stdin=False, ready_timeout=START_TIMEOUT):
        self.proc = lab.popen(ns, argv, stdout=subprocess.PIPE,
                              stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, bufsize=1)
        self.first = self.line(ready_timeout)

    @classmethod
    def probe(cls, lab, ns, *args, stdin=False):
        return cls(lab, ns, [PYTHON, PROBE] + [str(a) for a in args], stdin=stdin)

    def line(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        check(r, "background process printed nothing within %.0f s" % timeout)
        text = self.proc.stdout.readline()
        if not text:
            raise TestFailure("background process exited: %s" % self.proc.stderr.read())
        return json.loads(text)

    def say(self, text, timeout=10.0):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self.line(timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        out, _ = self.proc.communicate(timeout=10)
        return [json.loads(l) for l in out.splitlines() if l.strip()]


def tcp_echo_server(lab, port, addr=SERVER, ns=None):
    b = Background.probe(lab, ns or lab.ns("srv"), "tcp-echo-server", "--bind", addr,
                         "--port", port, "--timeout", 120)
    check("ready" in b.first, "TCP echo server %s:%d did not start: %s" % (addr, port, b.first))
    return b


class Capture:
    """tcpdump on one interface of a namespace; stop() returns the packets (scapy)."""

    def __init__(self, lab, ns, bpf, dev="eth0"):
        fd, self.path = tempfile.mkstemp(prefix="conformance-", suffix=".pcap")
        os.close(fd)
        self.proc = lab.popen(ns, ["tcpdump", "-Z", "root", "--immediate-mode", "-i", dev, "-n", "-U", "-w",
                                   self.path, bpf],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stderr], [], [], 0.5)
            if r and "listening on" in self.proc.stderr.readline():
                return
            if self.proc.poll() is not None:
                raise TestFailure("tcpdump in %s exited: %s" % (ns, self.proc.stderr.read()))
        raise TestFailure("tcpdump in %s did not start within %.0f s; where it waits:\n%s" % (
            ns, START_TIMEOUT, nslab.kernel_stacks(self.proc.pid)))

    def stop(self):
        from scapy.all import rdpcap  # all: the layers must be known to parse
        time.sleep(0.3)  # the last packets' way through the kernel
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            return list(rdpcap(self.path))
        finally:
            os.unlink(self.path)


def rawsend(lab, ns, packets, gap=0.0):
    """Sends scapy IP packets from namespace ns, in the given order, as built (checksums
    included; the kernel always fills in the outer IP checksum and total length)."""
    hexes = [bytes(p).hex() for p in packets]
    return probe(lab, ns, "rawsend", *hexes, *(["--gap", gap] if gap else []))


def learn_udp(cli, sock, to=(SERVER, 5000), data="learn"):
    """The external endpoint the server's echo saw for the agent socket `sock`."""
    _src, text = udp_exchange(cli, sock, to, data)
    return parse_echo(text)[0]


def learn_tcp(lab, ns, bind_port, to=(SERVER, 6000)):
    """Connects from bind_port to a TCP echo server; returns the external endpoint it saw."""
    r = probe(lab, ns, "tcp", "--to", to[0], "--port", to[1], "--bind-port", bind_port,
              "--data", "learn")
    check(r["error"] is None and r["reply"], "TCP to %s:%d from port %d: %s" % (
        to[0], to[1], bind_port, r))
    return parse_echo(r["reply"])[0]


def echo_server(lab, ports=(5000,), addr=SERVER):
    srv = lab.agent(lab.ns("srv"))
    for p in ports:
        srv.open("s%d" % p, addr, p)
        srv.serve_echo("s%d" % p)
    return srv


def in_pool(ep, pool=POOL):
    return ep[0] in pool


def sessions(eph, subscriber):
    """Telemetry session lines of one subscriber, parsed."""
    import re
    out = []
    for line in eph.telemetry.query("/ephemera/sessions,subscriber=%s" % subscriber):
        m = re.match(r"(\w+) ([\d.]+):(\d+) as ([\d.]+):(\d+) <-> ([\d.]+):(\d+) idle=(\d+)s"
                     r"(?: (established|transitory))? worker=(\d+)$", line)
        check(m is not None, "unparsable session line %r" % line)
        out.append({"proto": m.group(1), "inside": (m.group(2), int(m.group(3))),
                    "external": (m.group(4), int(m.group(5))),
                    "remote": (m.group(6), int(m.group(7))), "idle": int(m.group(8)),
                    "state": m.group(9), "worker": int(m.group(10))})
    return out


def owner_of_subscriber(addr, workers):
    """ownership.hpp: murmur3 finaliser of the inside address, modulo workers."""
    a, b, c, d = (int(x) for x in addr.split("."))
    h = (a << 24) | (b << 16) | (c << 8) | d
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h % workers
