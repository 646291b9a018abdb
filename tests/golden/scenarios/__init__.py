"""Golden scenarios: each builds a Scenario (config, input frames, expected frames, counters).

A scenario is a function registered with @scenario under its name; `golden.py --scenario NAME`
runs one. Names follow the requirement a scenario shows (rfc4787_req1_eim, ...).

Timing model (one worker): each loop iteration reads one burst of up to 32 frames from the
inside pcap and translates it, then one burst from the outside pcap. With at most 32 frames a
side, every inside frame is handled before any outside frame; scenarios with more rely on the
bursts interleaving (inside 1-32, outside 1-32, inside 33-64, ...), and say so.
"""

import importlib
from dataclasses import dataclass, field

import frames
from frames import NEXT_HOP, NEXT_HOP_MAC, POOL1

REGISTRY = {}


def scenario(fn):
    REGISTRY[fn.__name__] = fn
    return fn


def config(pool=(POOL1,), port_range=None, reserved=(), filtering="endpoint-independent",
           next_hop_mac=NEXT_HOP_MAC, max_sessions=None, limits=None, icmp=None,
           inside_mtu=None, outside_mtu=None):
    """The TOML file for a scenario: the lab's ports and addresses plus what is given.
    `limits` and `icmp` are dicts of extra [limits] and [icmp] keys."""
    quoted = ", ".join('"%s"' % a for a in pool)
    lines = ["[pool]", "addresses = [%s]" % quoted]
    if port_range:
        lines.append('port_range = "%s"' % port_range)
    if reserved:
        lines.append("reserved = [%s]" % ", ".join('"%s"' % r for r in reserved))
    lines += ["[inside]", 'port = "net_pcap0"', 'gateway = "%s"' % frames.GATEWAY]
    if inside_mtu:
        lines.append("mtu = %d" % inside_mtu)
    lines += ["[outside]", 'port = "net_pcap1"', 'next_hop = "%s"' % NEXT_HOP]
    if outside_mtu:
        lines.append("mtu = %d" % outside_mtu)
    if next_hop_mac:
        lines.append('next_hop_mac = "%s"' % next_hop_mac)
    lines += ["[filtering]", 'mode = "%s"' % filtering]
    limit_lines = ["max_sessions = %d" % max_sessions] if max_sessions else []
    limit_lines += ["%s = %s" % (k, toml_value(v)) for k, v in (limits or {}).items()]
    if limit_lines:
        lines += ["[limits]"] + limit_lines
    if icmp:
        lines += ["[icmp]"] + ["%s = %s" % (k, toml_value(v)) for k, v in icmp.items()]
    return "\n".join(lines) + "\n"


def toml_value(v):
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


@dataclass
class Scenario:
    config: str
    inside_in: list = field(default_factory=list)     # frames into the inside port
    outside_in: list = field(default_factory=list)    # frames into the outside port
    inside_out: list = field(default_factory=list)    # expected out of the inside port
    outside_out: list = field(default_factory=list)   # expected out of the outside port
    counters: dict = field(default_factory=dict)      # totals; any counter not named must be 0
    gauges: dict = field(default_factory=dict)        # live_mappings / live_sessions totals
    stdout: list = field(default_factory=list)        # text ephemera must print
    settle: float = 0.3                               # s to keep running once all is received
    min_runtime: float = 0.0                          # s to run at least, from "running"

    def send(self, sub, port, remote, remote_port, l4, ext, **kw):
        """A subscriber's packet and its translation (ext is the expected external endpoint)."""
        frame, expected = frames.in2out(sub, port, remote, remote_port, l4, ext, **kw)
        self.inside_in.append(frame)
        self.outside_out.append(expected)

    def reply(self, sub, port, remote, remote_port, l4, ext, **kw):
        """A remote's packet to `ext` and its translation back to (sub, port)."""
        frame, expected = frames.out2in(sub, port, remote, remote_port, l4, ext, **kw)
        self.outside_in.append(frame)
        self.inside_out.append(expected)

    def reply_dropped(self, sub, port, remote, remote_port, l4, ext, **kw):
        frame, _ = frames.out2in(sub, port, remote, remote_port, l4, ext, **kw)
        self.outside_in.append(frame)

    def send_dropped(self, sub, port, remote, remote_port, l4, ext=(POOL1, 0), **kw):
        frame, _ = frames.in2out(sub, port, remote, remote_port, l4, ext, **kw)
        self.inside_in.append(frame)

    def send_refused(self, sub, port, remote, remote_port, l4, **kw):
        """A subscriber's packet that gets no mapping, and the ICMP 3/1 it should get back."""
        frame, _ = frames.in2out(sub, port, remote, remote_port, l4, (POOL1, 0), **kw)
        self.inside_in.append(frame)
        self.inside_out.append(frames.unreachable(sub, frame))


def traffic(sc, **counters):
    """Counters for a scenario whose outputs are all translations: frames in and out from the
    scenario's own lists, plus the given ones."""
    totals = dict(in2out_rx=len(sc.inside_in), out2in_rx=len(sc.outside_in),
                  in2out_tx=len(sc.outside_out), out2in_tx=len(sc.inside_out),
                  in2out_translated=len(sc.outside_out), out2in_translated=len(sc.inside_out))
    totals.update(counters)
    return totals


# Importing the modules registers their scenarios.
for _module in ("translate", "mapping", "filtering", "drops", "arp", "exhaustion", "limits",
                "hairpin", "fragments", "icmp_errors"):
    importlib.import_module("scenarios." + _module)
