"""Harness for ephemera's network-namespace tests: a lab (scripts/lab.sh), the ephemera
process, its telemetry socket, and traffic agents running inside the lab's namespaces.

Every test runs as `/usr/bin/python3 netns_tests.py TEST_NAME EPHEMERA_BINARY` (see
meson.build). The lab is torn down on every exit path: normal return, assertion failure,
exception, and SIGTERM/SIGINT (meson's timeout), through try/finally and a signal handler.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
LAB_SH = os.path.join(SOURCE_ROOT, "scripts", "lab.sh")
PEER = os.path.join(HERE, "peer.py")
sys.path.insert(0, os.path.join(SOURCE_ROOT, "scripts"))
import dpdk_telemetry  # noqa: E402  (scripts/dpdk_telemetry.py)

PYTHON = "/usr/bin/python3"  # Debian's interpreter: present on every machine the project uses

GATEWAY = "100.64.0.1"
SERVER = "198.18.0.2"
SERVER2 = "198.18.0.3"
POOL = ["198.18.0.100", "198.18.0.101"]
IANA = (49152, 65535)

SKIP = 77  # meson's exit code for a skipped test

# How long a program started in a namespace may take to say it is ready. Starting it (`ip
# netns exec`) and tcpdump's promiscuous mode wait for the kernel's rtnl lock, which some hosts
# hold for tens of seconds now and then (14 s, once 72 s, seen beside these suites), and a
# tcpdump has once not started within 30 s.
START_TIMEOUT = 90.0


def log(msg):
    print(msg, flush=True)


class TestFailure(AssertionError):
    pass


def kernel_stacks(pid):
    """Each thread's name, state and kernel stack (/proc/PID/task/*/stack, readable by root):
    where a process that does not end, or does not start, is waiting."""
    task_dir = "/proc/%d/task" % pid

    def read(tid, name):
        try:
            with open(os.path.join(task_dir, tid, name)) as f:
                return f.read().strip()
        except OSError as e:
            return "(%s)" % e.strerror
    try:
        tids = sorted(os.listdir(task_dir), key=int)
    except OSError as e:
        return "  (%s)" % e
    lines = []
    for tid in tids:
        state = next((line.split(None, 1)[1] for line in read(tid, "status").splitlines()
                      if line.startswith("State:")), "?")
        lines.append("  thread %s %s, %s:" % (tid, read(tid, "comm"), state))
        lines.extend("    " + line for line in read(tid, "stack").splitlines())
    return "\n".join(lines)


def kernel_stall_messages(last=12):
    """The kernel's latest reports of CPUs or kernel threads that could not run (RCU stalls,
    workqueue lockups, hung tasks): a process that stops answering while they appear waited on
    the machine, not on itself."""
    cp = subprocess.run(["dmesg", "-T"], capture_output=True, text=True, check=False)
    lines = [line for line in cp.stdout.splitlines()
             if re.search(r"lockup|stall|starved|hung_task|blocked for more than", line)]
    return "\n".join("    " + line for line in lines[-last:]) or "    (none)"


def check(cond, msg):
    """An assertion that survives python -O and says what was expected."""
    if not cond:
        raise TestFailure(msg)


def wait_until(predicate, timeout, interval=0.05):
    """Polls `predicate` until it returns something true or `timeout` seconds pass; returns its
    last value, so the caller's check can report what it saw."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def listening(lab, ns, proto, port):
    """True when a socket in namespace `ns` listens on (UDP: is bound to) `port`."""
    flag = "-lnu" if proto == "udp" else "-lnt"
    cp = lab.run(ns, ["ss", "-H", flag, "sport = :%d" % port], timeout=10)
    return bool(cp.stdout.strip())


def sub_addr(i):
    return "100.64.0.%d" % (10 + i)


ROUTER_NAT_SIDE = "198.18.1.1"  # Lab(router=True): the router's address on the NAT's side
ROUTER_SRV_SIDE = "198.18.0.1"  # and on the server's


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[%s]" % ", ".join(_toml_value(x) for x in v)
    return '"%s"' % v


