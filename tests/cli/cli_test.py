#!/usr/bin/python3
"""Command line, config refusal at start-up, telemetry and clean shutdown of the real binary,
and its --owner mode.

Uses net_null ports (no namespaces needed): the null PMD receives an endless stream of frames
whose bytes are whatever sits in the mbufs, so these tests also show that a flood of junk is
dropped and counted without hurting the process.

    cli_test.py EPHEMERA SOURCE_DIR [unittest names...]
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

EPHEMERA = sys.argv[1] if len(sys.argv) > 1 else "build/control/ephemera"
SOURCE_DIR = sys.argv[2] if len(sys.argv) > 2 else "."
del sys.argv[1:3]

GOOD_CONFIG = """
[pool]
addresses = ["198.18.0.100"]
[inside]
port = "{inside}"
gateway = "100.64.0.1"
[outside]
port = "{outside}"
next_hop = "198.18.0.2"
next_hop_mac = "02:00:00:00:00:fe"
"""


def eal_args(prefix, lcores="0@0,1@1", vdevs=("net_null0", "net_null1")):
    # --lcores maps lcores onto CPUs, so 3 lcores run on a 2-CPU machine.
    args = [EPHEMERA, "--lcores", lcores, "--no-huge", "-m", "512", "--no-pci",
            "--file-prefix", prefix, "--log-level=error"]
    for vdev in vdevs:
        args += ["--vdev", vdev]
    return args + ["--"]


def wait_until(predicate, timeout, interval=0.05):
    """Polls `predicate` until it holds or `timeout` seconds pass; returns its last value."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value or time.time() >= deadline:
            return value
        time.sleep(interval)


def telemetry(prefix, command):
    path = f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2"
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.connect(path)
        json.loads(s.recv(16384).decode())  # greeting
        s.send(command.encode())
        return json.loads(s.recv(1 << 20).decode())


