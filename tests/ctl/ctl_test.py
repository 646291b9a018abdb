#!/usr/bin/python3
"""ephemeractl against a fake DPDK telemetry v2 server: the exact request strings it sends, its
tables, --json, and its exit statuses (0 ok, 1 refused, 2 no server or bad reply, 64 usage).
The Live tests run it against a real ephemera (path in $EPHEMERA; root, net_null ports).

The fake server listens on a SOCK_SEQPACKET socket in a temporary directory, sends the greeting
on every connection, records each request and answers from a script, as DPDK 22.11 does:
{"<command>": data}, data null for a command it does not know.

    ctl_test.py EPHEMERACTL [unittest names...]
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

EPHEMERACTL = sys.argv[1] if len(sys.argv) > 1 else "build/tools/ephemeractl/ephemeractl"
del sys.argv[1:2]


class Raw:
    """A reply sent as these exact bytes instead of {"<command>": data}."""

    def __init__(self, payload):
        self.payload = payload


CLOSE = object()  # close the connection instead of answering


class FakeTelemetry:
    """DPDK telemetry v2 server on a temporary socket. `replies` maps a command (the part of the
    request before the first ',') to its data, a Raw, CLOSE, or a function of the request string
    returning one of those."""

    def __init__(self, replies=None, greeting=None):
        self.replies = dict(replies or {})
        self.greeting = greeting if greeting is not None else {
            "version": "DPDK 22.11.4", "pid": 4242, "max_output_len": 16384}
        self.requests = []
        self.connections = 0
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "dpdk_telemetry.v2")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.sock.settimeout(0.05)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()
        self.dir.cleanup()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(5)
                self.connections += 1
                try:
                    self._converse(conn)
                except OSError:
                    pass

    def _converse(self, conn):
        greeting = self.greeting
        conn.send(greeting if isinstance(greeting, bytes) else json.dumps(greeting).encode())
        while True:
            request = conn.recv(1024)
            if not request:
                return
            text = request.decode()
            self.requests.append(text)
            command = text.split(",", 1)[0]
            reply = self.replies.get(command)
            if callable(reply):
                reply = reply(text)
            if reply is CLOSE:
                return
            if isinstance(reply, Raw):
                conn.send(reply.payload)
            else:
                conn.send(json.dumps({command: reply}, separators=(",", ":")).encode())


STATS = {
    "workers": 2, "live_sessions": 0, "live_mappings": 5, "live_sessions_icmp": 0,
    "ports_in_hold_down": 0,
    "in2out_rx": 123456, "out2in_rx": 0, "in2out_tx": 120000, "drop_no_port": 7,
}

PORTS = {
    "198.18.0.100": {"udp_free": 12287, "udp_usable": 16384, "tcp_free": 16383,
                     "tcp_usable": 16384, "icmp_free": 1, "icmp_usable": 3, "held": 12,
                     "draining": 0},
    "198.18.0.101": {"udp_free": 0, "udp_usable": 16384, "tcp_free": 16384,
                     "tcp_usable": 16384, "icmp_free": 0, "icmp_usable": 0, "held": 0,
                     "draining": 2},
}

# The same table column-wise, as a DPDK 22.11 server sends it (its telemetry cannot nest a dict
# in a dict): one array per field, in address order.
PORTS_COLUMNS = {"address": list(PORTS)}
PORTS_COLUMNS.update({field: [PORTS[a][field] for a in PORTS]
                      for field in PORTS["198.18.0.100"]})

OK = {"result": "ok", "message": "timeouts.udp: 300 -> 600"}

# /ephemera/static: one array per field, in config order.
STATICS = {"kind": ["forward", "1:1"], "protocol": ["tcp", "any"],
           "external": ["198.18.0.10", "198.18.0.20"], "external_port": [8080, 0],
           "inside": ["100.64.0.5", "100.64.0.50"], "inside_port": [80, 0], "total": 2}

# /ephemera/pauses as ephemera sends it: one array per field, in worker order.
PAUSES = {"worker": [0, 1], "longest_iteration_us": [12, 31],
          "longest_plan_iteration_us": [4, 9], "longest_take_up_us": [1, 2],
          "plans_taken": [3, 3],
          "pause_window_ms": [1500, 1499]}
RESET = {"result": "ok", "message": "pause windows restarted on 2 workers"}


# /ephemera/logging: totals, then one array per field with one entry per sink.
LOGGING = {"log_records": 1500, "log_records_dropped": 7, "records_taken": 1493,
           "sink": ["archive /var/log/ephemera/archive", "syslog udp 192.0.2.10:514"],
           "records_sent": [1493, 1400], "records_dropped": [0, 93],
           "messages_sent": [1493, 1400], "bytes_sent": [301234, 250000], "errors": [0, 2]}


def worker_logging(request):
    n = int(request.split(",", 1)[1])
    return {"worker": n, "lcore": n + 1, "in2out_rx": 5, "log_records": [1000, 500][n],
            "log_records_dropped": [3, 4][n]}


# /ephemera/sessions external=198.18.0.10:51234: two sessions of one udp mapping, a tcp one on
# the same port, and one on another endpoint (a server that filters nothing).
SESSIONS_51234 = [
    "udp 100.64.0.10:40000 as 198.18.0.10:51234 <-> 203.0.113.5:53 idle=30s worker=1",
    "udp 100.64.0.10:40000 as 198.18.0.10:51234 <-> 203.0.113.6:53 idle=2s worker=1",
    "tcp 100.64.0.11:40001 as 198.18.0.10:51234 <-> 203.0.113.7:443 idle=5s established "
    "worker=0",
    "udp 100.64.0.12:40002 as 198.18.0.10:51235 <-> 203.0.113.5:53 idle=1s worker=0",
]


def pauses_reply(request):
    return RESET if request == "/ephemera/pauses,reset" else PAUSES


def top_list(rows):
    """A /ephemera/top list's columns from (subscriber, udp, tcp, refusals) rows."""
    return {"subscriber": [r[0] for r in rows], "pool_address": ["198.18.0.1"] * len(rows),
            "udp": [r[1] for r in rows], "tcp": [r[2] for r in rows], "icmp": [0] * len(rows),
            "sessions": [r[1] + r[2] for r in rows], "refusals": [r[3] for r in rows],
            "blocks": [0] * len(rows)}


def top_reply(by_ports, by_refusals, counts, blocks=None):
    reply = {"subscribers": sum(counts), "ports_sum": sum(max(r[1], r[2]) for r in by_ports),
             "ports_le": [0] + [1 << i for i in range(17)], "ports_count": counts}
    for prefix, rows in (("top_ports_", by_ports), ("top_refusals_", by_refusals)):
        reply.update({prefix + k: v for k, v in top_list(rows).items()})
    if blocks is not None:
        reply["subscribers_with_blocks"] = sum(blocks)
        reply["block_fill_le_percent"] = list(range(10, 101, 10))
        reply["block_fill_count"] = blocks
    return reply


TOP = top_reply([("100.64.0.3", 40, 2, 0), ("100.64.0.1", 9, 0, 5), ("100.64.0.2", 1, 0, 0)],
                [("100.64.0.1", 9, 0, 5)],
                [0, 1, 0, 0, 0, 1, 0, 1] + [0] * 10)