# The DPDK drivers ephemera can open the lab's veths with: the ports' names (inside, outside).
#   af_packet: net_af_packet, one queue pair per worker. In DPDK 22.11 it joins its sockets
#              with PACKET_FANOUT and the kernel's defragment flag, so the kernel reassembles IP
#              fragments before ephemera sees them: ephemera gets whole datagrams of up to a
#              ring frame (AF_PACKET_FRAME, less 32 bytes), sizes its buffers to match and
#              splits them to the MTU on the way out.
#   pcap:      net_pcap in live-interface mode (libpcap on the veth): ephemera sees every frame
#              as it is on the wire, fragments included. One queue pair, so one worker only.
#   tap:       net_tap, which makes its own interfaces (tin, tout), bridged to in0 and out0 once
#              they exist. The one driver here that offers IPv4, UDP and TCP checksum offload
#              (it computes the checksums as it sends), so the only lab that exercises it.
# The ring frame the lab gives net_af_packet (devargs framesz and blocksz; the default 2048
# would truncate any reassembled datagram above about 2 KB).
AF_PACKET_FRAME = 8192
AF_PACKET_ARGS = "framesz=%d,blocksz=%d" % (AF_PACKET_FRAME, AF_PACKET_FRAME)

DRIVERS = {
    "af_packet": ("net_af_packet0", "net_af_packet1"),
    "pcap": ("net_pcap0", "net_pcap1"),
    "tap": ("net_tap0", "net_tap1"),
}
# net_tap's interfaces, bridged to the lab's veths (inside, outside).
TAP_IFACES = ("tin", "tout")


def make_config(filtering="endpoint-independent", pool=None, port_range="iana",
                reserved=("65000-65010",), max_sessions=65536, next_hop=SERVER, sections=None,
                driver="af_packet"):
    """The lab's config. `sections` adds or overrides keys: {"outside": {"mtu": 1400}, ...};
    a section the base config lacks is appended. `driver` (DRIVERS) names the ports."""
    pool = pool or POOL
    inside_port, outside_port = DRIVERS[driver]
    lines = [
        "[pool]",
        "addresses = [%s]" % ", ".join('"%s"' % a for a in pool),
        'port_range = "%s"' % port_range,
        "reserved = [%s]" % ", ".join('"%s"' % r for r in reserved),
        "",
        "[inside]",
        'port = "%s"' % inside_port,
        'gateway = "%s"' % GATEWAY,
        "",
        "[outside]",
        'port = "%s"' % outside_port,
        'next_hop = "%s"' % next_hop,
        "",
        "[timeouts]",
        "udp = 300",
        "tcp_established = 7440",
        "tcp_transitory = 240",
        "icmp = 60",
        "",
        "[filtering]",
        'mode = "%s"' % filtering,
        "",
        "[limits]",
        "max_sessions = %d" % max_sessions,
    ]
    extra = {k: dict(v) for k, v in (sections or {}).items()}
    out, section = [], None
    for line in lines + [""]:
        if line.startswith("[") or line == "" and section is not None:
            for key, v in extra.pop(section, {}).items():  # keys left for the section ending
                out.append("%s = %s" % (key, _toml_value(v)))
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and section in extra and line.split("=")[0].strip() in extra[section]:
            key = line.split("=")[0].strip()
            line = "%s = %s" % (key, _toml_value(extra[section].pop(key)))
        out.append(line)
    for name, keys in extra.items():
        out += ["[%s]" % name] + ["%s = %s" % (k, _toml_value(v)) for k, v in keys.items()] + [""]
    return "\n".join(out).rstrip("\n") + "\n"


# ------------------------------------------------------------------------------------- the lab


