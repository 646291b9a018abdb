#!/usr/bin/python3
"""Proves the collector fixtures of collectors.py without ephemera: two namespaces joined by a
veth pair, the collectors in one, and from the other hand-made syslog messages (UDP, and TCP
with RFC 6587 octet counting) and IPFIX messages (RFC 7011 with RFC 8158 NAT44 records, UDP
and TCP). Each check compares what a collector stored, or what tshark decoded, with what was
sent, field by field.

    /usr/bin/python3 tests/netns/collectors_selftest.py      (as root; exit 77 otherwise)

Prints one PASS/FAIL line per check and "N passed, N failed"; exits 0 when none failed. The
namespaces (clx<pid>-col, clx<pid>-snd) and the veth are removed on every exit path.
"""

import atexit
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from collectors import IpfixCollector, Rsyslog, TsharkCapture, time_ms  # noqa: E402
from nslab import TestFailure, check, log  # noqa: E402

SKIP = 77
PREFIX = "clx%d" % os.getpid()  # unique to this run: nothing else is ever touched
NS_COL = PREFIX + "-col"        # collectors
NS_SND = PREFIX + "-snd"        # the exporter's stand-in
VETH_COL, VETH_SND = "cx%dc" % os.getpid(), "cx%ds" % os.getpid()
COL_ADDR, SND_ADDR = "198.18.200.1", "198.18.200.2"

# ----------------------------------------------------------------------------- the namespaces


def sh(*argv, check_rc=True):
    cp = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if check_rc and cp.returncode != 0:
        raise TestFailure("%s exited %d: %s" % (" ".join(argv), cp.returncode, cp.stderr))
    return cp


def lab_up():
    sh("ip", "netns", "add", NS_COL)
    sh("ip", "netns", "add", NS_SND)
    sh("ip", "link", "add", VETH_COL, "netns", NS_COL, "type", "veth",
       "peer", "name", VETH_SND, "netns", NS_SND)
    for ns, dev, addr in ((NS_COL, VETH_COL, COL_ADDR), (NS_SND, VETH_SND, SND_ADDR)):
        sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")  # the TCP IPFIX relay forwards over lo
    log("namespaces %s and %s up, %s <-> %s" % (NS_COL, NS_SND, COL_ADDR, SND_ADDR))


def lab_down():
    # Deleting a namespace deletes the veth end in it, and with it the pair. Only our names.
    names = sh("ip", "netns", "list", check_rc=False).stdout.split()
    for ns in (NS_COL, NS_SND):
        if ns in names:
            sh("ip", "netns", "del", ns, check_rc=False)


def send(proto, port, payloads, gap=0.0):
    """Sends `payloads` (bytes) from the sender namespace to the collector address: each as one
    datagram (udp), or in order over one connection, one write each (tcp). Runs this file in
    `send` mode inside the namespace."""
    req = json.dumps({"proto": proto, "host": COL_ADDR, "port": port, "gap": gap,
                      "payloads": [base64.b64encode(p).decode() for p in payloads]})
    cp = subprocess.run(["ip", "netns", "exec", NS_SND, sys.executable,
                         os.path.abspath(__file__), "send"], input=req, capture_output=True,
                        text=True, timeout=30)
    check(cp.returncode == 0, "sending from %s failed: %s" % (NS_SND, cp.stderr))


def send_main():
    req = json.load(sys.stdin)
    payloads = [base64.b64decode(p) for p in req["payloads"]]
    dest = (req["host"], req["port"])
    if req["proto"] == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for p in payloads:
            s.sendto(p, dest)
            time.sleep(req["gap"])
    else:
        s = socket.create_connection(dest, timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one write, one segment
        for p in payloads:
            s.sendall(p)
            time.sleep(req["gap"])
        s.shutdown(socket.SHUT_WR)
        s.recv(1)  # wait for the receiver's close, so nothing is cut off in flight
    s.close()


# ---------------------------------------------------------------------------------- syslog


def rfc5424(msgid, sd, msg, when="2026-12-05T23:59:05.960Z", host="nat1", procid="4242"):
    """An RFC 5424 line as ephemera will send it: local0.info, app ephemera."""
    params = " ".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"')
                                    .replace("]", "\\]")) for k, v in sd.items())
    return ("<134>1 %s %s ephemera %s %s [nat@32473 %s] %s" % (
        when, host, procid, msgid, params, msg)).encode()


