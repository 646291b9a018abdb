"""Golden scenarios: each builds a Scenario (config, input frames, expected frames, counters).

A scenario is a function registered with @scenario under its name, called with the worker
count; `golden.py --workers N --scenario NAME` runs one. Names follow the requirement a scenario
shows (rfc4787_req1_eim, ...). Expectations are computed for the worker count: external ports
by natmodel (each worker searches its own ports), owners by `ephemera --owner`.

Timing model. Each port has one rx and one tx queue per worker, and every input frame goes to
rx queue 0 unless the scenario says otherwise (Frame.queue). Each loop iteration, worker 0
reads one burst of up to 32 frames from inside queue 0, translates those it owns and puts the
others on their owners' handoff rings in order, then does the same with one burst from outside
queue 0; the rings are flushed (at the latest) at the end of the iteration. With at most 32
frames a side, every inside frame is handled before any outside frame; scenarios with more
rely on the bursts interleaving (inside 1-32, outside 1-32, inside 33-64, ...), and say so.
Another worker takes what a ring holds in ring order, up to 32 frames at a time, the inside
frames of each batch before its outside ones. So of the frames worker 0 hands to one worker,
an outside frame is never handled before an inside frame read before it: a reply finds the
mapping its subscriber's packet made. The reverse is not kept across bursts (an inside frame
of the next burst may overtake an outside frame of the previous one in the same batch), so no
inside frame may depend on an earlier burst's outside frame. Frames on different rings have no
order between them: a frame may only depend on one that reaches its worker by the same ring,
or that worker 0 handles itself before it flushes the frames leading to it onto a ring
(hairpin.py, fragments.py and arp.py pick their subscribers for this). With one worker all of
this is the plain loop order.

What is compared. Each port's output is the union of its tx queues, compared with the expected
frames as a multiset; each queue's frames must come in the expected relative order (within a
Frame.stream); an expected frame that names its owner must leave by that worker's queue. The
counters must match exactly, with handoff_tx and handoff_rx computed from the owners of the
input frames (Frame.owner) and the queues they arrive on, plus Scenario.extra_handoffs.
"""

import importlib
import ipaddress
from dataclasses import dataclass, field

import frames
import natmodel
from frames import NEXT_HOP, NEXT_HOP_MAC, POOL1, Sub

REGISTRY = {}


def scenario(fn):
    REGISTRY[fn.__name__] = fn
    return fn


class Frame(bytes):
    """A frame, with what the runner checks beyond its bytes.

    owner: the worker that must handle it, as ("subscriber", inside address),
           ("port", pool address, port) or ("worker", w); golden.py resolves the first two
           with `ephemera --owner`. For an input frame, a handoff is expected when the owner
           is not the worker of its rx queue; for an expected output frame, it must leave by
           the owner's tx queue. None: handled by the worker that receives it without asking
           who owns it (ARP, the gateway, frames dropped before that), or not checked.
    queue: the rx queue an input frame is fed into (worker `queue` reads it).
    stream: expected output frames only. Each tx queue's frames of one stream must come out
           in the order the expected list has them; frames of different streams (caused by
           inputs on different rx queues) may interleave.
    """

    def __new__(cls, data, owner=None, queue=0, stream=None):
        frame = super().__new__(cls, data)
        frame.owner = owner
        frame.queue = queue
        frame.stream = stream
        return frame


def by_subscriber(sub):
    """Owner key: the worker of a subscriber (a Sub or an inside address)."""
    return ("subscriber", getattr(sub, "ip", sub))


def by_port(ext):
    """Owner key: the worker of an external endpoint (pool address, port)."""
    return ("port", ext[0], ext[1])


def by_worker(worker):
    return ("worker", worker)


def sub_at(ip):
    """The subscriber host at an inside address in 100.64.0.0/24 (the lab's MAC scheme)."""
    return Sub(ip, "02:00:00:00:01:%02x" % (int(ipaddress.IPv4Address(ip)) & 0xFF))


def subscribers_of(workers, worker, count=1, first="100.64.0.10", skip=()):
    """The first `count` subscribers from `first` up that `worker` owns with `workers` workers."""
    own = natmodel.owners(workers)
    candidates = [str(ipaddress.IPv4Address(first) + i) for i in range(200)]
    own.ask_subscribers(candidates)
    found = [sub_at(ip) for ip in candidates
             if own.subscriber(ip) == worker and ip not in skip][:count]
    assert len(found) == count, "not enough subscribers of worker %d" % worker
    return found


def subscriber_of(workers, worker, **kw):
    return subscribers_of(workers, worker, **kw)[0]