class Lab:
    def __init__(self, subscribers=1, router=False, ha=False, scale=False):
        check(router + ha + scale <= 1,
              "a lab has at most one of the router, the HA pair and the scale-out boxes")
        # Short and unique: namespace names <lab>-sub<i>, and no interface carries the lab name.
        self.name = "n%d" % os.getpid()
        self.subscribers = subscribers
        self.router = router  # a Linux router namespace <lab>-rtr between the NAT and the server
        # Two NAT boxes, <lab>-nat (A) and <lab>-nat2 (B), sharing both sides (scripts/lab.sh)
        self.ha = ha
        # Scale-out: two boxes with their own pools between an ECMP inside router <lab>-rin and
        # an outside router <lab>-rout fed by BGP (BIRD 2), the server behind it (scripts/lab.sh)
        self.scale = scale
        self.next_hop = ROUTER_NAT_SIDE if router else SERVER
        self.up_done = False
        self.agents = []

    def ns(self, node):
        return "%s-%s" % (self.name, node)

    def sub(self, i):
        return self.ns("sub%d" % i)

    def up(self):
        mode = (["router"] if self.router else ["ha"] if self.ha else
                ["scale"] if self.scale else [])
        subprocess.run(["bash", LAB_SH, "up", self.name, str(self.subscribers)] + mode,
                       check=True)
        self.up_done = True
        log("lab %s up: %d subscriber(s)%s" % (self.name, self.subscribers,
                                              "".join(", " + m for m in mode)))

    def agent(self, node_ns):
        a = Agent(self, node_ns)
        self.agents.append(a)
        return a

    def down(self):
        for a in self.agents:
            a.close()
        self.agents = []
        subprocess.run(["bash", LAB_SH, "down", self.name], check=False)
        left = subprocess.run(["bash", LAB_SH, "list", self.name], capture_output=True,
                              text=True).stdout.split()
        if left:
            log("WARNING: lab %s left namespaces behind: %s" % (self.name, left))

    def run(self, node_ns, argv, timeout=60, check_rc=False):
        """Runs argv in namespace node_ns (a full namespace name); returns CompletedProcess."""
        cp = subprocess.run(["ip", "netns", "exec", node_ns] + argv, capture_output=True,
                            text=True, timeout=timeout)
        if check_rc and cp.returncode != 0:
            raise TestFailure("%s in %s exited %d:\n%s%s" % (argv, node_ns, cp.returncode,
                                                             cp.stdout, cp.stderr))
        return cp

    def popen(self, node_ns, argv, **kw):
        return subprocess.Popen(["ip", "netns", "exec", node_ns] + argv, **kw)

    def mac(self, node_ns, dev):
        out = self.run(node_ns, ["cat", "/sys/class/net/%s/address" % dev], check_rc=True)
        return out.stdout.strip()

    def ping(self, node_ns, dst, count=3):
        """Returns (transmitted, received, output)."""
        cp = self.run(node_ns, ["ping", "-n", "-c", str(count), "-i", "0.3", "-W", "2", dst],
                      timeout=count * 3 + 10)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", cp.stdout)
        if not m:
            return 0, 0, cp.stdout + cp.stderr
        return int(m.group(1)), int(m.group(2)), cp.stdout


# ------------------------------------------------------------------------------------ ephemera


class Telemetry:
    """ephemera's telemetry (scripts/dpdk_telemetry.py); a reply about another command fails
    the test."""

    def __init__(self, prefix):
        self.prefix = prefix

    def query(self, cmd, timeout=5.0):
        try:
            return dpdk_telemetry.query(self.prefix, cmd, timeout)
        except KeyError as e:
            raise TestFailure("telemetry %s: no reply under %s" % (cmd, e)) from None


# The namespaces ephemera can run in (the lab's NAT boxes) and the suffix of the EAL file
# prefix each gets, so that box A and box B of an HA lab run at once, each with its telemetry.
NODES = {"nat": "", "nat2": "-b"}