def octet_counted(frame):
    """RFC 6587 3.4.1: MSG-LEN SP SYSLOG-MSG."""
    return b"%d %s" % (len(frame), frame)


SD_CREATE = {"event": "mapping-create", "worker": "0", "proto": "udp",
             "inside": "100.64.0.10:40000", "outside": "198.18.0.10:51234"}
SD_DELETE = {"event": "mapping-delete", "worker": "1", "proto": "tcp",
             "inside": "100.64.0.11:40001", "outside": "198.18.0.11:51235"}


def check_message(got, msgid, sd, msg, time_text, host="nat1"):
    check(got["msgid"] == msgid, "msgid %r, sent %r" % (got["msgid"], msgid))
    check(got["time"] == time_text, "time %r, expected %r" % (got["time"], time_text))
    check(got["hostname"] == host, "hostname %r, sent %r" % (got["hostname"], host))
    check(got["app_name"] == "ephemera" and got["procid"] == "4242" and got["pri"] == 134,
          "app/procid/pri %r" % got)
    for k, v in sd.items():
        check(got.get(k) == v, "SD param %s=%r, sent %r (%s)" % (k, got.get(k), v, got["sd"]))
    extra = set(got) - set(sd) - {"msgid", "time", "hostname", "app_name", "procid", "pri",
                                  "sd", "msg"}
    check(not extra, "SD params that were never sent: %s" % extra)
    check(got["msg"] == msg, "msg %r, sent %r" % (got["msg"], msg))


def test_syslog_udp():
    with Rsyslog(NS_COL, COL_ADDR, udp_port=5514, tcp_port=5601) as rs:
        send("udp", 5514, [rfc5424("mapping-create", SD_CREATE, "mapping created"),
                           rfc5424("mapping-delete", SD_DELETE, "mapping deleted",
                                   when="2026-12-05T23:59:06.001+01:00")])
        got = rs.wait_for(2, timeout=10)
        check(len(got) == 2, "2 messages sent, %d stored: %s" % (len(got), got))
        got.sort(key=lambda m: m["msgid"])
        # rsyslog prints the TIMESTAMP as the sender wrote it: fraction, Z or offset.
        check_message(got[0], "mapping-create", SD_CREATE, "mapping created",
                      "2026-12-05T23:59:05.960Z")
        check_message(got[1], "mapping-delete", SD_DELETE, "mapping deleted",
                      "2026-12-05T23:59:06.001+01:00")


def test_syslog_tcp_octet_counted():
    """Octet counting, not LF framing: a message with an LF inside stays one message, two
    frames in one write are two messages, and a frame split across writes is one."""
    sd_quoted = dict(SD_CREATE, note='a "quoted" \\ value]')
    frames = [octet_counted(rfc5424("mapping-create", SD_CREATE, "line one\nline two")),
              octet_counted(rfc5424("mapping-delete", SD_DELETE, "second")),
              octet_counted(rfc5424("mapping-create", sd_quoted, "escaped"))]
    with Rsyslog(NS_COL, COL_ADDR, udp_port=5514, tcp_port=5601) as rs:
        third = frames[2]
        send("tcp", 5601, [frames[0] + frames[1], third[:20], third[20:]], gap=0.2)
        got = rs.wait_for(3, timeout=10)
        time.sleep(0.5)  # anything LF framing would have split off arrives by now
        got = rs.messages()
        check(len(got) == 3, "3 frames sent, %d messages stored: %s" % (len(got), got))
        # rsyslog escapes the control characters it receives: the LF is kept as #012.
        check_message(got[0], "mapping-create", SD_CREATE, "line one#012line two",
                      "2026-12-05T23:59:05.960Z")
        check_message(got[1], "mapping-delete", SD_DELETE, "second",
                      "2026-12-05T23:59:05.960Z")
        check_message(got[2], "mapping-create", sd_quoted, "escaped",
                      "2026-12-05T23:59:05.960Z")


