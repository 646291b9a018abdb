"""Real NAT event log collectors for the namespace labs: rsyslog for syslog, pmacct's nfacctd
for IPFIX, and tshark for what went over the wire.

Each fixture is a context manager that starts its daemon inside a given network namespace
(`ip netns exec NS ...`, which execs the daemon, so the process we hold is the daemon itself),
polls until it listens, and on exit stops it and removes its temporary directory, on every exit
path (an exception in the `with` body included). A module-level atexit hook also stops, and
removes the files of, any fixture still running when the interpreter exits.

    with Rsyslog(ns, "198.18.0.2") as syslog, IpfixCollector(ns, "198.18.0.2") as ipfix:
        ...  # make ephemera log
        syslog.wait_for(2, timeout=5)     # -> [{"msgid": "mapping-create", "event": ..., ...}]
        ipfix.wait_for(1, timeout=5)      # -> [{"nat_event": 8, "src_addr": ..., ...}]

Fixtures:
    Rsyslog(ns, address, udp_port=514, tcp_port=601)
        .messages() -> [dict], .wait_for(predicate_or_count, timeout) -> [dict], .raw() -> str
    IpfixCollector(ns, address, port=4739, transport="udp" | "tcp")
        .records() -> [dict], .wait_for(predicate_or_count, timeout) -> [dict],
        .framing_errors() -> [str] (tcp only)
    TsharkCapture(ns, iface, filter, path)
        .stop(); TsharkCapture.decode(pcap, decode_as="udp.port==4739,cflow") -> [dict]
    Prometheus(ns, target, port=9090)
        .query(promql) -> [{"metric": {...}, "value": float}], .value(promql) -> float or None
"""

import atexit
import calendar
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from nslab import TestFailure, log, wait_until  # noqa: E402

PYTHON = "/usr/bin/python3"
RSYSLOGD = "/usr/sbin/rsyslogd"
NFACCTD = "/usr/sbin/nfacctd"
TSHARK = "/usr/bin/tshark"
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"

SD_ID = "nat@32473"  # the structured data element ephemera's syslog messages carry

# Every fixture made and not cleaned up yet (its daemon may run, its temp directory exists),
# for the atexit hook.
_running = set()


def _stop_all():
    for fixture in list(_running):
        fixture.cleanup()


atexit.register(_stop_all)


def _listening(ns, proto, address, port):
    """True when a socket in namespace `ns` listens on (UDP: is bound to) address:port."""
    cp = subprocess.run(["ip", "netns", "exec", ns, "ss", "-H", "-n", "-l",
                         "-u" if proto == "udp" else "-t", "sport = :%d" % port],
                        capture_output=True, text=True, timeout=10)
    wanted = ("%s:%d" % (address, port), "0.0.0.0:%d" % port, "*:%d" % port)
    return any(line.split()[3] in wanted for line in cp.stdout.splitlines()
               if len(line.split()) > 3)