class Ephemera:
    def __init__(self, binary, lab, workers=1, config_text=None, extra_args=(),
                 driver="af_packet", node="nat"):
        check(driver in DRIVERS, "unknown driver %r (one of %s)" % (driver, sorted(DRIVERS)))
        check(node in NODES, "unknown node %r (one of %s)" % (node, sorted(NODES)))
        check(node == "nat" or lab.ha or lab.scale,
              "node %s exists only in an HA or a scale-out lab" % node)
        check(driver != "pcap" or workers == 1,
              "net_pcap has one queue pair: %d workers cannot run on it" % workers)
        config_text = config_text or make_config(driver=driver)
        for port in DRIVERS[driver]:
            check('"%s"' % port in config_text,
                  "the config does not name port %s, which driver %s opens" % (port, driver))
        self.binary = binary
        self.lab = lab
        self.workers = workers
        self.driver = driver
        self.node = node
        self.ns = lab.ns(node)
        self.prefix = "eph-%s%s" % (lab.name, NODES[node])
        self.tmp = tempfile.mkdtemp(prefix="ephemera-netns-")
        self.config_path = os.path.join(self.tmp, "ephemera.toml")
        with open(self.config_path, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(self.tmp, "ephemera.log")
        self.stats_json = os.path.join(self.tmp, "stats.json")
        self.extra_args = list(extra_args)
        self.proc = None
        self.sigint_at = None
        self.output = ""
        self.telemetry = Telemetry(self.prefix)

    def lcores(self):
        cpus = os.cpu_count() or 1
        # lcore 0 runs control; lcores 1..W are the workers, spread over the CPUs we have.
        return ",".join("%d@%d" % (i, i % cpus) for i in range(self.workers + 1))

    def vdevs(self):
        inside, outside = DRIVERS[self.driver]
        if self.driver == "pcap":
            return ["--vdev", "%s,iface=in0" % inside, "--vdev", "%s,iface=out0" % outside]
        if self.driver == "tap":
            return ["--vdev", "%s,iface=%s" % (inside, TAP_IFACES[0]),
                    "--vdev", "%s,iface=%s" % (outside, TAP_IFACES[1])]
        w = self.workers
        return ["--vdev", "%s,iface=in0,qpairs=%d,%s" % (inside, w, AF_PACKET_ARGS),
                "--vdev", "%s,iface=out0,qpairs=%d,%s" % (outside, w, AF_PACKET_ARGS)]

    def argv(self):
        return [
            self.binary, "--no-huge", "-m", "1024", "--no-pci", "--file-prefix", self.prefix,
            "--lcores", self.lcores(), "--log-level", "lib.eal:notice",
        ] + self.vdevs() + [
            "--", "--config", self.config_path, "--stats-json", self.stats_json,
        ] + self.extra_args

    def start(self, ready_timeout=90.0, next_hop=True):
        """Starts ephemera and waits until it answers telemetry and (with `next_hop`) has
        resolved its next hop; returns its /ephemera/config. A box that must not send on the
        outside (an HA standby) is started with next_hop=False.

        The wait is long and says where a slow start waits: each af_packet queue's setup
        (setsockopt PACKET_RX_RING, bind) waits in the kernel for an RCU grace period, which
        other boxes' polling workers on both CPUs and a busy machine stretch to many seconds
        (a box seen 30 s and more in synchronize_rcu under packet_set_ring)."""
        self.logf = open(self.log_path, "w")
        # An earlier run's stats are not this run's (stop() reads them as its exit report).
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.stats_json)
        log("starting ephemera, %d worker(s) on %s: ip netns exec %s %s" % (
            self.workers, self.driver, self.ns, " ".join(self.argv())))
        self.proc = self.lab.popen(self.ns, self.argv(), stdout=self.logf,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.sigint_at = None
        started = time.monotonic()
        deadline = started + ready_timeout
        said_slow = False
        last_error = None
        bridged = self.driver != "tap"
        while time.monotonic() < deadline:
            if not said_slow and time.monotonic() - started > 15:
                said_slow = True
                log("ephemera in %s not ready after 15 s; where its threads are:\n%s" % (
                    self.ns, self._kernel_stacks()))
            if not bridged:
                bridged = self.bridge_taps()
            if self.proc.poll() is not None:
                self.logf.close()
                raise TestFailure("ephemera exited %d at start:\n%s" % (
                    self.proc.returncode, self.read_log()))
            try:
                cfg = self.telemetry.query("/ephemera/config", timeout=1.0)
                # null until main() has registered the commands, after the EAL is up
                if isinstance(cfg, dict) and not next_hop:
                    log("ephemera in %s answers telemetry (next hop not awaited)" % self.ns)
                    return cfg
                if isinstance(cfg, dict) and cfg.get("next_hop_mac",
                                                     "unresolved") != "unresolved":
                    log("ephemera ready after %.1f s: next hop %s at %s, %d worker(s)" % (
                        time.monotonic() - started, cfg["next_hop"], cfg["next_hop_mac"],
                        cfg["workers"]))
                    return cfg
            except (OSError, ValueError, TestFailure) as e:
                last_error = e
            time.sleep(0.2)
        raise TestFailure("ephemera not ready (next hop unresolved?) after %.0f s: %s\n"
                          "where its threads are:\n%s\n%s" % (
                              ready_timeout, last_error, self._kernel_stacks(), self.read_log()))

    def bridge_taps(self):
        """Bridges net_tap's interfaces to in0 and out0 once ephemera has started its ports
        (starting a port sets its interface's MAC again); False until then. The bridges go with
        the lab's namespace."""
        nat = self.ns
        if "ephemera: running" not in self.read_log():
            return False
        for i, (tap, veth) in enumerate(zip(TAP_IFACES, ("in0", "out0"))):
            bridge = "br" + veth
            # The tap's kernel side has the port's own MAC; the bridge would deliver frames for
            # that MAC to itself instead of to ephemera.
            for argv in (["ip", "link", "add", bridge, "type", "bridge"],
                         ["ip", "link", "set", tap, "address", "02:00:00:00:0%d:fe" % i],
                         ["ip", "link", "set", veth, "master", bridge],
                         ["ip", "link", "set", tap, "master", bridge],
                         ["ip", "link", "set", tap, "up"],
                         ["ip", "link", "set", bridge, "up"]):
                self.lab.run(nat, argv, check_rc=True)
        ports = TAP_IFACES + ("in0", "out0")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states = [self.lab.run(nat, ["cat", "/sys/class/net/%s/brport/state" % p])
                      .stdout.strip() for p in ports]
            if states == ["3"] * len(ports):  # BR_STATE_FORWARDING
                break
            time.sleep(0.1)
        log("net_tap interfaces %s bridged to in0 and out0 (port states %s)" % (
            TAP_IFACES, states))
        return True

    def read_log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def stats(self):
        return self.telemetry.query("/ephemera/stats")

    def worker_stats(self, wid):
        return self.telemetry.query("/ephemera/worker,%d" % wid)

    def mappings(self, limit=512):
        return self.telemetry.query("/ephemera/mappings,%d" % limit)

    def config(self):
        return self.telemetry.query("/ephemera/config")

    def stop(self, expect_clean=True):
        """SIGINT, then wait; returns the exit report (stdout) and the JSON stats, if any."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            started = self.interrupt()
            try:
                self.proc.wait(timeout=max(0.0, started + 15 - time.monotonic()))
            except subprocess.TimeoutExpired:
                if self._teardown_only():
                    self._wait_for_socket_close(started, expect_clean)
                else:
                    log("ephemera in %s did not stop within 15 s of SIGINT; where its threads "
                        "are:\n%s" % (self.ns, self._kernel_stacks()))
                    if not self._kill_and_reap(10):
                        self._log_left_behind()
                    if expect_clean:
                        raise TestFailure("ephemera did not stop within 15 s of SIGINT")
        self.logf.close()
        self.output = self.read_log()
        rc = self.proc.returncode
        self.proc = None
        if expect_clean:
            check(rc == 0, "ephemera exited %d after SIGINT:\n%s" % (rc, self.output))
            check("stopping" in self.output,
                  "ephemera's exit report is missing:\n%s" % self.output)
        stats = None
        if os.path.exists(self.stats_json):
            with open(self.stats_json) as f:
                stats = json.load(f)
        return stats

    def interrupt(self):
        """Sends SIGINT once; returns when it was sent. Boxes stopped together are interrupted
        first and waited for after, so that their kernel-side socket closes overlap."""
        if self.sigint_at is None and self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.sigint_at = time.monotonic()
        return self.sigint_at if self.sigint_at is not None else time.monotonic()

    def _wait_for_socket_close(self, started, expect_clean):
        """Ephemera's own stop is over (workers out, exit report and stats written): what is
        left is rte_eal_cleanup closing the af_packet sockets, which the kernel makes wait for
        RCU grace periods; on some hosts those take tens of seconds, whatever ephemera does
        (seen with every tree). Waited for, and said, with where its threads wait."""
        log("ephemera in %s: exit report within 15 s, process still there; where its threads "
            "are:\n%s" % (self.ns, self._kernel_stacks()))
        try:
            self.proc.wait(timeout=max(0.0, started + 105 - time.monotonic()))
        except subprocess.TimeoutExpired:
            log("ephemera in %s: exit report within 15 s, process still there after 105 s; "
                "where its threads are:\n%s" % (self.ns, self._kernel_stacks()))
            killed = self._kill_and_reap(10)
            if expect_clean:
                raise TestFailure("ephemera wrote its exit report but its process did "
                                  "not end within 105 s of SIGINT")
            if killed:
                log("ephemera in %s: exit report within 15 s, process killed after %.1f s"
                    % (self.ns, time.monotonic() - started))
            else:
                self._log_left_behind()
            return
        log("ephemera in %s: exit report within 15 s, process gone after %.1f s "
            "(the kernel closing its af_packet sockets)" % (self.ns, time.monotonic() - started))

    def thread_report(self):
        """Where every thread of a running ephemera is, in the kernel and, when gdb is here, in
        its own code, and what the kernel said of stalls lately: what a test prints when the
        process stops answering. Each part is logged as soon as it is had, so that it is in the
        test's output even if the test is killed for its time while the next is gathered."""
        if self.proc is None or self.proc.poll() is not None:
            return "  (not running)"
        report = "  kernel stacks:\n" + self._kernel_stacks()
        report += "\n  kernel messages of stalls (dmesg):\n" + kernel_stall_messages()
        log("ephemera in %s does not answer; its threads:\n%s" % (self.ns, report))
        if shutil.which("gdb"):
            try:
                cp = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-nx",
                                     "-ex", "thread apply all bt 12"],
                                    capture_output=True, text=True, timeout=20)
                stacks = "\n".join("    " + line for line in cp.stdout.splitlines()
                                   if line.startswith(("Thread ", "#")))
            except subprocess.TimeoutExpired:
                stacks = "    (gdb did not attach within 20 s)"
            log("  user stacks (gdb):\n" + stacks)
            report += "\n  user stacks (gdb):\n" + stacks
        return report

    def _kernel_stacks(self):
        return kernel_stacks(self.proc.pid)

    def _kill_and_reap(self, timeout):
        """SIGKILL and a wait of `timeout` s; False when the process is still there. One stuck
        in the kernel (uninterruptible) ends only when the kernel lets it, and a test must not
        hang on it."""
        self.proc.kill()
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _log_left_behind(self):
        log("ephemera in %s (pid %d) still there 10 s after SIGKILL; left behind:\n%s" % (
            self.ns, self.proc.pid, self._kernel_stacks()))

    def _teardown_only(self):
        """The stats JSON is written after the workers stopped and the exit report was printed,
        just before the EAL's clean-up: when it is there and whole, ephemera's own stop is done."""
        try:
            with open(self.stats_json) as f:
                json.load(f)
            return True
        except (OSError, ValueError):
            return False

    def kill(self):
        """SIGKILL, as a crash or a power cut: no exit report, no state written. Returns the
        exit status."""
        check(self.proc is not None, "ephemera in %s is not running" % self.ns)
        killed = time.monotonic()
        if not self._kill_and_reap(15):
            # A dying box's workers wait in packet_release for RCU grace periods, which some
            # hosts stretch to tens of seconds: where they wait, for whoever reads a slow run.
            log("ephemera in %s still there 15 s after SIGKILL; where its threads are:\n%s" % (
                self.ns, self._kernel_stacks()))
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                raise TestFailure("ephemera in %s still there 105 s after SIGKILL:\n%s" % (
                    self.ns, self._kernel_stacks()))
            log("ephemera in %s gone %.1f s after SIGKILL" % (self.ns, time.monotonic() - killed))
        self.logf.close()
        self.output = self.read_log()
        rc = self.proc.returncode
        self.proc = None
        log("ephemera in %s killed (exit status %d)" % (self.ns, rc))
        return rc

    def cleanup(self):
        if self.proc is not None:
            try:
                self.stop(expect_clean=False)
            except Exception as e:  # cleanup must go on
                log("ephemera cleanup: %s" % e)
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree("/var/run/dpdk/%s" % self.prefix, ignore_errors=True)


