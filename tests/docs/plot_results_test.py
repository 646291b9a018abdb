#!/usr/bin/python3
"""bench/plot-results.py on the synthetic fixtures of tests/fixtures/: every PNG is written and
is a real PNG of the expected size; a JSON missing what a plot needs is refused with a message
naming the file and the field, exit status 2, and no image.

Usage: plot_results_test.py SOURCE_ROOT [unittest arguments]
"""

import copy
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

ROOT = None
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LOAD_IMAGES = ["mpps-vs-table-size.png", "latency-percentiles.png", "session-create-rate.png"]
BENCH_IMAGES = ["cycles-vs-table-size.png"]


def png_size(path):
    """(width, height) from the IHDR chunk, which must come first."""
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != PNG_MAGIC:
        raise AssertionError("%s: not a PNG (magic %r)" % (path, head[:8]))
    length, kind = struct.unpack(">I4s", head[8:16])
    if kind != b"IHDR" or length != 13:
        raise AssertionError("%s: first chunk is %r, not IHDR" % (path, kind))
    return struct.unpack(">II", head[16:24])


class PlotResults(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="plot-results-")
        self.script = os.path.join(ROOT, "bench", "plot-results.py")
        self.load = os.path.join(ROOT, "tests", "fixtures", "load-run-sample.json")
        self.bench = os.path.join(ROOT, "tests", "fixtures", "translate-bench-sample.json")

    def tearDown(self):
        self.tmp.cleanup()

    def run_script(self, *args):
        return subprocess.run(["/usr/bin/python3", self.script] + list(args),
                              capture_output=True, text=True, timeout=120)

    def out(self, name="out"):
        return os.path.join(self.tmp.name, name)

    def check_png(self, path):
        self.assertTrue(os.path.exists(path), "%s was not written" % path)
        self.assertGreater(os.path.getsize(path), 8 * 1024, "%s is too small" % path)
        width, height = png_size(path)
        self.assertGreaterEqual(width, 800, path)
        self.assertGreaterEqual(height, 400, path)
        self.assertLessEqual(width, 4000, path)

    def test_both_inputs_write_every_image(self):
        r = self.run_script("--load", self.load, "--bench", self.bench, "--out", self.out())
        self.assertEqual(r.returncode, 0, r.stderr)
        for name in LOAD_IMAGES + BENCH_IMAGES:
            self.check_png(os.path.join(self.out(), name))
            self.assertIn(name, r.stdout)
        self.assertEqual(sorted(os.listdir(self.out())), sorted(LOAD_IMAGES + BENCH_IMAGES))

    def test_one_input_writes_its_images_only(self):
        r = self.run_script("--bench", self.bench, "--out", self.out("bench"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.listdir(self.out("bench")), BENCH_IMAGES)
        self.check_png(os.path.join(self.out("bench"), BENCH_IMAGES[0]))
        r = self.run_script("--load", self.load, "--out", self.out("load"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(self.out("load"))), sorted(LOAD_IMAGES))

    def test_same_json_same_bytes(self):
        for name in ("a", "b"):
            r = self.run_script("--bench", self.bench, "--out", self.out(name))
            self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.out("a"), BENCH_IMAGES[0]), "rb") as a, \
                open(os.path.join(self.out("b"), BENCH_IMAGES[0]), "rb") as b:
            self.assertEqual(a.read(), b.read())

    def refused(self, option, doc, *expect):
        path = os.path.join(self.tmp.name, "broken.json")
        with open(path, "w") as f:
            if isinstance(doc, str):
                f.write(doc)
            else:
                json.dump(doc, f)
        r = self.run_script(option, path, "--out", self.out("refused"))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("plot-results: refused: " + path, r.stderr)
        for e in expect:
            self.assertIn(e, r.stderr)
        self.assertFalse(os.path.exists(self.out("refused")) and os.listdir(self.out("refused")),
                         "a refused JSON wrote images")

    def test_load_json_missing_fields_is_refused(self):
        with open(self.load) as f:
            good = json.load(f)
        d = copy.deepcopy(good)
        del d["summary"][1]["rtt99_us"]
        del d["summary"][1]["out_mpps"]
        self.refused("--load", d, 'summary[1] (size 1M) lacks "out_mpps", "rtt99_us"',
                     "bench/load-run.sh")
        d = copy.deepcopy(good)
        del d["summary"]
        self.refused("--load", d, 'no "summary" list')
        d = copy.deepcopy(good)
        d["summary"] = []
        self.refused("--load", d, '"summary" is empty')
        d = copy.deepcopy(good)
        d["summary"][0]["new_sessions_per_s"] = "fast"
        self.refused("--load", d, 'summary[0]["new_sessions_per_s"] is not a number')
        self.refused("--load", "{not json", "not JSON")

    def test_bench_json_missing_fields_is_refused(self):
        with open(self.bench) as f:
            good = json.load(f)
        d = copy.deepcopy(good)
        del d["benchmarks"]
        self.refused("--bench", d, 'no "benchmarks" list', "bench/run-bench.sh")
        d = copy.deepcopy(good)
        del d["context"]
        self.refused("--bench", d, 'no "context" object')
        d = copy.deepcopy(good)
        for b in d["benchmarks"]:
            b.pop("cycles_per_pkt", None)
        self.refused("--bench", d, 'no benchmark per table size with a "cycles_per_pkt" counter')

    def test_a_refused_input_stops_the_other_too(self):
        with open(self.load) as f:
            d = json.load(f)
        del d["summary"][0]["size"]
        path = os.path.join(self.tmp.name, "broken.json")
        with open(path, "w") as f:
            json.dump(d, f)
        r = self.run_script("--load", path, "--bench", self.bench, "--out", self.out())
        self.assertEqual(r.returncode, 2)
        self.assertIn('lacks "size"', r.stderr)
        self.assertFalse(os.path.exists(self.out()))

    def test_no_input_is_a_usage_error(self):
        r = self.run_script("--out", self.out())
        self.assertEqual(r.returncode, 2)
        self.assertIn("give --load, --bench or both", r.stderr)


if __name__ == "__main__":
    ROOT = sys.argv.pop(1)
    unittest.main()