def _children(pid):
    """The direct children of `pid` (pmacct forks its plugins; they must go too)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it has exited, only its parent has not reaped it yet.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class _Daemon:
    """One process in a namespace plus its temp directory; the fixtures build on it."""

    name = "daemon"

    def __init__(self, ns):
        self.ns = ns
        self.proc = None
        self.tmp = tempfile.mkdtemp(prefix="ephemera-%s-" % self.name)
        self.out_path = os.path.join(self.tmp, "%s.out" % self.name)
        self._out = None
        _running.add(self)

    def _spawn(self, argv, ready, timeout=15.0):
        """Starts argv in the namespace; `ready()` is polled until true (or the process dies)."""
        self._out = open(self.out_path, "w")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns] + argv,
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT)
        ok = wait_until(lambda: self.proc.poll() is not None or ready(), timeout)
        if self.proc.poll() is not None or not ok:
            why = ("exited %d" % self.proc.returncode if self.proc.returncode is not None
                   else "not ready in %.0f s" % timeout)
            self.stop()
            raise TestFailure("%s in %s did not start (%s):\n%s" % (
                self.name, self.ns, why, self.output()))

    def output(self):
        try:
            with open(self.out_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM):
        """Stops the daemon and the children it forked; idempotent. A signal that interrupts
        the wait (meson's timeout) still leaves nothing running."""
        if self.proc is not None and self.proc.poll() is None:
            kids = _children(self.proc.pid)
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
                # Children notice their parent is gone on their own; SIGKILL any that do not.
                if not wait_until(lambda: not any(_alive(k) for k in kids), 5):
                    for k in kids:
                        if _alive(k):
                            os.kill(k, signal.SIGKILL)
        if self._out is not None:
            self._out.close()
            self._out = None

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            _running.discard(self)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            log("---- %s output (%s) ----\n%s" % (self.name, self.ns, self.output()))
        self.cleanup()
        return False

    def wait_for(self, predicate_or_count, timeout=5.0):
        """Polls until the stored items (self._items()) number at least N (an int) or satisfy
        the predicate (called with the list); returns them, or raises TestFailure with what was
        there at the deadline."""
        if isinstance(predicate_or_count, int):
            n = predicate_or_count
            predicate = lambda items: len(items) >= n  # noqa: E731
        else:
            predicate = predicate_or_count
        seen = []

        def poll():
            seen[:] = self._items()
            return predicate(seen)

        if not wait_until(poll, timeout, interval=0.1):
            raise TestFailure("%s in %s: condition not met within %.1f s; stored %d: %s" % (
                self.name, self.ns, timeout, len(seen), seen))
        return list(seen)


# ---------------------------------------------------------------------------------- rsyslog


# One line per message, fields separated by tabs. rsyslog escapes control characters it
# receives (a tab becomes #011, a newline #012), so a tab here always separates fields; the
# msg goes last anyway. timereported is the sender's TIMESTAMP, printed in RFC 3339.
RSYSLOG_TEMPLATE = ("%msgid%\\t%timereported:::date-rfc3339%\\t%hostname%\\t%app-name%\\t"
                    "%procid%\\t%pri%\\t%structured-data%\\t%msg%\\n")

_SD_ELEMENT = re.compile(r'\[%s((?:\s+[^=\s\]]+="(?:[^"\\]|\\.)*")*)\s*\]' % re.escape(SD_ID))
_SD_PARAM = re.compile(r'([^=\s\]]+)="((?:[^"\\]|\\.)*)"')


def parse_sd(sd):
    """The params of the [nat@32473 ...] element in an RFC 5424 STRUCTURED-DATA string, as a
    dict, with the \\" \\\\ \\] escapes of RFC 5424 6.3.3 undone; {} when there is none."""
    m = _SD_ELEMENT.search(sd)
    if not m:
        return {}
    return {k: re.sub(r'\\(["\\\]])', r"\1", v) for k, v in _SD_PARAM.findall(m.group(1))}


class Rsyslog(_Daemon):
    """rsyslogd listening on UDP and TCP at `address` in namespace `ns`, writing every message
    it receives to one file, one line each.

    Only imudp and imtcp are loaded: no imuxsock, imjournal or imklog, so the host's own logs
    never reach it. Both inputs use rsyslog's default parser chain, which recognises RFC 5424.
    imtcp accepts RFC 6587 octet-counted framing by default (SupportOctetCountedFraming="on";
    a frame that starts with a digit is octet-counted, anything else is LF-delimited), which the
    self-test checks with a frame whose message contains an LF.

    messages() -> [{"msgid", "time" (RFC 3339, as the sender reported it), "hostname",
    "app_name", "procid", "pri" (int), "sd" (the whole STRUCTURED-DATA), every param of the
    [nat@32473 ...] element (event, worker, proto, inside, outside, ...), "msg"}]. The
    SD params never override the fixed keys above: a param with one of their names is stored
    as "sd.NAME".
    """

    name = "rsyslogd"

    def __init__(self, ns, address, udp_port=514, tcp_port=601):
        super().__init__(ns)
        self.address, self.udp_port, self.tcp_port = address, udp_port, tcp_port
        self.conf_path = os.path.join(self.tmp, "rsyslog.conf")
        self.pid_path = os.path.join(self.tmp, "rsyslogd.pid")
        self.log_path = os.path.join(self.tmp, "messages.log")

    def config(self):
        return "\n".join([
            'global(workDirectory="%s")' % self.tmp,
            'module(load="imudp")',
            'module(load="imtcp")',
            'input(type="imudp" address="%s" port="%d")' % (self.address, self.udp_port),
            'input(type="imtcp" address="%s" port="%d")' % (self.address, self.tcp_port),
            'template(name="natline" type="string" string="%s")' % RSYSLOG_TEMPLATE,
            # Only what came over the network: rsyslogd's own notices (input "rsyslogd") stay
            # out. Flushed at the end of every batch, so messages() sees a message at once.
            'if $inputname == "imudp" or $inputname == "imtcp" then',
            '  action(type="omfile" file="%s" template="natline" flushOnTXEnd="on")'
            % self.log_path,
            "",
        ])

    def start(self):
        with open(self.conf_path, "w") as f:
            f.write(self.config())
        self._spawn([RSYSLOGD, "-n", "-f", self.conf_path, "-i", self.pid_path],
                    lambda: _listening(self.ns, "udp", self.address, self.udp_port) and
                    _listening(self.ns, "tcp", self.address, self.tcp_port))
        log("rsyslogd in %s on %s udp/%d tcp/%d" % (self.ns, self.address, self.udp_port,
                                                      self.tcp_port))
        return self

    def raw(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def messages(self):
        out = []
        # A line without its LF yet is being written; the next call gets it whole.
        for line in self.raw().split("\n")[:-1]:
            parts = line.split("\t", 7)
            if len(parts) != 8:
                raise TestFailure("rsyslog wrote an unexpected line %r" % line)
            msgid, when, host, app, procid, pri, sd, msg = parts
            m = {"msgid": msgid, "time": when, "hostname": host, "app_name": app,
                 "procid": procid, "pri": int(pri), "sd": sd, "msg": msg}
            for k, v in parse_sd(sd).items():
                m["sd." + k if k in m else k] = v
            out.append(m)
        return out

    _items = messages


# ---------------------------------------------------------------------------------- nfacctd


# pmacct has no built-in primitives for RFC 8158's port range IEs or for a plain millisecond
# timestamp; custom primitives (aggregate_primitives) read them straight from the IPFIX
# records by element id.
NFACCTD_PRIMITIVES = """\
name=port_range_start field_type=361 len=2 semantics=u_int
name=port_range_end field_type=362 len=2 semantics=u_int
name=port_range_step field_type=363 len=2 semantics=u_int
name=port_range_num field_type=364 len=2 semantics=u_int
name=obs_time_ms field_type=323 len=8 semantics=u_int
"""
NFACCTD_AGGREGATE = ("peer_src_ip, export_proto_sysid, export_proto_seqno, nat_event, "
                     "src_host, post_nat_src_host, proto, src_port, post_nat_src_port, "
                     "timestamp_start, port_range_start, port_range_end, port_range_step, "
                     "port_range_num, obs_time_ms")


class IpfixCollector(_Daemon):
    """pmacct's nfacctd (1.7.7) storing the IPFIX records it receives at address:port in
    namespace `ns`, through its print plugin, as JSON lines, flushed every second.

    Why nfacctd: of Debian 12's collectors it is the one that keeps every RFC 8158 field
    ephemera sends. nfdump's nfcapd 1.7.1 stores natEvent, the addresses, the ports, the
    protocol and the event time, but drops portRangeStart/End/StepSize/NumPorts (nfdump prints
    0 for %pbstart etc.), and its JSON output loses the leading zeros of the milliseconds
    ("...:29.49" for .049). nfacctd maps natEvent, postNATSourceIPv4Address and
    postNAPTSourceTransportPort to its nat_event, post_nat_src_host and post_nat_src_port
    primitives, observationTimeMilliseconds to timestamp_start, and reads the port range IEs
    (361-364) and the raw observationTimeMilliseconds (323) as custom primitives.

    TCP: no Debian collector takes IPFIX over TCP. nfcapd 1.7.1 and nfacctd 1.7.7 listen on
    UDP only (nfacctd's other transport, DTLS, needs a gnutls build that Debian does not
    ship). With transport="tcp" the fixture puts a small relay in front of nfacctd: it accepts
    TCP connections at address:port, cuts the stream into IPFIX messages by the header's
    length field (RFC 7011 10.4.2), and forwards each message as one UDP datagram to nfacctd
    on 127.0.0.1:port in the same namespace (so the namespace's lo must be up, as in the labs).
    The relay checks version 10 and a length of at least 16, records what it refuses
    (framing_errors()) and drops that connection. nfacctd then sees 127.0.0.1 as the exporter
    ("exporter"), from one UDP socket per TCP connection; two TCP exporters that use the same
    observation domain would share nfacctd's template space.

    pmacct aggregates: records with exactly the same stored fields that arrive within one
    second are printed once. With the export sequence number and the millisecond time among
    the fields, only true duplicates merge.

    records() -> [{"nat_event" (int), "src_addr", "src_port", "post_nat_addr",
    "post_nat_port", "proto" (int; 0 when the record carries none), "port_range_start",
    "port_range_end", "port_range_step", "port_range_num" (ints; 0 when absent),
    "time_ms" (observationTimeMilliseconds, int), "timestamp_start" (RFC 3339), "exporter",
    "domain" (observation domain id), "seqno" (the message's sequence number)}]
    """

    name = "nfacctd"

    def __init__(self, ns, address, port=4739, transport="udp"):
        if transport not in ("udp", "tcp"):
            raise ValueError("transport must be 'udp' or 'tcp', not %r" % transport)
        super().__init__(ns)
        self.address, self.port, self.transport = address, port, transport
        self.conf_path = os.path.join(self.tmp, "nfacctd.conf")
        self.prim_path = os.path.join(self.tmp, "primitives.lst")
        self.pid_path = os.path.join(self.tmp, "nfacctd.pid")
        self.json_path = os.path.join(self.tmp, "records.json")
        self.relay = None

    def config(self, bind):
        return "\n".join([
            "daemonize: false",
            "nfacctd_ip: %s" % bind,
            "nfacctd_port: %d" % self.port,
            "pidfile: %s" % self.pid_path,
            "aggregate_primitives: %s" % self.prim_path,
            "plugins: print[nat]",
            "aggregate[nat]: %s" % NFACCTD_AGGREGATE,
            "print_output[nat]: json",
            "print_output_file[nat]: %s" % self.json_path,
            "print_output_file_append[nat]: true",
            "print_refresh_time[nat]: 1",
            "timestamps_rfc3339: true",
            "timestamps_utc: true",
            # protocols as numbers, as in the IPFIX record, not names
            "print_num_protos[nat]: true",
            "",
        ])

    def start(self):
        # In TCP mode nfacctd listens on loopback only: the relay is its sole exporter.
        bind = self.address if self.transport == "udp" else "127.0.0.1"
        with open(self.prim_path, "w") as f:
            f.write(NFACCTD_PRIMITIVES)
        with open(self.conf_path, "w") as f:
            f.write(self.config(bind))
        self._spawn([NFACCTD, "-f", self.conf_path],
                    lambda: _listening(self.ns, "udp", bind, self.port))
        if self.transport == "tcp":
            self.relay = _IpfixTcpRelay(self.ns, self.address, self.port)
            try:
                self.relay.start()
            except BaseException:
                self.relay.cleanup()
                raise
        log("nfacctd in %s on %s %s/%d" % (self.ns, self.address, self.transport, self.port))
        return self

    def stop(self, sig=signal.SIGINT):
        # nfacctd's core blocks SIGTERM while it waits for a datagram and acts on it only when
        # the next one arrives; SIGINT it handles at once (it flushes and exits in ~2 s).
        super().stop(sig)

    def cleanup(self):
        try:
            if self.relay is not None:
                self.relay.cleanup()
        finally:
            super().cleanup()

    def framing_errors(self):
        return self.relay.errors() if self.relay is not None else []

    def records(self):
        try:
            with open(self.json_path) as f:
                lines = f.read().splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            # A line being written as we read is incomplete; the next poll gets it whole.
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("event_type") != "purge":
                continue
            out.append({
                "nat_event": int(r.get("nat_event", 0)),
                "src_addr": r.get("ip_src"),
                "src_port": int(r.get("port_src", 0)),
                "post_nat_addr": r.get("post_nat_ip_src"),
                "post_nat_port": int(r.get("post_nat_port_src", 0)),
                "proto": int(r.get("ip_proto", 0)),
                "port_range_start": int(r.get("port_range_start", 0)),
                "port_range_end": int(r.get("port_range_end", 0)),
                "port_range_step": int(r.get("port_range_step", 0)),
                "port_range_num": int(r.get("port_range_num", 0)),
                "time_ms": int(r.get("obs_time_ms", 0)),
                "timestamp_start": r.get("timestamp_start"),
                "exporter": r.get("peer_ip_src"),
                "domain": int(r.get("export_proto_sysid", 0)),
                "seqno": int(r.get("export_proto_seqno", 0)),
            })
        return out

    _items = records


class _IpfixTcpRelay(_Daemon):
    """The TCP front of IpfixCollector(transport="tcp"): this file run as
    `collectors.py ipfix-tcp-relay ADDRESS PORT ERRORS_FILE` in the namespace."""

    name = "ipfix-tcp-relay"

    def __init__(self, ns, address, port):
        super().__init__(ns)
        self.address, self.port = address, port
        self.errors_path = os.path.join(self.tmp, "errors")

    def start(self):
        self._spawn([PYTHON, os.path.abspath(__file__), "ipfix-tcp-relay", self.address,
                     str(self.port), self.errors_path],
                    lambda: _listening(self.ns, "tcp", self.address, self.port))

    def errors(self):
        try:
            with open(self.errors_path) as f:
                return f.read().splitlines()
        except OSError:
            return []


def _relay_main(address, port, errors_path):
    """Accepts IPFIX over TCP, forwards each message over UDP to 127.0.0.1:port."""
    lock = threading.Lock()

    def error(text):
        with lock, open(errors_path, "a") as f:
            f.write(text + "\n")

    def read_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None if not buf else buf  # EOF; a partial read is a framing error
            buf += chunk
        return buf

    def serve(conn, peer):
        # One UDP socket per connection, so that each exporter is a source of its own.
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            while True:
                head = read_exact(conn, 16)
                if head is None:
                    return
                if len(head) < 16:
                    error("%s:%d: stream ends inside a message header" % peer)
                    return
                version, length = struct.unpack("!HH", head[:4])
                if version != 10 or length < 16:
                    error("%s:%d: bad message header version=%d length=%d" % (
                        peer + (version, length)))
                    return
                rest = read_exact(conn, length - 16) if length > 16 else b""
                if rest is None or len(rest) < length - 16:
                    error("%s:%d: stream ends inside a message" % peer)
                    return
                udp.sendto(head + rest, ("127.0.0.1", port))
        finally:
            udp.close()
            conn.close()

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((address, port))
    srv.listen(16)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        conn, peer = srv.accept()
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()


# ----------------------------------------------------------------------------------- tshark


class TsharkCapture(_Daemon):
    """tshark capturing on `iface` in namespace `ns` with capture filter `filter`, into `path`
    (which the caller owns: it is kept after stop()). Ready once tshark says "Capturing on".

    decode(pcap, decode_as) -> [dict]: every IPFIX data record in the capture, as tshark 4.0
    names its fields (values as tshark prints them, strings), plus the record's message header
    ("cflow.sequence", "cflow.od_id", "cflow.exporttime") and set ("cflow.flowset_id"), and
    "frame" (the frame number). Field names tshark 4.0.17 uses for the IEs ephemera sends:
        natEvent (230)                     cflow.nat_event
        sourceIPv4Address (8)              cflow.srcaddr
        postNATSourceIPv4Address (225)     cflow.post_natsource_ipv4_address
        protocolIdentifier (4)             cflow.protocol
        sourceTransportPort (7)            cflow.srcport
        postNAPTSourceTransportPort (227)  cflow.post_naptsource_transport_port
        portRangeStart (361)               cflow.port_range_start
        portRangeEnd (362)                 cflow.port_range_end
        portRangeStepSize (363)            cflow.port_range_step_size
        portRangeNumPorts (364)            cflow.port_range_num_ports
        observationTimeMilliseconds (323)  cflow.observation_time_milliseconds
                                           ("Dec  5, 2026 23:59:05.960000000 UTC": time_ms())
    tshark 4.0 dissects IPFIX (cflow) on UDP and on TCP port 4739 by default; another port
    needs decode_as ("udp.port==PORT,cflow", "tcp.port==PORT,cflow", or a list of them; None
    for none). Over TCP it reassembles the stream and finds the messages in it itself, also
    when one segment carries two or a message spans two.
    """

    name = "tshark"

    def __init__(self, ns, iface, filter, path):
        super().__init__(ns)
        self.iface, self.filter, self.path = iface, filter, path

    def start(self):
        self._spawn([TSHARK, "-n", "-i", self.iface, "-w", self.path, "-f", self.filter],
                    lambda: "Capturing on" in self.output())
        log("tshark in %s on %s (%s) -> %s" % (self.ns, self.iface, self.filter, self.path))
        return self

    def stop(self, sig=signal.SIGINT):
        # SIGINT: tshark stops dumpcap, which writes out what it has and closes the file.
        super().stop(sig)

    @staticmethod
    def decode(pcap, decode_as="udp.port==4739,cflow"):
        argv = [TSHARK, "-n", "-r", pcap, "-T", "json"]
        for d in [decode_as] if isinstance(decode_as, str) else (decode_as or []):
            argv += ["-d", d]
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, TZ="UTC"))
        if cp.returncode != 0:
            raise TestFailure("tshark -r %s exited %d: %s" % (pcap, cp.returncode, cp.stderr))
        records = []
        for packet in json.loads(cp.stdout or "[]", object_pairs_hook=_keep_duplicates):
            layers = packet["_source"]["layers"]
            frame = int(_first(layers["frame"])["frame.number"])
            messages = layers.get("cflow", [])
            for msg in messages if isinstance(messages, list) else [messages]:
                header = {k: msg[k] for k in ("cflow.sequence", "cflow.od_id") if k in msg}
                header["cflow.exporttime"] = msg.get("cflow.timestamp_tree", {}).get(
                    "cflow.exporttime")
                for key, s in msg.items():
                    if not key.startswith("Set ") or not isinstance(s, dict):
                        continue
                    for fkey, flow in s.items():
                        if fkey.startswith("Flow ") and isinstance(flow, dict):
                            rec = dict(header, frame=frame)
                            rec["cflow.flowset_id"] = s.get("cflow.flowset_id")
                            rec.update(flow)
                            records.append(rec)
        return records