def cleanup_together(ephs):
    """Cleans up several boxes, all interrupted before any is waited for: a stop's slow part,
    the kernel closing af_packet sockets, then runs for all boxes at once, not one after the
    other."""
    for eph in ephs:
        with contextlib.suppress(Exception):
            eph.interrupt()
    for eph in ephs:
        eph.cleanup()


def parse_mapping(line):
    """'udp 100.64.0.11:40000 -> 198.18.0.100:50001 sessions=1 worker=0' -> dict."""
    m = re.match(r"(\w+) ([\d.]+):(\d+) -> ([\d.]+):(\d+) sessions=(\d+) worker=(\d+)$", line)
    if not m:
        raise TestFailure("unparsable mapping line %r" % line)
    return {"proto": m.group(1), "inside": (m.group(2), int(m.group(3))),
            "external": (m.group(4), int(m.group(5))), "sessions": int(m.group(6)),
            "worker": int(m.group(7))}


# -------------------------------------------------------------------------------------- agents


class Agent:
    """peer.py agent in a namespace: UDP sockets driven by JSON lines."""

    def __init__(self, lab, node_ns):
        self.ns = node_ns
        self.proc = lab.popen(node_ns, [PYTHON, PEER, "agent"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=None, text=True, bufsize=1)
        hello = self._read(START_TIMEOUT)
        check(hello.get("ready"), "agent in %s did not start: %r" % (node_ns, hello))

    def _read(self, timeout):
        import select
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise TestFailure("agent in %s did not answer within %.0f s" % (self.ns, timeout))
        line = self.proc.stdout.readline()
        if not line:
            raise TestFailure("agent in %s exited (rc %s)" % (self.ns, self.proc.poll()))
        return json.loads(line)

    def call(self, op, **kw):
        kw["op"] = op
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()
        wait = float(kw.get("timeout", 0)) + float(kw.get("window", 0)) * 30 + 10
        reply = self._read(wait)
        check(reply.get("ok"), "agent in %s: %s failed: %s" % (self.ns, op, reply.get("error")))
        return reply

    def open(self, name, addr="0.0.0.0", port=0):
        return self.call("open", name=name, addr=addr, port=port)["port"]

    def send(self, name, to, data):
        self.call("send", name=name, to=list(to), data=data)

    def recv(self, name, timeout=2.0):
        r = self.call("recv", name=name, timeout=timeout)
        return None if r.get("timeout") else (tuple(r["from"]), r["data"])

    def drain(self, name, window=1.0):
        return [(tuple(d["from"]), d["data"]) for d in
                self.call("drain", name=name, window=window)["datagrams"]]

    def serve_echo(self, name):
        self.call("serve_echo", name=name)

    def seen(self, name):
        return [(tuple(d["from"]), d["data"]) for d in self.call("log", name=name)["datagrams"]]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=3)
            except Exception:
                self.proc.kill()
                self.proc.wait()


