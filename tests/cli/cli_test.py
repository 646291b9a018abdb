#!/usr/bin/python3
"""Command line, config refusal at start-up, telemetry and clean shutdown of the real binary.

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


def eal_args(prefix, lcores="0@0,1@1"):
    # --lcores maps lcores onto CPUs, so 3 lcores run on a 2-CPU machine.
    return [EPHEMERA, "--lcores", lcores, "--no-huge", "-m", "256", "--no-pci",
            "--file-prefix", prefix, "--log-level=error",
            "--vdev", "net_null0", "--vdev", "net_null1", "--"]


def telemetry(prefix, command):
    path = f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2"
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.connect(path)
        json.loads(s.recv(16384).decode())  # greeting
        s.send(command.encode())
        return json.loads(s.recv(1 << 20).decode())


class Cli(unittest.TestCase):
    def setUp(self):
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