# ----------------------------------------------------------------------------------- IPFIX

# RFC 8158 natEvent codes
NAT44_BIB_CREATE = 8
PORT_BLOCK_ALLOCATION = 16

# (information element id, length): RFC 8158 table 4 (NAT44 BIB create) and table 14 (port
# block allocation), without the optional vrfId.
BIB_TEMPLATE = 256, [(323, 8), (230, 1), (8, 4), (225, 4), (4, 1), (7, 2), (227, 2)]
PBA_TEMPLATE = 257, [(323, 8), (230, 1), (8, 4), (225, 4), (361, 2), (362, 2), (363, 2),
                     (364, 2)]
DOMAIN = 7


def template_set(templates):
    body = b"".join(struct.pack("!HH", tid, len(fields)) +
                    b"".join(struct.pack("!HH", ie, n) for ie, n in fields)
                    for tid, fields in templates)
    return struct.pack("!HH", 2, 4 + len(body)) + body


def data_set(tid, records):
    body = b"".join(records)
    return struct.pack("!HH", tid, 4 + len(body)) + body


def message(sets, seq, export_time):
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), export_time, seq, DOMAIN) + body


def bib_record(r):
    return struct.pack("!QB4s4sBHH", r["time_ms"], NAT44_BIB_CREATE, socket.inet_aton(r["src"]),
                       socket.inet_aton(r["xsrc"]), r["proto"], r["sport"], r["xsport"])


def pba_record(r):
    return struct.pack("!QB4s4sHHHH", r["time_ms"], PORT_BLOCK_ALLOCATION,
                       socket.inet_aton(r["src"]), socket.inet_aton(r["xsrc"]), r["start"],
                       r["end"], r["step"], r["num"])


def ipfix_case(offset):
    """The records one transport sends, distinct per transport (`offset`), and the messages
    that carry them: templates alone, then one data record per message. The sequence number
    counts the data records sent before the message (RFC 7011 3.1)."""
    now_ms = int(time.time() * 1000)
    bib = {"time_ms": now_ms, "src": "100.64.0.%d" % (10 + offset),
           "xsrc": "198.18.0.%d" % (10 + offset), "proto": 17, "sport": 40000 + offset,
           "xsport": 51234 + offset}
    pba = {"time_ms": now_ms + 7, "src": "100.64.0.%d" % (20 + offset),
           "xsrc": "198.18.0.%d" % (20 + offset), "start": 1024 * (1 + offset),
           "end": 1024 * (1 + offset) + 511, "step": 1, "num": 512}
    t = now_ms // 1000
    msgs = [message([template_set([BIB_TEMPLATE, PBA_TEMPLATE])], 0, t),
            message([data_set(BIB_TEMPLATE[0], [bib_record(bib)])], 0, t),
            message([data_set(PBA_TEMPLATE[0], [pba_record(pba)])], 1, t)]
    return bib, pba, msgs