def udp_exchange(client, sock, to, data, timeout=3.0, tries=3):
    """Sends data from client's socket to `to` until the echo comes back; returns the echo text
    ("echo <external addr>:<port> <data>") and the address it came from."""
    for _ in range(tries):
        client.send(sock, to, data)
        got = client.recv(sock, timeout=timeout)
        while got is not None and not got[1].endswith(" " + data):
            got = client.recv(sock, timeout=timeout)  # a late echo of an earlier try
        if got is not None:
            return got
    raise TestFailure("no echo for %r sent to %s:%d" % (data, to[0], to[1]))


def parse_echo(text):
    """'echo 198.18.0.100:50001 payload' -> (('198.18.0.100', 50001), 'payload')."""
    m = re.match(r"echo ([\d.]+):(\d+) (.*)$", text, re.S)
    check(m is not None, "not an echo: %r" % text)
    return (m.group(1), int(m.group(2))), m.group(3)


# ------------------------------------------------------------------------------------- running


@contextlib.contextmanager
def lab_session(subscribers=1, router=False, ha=False, scale=False):
    lab = Lab(subscribers, router, ha, scale)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


@contextlib.contextmanager
def ephemera_session(binary, lab, workers=1, config_text=None, driver="af_packet", node="nat"):
    eph = Ephemera(binary, lab, workers, config_text, driver=driver, node=node)
    try:
        eph.start()
        yield eph
    except BaseException:
        log("---- ephemera log ----\n%s----------------------" % eph.read_log())
        raise
    finally:
        eph.cleanup()