def kept_ports(nat, sub, count, start=50000, pool_ip=None):
    """`count` ports from `start` up that the subscriber's worker owns on its pool address (or
    `pool_ip`): a free one is kept as the external port."""
    pool_ip = pool_ip or nat.anchor_of(sub.ip)
    worker = nat.worker_of(sub.ip)
    ports = [p for p in range(start, 65536) if nat.owners.port(pool_ip, p) == worker][:count]
    assert len(ports) == count
    return ports


def config(pool=(POOL1,), port_range=None, reserved=(), filtering="endpoint-independent",
           next_hop_mac=NEXT_HOP_MAC, max_sessions=None, limits=None, icmp=None,
           inside_mtu=None, outside_mtu=None, mode=None, mode_keys=None):
    """The TOML file for a scenario: the lab's ports and addresses plus what is given.
    `limits` and `icmp` are dicts of extra [limits] and [icmp] keys; `mode` is the pool's
    allocation mode, with `mode_keys` its [pool.MODE] table."""
    quoted = ", ".join('"%s"' % a for a in pool)
    lines = ["[pool]", "addresses = [%s]" % quoted]
    if port_range:
        lines.append('port_range = "%s"' % port_range)
    if reserved:
        lines.append("reserved = [%s]" % ", ".join('"%s"' % r for r in reserved))
    if mode:
        lines.append('mode = "%s"' % mode)
        lines += ["[pool.%s]" % mode] + ["%s = %s" % (k, toml_value(v))
                                         for k, v in (mode_keys or {}).items()]
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
    if isinstance(v, str):
        return '"%s"' % v
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


@dataclass
class Scenario:
    config: str
    inside_in: list = field(default_factory=list)     # frames into the inside port
    outside_in: list = field(default_factory=list)    # frames into the outside port
    inside_out: list = field(default_factory=list)    # expected out of the inside port
    outside_out: list = field(default_factory=list)   # expected out of the outside port
    counters: dict = field(default_factory=dict)      # totals; any counter not named must be 0
    #                                                   (handoff_tx and _rx: see extra_handoffs)
    # counters whose exact value depends on how the rings between workers happen to be
    # drained: name -> (least, most), checked instead of an exact value
    counter_bounds: dict = field(default_factory=dict)
    extra_handoffs: int | None = 0                    # handoffs besides the inputs' own
    #                                                   (hairpins, ...); None: unknown, then
    #                                                   handoff_tx == handoff_rx >= the inputs'
    #                                                   own
    gauges: dict = field(default_factory=dict)        # live_mappings / live_sessions totals
    stdout: list = field(default_factory=list)        # text ephemera must print
    # the config whose mode decides who owns an external port (`ephemera --owner --config`):
    # set in deterministic mode, where a port belongs to its subscriber's worker
    owner_config: str | None = None
    settle: float = 0.3                               # s of unchanged counters to end on
    min_runtime: float = 0.0                          # s to run at least, from "running"

    def send(self, sub, port, remote, remote_port, l4, ext, **kw):
        """A subscriber's packet and its translation (ext is the expected external endpoint)."""
        frame, expected = frames.in2out(sub, port, remote, remote_port, l4, ext, **kw)
        self.inside_in.append(Frame(frame, by_subscriber(sub)))
        self.outside_out.append(Frame(expected, by_subscriber(sub)))

    def reply(self, sub, port, remote, remote_port, l4, ext, **kw):
        """A remote's packet to `ext` and its translation back to (sub, port)."""
        frame, expected = frames.out2in(sub, port, remote, remote_port, l4, ext, **kw)
        self.outside_in.append(Frame(frame, by_port(ext)))
        self.inside_out.append(Frame(expected, by_port(ext)))

    def reply_dropped(self, sub, port, remote, remote_port, l4, ext, **kw):
        frame, _ = frames.out2in(sub, port, remote, remote_port, l4, ext, **kw)
        self.outside_in.append(Frame(frame, by_port(ext)))

    def send_dropped(self, sub, port, remote, remote_port, l4, ext=(POOL1, 0), **kw):
        frame, _ = frames.in2out(sub, port, remote, remote_port, l4, ext, **kw)
        self.inside_in.append(Frame(frame, by_subscriber(sub)))

    def send_refused(self, sub, port, remote, remote_port, l4, **kw):
        """A subscriber's packet that gets no mapping, and the ICMP 3/1 it should get back."""
        frame, _ = frames.in2out(sub, port, remote, remote_port, l4, (POOL1, 0), **kw)
        self.inside_in.append(Frame(frame, by_subscriber(sub)))
        self.inside_out.append(Frame(frames.unreachable(sub, frame), by_subscriber(sub)))


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
                "hairpin", "fragments", "icmp_errors", "queues", "deterministic", "blocks", "statics"):
    importlib.import_module("scenarios." + _module)