class Cli(unittest.TestCase):
    # The only tests that never start the EAL.
    WITHOUT_EAL = ("test_check_config_accepts_the_demo_config",
                   "test_check_config_refuses_with_file_key_reason")

    def setUp(self):
        if self._testMethodName not in self.WITHOUT_EAL:
            skip_unless_root(self)
        self.tmp = tempfile.TemporaryDirectory()
        self.prefix = f"cli-{os.getpid()}-{self._testMethodName}"[:40]

    def tearDown(self):
        self.tmp.cleanup()
        subprocess.run(["rm", "-rf", f"/var/run/dpdk/{self.prefix}"], check=False)

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_check_config_accepts_the_demo_config(self):
        r = subprocess.run([EPHEMERA, "--check-config", os.path.join(SOURCE_DIR, "conf/demo.toml")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("is valid", r.stdout)
        self.assertIn("49152-65535", r.stdout)

    def test_check_config_refuses_with_file_key_reason(self):
        # RFC4787 REQ-5: the UDP mapping timer must be at least 2 minutes.
        path = self.write("low.toml", GOOD_CONFIG.format(inside="a", outside="b") +
                          "[timeouts]\nudp = 30\n")
        r = subprocess.run([EPHEMERA, "--check-config", path], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}: timeouts.udp:", r.stderr)
        self.assertIn("RFC 4787", r.stderr)

    def test_bad_config_refused_before_the_eal_starts(self):
        path = self.write("bad.toml", GOOD_CONFIG.format(inside="net_null0", outside="net_null1")
                          .replace('"198.18.0.100"', '"198.18.0.300"'))
        r = subprocess.run(eal_args(self.prefix) + ["--config", path], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("pool.addresses[0]", r.stderr)
        self.assertFalse(os.path.exists(f"/var/run/dpdk/{self.prefix}"),
                         "the EAL must not have started")

    def test_unknown_port_name_refused_naming_key_and_known_ports(self):
        path = self.write("port.toml", GOOD_CONFIG.format(inside="net_nope", outside="net_null1"))
        r = subprocess.run(eal_args(self.prefix) + ["--config", path], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("inside.port", r.stderr)
        self.assertIn("net_nope", r.stderr)
        self.assertIn("net_null0", r.stderr)

    def test_block_size_a_worker_cannot_hold_is_refused_at_start(self):
        # 1024 ports over 3 workers: about 341 each, no block of 512; 64-port blocks fit.
        table = '[pool.blocks]\nblock_size = {size}\n'
        for size, refused in ((512, True), (64, False)):
            with self.subTest(size=size):
                text = GOOD_CONFIG.format(inside="net_null0", outside="net_null1").replace(
                    '[inside]', 'port_range = "60000-61023"\nmode = "blocks"\n' +
                    table.format(size=size) + '[inside]')
                path = self.write(f"blocks{size}.toml", text)
                proc = subprocess.Popen(eal_args(self.prefix, lcores="0@0,1@1,2@0,3@1") +
                                        ["--config", path], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
                try:
                    out, err = proc.communicate(timeout=5 if not refused else 60)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    out, err = proc.communicate(timeout=30)
                    self.assertFalse(refused, "not refused: " + out + err)
                    continue
                self.assertTrue(refused, "exited %d: %s%s" % (proc.returncode, out, err))
                self.assertEqual(proc.returncode, 2, out + err)
                self.assertIn(f"{path}: pool.blocks.block_size: a block of 512 ports does not "
                              "fit in worker", err)

    def test_needs_a_worker_lcore(self):
        path = self.write("ok.toml", GOOD_CONFIG.format(inside="net_null0", outside="net_null1"))
        r = subprocess.run(eal_args(self.prefix, lcores="0@0") + ["--config", path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 3)
        self.assertIn("no worker lcores", r.stderr)

    def test_junk_flood_is_counted_telemetry_answers_and_sigterm_stops_cleanly(self):
        path = self.write("ok.toml", GOOD_CONFIG.format(inside="net_null0", outside="net_null1"))
        stats_path = os.path.join(self.tmp.name, "stats.json")
        proc = subprocess.Popen(eal_args(self.prefix, lcores="0@0,1@1,2@0") +
                                ["--config", path, "--stats-json", stats_path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 30
            stats = None
            while time.time() < deadline:
                try:
                    stats = telemetry(self.prefix, "/ephemera/stats")["/ephemera/stats"]
                    if stats["in2out_rx"] > 10000 and stats["out2in_rx"] > 10000:
                        break
                except (OSError, ValueError, KeyError, TypeError):
                    pass
                time.sleep(0.2)
            self.assertIsNotNone(stats, "telemetry never answered")
            self.assertEqual(stats["workers"], 2)
            self.assertGreater(stats["in2out_rx"], 10000)
            worker = telemetry(self.prefix, "/ephemera/worker,1")["/ephemera/worker"]
            self.assertEqual(worker["worker"], 1)
            config = telemetry(self.prefix, "/ephemera/config")["/ephemera/config"]
            self.assertEqual(config["next_hop_mac"], "02:00:00:00:00:fe")
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn("stopping", out)
        with open(stats_path) as f:
            final = json.load(f)
        totals = final["totals"]
        received = totals["in2out_rx"] + totals["out2in_rx"]
        self.assertGreater(received, 20000)
        # Nothing that came in was translated or lost without a count: junk frames are all drops.
        drops = sum(v for k, v in totals.items() if k.startswith("drop_"))
        self.assertEqual(totals["in2out_translated"] + totals["out2in_translated"], 0)
        self.assertEqual(drops, received, totals)
        self.assertEqual(len(final["workers"]), 2)

    def run_until_telemetry(self, args):
        """Starts ephemera, reads /ephemera/config once the workers forward (so the signal
        handlers are in place), stops it with SIGTERM: (config, stdout)."""
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        config = None
        try:
            deadline = time.time() + 30
            while time.time() < deadline and config is None and proc.poll() is None:
                try:
                    stats = telemetry(self.prefix, "/ephemera/stats")["/ephemera/stats"]
                    if stats["in2out_rx"] > 0:
                        time.sleep(0.2)
                        config = telemetry(self.prefix, "/ephemera/config")["/ephemera/config"]
                        continue
                except (OSError, ValueError, KeyError, TypeError):
                    pass
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertIsNotNone(config, "telemetry never answered")
        self.assertEqual(proc.returncode, 0, err)
        return config, out

    def test_steering_falls_back_to_handoff_on_net_null(self):
        # net_null has no rte_flow, takes no RSS key (it reports a key size of 0) and has no
        # RSS on the source address: both ports fall back to software handoff, say so (and
        # why, mode by mode) at start, and show it in telemetry.
        path = self.write("ok.toml", GOOD_CONFIG.format(inside="net_null0", outside="net_null1"))
        config, out = self.run_until_telemetry(eal_args(self.prefix, lcores="0@0,1@1,2@0") +
                                               ["--config", path])
        self.assertIn("ephemera: outside steering: handoff (no rule accepted: net_null has no "
                      "rte_flow support; RSS: net_null takes no RSS key (hash_key_size 0))\n", out)
        self.assertIn("ephemera: inside steering: handoff (net_null has no RSS on the source "
                      "address only)\n", out)
        self.assertEqual(config["outside_steering"], "handoff")
        self.assertEqual(config["inside_steering"], "handoff")
        self.assertEqual(config["flow_rules"], 0)
        # No checksum offload on net_null: software, said why, and no error.
        self.assertIn("ephemera: inside checksum offload: none (net_null offers no IPv4, UDP or "
                      "TCP checksum offload)\n", out)
        self.assertEqual(config["outside_checksum_offload"],
                         "none (net_null offers no IPv4, UDP or TCP checksum offload)")

    def test_steering_on_net_tap_refuses_port_masks_and_hands_off(self):
        # net_tap's rte_flow_validate accepts our rules, but it cannot mask ports, and its
        # rte_flow_create refuses them: a rule counts only once created.
        iface = f"ephst{os.getpid() % 100000}"
        path = self.write("tap.toml", GOOD_CONFIG.format(inside="net_null0", outside="net_tap0"))
        config, out = self.run_until_telemetry(
            eal_args(self.prefix, lcores="0@0,1@1,2@0",
                     vdevs=("net_null0", f"net_tap0,iface={iface}")) + ["--config", path])
        self.assertIn("ephemera: outside steering: handoff (no rule accepted: net_tap: "
                      "rte_flow_create: ", out)
        # The third mode is tried next: net_tap has no RETA to program.
        self.assertIn("; RSS: net_tap has a RETA of 0 entries, port buckets need a power of two "
                      "of at least 64)\n", out)
        self.assertEqual(config["outside_steering"], "handoff")
        self.assertEqual(config["flow_rules"], 0)
        # net_tap offers the IPv4, UDP and TCP checksums (it computes them as it sends).
        self.assertIn("ephemera: outside checksum offload: ipv4 udp tcp\n", out)
        self.assertEqual(config["outside_checksum_offload"], "ipv4 udp tcp")
        self.assertEqual(subprocess.run(["ip", "link", "show", iface], capture_output=True)
                         .returncode, 1, "the tap interface must go away with the process")

    def test_one_worker_needs_no_steering(self):
        path = self.write("ok.toml", GOOD_CONFIG.format(inside="net_null0", outside="net_null1"))
        config, out = self.run_until_telemetry(eal_args(self.prefix) + ["--config", path])
        self.assertIn("ephemera: outside steering: handoff (one worker: every packet is already "
                      "on its owner's queue)\n", out)
        self.assertEqual(config["outside_steering"], "handoff")

    def test_stop_while_telemetry_is_polled(self):
        # A telemetry client that keeps asking while ephemera stops (a 1 Hz poller does, sooner
        # or later) must get an answer or a closed socket, never a process that dies on the
        # way out: exit status 0 every time, counters written.
        path = self.write("ok.toml", GOOD_CONFIG.format(inside="net_null0", outside="net_null1"))
        commands = ["/ephemera/stats", "/ephemera/worker,0", "/ephemera/worker,1",
                    "/ephemera/mappings,16", "/ephemera/ports", "/ephemera/config"]
        for round_ in range(4):
            prefix = f"{self.prefix}-{round_}"
            proc = subprocess.Popen(eal_args(prefix, lcores="0@0,1@1,2@0") + ["--config", path],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            stop = threading.Event()
            answered = [0]

            def poll(offset):
                i = offset
                while not stop.is_set():
                    try:
                        command = commands[i % len(commands)]
                        # null until the commands are registered, which is after the
                        # signal handlers are in place
                        if telemetry(prefix, command)[command.split(",")[0]] is not None:
                            answered[0] += 1
                    except (OSError, ValueError, KeyError):
                        time.sleep(0.001)  # not up yet, or going away
                    i += 1

            pollers = [threading.Thread(target=poll, args=(k,)) for k in range(3)]
            for t in pollers:
                t.start()
            try:
                wait_until(lambda: answered[0] > 50 or proc.poll() is not None, 30)
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=30)
            finally:
                stop.set()
                for t in pollers:
                    t.join()
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
                subprocess.run(["rm", "-rf", f"/var/run/dpdk/{prefix}"], check=False)
            self.assertGreater(answered[0], 50, "telemetry never answered")
            self.assertEqual(proc.returncode, 0, f"round {round_}: {err}")
            self.assertIn("stopping", out)



class Runtime(unittest.TestCase):
    """Config changes while running: applied through telemetry and SIGHUP, or refused with the
    key and the reason while the running config stays exactly as it was."""

    def setUp(self):
        skip_unless_root(self)
        self.tmp = tempfile.TemporaryDirectory()
        self.prefix = f"rt-{os.getpid()}-{self._testMethodName}"[:40]
        self.path = os.path.join(self.tmp.name, "rt.toml")
        self.write_config("[timeouts]\nudp = 300\n")
        self.proc = subprocess.Popen(eal_args(self.prefix, lcores="0@0,1@1,2@0") +
                                     ["--config", self.path],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if telemetry(self.prefix, "/ephemera/stats")["/ephemera/stats"]["in2out_rx"] > 0:
                    return
            except (OSError, ValueError, KeyError, TypeError):
                pass
            time.sleep(0.2)
        self.fail("ephemera did not start")

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.out, _ = self.proc.communicate(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
        self.tmp.cleanup()
        subprocess.run(["rm", "-rf", f"/var/run/dpdk/{self.prefix}"], check=False)

    def write_config(self, extra):
        with open(self.path, "w") as f:
            f.write(GOOD_CONFIG.format(inside="net_null0", outside="net_null1") + extra)

    def config(self):
        return telemetry(self.prefix, "/ephemera/config")["/ephemera/config"]

    def change(self, command):
        return telemetry(self.prefix, command)[command.split(",")[0]]

    def test_set_applies_or_refuses_and_the_config_stays(self):
        r = self.change("/ephemera/set,timeouts.udp=600")
        self.assertEqual(r["result"], "ok", r)
        self.assertEqual(self.config()["timeout_udp"], 600)
        r = self.change("/ephemera/set,filtering.mode=address")
        self.assertEqual(r["result"], "ok", r)
        self.assertEqual(self.config()["filtering"], "address")
        before = self.config()
        for command, key in [("/ephemera/set,timeouts.udp=30", "timeouts.udp"),  # RFC4787 REQ-5
                             ("/ephemera/set,timeouts.tcp_established=600",
                              "timeouts.tcp_established"),                     # RFC5382 REQ-5
                             ("/ephemera/set,filtering.mode=sometimes", "filtering.mode"),
                             ("/ephemera/set,inside.port=net_null1", "inside.port"),
                             ("/ephemera/set,limits.max_sessions=2048", "limits.max_sessions"),
                             ("/ephemera/set,timeouts.nosuch=1", "timeouts.nosuch"),
                             ("/ephemera/pool,add=127.0.0.1", "pool.addresses")]:
            r = self.change(command)
            self.assertEqual(r["result"], "refused", command)
            self.assertIn(key, r["message"], command)
            self.assertEqual(self.config(), before, command)

    def test_sighup_reloads_through_the_same_checks(self):
        self.write_config("[timeouts]\nudp = 900\n")
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and self.config()["timeout_udp"] != 900:
            time.sleep(0.1)
        self.assertEqual(self.config()["timeout_udp"], 900)
        self.write_config("[timeouts]\nudp = 60\n")  # below RFC 4787 REQ-5: refused
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        self.assertEqual(self.config()["timeout_udp"], 900)
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        self.assertIn("ephemera: SIGHUP: applied reload of " + self.path, out)
        self.assertIn("ephemera: SIGHUP: refused: timeouts.udp:", out)
        self.assertIn("(" + self.path + ")", out)


class Owner(unittest.TestCase):
    """`ephemera --owner --workers N QUERY...`: the ownership function of the workers
    (include/ephemera/ownership.hpp) for tests and tools. Needs no EAL, no root."""

    def owner(self, workers, *queries):
        r = subprocess.run([EPHEMERA, "--owner", "--workers", str(workers), *queries],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        return r.stdout.splitlines()

    def refused(self, *args):
        r = subprocess.run([EPHEMERA, *args], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertEqual(r.stdout, "")
        return r.stderr

    def test_answers_one_line_per_query_in_order(self):
        self.assertEqual(self.owner(4, "100.64.0.10", "198.18.0.100:50000", "100.64.0.11",
                                    "198.18.0.100:50002-50003"),
                         ["subscriber 100.64.0.10 worker 3",
                          "port 198.18.0.100:50000 worker 0",
                          "subscriber 100.64.0.11 worker 2",
                          "port 198.18.0.100:50002 worker 1",
                          "port 198.18.0.100:50003 worker 1"])

    def test_subscribers_known_answers(self):
        # subscriber_owner = murmur3 fmix32(address) % workers; fmix32 of the addresses below
        # is d26bf159, 08d7b1bb, 28af4912, 15327fb5, 81f16f39 and 0.
        addresses = ["100.64.0.1", "100.64.0.10", "100.64.0.11", "100.64.0.12",
                     "255.255.255.255", "0.0.0.0"]
        for workers, owners in ((1, [0, 0, 0, 0, 0, 0]), (2, [1, 1, 0, 1, 1, 0]),
                                (3, [2, 2, 0, 1, 1, 0]), (4, [1, 3, 2, 1, 1, 0])):
            self.assertEqual(self.owner(workers, *addresses),
                             ["subscriber %s worker %d" % a for a in zip(addresses, owners)],
                             "%d workers" % workers)

    def test_subscribers_spread_evenly(self):
        addresses = ["100.64.%d.%d" % (i >> 8, i & 255) for i in range(4096)]
        lines = self.owner(4, *addresses)
        counts = [sum(line.endswith(" worker %d" % w) for line in lines) for w in range(4)]
        self.assertEqual(sum(counts), 4096)
        for count in counts:
            self.assertLess(abs(count - 1024), 128, counts)

    def test_ports_follow_the_buckets_whatever_the_address(self):
        # docs/architecture.md: bucket = bits 1..6 of the port, bucket b -> worker b % workers.
        for workers in (1, 2, 3, 4, 64):
            for address in ("198.18.0.100", "203.0.113.7"):
                lines = self.owner(workers, address + ":0-65535")
                self.assertEqual(len(lines), 65536)
                for port in list(range(0, 300)) + list(range(65280, 65536)):
                    self.assertEqual(lines[port], "port %s:%d worker %d"
                                     % (address, port, ((port >> 1) & 63) % workers))
                owners = [int(line.rsplit(" ", 1)[1]) for line in lines]
                self.assertTrue(all(owners[p] == owners[p ^ 1] for p in range(65536)),
                                "parity twins must share their owner")
                self.assertTrue(all(owners[p] == owners[p & 0x7e] for p in range(65536)),
                                "the owner depends on bits 1..6 only")

    def test_bad_queries_and_options_are_refused(self):
        for query in ("100.64.0.256", "100.64.0.010", "100.64.0", "1.2.3.4:", "1.2.3.4:65536",
                      "1.2.3.4:-1", "1.2.3.4:9-3", "1.2.3.4:1-2-3", "1.2.3.4:x", "host:80"):
            self.assertIn("expected ADDR, ADDR:PORT or ADDR:LO-HI, got " + query,
                          self.refused("--owner", "--workers", "2", query), query)
        self.assertIn("--workers", self.refused("--owner", "1.2.3.4"))
        self.assertIn("--owner", self.refused("--workers", "2", "1.2.3.4"))
        self.assertIn("--owner", self.refused("1.2.3.4"))
        self.assertIn("query", self.refused("--owner", "--workers", "2"))
        for workers in ("0", "65", "two"):
            self.assertIn("--workers", self.refused("--owner", "--workers", workers, "1.2.3.4"))
        self.assertIn("x.toml", self.refused("--owner", "--workers", "2", "--config", "x.toml",
                                             "1.2.3.4"))

    def test_deterministic_ports_belong_to_their_subscribers_worker(self):
        # RFC 7422 with --config: 100.64.0.0/22 over 198.18.0.100-103, ports 1024-65535 (252 per
        # subscriber): 100.64.0.10 holds 198.18.0.100:3544-3795, whatever their bits 1..6 say.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "det.toml")
            with open(path, "w") as f:
                f.write(GOOD_CONFIG.format(inside="net_null0", outside="net_null1").replace(
                    'addresses = ["198.18.0.100"]',
                    'addresses = ["198.18.0.100", "198.18.0.101", "198.18.0.102", '
                    '"198.18.0.103"]\nport_range = "1024-65535"\nmode = "deterministic"\n'
                    '[pool.deterministic]\nsubscribers = "100.64.0.0/22"\nmin_ports = 100'))
            for workers in (2, 3, 4):
                lines = self.owner(workers, "--config", path, "100.64.0.10",
                                   "198.18.0.100:3544-3795")
                want = lines[0].split()[-1]
                self.assertEqual(len(lines), 1 + 252)
                self.assertTrue(all(line.split()[-1] == want for line in lines[1:]), lines)
            # Without --config the bits decide, and the run spans every worker.
            plain = self.owner(4, "198.18.0.100:3544-3795")
            self.assertEqual(len({line.split()[-1] for line in plain}), 4)


def skip_unless_root(test):
    """The EAL (hugepage-free as it runs here) still needs root for its runtime directory and
    the virtual ports: without it a test is skipped, saying why, never counted as passed."""
    if os.geteuid() != 0:
        test.skipTest("needs root: ephemera's EAL and its virtual ports (run as root)")


if __name__ == "__main__":
    program = unittest.main(verbosity=2, exit=False)
    result = program.result
    if not result.wasSuccessful():
        sys.exit(1)
    # meson's exit status for a skipped test: every test that ran was skipped.
    sys.exit(77 if result.skipped and len(result.skipped) == result.testsRun else 0)