def check_stored(records, bib, pba, exporter):
    check(len(records) == 2, "2 data records sent, %d stored: %s" % (len(records), records))
    by_event = {r["nat_event"]: r for r in records}
    check(set(by_event) == {NAT44_BIB_CREATE, PORT_BLOCK_ALLOCATION},
          "natEvent values stored: %s" % sorted(by_event))
    want_bib = {"nat_event": NAT44_BIB_CREATE, "src_addr": bib["src"], "src_port": bib["sport"],
                "post_nat_addr": bib["xsrc"], "post_nat_port": bib["xsport"], "proto": 17,
                "port_range_start": 0, "port_range_end": 0, "port_range_step": 0,
                "port_range_num": 0, "time_ms": bib["time_ms"], "exporter": exporter,
                "domain": DOMAIN, "seqno": 0}
    want_pba = {"nat_event": PORT_BLOCK_ALLOCATION, "src_addr": pba["src"], "src_port": 0,
                "post_nat_addr": pba["xsrc"], "post_nat_port": 0, "proto": 0,
                "port_range_start": pba["start"], "port_range_end": pba["end"],
                "port_range_step": pba["step"], "port_range_num": pba["num"],
                "time_ms": pba["time_ms"], "exporter": exporter, "domain": DOMAIN, "seqno": 1}
    for want in (want_bib, want_pba):
        got = by_event[want["nat_event"]]
        diff = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
        check(not diff, "natEvent %d: stored != sent (stored, sent): %s" % (
            want["nat_event"], diff))
        # timestamp_start is observationTimeMilliseconds too, in RFC 3339 (UTC, microseconds)
        ms = want["time_ms"]
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + \
            ".%03d000Z" % (ms % 1000)
        check(got["timestamp_start"] == text, "timestamp_start %r, expected %r" % (
            got["timestamp_start"], text))


def check_decoded(records, bib, pba):
    """tshark's view of one transport's records: every field, by tshark's name."""
    check(len(records) == 2, "tshark decoded %d data records, 2 sent: %s" % (len(records),
                                                                            records))
    by_event = {int(r["cflow.nat_event"]): r for r in records}
    want = {
        NAT44_BIB_CREATE: {
            "cflow.nat_event": str(NAT44_BIB_CREATE), "cflow.srcaddr": bib["src"],
            "cflow.post_natsource_ipv4_address": bib["xsrc"], "cflow.protocol": "17",
            "cflow.srcport": str(bib["sport"]),
            "cflow.post_naptsource_transport_port": str(bib["xsport"]),
            "cflow.sequence": "0", "cflow.od_id": str(DOMAIN),
            "cflow.flowset_id": str(BIB_TEMPLATE[0])},
        PORT_BLOCK_ALLOCATION: {
            "cflow.nat_event": str(PORT_BLOCK_ALLOCATION), "cflow.srcaddr": pba["src"],
            "cflow.post_natsource_ipv4_address": pba["xsrc"],
            "cflow.port_range_start": str(pba["start"]), "cflow.port_range_end": str(pba["end"]),
            "cflow.port_range_step_size": str(pba["step"]),
            "cflow.port_range_num_ports": str(pba["num"]),
            "cflow.sequence": "1", "cflow.od_id": str(DOMAIN),
            "cflow.flowset_id": str(PBA_TEMPLATE[0])},
    }
    for event, fields in want.items():
        check(event in by_event, "tshark decoded no natEvent %d record" % event)
        got = by_event[event]
        diff = {k: (got.get(k), v) for k, v in fields.items() if got.get(k) != v}
        check(not diff, "natEvent %d: decoded != sent (decoded, sent): %s" % (event, diff))
        sent_ms = bib["time_ms"] if event == NAT44_BIB_CREATE else pba["time_ms"]
        got_ms = time_ms(got["cflow.observation_time_milliseconds"])
        check(got_ms == sent_ms, "observationTimeMilliseconds decoded %d, sent %d" % (
            got_ms, sent_ms))
        # Nothing decoded that was not sent (header and set fields aside)
        sent_fields = set(fields) | {"cflow.observation_time_milliseconds"}
        extra = {k for k in got if k.startswith("cflow.") and k not in sent_fields
                 and k not in ("cflow.exporttime",)} - {"cflow.flowset_length",
                                                        "cflow.template_frame"}
        check(not extra, "natEvent %d: decoded fields never sent: %s" % (event, extra))


class Context:
    pcap = None


def test_ipfix_udp(ctx):
    bib, pba, msgs = ipfix_case(0)
    ctx.udp_case = (bib, pba)
    with IpfixCollector(NS_COL, COL_ADDR, port=4739, transport="udp") as col:
        send("udp", 4739, msgs, gap=0.05)
        col.wait_for(2, timeout=10)
        time.sleep(1.5)  # one more print interval: a duplicate would show up now
        check_stored(col.records(), bib, pba, SND_ADDR)