class Ctl(unittest.TestCase):
    def setUp(self):
        self.server = None

    def tearDown(self):
        if self.server is not None:
            self.server.close()

    def serve(self, replies=None, greeting=None):
        self.server = FakeTelemetry(replies, greeting)
        return self.server

    def ctl(self, *args, env=None, socket_path=None):
        """Runs ephemeractl against the fake server (unless socket_path says otherwise)."""
        path = socket_path if socket_path is not None else self.server.path
        argv = [EPHEMERACTL] + (["--socket", path] if path else []) + list(args)
        return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                              env=env if env is not None else os.environ.copy())

    def assert_requests(self, cases, replies=None):
        """Each case: (argv, exact request string)."""
        for argv, expected in cases:
            with self.subTest(argv=argv):
                server = self.serve(replies)
                r = self.ctl(*argv)
                self.assertEqual(server.requests, [expected], r.stderr)
                self.assertEqual(r.returncode, 0, r.stderr)
                server.close()
                self.server = None

    # ------------------------------------------------------------------------- request strings

    def test_requests_show(self):
        self.assert_requests([
            (["show", "config"], "/ephemera/config"),
            (["show", "stats"], "/ephemera/stats"),
            (["show", "stats", "--all"], "/ephemera/stats"),
            (["show", "ports"], "/ephemera/ports"),
            (["show", "worker", "0"], "/ephemera/worker,0"),
            (["show", "worker", "3", "--all"], "/ephemera/worker,3"),
        ], replies={"/ephemera/config": {"file": "x"}, "/ephemera/stats": STATS,
                    "/ephemera/ports": PORTS, "/ephemera/worker": {"worker": 3}})

    def test_requests_mappings(self):
        self.assert_requests([
            (["mappings"], "/ephemera/mappings"),
            (["mappings", "--limit", "10"], "/ephemera/mappings,10"),
            (["mappings", "--limit=4294967295"], "/ephemera/mappings,4294967295"),
        ], replies={"/ephemera/mappings": []})

    def test_requests_sessions(self):
        s, e, n = "100.64.0.7", "198.18.0.100:49153", "20"
        self.assert_requests([
            (["sessions"], "/ephemera/sessions"),
            (["sessions", "--subscriber", s], f"/ephemera/sessions,subscriber={s}"),
            (["sessions", "--external", e], f"/ephemera/sessions,external={e}"),
            (["sessions", "--limit", n], f"/ephemera/sessions,limit={n}"),
            (["sessions", "--subscriber", s, "--external", e],
             f"/ephemera/sessions,subscriber={s};external={e}"),
            (["sessions", "--subscriber", s, "--limit", n],
             f"/ephemera/sessions,subscriber={s};limit={n}"),
            (["sessions", "--external", e, "--limit", n],
             f"/ephemera/sessions,external={e};limit={n}"),
            # The order on the wire is fixed, whatever the order on the command line.
            (["sessions", "--limit", n, "--external", e, "--subscriber", s],
             f"/ephemera/sessions,subscriber={s};external={e};limit={n}"),
            (["sessions", "--external", "0.0.0.0:0"], "/ephemera/sessions,external=0.0.0.0:0"),
            (["sessions", "--external", "255.255.255.255:65535"],
             "/ephemera/sessions,external=255.255.255.255:65535"),
        ], replies={"/ephemera/sessions": []})

    def test_requests_set(self):
        self.assert_requests([
            (["set", "timeouts.udp", "600"], "/ephemera/set,timeouts.udp=600"),
            (["set", "filtering.mode", "address"], "/ephemera/set,filtering.mode=address"),
            (["set", "pool.port_range", "40000-50000"],
             "/ephemera/set,pool.port_range=40000-50000"),
            (["set", "limits.subscriber_ports", "2000"],
             "/ephemera/set,limits.subscriber_ports=2000"),
        ], replies={"/ephemera/set": OK})

    def test_requests_pool(self):
        self.assert_requests([
            (["pool", "add", "198.18.0.102"], "/ephemera/pool,add=198.18.0.102"),
            (["pool", "remove", "198.18.0.100"], "/ephemera/pool,remove=198.18.0.100"),
        ], replies={"/ephemera/pool": {"result": "ok", "message": "done"}})

    def test_requests_static(self):
        # The command line's words travel as one spec, single-spaced.
        self.assert_requests([
            (["static", "add", "tcp", "198.18.0.10:8080", "100.64.0.5:80"],
             "/ephemera/static,add=tcp 198.18.0.10:8080 100.64.0.5:80"),
            (["static", "add", "udp", "198.18.0.10:53", "100.64.0.6:53"],
             "/ephemera/static,add=udp 198.18.0.10:53 100.64.0.6:53"),
            (["static", "add", "198.18.0.20", "100.64.0.50"],
             "/ephemera/static,add=198.18.0.20 100.64.0.50"),
            (["static", "remove", "tcp", "198.18.0.10:8080"],
             "/ephemera/static,remove=tcp 198.18.0.10:8080"),
            (["static", "remove", "198.18.0.20"], "/ephemera/static,remove=198.18.0.20"),
        ], replies={"/ephemera/static": {"result": "ok", "message": "done"}})
        self.assert_requests([(["show", "static"], "/ephemera/static")],
                             replies={"/ephemera/static": STATICS})

    def test_static_table_and_refusals(self):
        self.serve({"/ephemera/static": STATICS})
        r = self.ctl("show", "static")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout,
                         "kind     protocol  external          inside\n"
                         "forward  tcp       198.18.0.10:8080  100.64.0.5:80\n"
                         "1:1      any       198.18.0.20       100.64.0.50\n")
        r = self.ctl("--json", "show", "static")
        self.assertEqual((r.returncode, json.loads(r.stdout)), (0, STATICS), r.stderr)
        self.server.close()

        empty = {k: [] for k in STATICS if k != "total"}
        empty["total"] = 0
        self.serve({"/ephemera/static": empty})
        r = self.ctl("show", "static")
        self.assertEqual((r.returncode, r.stdout), (0, "no static mappings\n"), r.stderr)
        self.server.close()

        cut = dict(STATICS, total=250)
        self.serve({"/ephemera/static": cut})
        r = self.ctl("show", "static")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.endswith("(the first 2 of 250 static mappings)\n"), r.stdout)
        self.server.close()

        refusal = {"result": "refused", "message": "static[3].external: 198.18.0.99 is not a "
                                                   "pool address (pool.addresses) (static add)"}
        self.serve({"/ephemera/static": refusal})
        r = self.ctl("static", "add", "tcp", "198.18.0.99:8080", "100.64.0.5:80")
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertEqual(r.stderr, "ephemeractl: refused: " + refusal["message"] + "\n")
        self.server.close()

        self.serve({"/ephemera/static": dict(STATICS, inside_port=[80])})
        r = self.ctl("show", "static")
        self.assertEqual((r.returncode, r.stdout), (2, ""))
        self.assertIn("/ephemera/static: malformed reply: inside_port: not one entry per mapping",
                      r.stderr)
        self.server.close()
        self.server = None

    def test_requests_flush(self):
        s, e, a = "100.64.0.7", "198.18.0.100:49153", "198.18.0.101"
        self.assert_requests([
            (["flush", "--subscriber", s], f"/ephemera/flush,subscriber={s}"),
            (["flush", "--external", e], f"/ephemera/flush,external={e}"),
            (["flush", "--address", a], f"/ephemera/flush,address={a}"),
            (["flush", "--subscriber", s, "--external", e],
             f"/ephemera/flush,subscriber={s};external={e}"),
            (["flush", "--subscriber", s, "--address", a],
             f"/ephemera/flush,subscriber={s};address={a}"),
            (["flush", "--external", e, "--address", a],
             f"/ephemera/flush,external={e};address={a}"),
            (["flush", "--address", a, "--external", e, "--subscriber", s],
             f"/ephemera/flush,subscriber={s};external={e};address={a}"),
        ], replies={"/ephemera/flush": {"result": "ok", "message": "flushed 3 sessions",
                                        "flushed": 3}})

    def test_requests_pauses(self):
        self.assert_requests([
            (["show", "pauses"], "/ephemera/pauses"),
            (["reset", "pauses"], "/ephemera/pauses,reset"),
        ], replies={"/ephemera/pauses": pauses_reply})

    def test_requests_reload(self):
        self.assert_requests([(["reload"], "/ephemera/reload")],
                             replies={"/ephemera/reload": {"result": "ok", "message": "reloaded"}})

    def test_global_options_may_follow_the_subcommand(self):
        server = self.serve({"/ephemera/stats": STATS})
        r = subprocess.run([EPHEMERACTL, "show", "stats", "--json", "--socket", server.path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), STATS)
        self.assertEqual(server.requests, ["/ephemera/stats"])

    # ------------------------------------------------------------------------------ formatting

    def test_stats_table_hides_zero_counters_unless_all(self):
        self.serve({"/ephemera/stats": STATS})
        r = self.ctl("show", "stats")
        self.assertEqual(r.returncode, 0, r.stderr)
        # Gauges (live_*, ports_in_hold_down) show even at zero; counters at zero do not.
        self.assertEqual(r.stdout,
                         "workers                  2\n"
                         "live_sessions            0\n"
                         "live_mappings            5\n"
                         "live_sessions_icmp       0\n"
                         "ports_in_hold_down       0\n"
                         "in2out_rx           123456\n"
                         "in2out_tx           120000\n"
                         "drop_no_port             7\n"
                         "(1 zero counter not shown; --all shows them)\n")
        r = self.ctl("show", "stats", "--all")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout,
                         "workers                  2\n"
                         "live_sessions            0\n"
                         "live_mappings            5\n"
                         "live_sessions_icmp       0\n"
                         "ports_in_hold_down       0\n"
                         "in2out_rx           123456\n"
                         "out2in_rx                0\n"
                         "in2out_tx           120000\n"
                         "drop_no_port             7\n")

    def test_worker_table(self):
        worker = {"worker": 0, "lcore": 1, "live_sessions": 3, "live_mappings": 2,
                  "ports_per_address": 8192, "in2out_rx": 0, "out2in_rx": 0}
        self.serve({"/ephemera/worker": worker})
        r = self.ctl("show", "worker", "0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout,
                         "worker                0\n"
                         "lcore                 1\n"
                         "live_sessions         3\n"
                         "live_mappings         2\n"
                         "ports_per_address  8192\n"
                         "(2 zero counters not shown; --all shows them)\n")

    def test_config_is_aligned_key_value_lines(self):
        config = {"file": "conf/demo.toml", "pool_addresses": 2,
                  "port_range": "iana (49152-65535)", "filtering": "endpoint-independent"}
        self.serve({"/ephemera/config": config})
        r = self.ctl("show", "config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout,
                         "file            conf/demo.toml\n"
                         "pool_addresses  2\n"
                         "port_range      iana (49152-65535)\n"
                         "filtering       endpoint-independent\n")

    def test_ports_table_used_usable_and_utilisation(self):
        self.serve({"/ephemera/ports": PORTS})
        r = self.ctl("show", "ports")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["address", "udp", "used/usable", "util", "tcp",
                                            "used/usable", "util", "icmp", "used/usable", "util",
                                            "held", "draining"])
        # used = usable - free; util = used / usable, one decimal; "-" when nothing is usable.
        self.assertEqual(lines[1].split(), ["198.18.0.100", "4097/16384", "25.0%", "1/16384",
                                            "0.0%", "2/3", "66.7%", "12", "0"])
        self.assertEqual(lines[2].split(), ["198.18.0.101", "16384/16384", "100.0%", "0/16384",
                                            "0.0%", "0/0", "-", "0", "2"])
        self.assertEqual(lines[3].split(), ["total", "20481/32768", "62.5%", "1/32768", "0.0%",
                                            "2/3", "66.7%", "12", "2"])
        self.assertEqual(len(lines), 4)
        # Aligned: every column ends where its header ends (numbers right-aligned).
        header = lines[0]
        for line in lines[1:]:
            self.assertEqual(len(line), len(header), r.stdout)
            for end in (header.index("util") + 4, header.index("held") + 4):
                self.assertNotEqual(line[end - 1], " ", r.stdout)
                self.assertEqual(line[end], " ", r.stdout)

    def test_ports_table_from_column_wise_reply(self):
        self.serve({"/ephemera/ports": PORTS})
        nested = self.ctl("show", "ports")
        self.server.close()
        self.serve({"/ephemera/ports": PORTS_COLUMNS})
        columns = self.ctl("show", "ports")
        self.assertEqual(columns.returncode, 0, columns.stderr)
        self.assertEqual(columns.stdout, nested.stdout)
        # --json is what the server sent, not the nested form.
        r = self.ctl("--json", "show", "ports")
        self.assertEqual(json.loads(r.stdout), PORTS_COLUMNS)
        # Columns of different lengths are malformed.
        self.server.close()
        self.serve({"/ephemera/ports": dict(PORTS_COLUMNS, held=[1])})
        r = self.ctl("show", "ports")
        self.assertEqual(r.returncode, 2)
        self.assertIn("/ephemera/ports", r.stderr)

    def test_requests_blocks(self):
        s, n = "100.64.0.7", "20"
        self.assert_requests([
            (["show", "blocks"], "/ephemera/blocks"),
            (["show", "blocks", "--subscriber", s], f"/ephemera/blocks,subscriber={s}"),
            (["show", "blocks", "--limit", n], f"/ephemera/blocks,limit={n}"),
            (["show", "blocks", "--limit", n, "--subscriber", s],
             f"/ephemera/blocks,subscriber={s};limit={n}"),
        ], replies={"/ephemera/blocks": []})

    def test_ports_table_with_blocks_columns(self):
        # Blocks mode adds blocks in use, held down and free per address, with their totals.
        blocks = dict(PORTS_COLUMNS, blocks_in_use=[3, 1], blocks_held=[1, 0],
                      blocks_free=[60, 62])
        self.serve({"/ephemera/ports": blocks})
        r = self.ctl("show", "ports")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split()[-4:], ["blocks", "used", "held", "free"])
        self.assertEqual(lines[1].split()[-3:], ["3", "1", "60"])
        self.assertEqual(lines[2].split()[-3:], ["1", "0", "62"])
        self.assertEqual(lines[3].split()[-3:], ["4", "1", "122"])
        self.server.close()
        self.serve({"/ephemera/ports": dict(blocks, blocks_free=["x", 1])})
        r = self.ctl("show", "ports")
        self.assertEqual(r.returncode, 2, r.stdout)

    def test_ports_table_single_address_has_no_total(self):
        one = {"198.18.0.100": dict(PORTS["198.18.0.100"], udp_free=16383)}
        self.serve({"/ephemera/ports": one})
        r = self.ctl("show", "ports")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 2)
        self.assertEqual(lines[1].split()[1:3], ["1/16384", "0.0%"])

    def test_pauses_table_one_row_per_worker_and_the_maxima(self):
        self.serve({"/ephemera/pauses": pauses_reply})
        r = self.ctl("show", "pauses")
        self.assertEqual(r.returncode, 0, r.stderr)
        # "all": the longest of each, plans summed, the shortest window (the one every
        # worker's figures cover).
        self.assertEqual(r.stdout,
                         "worker  longest iteration us  longest with a plan us  taking a plan us"
                         "  plans taken  window ms\n"
                         "     0                    12                       4                 1"
                         "            3       1500\n"
                         "     1                    31                       9                 2"
                         "            3       1499\n"
                         "   all                    31                       9                 2"
                         "            6       1499\n")
        r = self.ctl("reset", "pauses")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, RESET["message"] + "\n", ""))

    def test_pauses_table_single_worker_has_no_all_row(self):
        one = {key: values[:1] for key, values in PAUSES.items()}
        self.serve({"/ephemera/pauses": one})
        r = self.ctl("show", "pauses")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 2, r.stdout)
        self.assertEqual(lines[1].split(), ["0", "12", "4", "1", "3", "1500"])

    def test_pauses_json_and_malformed_replies(self):
        self.serve({"/ephemera/pauses": pauses_reply})
        r = self.ctl("--json", "show", "pauses")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), PAUSES)
        r = self.ctl("--json", "reset", "pauses")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), RESET)
        self.server.close()
        # A reset some worker did not honour in time is a refusal: exit 1.
        late = {"result": "refused",
                "message": "worker 1 did not restart its window within 2000 ms"}
        self.serve({"/ephemera/pauses": late})
        r = self.ctl("reset", "pauses")
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertEqual(r.stderr, "ephemeractl: refused: " + late["message"] + "\n")
        self.server.close()
        self.server = None
        for reply in (dict(PAUSES, plans_taken=[3]),
                      {k: v for k, v in PAUSES.items() if k != "pause_window_ms"},
                      dict(PAUSES, longest_iteration_us=[12, -1]),
                      dict(PAUSES, longest_iteration_us=[12, "31"]),
                      dict(PAUSES, worker=0),
                      [PAUSES]):
            with self.subTest(reply=reply):
                self.serve({"/ephemera/pauses": reply})
                r = self.ctl("show", "pauses")
                self.assertEqual(r.returncode, 2, r.stdout)
                self.assertIn("/ephemera/pauses", r.stderr)
                self.assertEqual(r.stdout, "")
                self.server.close()
                self.server = None

    def test_mappings_and_sessions_one_line_each(self):
        mappings = ["udp 100.64.0.2:5000 -> 198.18.0.100:49152 sessions=1 worker=0",
                    "tcp 100.64.0.3:40000 -> 198.18.0.101:50001 sessions=2 worker=1"]
        sessions = ["udp 100.64.0.2:5000 -> 198.18.0.100:49152 -> 198.18.0.2:53 idle=3s"]
        self.serve({"/ephemera/mappings": mappings, "/ephemera/sessions": sessions})
        r = self.ctl("mappings")
        self.assertEqual((r.returncode, r.stdout), (0, "\n".join(mappings) + "\n"), r.stderr)
        r = self.ctl("sessions", "--subscriber", "100.64.0.2")
        self.assertEqual((r.returncode, r.stdout), (0, sessions[0] + "\n"), r.stderr)

    def test_empty_lists_say_so(self):
        self.serve({"/ephemera/mappings": [], "/ephemera/sessions": []})
        r = self.ctl("mappings")
        self.assertEqual((r.returncode, r.stdout), (0, "no live mappings\n"), r.stderr)
        r = self.ctl("sessions")
        self.assertEqual((r.returncode, r.stdout), (0, "no matching sessions\n"), r.stderr)

    def test_changes_print_the_message(self):
        self.serve({
            "/ephemera/set": OK,
            "/ephemera/pool": {"result": "ok", "message": "198.18.0.102 added"},
            "/ephemera/flush": {"result": "ok", "message": "flushed 3 sessions", "flushed": 3},
            "/ephemera/reload": {"result": "ok", "message": "reloaded: nothing changed"},
        })
        for argv, message in [
            (["set", "timeouts.udp", "600"], "timeouts.udp: 300 -> 600"),
            (["pool", "add", "198.18.0.102"], "198.18.0.102 added"),
            (["flush", "--subscriber", "100.64.0.7"], "flushed 3 sessions"),
            (["reload"], "reloaded: nothing changed"),
        ]:
            with self.subTest(argv=argv):
                r = self.ctl(*argv)
                self.assertEqual((r.returncode, r.stdout, r.stderr), (0, message + "\n", ""))

    # ------------------------------------------------------------------------------ logging

    def test_show_logging_table_and_json(self):
        server = self.serve({"/ephemera/logging": LOGGING, "/ephemera/stats": STATS,
                             "/ephemera/worker": worker_logging})
        r = self.ctl("show", "logging")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(server.requests, ["/ephemera/logging", "/ephemera/stats",
                                           "/ephemera/worker,0", "/ephemera/worker,1"])
        self.assertEqual(
            r.stdout,
            "records handed over by the workers      1500\n"
            "records dropped (a worker's ring full)     7\n"
            "records taken by the logging thread     1493\n"
            "\n"
            "sink                               records sent  dropped  messages   bytes  errors\n"
            "archive /var/log/ephemera/archive          1493        0      1493  301234       0\n"
            "syslog udp 192.0.2.10:514                  1400       93      1400  250000       2\n"
            "\n"
            "worker  records handed over  dropped\n"
            "     0                 1000        3\n"
            "     1                  500        4\n")
        r = self.ctl("--json", "show", "logging")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = json.loads(r.stdout)
        self.assertEqual({k: v for k, v in data.items() if k != "workers"}, LOGGING)
        self.assertEqual(data["workers"], [
            {"worker": 0, "log_records": 1000, "log_records_dropped": 3},
            {"worker": 1, "log_records": 500, "log_records_dropped": 4}])

    def test_show_logging_without_sinks_and_malformed(self):
        off = dict(LOGGING, sink=[], records_sent=[], records_dropped=[], messages_sent=[],
                   bytes_sent=[], errors=[], log_records=0, log_records_dropped=0,
                   records_taken=0)
        # Workers that do not report their share: the totals stand alone.
        self.serve({"/ephemera/logging": off, "/ephemera/stats": STATS,
                    "/ephemera/worker": {"worker": 0}})
        r = self.ctl("show", "logging")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no sinks: logging is off (no collector, no archive)\n", r.stdout)
        self.assertFalse([line for line in r.stdout.splitlines() if line.startswith("worker")])
        self.server.close()
        for bad, words in [(dict(LOGGING, errors=[0]), "errors: not one entry per sink"),
                           (dict(LOGGING, sink=[1, 2]), "sink: an entry is not a string"),
                           ({k: v for k, v in LOGGING.items() if k != "records_taken"},
                            "records_taken missing")]:
            with self.subTest(words=words):
                self.server = FakeTelemetry({"/ephemera/logging": bad})
                r = self.ctl("show", "logging")
                self.assertEqual(r.returncode, 2, r.stdout)
                self.assertIn("/ephemera/logging: malformed reply: " + words, r.stderr)
                self.server.close()
        self.server = None

    def test_requests_set_logging(self):
        self.assert_requests([
            (["set", "logging.destination", "true"], "/ephemera/set,logging.destination=true"),
            (["set", "logging.events", "mapping,block"],
             "/ephemera/set,logging.events=mapping,block"),
        ], replies={"/ephemera/set": OK})
        r = subprocess.run([EPHEMERACTL, "set", "--help"], capture_output=True, text=True,
                           timeout=60)
        self.assertIn("logging.ring_size needs a restart", " ".join(r.stdout.split()))
        self.assertIn("then ephemeractl reload", " ".join(r.stdout.split()))

    # -------------------------------------------------------------------------- whois, live

    def whois_server(self, pid, config=None):
        """pid None: a greeting without one (when ephemera started is not known)."""
        greeting = {"version": "DPDK 22.11.4", "max_output_len": 16384}
        if pid is not None:
            greeting["pid"] = pid
        return self.serve(
            {"/ephemera/sessions": SESSIONS_51234,
             "/ephemera/config": config or {"pool_mode": "dynamic", "logging_archive": "none"}},
            greeting=greeting)

    def test_whois_answers_from_the_live_table(self):
        server = self.whois_server(os.getpid())
        r = self.ctl("whois", "198.18.0.10:51234", "--proto", "udp")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("/ephemera/sessions,external=198.18.0.10:51234;limit=64", server.requests)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^198\.18\.0\.10:51234 udp at \d{4}-\d\d-\d\dT.*Z:$")
        self.assertEqual(lines[1], "  100.64.0.10:40000 (udp mapping), from the live table")
        self.assertRegex(lines[2], r"^    in use at .*Z \(its sessions' last packet, to the "
                                   r"second\) and held at .*Z, worker 1$")
        self.assertEqual(lines[3:], ["    /ephemera/sessions:1: " + SESSIONS_51234[0],
                                     "    /ephemera/sessions:2: " + SESSIONS_51234[1]])
        # Any protocol: the tcp mapping on the same port too; the other endpoint never.
        r = self.ctl("whois", "198.18.0.10:51234", "--at", "now")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("  100.64.0.11:40001 (tcp mapping), from the live table\n", r.stdout)
        self.assertIn("  100.64.0.10:40000 (udp mapping), from the live table\n", r.stdout)
        self.assertNotIn("100.64.0.12", r.stdout)

    def test_whois_live_table_proves_only_since_the_last_packet(self):
        # When ephemera started is not known: the live table is asked, but a mapping last used
        # 2 s ago says nothing of an hour ago.
        self.whois_server(None)
        hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
        r = self.ctl("whois", "198.18.0.10:51234", "--proto", "udp", "--at", hour_ago)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("ephemeractl: whois: live table: 100.64.0.10:40000 (udp mapping) holds "
                      "198.18.0.10:51234 now and was in use at ", r.stderr)
        self.assertIn("it does not say who held it at", r.stderr)
        self.assertIn("nobody held 198.18.0.10:51234 udp at", r.stderr)
        self.server.close()
        # Before ephemera started (this test's own process): not asked at all.
        self.whois_server(os.getpid())
        r = self.ctl("whois", "198.18.0.10:51234", "--at", "2000-01-01T00:00:00Z")
        self.assertEqual(r.returncode, 64, r.stdout)
        self.assertIn("the live table was not asked: ephemera started at ", r.stderr)
        self.assertNotIn("/ephemera/sessions", "".join(self.server.requests))

    def test_whois_archive_defaults_to_the_running_config(self):
        with tempfile.TemporaryDirectory() as archive:
            self.whois_server(os.getpid(), {"pool_mode": "dynamic", "logging_archive": archive})
            r = self.ctl("whois", "198.18.0.10:51235", "--proto", "tcp")
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("whois: archive %s: the running config's logging.archive.path\n"
                          % archive, r.stderr)
            self.assertIn("whois: live table: nobody holds 198.18.0.10:51235 now\n", r.stderr)
            self.assertIn("whois: archive %s: no archive files\n" % archive, r.stderr)

    def test_whois_without_ephemera_says_the_live_table_was_not_asked(self):
        with tempfile.TemporaryDirectory() as archive:
            r = self.ctl("whois", "198.18.0.10:51234", "--at", "2026-12-05T10:00:00Z",
                         "--archive", archive, socket_path=os.path.join(archive, "none"))
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertTrue(r.stderr.startswith("ephemeractl: whois: the live table was not "
                                                "asked: "), r.stderr)
            r = self.ctl("whois", "198.18.0.10:51234", socket_path=os.path.join(archive, "none"))
            self.assertEqual(r.returncode, 64, r.stdout)
            self.assertIn("no source: give --archive DIR or --config FILE", r.stderr)

    def test_whois_reads_what_it_can_of_the_live_table(self):
        self.serve({"/ephemera/sessions": ["udp 100.64.0.10 as nonsense", 42,
                                           SESSIONS_51234[1]],
                    "/ephemera/config": {"pool_mode": "dynamic"}},
                   greeting={"version": "DPDK 22.11.4", "pid": os.getpid(),
                             "max_output_len": 16384})
        r = self.ctl("whois", "198.18.0.10:51234")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("live table: cannot read session line udp 100.64.0.10 as nonsense",
                      r.stderr)
        self.assertIn("    /ephemera/sessions:3: " + SESSIONS_51234[1], r.stdout)
        self.server.close()
        # A refusal or a null reply is a note, not an answer.
        self.serve({"/ephemera/sessions": {"result": "refused", "message": "external: no"},
                    "/ephemera/config": {"pool_mode": "dynamic"}})
        r = self.ctl("whois", "198.18.0.10:51234")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("live table: /ephemera/sessions gave no list: external: no", r.stderr)

    # ---------------------------------------------------------------------------------- --json

    def test_json_prints_the_data(self):
        config = {"file": "conf/demo.toml", "pool_addresses": 2}
        worker = {"worker": 1, "lcore": 2, "in2out_rx": 0}
        flushed = {"result": "ok", "message": "flushed 3 sessions", "flushed": 3}
        self.serve({"/ephemera/stats": STATS, "/ephemera/ports": PORTS,
                    "/ephemera/config": config, "/ephemera/worker": worker,
                    "/ephemera/mappings": ["a", "b"], "/ephemera/sessions": [],
                    "/ephemera/set": OK, "/ephemera/flush": flushed})
        for argv, data in [
            (["show", "stats"], STATS), (["show", "stats", "--all"], STATS),
            (["show", "ports"], PORTS), (["show", "config"], config),
            (["show", "worker", "1"], worker), (["mappings"], ["a", "b"]), (["sessions"], []),
            (["set", "timeouts.udp", "600"], OK),
            (["flush", "--address", "198.18.0.100"], flushed),
        ]:
            with self.subTest(argv=argv):
                r = self.ctl("--json", *argv)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(json.loads(r.stdout), data)
                # The server's key order is kept.
                self.assertEqual(list(json.loads(r.stdout)) if isinstance(data, dict) else None,
                                 list(data) if isinstance(data, dict) else None)

    # ---------------------------------------------------------------------------- exit status

    def test_refused_exits_1_with_the_message_on_stderr(self):
        refusal = {"result": "refused",
                   "message": "timeouts.udp: must be at least 120 s (RFC 4787 REQ-5)"}
        self.serve({c: refusal for c in ("/ephemera/set", "/ephemera/pool", "/ephemera/flush",
                                         "/ephemera/reload")})
        for argv in (["set", "timeouts.udp", "30"], ["pool", "remove", "198.18.0.100"],
                     ["flush", "--external", "198.18.0.100:49152"], ["reload"]):
            with self.subTest(argv=argv):
                r = self.ctl(*argv)
                self.assertEqual(r.returncode, 1)
                self.assertEqual(r.stdout, "")
                self.assertEqual(r.stderr, "ephemeractl: refused: timeouts.udp: must be at least "
                                           "120 s (RFC 4787 REQ-5)\n")
        r = self.ctl("--json", "reload")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(json.loads(r.stdout), refusal)
        self.assertIn("ephemeractl: refused: ", r.stderr)

    def test_query_refused_exits_1(self):
        # A query may answer with a refusal instead of its data (a filter the server rejects).
        refusal = {"result": "refused", "message": "unknown filter x"}
        self.serve({"/ephemera/sessions": refusal, "/ephemera/mappings": refusal})
        for argv in (["sessions", "--subscriber", "100.64.0.1"], ["mappings"]):
            with self.subTest(argv=argv):
                r = self.ctl(*argv)
                self.assertEqual((r.returncode, r.stdout), (1, ""))
                self.assertEqual(r.stderr, "ephemeractl: refused: unknown filter x\n")

    def test_no_server_exits_2_naming_the_socket(self):
        with tempfile.TemporaryDirectory() as tmp:
            missing = os.path.join(tmp, "dpdk_telemetry.v2")
            r = self.ctl("show", "stats", socket_path=missing)
            self.assertEqual(r.returncode, 2)
            self.assertIn(missing, r.stderr)
            self.assertIn("--prefix", r.stderr)
            # A socket file nobody listens on any more: connection refused.
            stale = os.path.join(tmp, "stale.v2")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.bind(stale)
            s.close()
            r = self.ctl("reload", socket_path=stale)
            self.assertEqual(r.returncode, 2)
            self.assertIn(stale, r.stderr)
        # Without --socket the path comes from --prefix, else EPHEMERA_PREFIX, else "ephemera".
        env = {k: v for k, v in os.environ.items() if k != "EPHEMERA_PREFIX"}
        prefix = f"ctl-test-nonexistent-{os.getpid()}"
        r = self.ctl("--prefix", prefix, "show", "stats", socket_path="", env=env)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2", r.stderr)
        r = self.ctl("show", "stats", socket_path="", env=dict(env, EPHEMERA_PREFIX=prefix + "e"))
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"/var/run/dpdk/{prefix}e/dpdk_telemetry.v2", r.stderr)
        r = self.ctl("--help", socket_path="", env=env)
        self.assertIn("ephemera", r.stdout)  # the default prefix is shown
        self.assertIn("EPHEMERA_PREFIX", r.stdout)

    def test_null_reply_exits_2_naming_the_command(self):
        self.serve({"/ephemera/stats": None})  # what DPDK sends when a callback fails
        r = self.ctl("show", "stats")
        self.assertEqual(r.returncode, 2)
        self.assertIn("/ephemera/stats", r.stderr)
        self.assertEqual(r.stdout, "")
        # An ephemera without the command: DPDK answers null too.
        r = self.ctl("set", "timeouts.udp", "600")
        self.assertEqual(r.returncode, 2)
        self.assertIn("/ephemera/set", r.stderr)

    def test_malformed_replies_exit_2_naming_the_command(self):
        cases = [
            (["show", "stats"], "/ephemera/stats", Raw(b"{not json")),
            (["show", "stats"], "/ephemera/stats", Raw(b'{"/ephemera/other":{}}')),
            (["show", "stats"], "/ephemera/stats", ["not", "a", "dict"]),
            (["show", "stats"], "/ephemera/stats", {"in2out_rx": "many"}),
            (["show", "ports"], "/ephemera/ports",
             {"198.18.0.100": {"udp_free": 1, "udp_usable": 2}}),
            (["mappings"], "/ephemera/mappings", [1, 2]),
            (["set", "timeouts.udp", "600"], "/ephemera/set", {"result": "maybe"}),
            (["reload"], "/ephemera/reload", {"message": "no result"}),
            (["reload"], "/ephemera/reload", CLOSE),
        ]
        for argv, command, reply in cases:
            with self.subTest(argv=argv, reply=getattr(reply, "payload", reply)):
                self.serve({command: reply})
                r = self.ctl(*argv)
                self.assertEqual(r.returncode, 2, r.stdout)
                self.assertIn(command, r.stderr)
                self.assertEqual(r.stdout, "")
                self.server.close()
                self.server = None

    def test_reply_buffer_is_the_greetings_max_output_len(self):
        big = ["udp 100.64.%d.%d:5000 -> 198.18.0.100:%d sessions=1 worker=0"
               % (i // 250, i % 250, 49152 + i) for i in range(2000)]  # about 120 kB
        self.serve({"/ephemera/mappings": big},
                   greeting={"version": "DPDK 22.11.4", "pid": 1, "max_output_len": 200000})
        r = self.ctl("mappings", "--limit", "2000")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), big)
        self.server.close()
        # Without max_output_len the buffer is 16384 bytes: a longer reply is refused, not cut.
        self.serve({"/ephemera/mappings": big}, greeting={"version": "DPDK 22.11.4", "pid": 1})
        r = self.ctl("mappings")
        self.assertEqual(r.returncode, 2)
        self.assertIn("16384", r.stderr)
        self.assertIn("/ephemera/mappings", r.stderr)

    def test_bad_greeting_exits_2(self):
        self.serve(greeting=b"hello")
        r = self.ctl("show", "stats")
        self.assertEqual(r.returncode, 2)
        self.assertIn("greeting", r.stderr)

    def test_bad_arguments_exit_64_without_connecting(self):
        self.serve()
        cases = [
            ([], "subcommand"),
            (["show"], "show: give one of config, stats, ports, alarms, ha, blocks, pauses, "
                       "static, logging, worker N"),
            (["show", "logging", "x"], "x"),
            (["whois", "198.18.0.10:51234", "--at", "yesterday"], "or now"),
            (["whois", "198.18.0.10:51234", "--proto", "sctp"], "sctp"),
            (["show", "nope"], "nope"),
            (["show", "worker"], "N"),
            (["show", "worker", "x"], "'x'"),
            (["show", "worker", "-1"], None),
            (["mappings", "--limit", "0"], "positive"),
            (["mappings", "--limit", "x"], "positive"),
            (["mappings", "--limit", "4294967296"], "positive"),
            (["sessions", "--subscriber", "300.1.1.1"], "'300.1.1.1'"),
            (["sessions", "--subscriber", "1.2.3"], "'1.2.3'"),
            (["sessions", "--subscriber", "01.2.3.4"], "'01.2.3.4'"),
            (["sessions", "--external", "1.2.3.4"], "ADDR:PORT"),
            (["sessions", "--external", "1.2.3.4:65536"], "0 to 65535"),
            (["sessions", "--external", "1.2.3.4:-1"], "0 to 65535"),
            (["sessions", "--external", "1.2.3:80"], "'1.2.3:80'"),
            (["sessions", "--limit", "0"], "positive"),
            (["set"], "KEY"),
            (["set", "timeouts.udp"], "VALUE"),
            (["set", "timeouts,udp", "600"], "'timeouts,udp'"),
            (["pool"], "pool: give add ADDR or remove ADDR"),
            (["pool", "add"], "ADDR"),
            (["pool", "add", "1.2.3.4.5"], "'1.2.3.4.5'"),
            (["pool", "drop", "1.2.3.4"], "drop"),
            (["static"], "static: give add SPEC or remove SPEC"),
            (["static", "add", "tcp", "198.18.0.10:8080"], "expected"),
            (["static", "add", "tcp", "198.18.0.10", "100.64.0.5"], "a port forward needs a port"),
            (["static", "add", "198.18.0.10:80", "100.64.0.5:80"], "starts with its protocol"),
            (["static", "add", "icmp", "198.18.0.10:1", "100.64.0.5:1"], "unknown protocol"),
            (["static", "add", "tcp", "198.18.0.10:0", "100.64.0.5:80"], "1 to 65535"),
            (["static", "remove"], "SPEC"),
            (["static", "remove", "198.18.0.20", "100.64.0.50"], "expected"),
            (["static", "remove", "1.2.3"], "expected"),
            (["show", "static", "x"], "x"),
            (["flush"], "at least one of --subscriber, --external, --address"),
            (["flush", "--address", "x"], "'x'"),
            (["flush", "--subscriber", "100.64.0.256"], "'100.64.0.256'"),
            (["reload", "extra"], "extra"),
            (["reset"], "reset: give pauses"),
            (["reset", "nope"], "nope"),
            (["reset", "pauses", "x"], "x"),
            (["show", "pauses", "x"], "x"),
            (["--bogus", "reload"], "--bogus"),
            (["--prefix", "a/b", "reload"], "'a/b'"),
        ]
        for argv, words in cases:
            with self.subTest(argv=argv):
                r = self.ctl(*argv)
                self.assertEqual(r.returncode, 64, r.stdout + r.stderr)
                self.assertTrue(r.stderr.startswith("ephemeractl: "), r.stderr)
                if words:
                    self.assertIn(words, r.stderr)
        self.assertEqual(self.server.connections, 0)
        self.assertEqual(self.server.requests, [])

    def test_help_documents_the_socket_option(self):
        r = subprocess.run([EPHEMERACTL, "--help"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--socket", r.stdout)
        self.assertIn("for tests and unusual runtime dirs", r.stdout)
        for sub in ("show", "mappings", "sessions", "set", "pool", "flush", "reload", "reset"):
            self.assertIn(sub, r.stdout)
        r = subprocess.run([EPHEMERACTL, "flush", "--help"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--external ADDR:PORT", r.stdout)


    # ------------------------------------------------------------------------- top

    def test_requests_top(self):
        self.assert_requests([(["top", "--once"], "/ephemera/top")], {"/ephemera/top": TOP})

    def test_top_once_ranks_and_draws_the_histogram(self):
        self.serve({"/ephemera/top": TOP})
        r = self.ctl("top", "--once")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "subscribers 3  ports held 50 (busiest protocol of each)")
        self.assertEqual(lines[2], "top 3 by ports")
        self.assertEqual(lines[3].split(), ["rank", "subscriber", "pool", "address", "udp", "tcp",
                                            "icmp", "sessions", "refusals", "blocks"])
        self.assertEqual([l.split()[1] for l in lines[4:7]],
                         ["100.64.0.3", "100.64.0.1", "100.64.0.2"])
        self.assertEqual(lines[4].split()[3:], ["40", "2", "0", "42", "0", "0"])
        hist = lines[lines.index("ports per subscriber (busiest protocol)") + 1:]
        # From the first bucket with a count to the last, bars scaled to the largest.
        self.assertEqual([l.split()[:3] for l in hist],
                         [["<=", "1", "1"], ["<=", "2", "0"], ["<=", "4", "0"], ["<=", "8", "0"],
                          ["<=", "16", "1"], ["<=", "32", "0"], ["<=", "64", "1"]])
        self.assertTrue(hist[0].endswith(" " + "#" * 40), hist[0])
        self.assertNotIn("block fill", r.stdout)

    def test_top_by_refusals_rows_and_block_fill(self):
        self.serve({"/ephemera/top": dict(TOP, **top_reply(
            [("100.64.0.3", 40, 2, 0)], [("100.64.0.1", 9, 0, 5), ("100.64.0.2", 1, 0, 3)],
            [0, 0, 0, 0, 0, 0, 0, 2] + [0] * 10, blocks=[0] * 4 + [1, 0, 0, 0, 0, 1]))})
        r = self.ctl("top", "--once", "--by", "refusals", "-n", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[2], "top 1 by refusals")
        self.assertEqual(lines[4].split()[:2], ["1", "100.64.0.1"])
        self.assertEqual(lines[4].split()[-2:], ["5", "0"])
        fill = lines[lines.index("block fill (subscribers holding blocks)") + 1:]
        self.assertEqual(fill[0].split()[:3], ["<=", "50%", "1"])
        self.assertEqual(fill[-1].split()[:3], ["<=", "100%", "1"])
        r = self.ctl("top", "--once", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["block_fill_count"][4], 1)

    def test_top_empty_and_malformed_replies(self):
        self.serve({"/ephemera/top": top_reply([], [], [0] * 18)})
        r = self.ctl("top", "--once")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no subscriber holds a port", r.stdout)
        self.assertIn("(none)", r.stdout)
        self.server.close()
        for bad in (dict(TOP, ports_count=[1, 2]), dict(TOP, top_ports_udp=[1]),
                    dict(TOP, top_refusals_subscriber=[7]), {"subscribers": 1}, None):
            with self.subTest(bad=bad):
                self.serve({"/ephemera/top": bad})
                r = self.ctl("top", "--once")
                self.assertEqual(r.returncode, 2, r.stdout)
                self.assertIn("/ephemera/top", r.stderr)
                self.server.close()
        self.server = None
        for argv in (["top", "-n", "0"], ["top", "-n", "21"], ["top", "--by", "sessions"]):
            with self.subTest(argv=argv):
                self.assertEqual(self.ctl(*argv, socket_path="/nonexistent").returncode, 64)

    def test_top_refreshes_until_interrupted(self):
        server = self.serve({"/ephemera/top": TOP})
        argv = [EPHEMERACTL, "--socket", server.path, "top"]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # A third request is sent only after the second view was drawn: interrupted as its
        # reply comes in, the second would not be (a stopped top draws nothing more).
        deadline = time.time() + 10
        while len(server.requests) < 3 and time.time() < deadline:
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0, err)
        self.assertGreaterEqual(len(server.requests), 3)
        self.assertTrue(all(r == "/ephemera/top" for r in server.requests))
        self.assertGreaterEqual(out.count("\x1b[H\x1b[2J"), 2)
        self.assertIn("top 3 by ports", out)

LIVE_CONFIG = """
[pool]
addresses = ["198.18.0.100"]
[inside]
port = "net_null0"
gateway = "100.64.0.1"
[outside]
port = "net_null1"
next_hop = "198.18.0.2"
next_hop_mac = "02:00:00:00:00:fe"
"""


# The worked example of docs/allocation.md: 1024 subscribers over the 30 addresses of a /27,
# 35 per address, 1843 ports each from 1024.
DET_CONFIG = """
[pool]
addresses = ["198.18.0.0/27"]
port_range = "1024-65535"
mode = "deterministic"
[pool.deterministic]
subscribers = "100.64.0.0/22"
[inside]
port = "net_null0"
gateway = "100.64.0.1"
[outside]
port = "net_null1"
next_hop = "198.18.1.1"
"""

# What a running ephemera in that mode answers to show config (the det fields only matter).
DET_SHOW_CONFIG = {
    "file": "/etc/ephemera.toml", "pool_addresses": 30, "pool_first": "198.18.0.1",
    "pool_last": "198.18.0.30", "port_range": "1024-65535 (1024-65535)",
    "pool_mode": "deterministic", "det_subscribers": "100.64.0.0/22", "det_min_ports": 1024,
    "port_range_lo": 1024, "port_range_hi": 65535, "det_pool": ["198.18.0.1-198.18.0.30"],
    "filtering": "endpoint-independent",
}


class Det(unittest.TestCase):
    """ephemeractl det: RFC 7422's forward and reverse functions, offline from a config file
    (no ephemera, no socket) and from a show config reply."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.config = self.write("det.toml", DET_CONFIG)
        self.server = None

    def tearDown(self):
        if self.server is not None:
            self.server.close()
        self.dir.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def ctl(self, *args):
        # A socket that does not exist: the offline form must never need one.
        argv = [EPHEMERACTL, "--socket", os.path.join(self.dir.name, "none")] + list(args)
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    def test_det_forward_offline(self):
        r = self.ctl("det", "forward", "100.64.1.7", "--config", self.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["subscriber", "100.64.1.7"])
        self.assertEqual(lines[1].split(), ["pool_address", "198.18.0.8"])
        self.assertEqual(lines[2].split(), ["ports", "34198-36040"])
        self.assertIn("ratio", r.stdout)
        # --config may come before the subcommand, --json anywhere.
        r = self.ctl("--json", "det", "--config", self.config, "forward", "100.64.0.0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {
            "subscriber": "100.64.0.0", "pool_address": "198.18.0.1", "ports": "1024-2866",
            "port_count": 1843, "pool_index": 0, "ratio": 35, "ports_per_subscriber": 1843})
        r = self.ctl("det", "forward", "100.64.3.255", "--config", self.config, "--json")
        self.assertEqual(json.loads(r.stdout)["pool_address"], "198.18.0.30")
        self.assertEqual(json.loads(r.stdout)["ports"], "15768-17610")

    def test_det_reverse_offline(self):
        r = self.ctl("det", "reverse", "198.18.0.8:35000", "--config", self.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("subscriber    100.64.1.7\n", r.stdout)
        self.assertIn("ports         34198-36040\n", r.stdout)
        for port in (34198, 36040):
            r = self.ctl("--json", "det", "reverse", f"198.18.0.8:{port}", "--config",
                         self.config)
            self.assertEqual(json.loads(r.stdout)["subscriber"], "100.64.1.7")

    def test_det_reverse_says_why_no_subscriber_holds_it(self):
        cases = [
            ("198.18.0.8:65530", "the port is in the unassigned tail of port_range (ports "
             "1024-65528 of port_range 1024-65535 are assigned)"),
            ("198.18.0.8:1023", "the port is outside port_range"),
            ("198.18.0.31:2000", "the address is not in the pool"),
            ("198.18.0.30:20000", "past the end of the subscriber prefix"),
        ]
        for endpoint, why in cases:
            with self.subTest(endpoint=endpoint):
                r = self.ctl("det", "reverse", endpoint, "--config", self.config)
                self.assertEqual(r.returncode, 1)
                self.assertEqual(r.stdout, "")
                self.assertIn(f"ephemeractl: {endpoint}: no subscriber holds it: ", r.stderr)
                self.assertIn(why, r.stderr)
        r = self.ctl("--json", "det", "reverse", "198.18.0.8:65530", "--config", self.config)
        self.assertEqual(r.returncode, 1)
        self.assertIsNone(json.loads(r.stdout)["subscriber"])

    def test_det_forward_outside_the_prefix_exits_1(self):
        r = self.ctl("det", "forward", "100.64.4.0", "--config", self.config)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "ephemeractl: 100.64.4.0: not a subscriber: outside the "
                                   "subscriber prefix 100.64.0.0/22\n")

    def test_det_pool_not_in_deterministic_mode_exits_1(self):
        dynamic = self.write("dynamic.toml", DET_CONFIG.replace(
            'mode = "deterministic"\n[pool.deterministic]\nsubscribers = "100.64.0.0/22"\n', ""))
        r = self.ctl("det", "forward", "100.64.1.7", "--config", dynamic)
        self.assertEqual(r.returncode, 1)
        self.assertIn("the pool is not in deterministic mode (pool.mode is \"dynamic\")",
                      r.stderr)

    def test_det_refused_or_missing_config_exits_2(self):
        too_many = self.write("big.toml", DET_CONFIG.replace("/22", "/16"))
        r = self.ctl("det", "forward", "100.64.1.7", "--config", too_many)
        self.assertEqual(r.returncode, 2)
        self.assertIn("config refused: " + too_many + ": pool.deterministic.min_ports: 65536 "
                      "subscribers over 30 pool addresses", r.stderr)
        r = self.ctl("det", "forward", "100.64.1.7", "--config",
                     os.path.join(self.dir.name, "absent.toml"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot open", r.stderr)

    def test_det_malformed_arguments_exit_64(self):
        for argv in (["det"], ["det", "forward"], ["det", "forward", "100.64.1"],
                     ["det", "forward", "100.64.1.7.1"], ["det", "reverse", "198.18.0.8"],
                     ["det", "reverse", "198.18.0.8:65536"], ["det", "reverse", "198.18.0.8:x"],
                     ["det", "sideways", "1.2.3.4"], ["det", "forward", "100.64.1.7", "--config"]):
            with self.subTest(argv=argv):
                r = self.ctl(*argv)
                self.assertEqual(r.returncode, 64, r.stderr)
                self.assertEqual(r.stdout, "")

    def test_show_config_prints_the_mode_and_its_settings(self):
        self.server = FakeTelemetry({"/ephemera/config": DET_SHOW_CONFIG})
        r = subprocess.run([EPHEMERACTL, "--socket", self.server.path, "show", "config"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [line.split(None, 1) for line in r.stdout.splitlines()]
        self.assertIn(["pool_mode", "deterministic"], lines)
        self.assertIn(["det_subscribers", "100.64.0.0/22"], lines)
        self.assertIn(["det_pool", '["198.18.0.1-198.18.0.30"]'], lines)

    def test_det_online_asks_show_config_and_computes_the_same(self):
        self.server = FakeTelemetry({"/ephemera/config": DET_SHOW_CONFIG})
        argv = [EPHEMERACTL, "--socket", self.server.path, "--json", "det", "forward",
                "100.64.1.7"]
        online = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(online.returncode, 0, online.stderr)
        self.assertEqual(self.server.requests, ["/ephemera/config"])
        offline = self.ctl("--json", "det", "forward", "100.64.1.7", "--config", self.config)
        self.assertEqual(json.loads(online.stdout), json.loads(offline.stdout))
        for reply, status, phrase in (
                (dict(DET_SHOW_CONFIG, pool_mode="dynamic"), 1, "pool.mode is \"dynamic\""),
                ({"file": "x"}, 1, "no pool_mode"),
                (dict(DET_SHOW_CONFIG, det_pool=["nope"]), 2, "malformed"),
                (None, 2, "no data")):
            with self.subTest(reply=reply):
                self.server.close()
                self.server = FakeTelemetry({"/ephemera/config": reply})
                r = subprocess.run([EPHEMERACTL, "--socket", self.server.path, "det", "reverse",
                                    "198.18.0.8:35000"], capture_output=True, text=True,
                                   timeout=60)
                self.assertEqual(r.returncode, status, r.stderr)
                self.assertIn(phrase, r.stderr)
        r = self.ctl("det", "forward", "100.64.1.7")
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot connect", r.stderr)

    def test_whois_formula_from_the_running_config(self):
        # Deterministic mode, no session on the port now: the formula of the running config.
        # A greeting without a pid: when ephemera started is not known, the live table is asked.
        self.server = FakeTelemetry(
            {"/ephemera/config": DET_SHOW_CONFIG, "/ephemera/sessions": []},
            greeting={"version": "DPDK 22.11.4", "max_output_len": 16384})
        argv = [EPHEMERACTL, "--socket", self.server.path, "whois", "198.18.0.8:35000",
                "--at", "2026-12-05T10:00:00Z"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("  100.64.1.7 (deterministic formula), from the formula", r.stdout)
        self.assertIn("the running config", r.stdout)
        self.assertIn("live table: nobody holds 198.18.0.8:35000 now", r.stderr)
        self.assertEqual(self.server.requests, [
            "/ephemera/config", "/ephemera/sessions,external=198.18.0.8:35000;limit=64"])


# /ephemera/top and /ephemera/config for plan: three subscribers, two at 500 ports and one at
# 1,000, whose answers are exact (no address can be short of ports unless the range or the
# blocks are): one address holds them all in 2,000 ports, 2,048 in steps of 64.
PLAN_TOP = {"subscribers": 3, "ports_le": [500, 1000], "ports_count": [2, 1]}
PLAN_CONFIG = {"file": "/etc/ephemera/ephemera.toml", "pool_addresses": 4,
               "pool_first": "198.18.0.100", "pool_last": "198.18.0.103",
               "port_range": "default (1024-65535)", "pool_mode": "dynamic", "workers": 1}
PLAN_BLOCKS_CONFIG = dict(PLAN_CONFIG, pool_mode="blocks", block_size=256, max_blocks=2,
                          active_block_timeout=0, interim=0, adaptive="off")


class Plan(unittest.TestCase):
    """ephemeractl plan: from /ephemera/top, /ephemera/config and /ephemera/ports, or offline
    from --histogram FILE; the report, --json, and what it refuses."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.server = None

    def tearDown(self):
        if self.server is not None:
            self.server.close()
        self.dir.cleanup()

    def ctl(self, *args):
        argv = [EPHEMERACTL] + (["--socket", self.server.path] if self.server else
                                ["--socket", os.path.join(self.dir.name, "none")]) + list(args)
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    def histogram(self, data):
        path = os.path.join(self.dir.name, "top.json")
        with open(path, "w") as f:
            f.write(data if isinstance(data, str) else json.dumps(data))
        return path

    def settings(self, text):
        """The "key  value" lines (keys may hold single spaces; columns are two apart)."""
        return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in text.splitlines()
                    if line and not line[0].isdigit() and not line.startswith("block_size"))

    def test_plan_asks_top_config_and_ports_and_prints_the_numbers(self):
        self.server = FakeTelemetry({"/ephemera/top": PLAN_TOP, "/ephemera/config": PLAN_CONFIG,
                                     "/ephemera/ports": PORTS})
        r = self.ctl("plan")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.server.requests,
                         ["/ephemera/top", "/ephemera/config", "/ephemera/ports"])
        got = self.settings(r.stdout)
        # Usable ports per address: the fewest of /ephemera/ports (16384), not the range.
        self.assertEqual(got["pool"], "4 addresses, 16384 ports each, 1 worker")
        self.assertEqual(got["mode"], "dynamic")
        self.assertEqual(got["target"], "0.100% of subscribers refused at the peak")
        self.assertEqual(got["refused now"], "0.000% (meets the target)")
        self.assertEqual(got["pool size"], "1 addresses (3 fewer than now)")
        self.assertTrue(got["ports per address"].startswith(
            '2048 (14336 fewer than now), e.g. port_range "63488-65535"'), got)

    def test_plan_without_ports_reply_uses_the_range(self):
        self.server = FakeTelemetry({"/ephemera/top": PLAN_TOP, "/ephemera/config": PLAN_CONFIG})
        r = self.ctl("--json", "plan", "--target", "0.01")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = json.loads(r.stdout)
        self.assertEqual((data["ports_per_address"], data["pool_size_needed"],
                          data["ports_per_address_needed"], data["target"]),
                         (64512, 1, 2048, 0.01))

    def test_plan_blocks_json_and_table(self):
        self.server = FakeTelemetry({"/ephemera/top": PLAN_TOP,
                                     "/ephemera/config": PLAN_BLOCKS_CONFIG,
                                     "/ephemera/ports": PORTS})
        r = self.ctl("plan", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = json.loads(r.stdout)
        # The 1,000-port subscriber needs 4 blocks of 256 and may hold 2: one in three refused,
        # whatever the pool or the range.
        self.assertAlmostEqual(data["refusal_rate"], 1 / 3)
        self.assertAlmostEqual(data["beyond_max_blocks"], 1 / 3)
        self.assertFalse(data["meets_target"])
        self.assertIsNone(data["pool_size_needed"])
        self.assertIsNone(data["ports_per_address_needed"])
        options = {o["block_size"]: o["max_blocks"] for o in data["block_options"]}
        self.assertEqual(options, {64: 16, 128: 8, 256: 4, 512: 2, 1024: 1, 2048: 1, 4096: 1})
        # With those, one address holds them all.
        self.assertEqual({o["pool_size_needed"] for o in data["block_options"]}, {1})
        text = self.ctl("plan").stdout
        self.assertIn("beyond max_blocks  33.333% need more than 512 ports", text)
        self.assertIn("256         4           0.000%         1  (block_size now)\n", text)

    def test_plan_offline_from_a_histogram_file(self):
        path = self.histogram(PLAN_TOP)
        r = self.ctl("plan", "--histogram", path, "--pool-size", "4", "--ports-per-address",
                     "16384")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = self.settings(r.stdout)
        self.assertEqual(got["pool size"], "1 addresses (3 fewer than now)")
        self.assertEqual(got["subscribers"], "3")
        r = self.ctl("--json", "plan", "--histogram", path, "--pool-size", "4",
                     "--ports-per-address", "16384", "--workers", "2", "--mode", "blocks",
                     "--block-size", "1024", "--max-blocks", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = json.loads(r.stdout)
        self.assertEqual((data["workers"], data["block_size"], data["max_blocks"],
                          data["refusal_rate"]), (2, 1024, 1, 0.0))

    def test_plan_bad_input_exits_64_saying_why(self):
        cases = [
            ({"subscribers": 3, "ports_count": [1]}, "no ports_le and ports_count arrays"),
            ({"subscribers": 3, "ports_le": [1, 2], "ports_count": [1]},
             "ports_le has 2 entries and ports_count 1: they must match"),
            ({"ports_le": [1], "ports_count": [1]}, "no subscribers count"),
            ({"subscribers": 3, "ports_le": [-1], "ports_count": [1]},
             "non-negative integers (entry 0)"),
            ("[1, 2", "not JSON"),
        ]
        for data, words in cases:
            with self.subTest(data=data):
                path = self.histogram(data)
                r = self.ctl("plan", "--histogram", path, "--pool-size", "4",
                             "--ports-per-address", "16384")
                self.assertEqual(r.returncode, 64, r.stdout)
                self.assertIn(words, r.stderr)
                self.assertTrue(r.stderr.startswith("ephemeractl: plan: "), r.stderr)
                self.assertEqual(r.stdout, "")
        path = self.histogram(PLAN_TOP)
        for argv, words in [
                (["--target", "0"], "--target"),
                (["--target", "1"], "--target"),
                (["--target", "-0.5"], "--target"),
                (["--target", "x"], "--target"),
                (["--histogram", path], "give --pool-size and --ports-per-address"),
                (["--histogram", path, "--pool-size", "4"], "give --pool-size"),
                (["--pool-size", "4"], "--pool-size is only for --histogram"),
                (["--histogram", path, "--pool-size", "4", "--ports-per-address", "0"],
                 "--ports-per-address"),
                (["--histogram", path, "--pool-size", "4", "--ports-per-address", "70000"],
                 "ports per address must be 1..65535"),
                (["--histogram", path, "--pool-size", "4", "--ports-per-address", "9",
                  "--mode", "deterministic"], "--mode"),
                (["--histogram", os.path.join(self.dir.name, "missing.json"), "--pool-size",
                  "4", "--ports-per-address", "9"], "cannot read it"),
        ]:
            with self.subTest(argv=argv):
                r = self.ctl("plan", *argv)
                self.assertEqual(r.returncode, 64, r.stderr)
                self.assertIn(words, r.stderr)
                self.assertEqual(r.stdout, "")

    def test_plan_replies_it_cannot_use(self):
        for replies, status, words in [
                ({"/ephemera/config": PLAN_CONFIG}, 2,
                 "/ephemera/top: no data: this ephemera does not give the distribution"),
                ({"/ephemera/top": {"subscribers": 3, "ports_le": [1, 2], "ports_count": [1]},
                  "/ephemera/config": PLAN_CONFIG}, 2,
                 "malformed /ephemera/top reply: ports_le has 2 entries and ports_count 1"),
                ({"/ephemera/top": PLAN_TOP, "/ephemera/config": {"pool_addresses": 4}}, 2,
                 "malformed /ephemera/config reply"),
                ({"/ephemera/top": PLAN_TOP,
                  "/ephemera/config": dict(PLAN_CONFIG, pool_mode="deterministic")}, 1,
                 "deterministic mode"),
        ]:
            with self.subTest(replies=replies):
                self.server = FakeTelemetry(replies)
                r = self.ctl("plan")
                self.assertEqual(r.returncode, status, r.stderr)
                self.assertIn(words, r.stderr)
                self.server.close()
                self.server = None
        r = self.ctl("plan")  # no server at all
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_help_documents_plan(self):
        r = subprocess.run([EPHEMERACTL, "plan", "--help"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        for words in ("--target", "--histogram", "--pool-size", "--ports-per-address",
                      "--block-size", "--max-blocks", "Monte Carlo", "upper"):
            self.assertIn(words, r.stdout)


class Live(unittest.TestCase):
    """show pauses and reset pauses against a real ephemera with two workers on net_null ports
    (an endless stream of junk frames, so the workers are busy while they take up changes)."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (DPDK)")
        ephemera = os.environ.get("EPHEMERA")
        if not ephemera:
            self.skipTest("EPHEMERA (the ephemera binary) not set")
        self.tmp = tempfile.TemporaryDirectory()
        self.prefix = f"ctl-{os.getpid()}-{self._testMethodName}"[:40]
        path = os.path.join(self.tmp.name, "live.toml")
        with open(path, "w") as f:
            f.write(LIVE_CONFIG)
        # --lcores: three lcores on a 2-CPU machine.
        self.proc = subprocess.Popen(
            [ephemera, "--lcores", "0@0,1@1,2@0", "--no-huge", "-m", "512", "--no-pci",
             "--file-prefix", self.prefix, "--log-level=error", "--vdev", "net_null0",
             "--vdev", "net_null1", "--", "--config", path],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline and self.proc.poll() is None:
            r = self.ctl("--json", "show", "stats")
            if r.returncode == 0 and json.loads(r.stdout).get("in2out_rx", 0) > 0:
                return
            time.sleep(0.2)
        self.fail("ephemera did not start")

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
        self.tmp.cleanup()
        subprocess.run(["rm", "-rf", f"/var/run/dpdk/{self.prefix}"], check=False)

    def ctl(self, *args):
        return subprocess.run([EPHEMERACTL, "--prefix", self.prefix] + list(args),
                              capture_output=True, text=True, timeout=60)

    def pauses(self):
        r = self.ctl("--json", "show", "pauses")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_show_pauses_lists_every_worker(self):
        r = self.ctl("show", "pauses")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split()[:3], ["worker", "longest", "iteration"])
        self.assertEqual([line.split()[0] for line in lines[1:]], ["0", "1", "all"])
        data = self.pauses()
        self.assertEqual(list(data), ["worker", "longest_iteration_us",
                                      "longest_plan_iteration_us", "longest_take_up_us",
                                      "plans_taken", "pause_window_ms"])
        self.assertEqual(data["worker"], [0, 1])
        for w in (0, 1):
            # The workers have run since start: their windows are open, and no change came.
            self.assertGreater(data["pause_window_ms"][w], 0)
            self.assertEqual(data["plans_taken"][w], 0)
            self.assertEqual(data["longest_plan_iteration_us"][w], 0)
            self.assertEqual(data["longest_take_up_us"][w], 0)
        # /ephemera/stats carries the maxima over the workers.
        r = self.ctl("--json", "show", "stats")
        stats = json.loads(r.stdout)
        for key in ("longest_iteration_us", "longest_plan_iteration_us", "longest_take_up_us",
                    "plans_taken", "pause_window_ms"):
            self.assertIn(key, stats)

    def test_static_mappings_change_while_running(self):
        r = self.ctl("show", "static")
        self.assertEqual((r.returncode, r.stdout), (0, "no static mappings\n"), r.stderr)
        for argv, message in [
            (["static", "add", "tcp", "198.18.0.100:8080", "100.64.0.5:80"],
             "applied static add tcp 198.18.0.100:8080 100.64.0.5:80\n"),
            (["static", "add", "198.18.0.20", "100.64.0.50"],
             "applied static add 198.18.0.20 100.64.0.50\n"),
        ]:
            r = self.ctl(*argv)
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, message, ""))
        r = self.ctl("--json", "show", "static")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {
            "kind": ["forward", "1:1"], "protocol": ["tcp", "any"],
            "external": ["198.18.0.100", "198.18.0.20"], "external_port": [8080, 0],
            "inside": ["100.64.0.5", "100.64.0.50"], "inside_port": [80, 0], "total": 2})
        # Refused for the file's reasons, and for a removal of what is not there.
        r = self.ctl("static", "add", "udp", "198.18.0.100:50000", "100.64.0.6:53")
        self.assertEqual(r.returncode, 1)
        self.assertIn("refused: static[2].external: port 50000 lies in the dynamic range",
                      r.stderr)
        r = self.ctl("static", "remove", "udp", "198.18.0.100:8080")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no static mapping for udp 198.18.0.100:8080", r.stderr)
        for argv in (["static", "remove", "tcp", "198.18.0.100:8080"],
                     ["static", "remove", "198.18.0.20"]):
            r = self.ctl(*argv)
            self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl("show", "static")
        self.assertEqual((r.returncode, r.stdout), (0, "no static mappings\n"), r.stderr)

    def test_reset_restarts_the_window_and_changes_are_counted_as_plans(self):
        time.sleep(1)
        before = self.pauses()
        r = self.ctl("reset", "pauses")
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (0, "pause windows restarted on 2 workers\n", ""))
        after = self.pauses()
        for w in (0, 1):
            self.assertLess(after["pause_window_ms"][w], before["pause_window_ms"][w])
            self.assertEqual(after["plans_taken"][w], 0)
        for argv in (["set", "timeouts.udp", "600"], ["pool", "add", "198.18.0.101"],
                     ["set", "pool.port_range", "40000-50000"],
                     ["pool", "remove", "198.18.0.101"]):
            r = self.ctl(*argv)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.startswith("applied "), r.stdout)
        # Each change is a plan that every worker takes up at its next housekeeping.
        deadline = time.time() + 10
        data = self.pauses()
        while time.time() < deadline and min(data["plans_taken"]) < 4:
            time.sleep(0.1)
            data = self.pauses()
        self.assertEqual(data["plans_taken"], [4, 4])
        for w in (0, 1):
            self.assertLessEqual(data["longest_plan_iteration_us"][w],
                                 data["longest_iteration_us"][w])
            # Taking a plan up is part of the iteration it happens in.
            self.assertLessEqual(data["longest_take_up_us"][w],
                                 data["longest_plan_iteration_us"][w])
        # A refused change publishes nothing.
        r = self.ctl("set", "timeouts.udp", "30")
        self.assertEqual(r.returncode, 1)
        time.sleep(0.5)
        self.assertEqual(self.pauses()["plans_taken"], [4, 4])
        r = self.ctl("--json", "reset", "pauses")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["result"], "ok")
        self.assertEqual(self.pauses()["plans_taken"], [0, 0])

    def test_logging_changes_while_running(self):
        r = self.ctl("show", "logging")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no sinks: logging is off (no collector, no archive)\n", r.stdout)
        self.assertIn("worker  records handed over  dropped\n", r.stdout)
        config = json.loads(self.ctl("--json", "show", "config").stdout)
        self.assertEqual((config["logging_events"], config["logging_destination"],
                          config["logging_ring_size"], config["logging_archive"]),
                         ("mapping,static,exhaustion,threshold", "off", 65536, "none"))
        for argv, message in [
            (["set", "logging.destination", "true"], "applied logging.destination = true\n"),
            (["set", "logging.events", "mapping,block"],
             "applied logging.events = mapping,block\n"),
            # Any other change keeps them.
            (["set", "timeouts.udp", "600"], "applied timeouts.udp = 600\n"),
        ]:
            r = self.ctl(*argv)
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, message, ""))
        config = json.loads(self.ctl("--json", "show", "config").stdout)
        self.assertEqual((config["logging_events"], config["logging_destination"]),
                         ("mapping,block", "on"))
        for argv, words in [
            (["set", "logging.ring_size", "4096"],
             "refused: logging.ring_size: cannot change while running: each worker's event "
             "ring is sized at start"),
            (["set", "logging.events", "mapping,flows"],
             "refused: logging.events[1]: unknown event group"),
            (["set", "logging.archive.path", "/tmp/archive"], "ephemeractl reload"),
        ]:
            r = self.ctl(*argv)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn(words, r.stderr)
        config = json.loads(self.ctl("--json", "show", "config").stdout)
        self.assertEqual((config["logging_ring_size"], config["logging_archive"]),
                         (65536, "none"))
        # whois asks the live table (nobody holds this port) and has no other source.
        r = self.ctl("whois", "198.18.0.100:50000")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("whois: live table: nobody holds 198.18.0.100:50000 now\n", r.stderr)


if __name__ == "__main__":
    unittest.main()