def _on_signal(signum, frame):
    # Meson's timeout: say where the test was and whether the kernel reported stalls before
    # the cleanup runs (which may itself wait on a stalled kernel until meson kills it).
    log("terminated by signal %d in:\n%s\nkernel messages of stalls (dmesg):\n%s" % (
        signum, "".join(traceback.format_stack(frame)).rstrip(), kernel_stall_messages()))
    raise SystemExit("terminated by signal %d" % signum)


def main(tests, tools=()):
    """argv: TEST_NAME EPHEMERA_BINARY [TOOL...]. Each test is fn(binary, *tool_paths) and
    raises on failure; `tools` names the further binaries the module's tests take (meson passes
    their paths after ephemera's)."""
    if len(sys.argv) != 3 + len(tools) or sys.argv[1] not in tests:
        print("usage: %s {%s} EPHEMERA_BINARY%s" % (
            sys.argv[0], ",".join(sorted(tests)), "".join(" " + t.upper() for t in tools)),
            file=sys.stderr)
        return 2
    name, binary = sys.argv[1], os.path.abspath(sys.argv[2])
    extra = [os.path.abspath(a) for a in sys.argv[3:]]
    if os.geteuid() != 0:
        log("SKIP: network namespaces need root")
        return SKIP
    missing = [t for t in ("ip", "ethtool", "ping") if shutil.which(t) is None]
    if missing:
        log("SKIP: missing tools %s (scripts/install-deps.sh installs them)" % missing)
        return SKIP
    for what, path in [("ephemera", binary)] + list(zip(tools, extra)):
        if not os.access(path, os.X_OK):
            log("FAIL: %s binary %s not found" % (what, path))
            return 1
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    start = time.monotonic()
    try:
        tests[name](binary, *extra)
    except TestFailure as e:
        log("FAIL %s: %s" % (name, e))
        return 1
    log("PASS %s (%.1f s)" % (name, time.monotonic() - start))
    return 0