def time_ms(text):
    """tshark's absolute time ("Dec  5, 2026 23:59:05.960000000 UTC") in ms since the epoch."""
    m = re.match(r"(\w{3})\s+(\d+), (\d+) (\d+):(\d+):(\d+)\.(\d+) UTC$", text)
    if not m:
        raise TestFailure("not a tshark UTC time: %r" % text)
    month = time.strptime(m.group(1), "%b").tm_mon
    secs = calendar.timegm((int(m.group(3)), month, int(m.group(2)), int(m.group(4)),
                            int(m.group(5)), int(m.group(6))))
    return secs * 1000 + int(m.group(7).ljust(9, "0")[:3])


def _keep_duplicates(pairs):
    """tshark's JSON repeats a key when a field occurs twice in one tree (two IPFIX messages
    in one TCP segment); keep them all, as a list, instead of the last."""
    grouped = {}
    for k, v in pairs:
        grouped.setdefault(k, []).append(v)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


def _first(v):
    return v[0] if isinstance(v, list) else v


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "ipfix-tcp-relay":
        _relay_main(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        print("usage: %s ipfix-tcp-relay ADDRESS PORT ERRORS_FILE" % sys.argv[0],
              file=sys.stderr)
        sys.exit(2)


# ------------------------------------------------------------------------------- prometheus


class Prometheus(_Daemon):
    """A Prometheus server of its own: its config, its TSDB in the fixture's temp directory, and
    its port on 127.0.0.1 in namespace `ns` (a lab namespace is new, so no other Prometheus,
    such as the Debian package's service on the host's :9090, holds the port there). It scrapes
    `target` ("ADDRESS:PORT", job "ephemera") every second. Queries go through curl in the
    namespace to the HTTP API (/api/v1/query)."""

    name = "prometheus"

    def __init__(self, ns, target, port=9090):
        super().__init__(ns)
        self.target = target
        self.port = port
        self.conf_path = os.path.join(self.tmp, "prometheus.yml")
        self.data = os.path.join(self.tmp, "data")

    def config(self):
        return "\n".join([
            "global:",
            "  scrape_interval: 1s",
            "  scrape_timeout: 1s",
            "  evaluation_interval: 1s",
            "scrape_configs:",
            "  - job_name: ephemera",
            "    static_configs:",
            '      - targets: ["%s"]' % self.target,
            "",
        ])

    def start(self):
        if not os.access(PROMETHEUS, os.X_OK):
            raise TestFailure("%s not found: install Debian's prometheus package "
                              "(scripts/install-deps.sh installs it)" % PROMETHEUS)
        with open(self.conf_path, "w") as f:
            f.write(self.config())
        self._spawn([PROMETHEUS, "--config.file=" + self.conf_path,
                     "--storage.tsdb.path=" + self.data,
                     "--web.listen-address=127.0.0.1:%d" % self.port,
                     "--log.level=warn"],
                    lambda: _listening(self.ns, "tcp", "127.0.0.1", self.port) and
                    self._get("/-/ready")[0] == 0, timeout=30)
        log("prometheus in %s on 127.0.0.1:%d, scraping %s" % (self.ns, self.port, self.target))
        return self

    def _get(self, path, params=()):
        argv = ["ip", "netns", "exec", self.ns, "curl", "-sS", "--max-time", "5", "-G"]
        for k, v in params:
            argv += ["--data-urlencode", "%s=%s" % (k, v)]
        argv.append("http://127.0.0.1:%d%s" % (self.port, path))
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=15)
        return cp.returncode, cp.stdout + cp.stderr

    def query(self, promql):
        """The instant vector `promql` evaluates to now."""
        rc, out = self._get("/api/v1/query", [("query", promql)])
        if rc != 0:
            raise TestFailure("prometheus query %r: curl exited %d: %s" % (promql, rc, out))
        reply = json.loads(out)
        if reply.get("status") != "success":
            raise TestFailure("prometheus query %r: %s" % (promql, reply))
        data = reply["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": float(data["result"][1])}]
        return [{"metric": r["metric"], "value": float(r["value"][1])} for r in data["result"]]

    def value(self, promql):
        """The one value `promql` evaluates to, or None when the vector is empty."""
        result = self.query(promql)
        if len(result) > 1:
            raise TestFailure("prometheus query %r: %d series, expected one: %s" % (
                promql, len(result), result))
        return result[0]["value"] if result else None