def test_ipfix_tcp(ctx):
    bib, pba, msgs = ipfix_case(1)
    ctx.tcp_case = (bib, pba)
    # Templates in one write, both data messages in the next (two messages in one segment),
    # and a last template message split inside its header across two writes.
    tail = msgs[0]
    with IpfixCollector(NS_COL, COL_ADDR, port=4739, transport="tcp") as col:
        send("tcp", 4739, [msgs[0], msgs[1] + msgs[2], tail[:10], tail[10:]], gap=0.2)
        col.wait_for(2, timeout=10)
        time.sleep(1.5)
        check(col.framing_errors() == [], "relay framing errors: %s" % col.framing_errors())
        check_stored(col.records(), bib, pba, "127.0.0.1")


def test_tshark_udp(ctx):
    check(hasattr(ctx, "udp_case"), "the UDP IPFIX check did not run")
    recs = [r for r in TsharkCapture.decode(ctx.pcap, "udp.port==4739,cflow")
            if r["frame"] in ctx.udp_frames]
    check_decoded(recs, *ctx.udp_case)


def test_tshark_tcp(ctx):
    check(hasattr(ctx, "tcp_case"), "the TCP IPFIX check did not run")
    recs = [r for r in TsharkCapture.decode(ctx.pcap, "tcp.port==4739,cflow")
            if r["frame"] not in ctx.udp_frames]
    check_decoded(recs, *ctx.tcp_case)


# ----------------------------------------------------------------------------------- main


def frames_of(pcap, display_filter):
    cp = subprocess.run(["tshark", "-n", "-r", pcap, "-Y", display_filter, "-T", "fields",
                         "-e", "frame.number"], capture_output=True, text=True, timeout=60)
    return {int(x) for x in cp.stdout.split()}


def run_all():
    results = []

    def run(name, fn, *args):
        start = time.monotonic()
        try:
            fn(*args)
            results.append(True)
            log("PASS %s (%.1f s)" % (name, time.monotonic() - start))
        except Exception as e:  # one failed check must not stop the others
            results.append(False)
            log("FAIL %s: %s" % (name, e))
            if not isinstance(e, TestFailure):
                traceback.print_exc()

    ctx = Context()
    tmp = tempfile.mkdtemp(prefix="ephemera-collectors-")
    try:
        lab_up()
        run("syslog_udp", test_syslog_udp)
        run("syslog_tcp_octet_counted", test_syslog_tcp_octet_counted)
        ctx.pcap = os.path.join(tmp, "ipfix.pcap")
        with TsharkCapture(NS_COL, VETH_COL, "port 4739", ctx.pcap) as cap:
            run("ipfix_udp_nfacctd", test_ipfix_udp, ctx)
            run("ipfix_tcp_nfacctd_via_relay", test_ipfix_tcp, ctx)
            time.sleep(0.5)  # the last ACKs
            cap.stop()
        ctx.udp_frames = frames_of(ctx.pcap, "udp")
        run("tshark_decodes_ipfix_udp", test_tshark_udp, ctx)
        run("tshark_decodes_ipfix_tcp", test_tshark_tcp, ctx)
    finally:
        lab_down()
        shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(results)
    log("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


def _on_signal(signum, _frame):
    raise SystemExit("terminated by signal %d" % signum)


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "send":
        send_main()
        return 0
    if os.geteuid() != 0:
        log("SKIP: network namespaces need root")
        return SKIP
    missing = [t for t in ("ip", "ss", "rsyslogd", "nfacctd", "tshark")
               if shutil.which(t, path=os.environ.get("PATH", "") + ":/usr/sbin") is None]
    if missing:
        log("SKIP: missing %s (scripts/install-deps.sh installs them)" % missing)
        return SKIP
    atexit.register(lab_down)  # also when something escapes run_all's finally
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    return run_all()


if __name__ == "__main__":
    sys.exit(main())
