#!/usr/bin/python3
"""The Prometheus alert rules (dist/prometheus/ephemera-alerts.yml) and the Grafana dashboard
(dist/grafana/ephemera-dashboard.json), checked with promtool (Debian's prometheus package,
scripts/install-deps.sh):

  Alerts     promtool check rules passes; promtool test rules runs tests/prometheus/alerts-test.yml
             (synthetic series, alerts expected firing and not firing); every alert has a
             severity label and summary and description annotations; every ephemera_ metric
             an alert reads is documented in docs/metrics.md.
  Dashboard  valid JSON in Grafana's model with the ${DS_PROMETHEUS} datasource variable and the
             worker variable; every panel target's expr is valid PromQL (each written, with the
             dashboard's variables filled in, as a recording rule for promtool check rules);
             every ephemera_ metric name in an expr (less _bucket/_sum/_count) is documented
             in docs/metrics.md; the metrics the dashboard is for all appear.

Usage: dist_test.py SOURCE_ROOT [unittest arguments, e.g. Alerts or Dashboard]
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = None
METRIC_RE = re.compile(r"ephemera_[a-z0-9_]+")

# What Grafana puts in place of its variables: any value that keeps the expression valid.
GRAFANA_VARIABLES = [
    ("${DS_PROMETHEUS}", "prometheus"),
    ("$__rate_interval", "5m"),
    ("$__interval", "1m"),
    ("$__range", "1h"),
    ("$instance", ".*"),
    ("$worker", ".*"),
]

# The metrics the dashboard is for (the operator-view issue): each must be in some expr.
DASHBOARD_METRICS = [
    "ephemera_translated_packets_total", "ephemera_drops_total", "ephemera_sessions",
    "ephemera_mappings", "ephemera_pool_ports_used", "ephemera_pool_ports_usable",
    "ephemera_pool_port_alarm", "ephemera_pool_exhaustion_seconds",
    "ephemera_pool_ports_trend_per_second", "ephemera_pool_address_exhaustion_seconds",
    "ephemera_log_records_total", "ephemera_log_records_dropped_total",
    "ephemera_log_sink_records_sent_total", "ephemera_log_sink_records_dropped_total",
    "ephemera_log_sink_errors_total", "ephemera_longest_iteration_seconds",
]


def promtool():
    path = shutil.which("promtool")
    if path is None:
        raise AssertionError(
            "promtool not found: it ships with Debian's prometheus package; run "
            "scripts/install-deps.sh (or apt-get install prometheus)")
    return path


def run(argv, cwd=None):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)


def documented_metrics():
    with open(os.path.join(ROOT, "docs", "metrics.md")) as f:
        text = f.read()
    # The first cell of a row of one of its tables: | `ephemera_name` | type | labels | meaning |
    return set(re.findall(r"^\| `(ephemera_[a-z0-9_]+)[`{]", text, re.M))


def metric_names(expr):
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in METRIC_RE.findall(expr)}


def fill_variables(expr):
    for var, value in GRAFANA_VARIABLES:
        expr = expr.replace(var, value)
    return expr


def check_as_recording_rules(exprs, tmpdir):
    """promtool check rules on a file with one recording rule per expression; JSON strings are
    YAML double-quoted scalars, so each expr goes in as json.dumps() writes it."""
    path = os.path.join(tmpdir, "dashboard-exprs.yml")
    with open(path, "w") as f:
        f.write("groups:\n  - name: dashboard\n    rules:\n")
        for i, expr in enumerate(exprs):
            f.write("      - record: dashboard:expr_%d\n        expr: %s\n" % (i, json.dumps(expr)))
    return run([promtool(), "check", "rules", path])


class Alerts(unittest.TestCase):
    def setUp(self):
        self.rules = os.path.join(ROOT, "dist", "prometheus", "ephemera-alerts.yml")

    def test_promtool_check_rules(self):
        r = run([promtool(), "check", "rules", self.rules])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_promtool_unit_tests(self):
        # rule_files in the test file are relative to it.
        r = run([promtool(), "test", "rules",
                 os.path.join(ROOT, "tests", "prometheus", "alerts-test.yml")])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_every_alert_has_severity_summary_and_description(self):
        with open(self.rules) as f:
            text = f.read()
        # One block per rule, from "- alert:" to the next.
        blocks = re.split(r"\n\s+- alert: ", text)[1:]
        self.assertGreaterEqual(len(blocks), 6)
        for block in blocks:
            name = block.split("\n", 1)[0]
            self.assertRegex(block, r"\n\s+severity: (critical|warning)\n", name)
            self.assertRegex(block, r"\n\s+summary: ", name)
            self.assertRegex(block, r"\n\s+description: ", name)
        for alert in ["EphemeraDown", "EphemeraPoolExhaustionForecast", "EphemeraPoolPortAlarm",
                      "EphemeraNatEventRecordsDropped", "EphemeraPortsExhaustedRefusals",
                      "EphemeraWorkerLoopPause"]:
            self.assertIn("- alert: %s\n" % alert, text)

    def test_alerts_read_documented_metrics_only(self):
        with open(self.rules) as f:
            exprs = "\n".join(line for line in f if not line.lstrip().startswith("#"))
        # annotations name metrics too; every ephemera_ name in the file must be documented.
        missing = metric_names(exprs) - documented_metrics()
        self.assertEqual(missing, set(), "not in docs/metrics.md")


class Dashboard(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ROOT, "dist", "grafana", "ephemera-dashboard.json")) as f:
            self.dash = json.load(f)
        self.panels = []
        stack = list(self.dash["panels"])
        while stack:
            p = stack.pop(0)
            self.panels.append(p)
            stack.extend(p.get("panels", []))  # a collapsed row holds its panels
        self.targets = [(p["title"], t) for p in self.panels for t in p.get("targets", [])]
        self.tmp = tempfile.TemporaryDirectory(prefix="dashboard-")

    def tearDown(self):
        self.tmp.cleanup()

    def test_grafana_model(self):
        for key in ("title", "uid", "panels", "templating", "schemaVersion"):
            self.assertIn(key, self.dash)
        self.assertGreaterEqual(self.dash["schemaVersion"], 36)  # Grafana 9
        variables = {v["name"]: v for v in self.dash["templating"]["list"]}
        self.assertEqual(variables["DS_PROMETHEUS"]["type"], "datasource")
        self.assertEqual(variables["DS_PROMETHEUS"]["query"], "prometheus")
        self.assertEqual(variables["worker"]["type"], "query")
        ids = [p["id"] for p in self.panels]
        self.assertEqual(len(ids), len(set(ids)), "panel ids repeat")
        for p in self.panels:
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            if p["type"] != "row":
                self.assertEqual(p["datasource"]["uid"], "${DS_PROMETHEUS}", p["title"])
                self.assertTrue(p.get("targets"), "%s has no query" % p["title"])
        for title, t in self.targets:
            self.assertEqual(t["datasource"]["uid"], "${DS_PROMETHEUS}", title)
            self.assertTrue(t.get("expr"), "%s: a target without expr" % title)
        rows = [p["title"] for p in self.panels if p["type"] == "row"]
        self.assertEqual(rows, ["Traffic", "Drops", "Sessions and mappings", "Pool port use",
                                "Pool alarms and forecasts", "NAT event logging",
                                "Worker loop"])

    def test_every_expr_is_valid_promql(self):
        exprs = [fill_variables(t["expr"]) for _, t in self.targets]
        self.assertGreater(len(exprs), 20)
        for e in exprs:
            self.assertNotIn("$", e, "a Grafana variable left unfilled")
        r = check_as_recording_rules(exprs, self.tmp.name)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS: %d rules found" % len(exprs), r.stdout)

    def test_the_check_catches_invalid_promql(self):
        r = check_as_recording_rules(["sum by (reason) (rate(ephemera_drops_total[5m])"],
                                     self.tmp.name)
        self.assertNotEqual(r.returncode, 0, r.stdout)

    def test_metric_names_are_documented(self):
        documented = documented_metrics()
        self.assertIn("ephemera_pool_address_exhaustion_seconds", documented)
        used = set()
        for title, t in self.targets:
            names = metric_names(t["expr"])
            if not t["expr"].startswith("min(up{"):  # the one panel on Prometheus's own up
                self.assertTrue(names, "%s: %s reads no ephemera metric" % (title, t["expr"]))
            self.assertEqual(names - documented, set(),
                             "%s: not in docs/metrics.md" % title)
            used |= names
        for v in self.dash["templating"]["list"]:
            q = v.get("definition", "")
            self.assertEqual(metric_names(q) - documented, set(), v["name"])
        self.assertEqual(set(DASHBOARD_METRICS) - used, set(), "metrics without a panel")


if __name__ == "__main__":
    ROOT = sys.argv.pop(1)
    unittest.main()
