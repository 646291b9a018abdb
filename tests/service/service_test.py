#!/usr/bin/python3
"""ephemera as a systemd service, without systemd as init: what `meson install` puts where,
the installed unit and man pages, the hugepage helper, and the unit's ExecStart run by hand.

    service_test.py BUILD_DIR SOURCE_DIR [unittest names...]

Each process installs the build into its own DESTDIR (meson install --no-rebuild), so the
tests look at the installed files, not at the sources. The hugepage helper is pointed at a
copy of sysfs and, when it mounts, runs in a private mount namespace (unshare -m): the host's
hugepages and mounts are never touched. The start test runs ephemera on net_null ports with
--no-huge, as the helper chooses when no hugepages are asked for.
"""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
SOURCE = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else ".")
del sys.argv[1:3]


def skip_unless_root(test):
    if os.geteuid() != 0:
        test.skipTest("needs root")


def build_options():
    out = subprocess.run(["meson", "introspect", BUILD, "--buildoptions"], check=True,
                         capture_output=True, text=True).stdout
    return {o["name"]: o["value"] for o in json.loads(out)}


class Layout:
    """Where the build's options say each file goes, and the DESTDIR they were installed to."""

    def __init__(self, destdir):
        opts = build_options()
        self.prefix = opts["prefix"]

        def under_prefix(name):
            return os.path.join(self.prefix, opts[name])  # an absolute option stays as is

        self.sbindir = under_prefix("sbindir")
        self.bindir = under_prefix("bindir")
        self.libexecdir = under_prefix("libexecdir")
        self.sysconfdir = under_prefix("sysconfdir")
        self.mandir = under_prefix("mandir")
        self.datadir = under_prefix("datadir")
        self.unitdir = opts["systemdunitdir"] or os.path.join(self.prefix, "lib/systemd/system")
        self.destdir = destdir

    def path(self, *parts):
        """The installed file's path on the target system."""
        return os.path.join(*parts)

    def staged(self, *parts):
        """The same file under DESTDIR."""
        return self.destdir + os.path.join(*parts)


_installed = None


def install():
    """Installs the build once per process into a temporary DESTDIR; returns its Layout."""
    global _installed
    if _installed is None:
        destdir = tempfile.mkdtemp(prefix="ephemera-install-")
        r = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", destdir,
                            "--no-rebuild"], capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(destdir, ignore_errors=True)
            raise AssertionError("meson install failed:\n" + r.stdout + r.stderr)
        _installed = (Layout(destdir), r.stdout)
    return _installed


def tearDownModule():
    if _installed is not None:
        shutil.rmtree(_installed[0].destdir, ignore_errors=True)


def executable(path):
    return os.path.isfile(path) and os.stat(path).st_mode & stat.S_IXUSR


class Install(unittest.TestCase):
    def setUp(self):
        self.layout, self.log = install()
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_files_are_where_debian_expects_them(self):
        L = self.layout
        for path in (L.staged(L.sbindir, "ephemera"), L.staged(L.bindir, "ephemeractl"),
                     L.staged(L.libexecdir, "ephemera", "ephemera-hugepages"),
                     L.staged(L.libexecdir, "ephemera", "ephemera-start")):
            self.assertTrue(executable(path), path)
        for path in (L.staged(L.unitdir, "ephemera.service"),
                     L.staged(L.sysconfdir, "ephemera", "ephemera.toml"),
                     L.staged(L.sysconfdir, "ephemera", "eal.conf"),
                     L.staged(L.sysconfdir, "default", "ephemera"),
                     L.staged(L.datadir, "doc/ephemera/examples/ephemera.toml"),
                     L.staged(L.mandir, "man8", "ephemera.8"),
                     L.staged(L.mandir, "man1", "ephemeractl.1")):
            self.assertTrue(os.path.isfile(path), path)
        # The daemon is in sbin only: a second copy in bin would be a stale one after an upgrade.
        self.assertFalse(os.path.exists(L.staged(L.bindir, "ephemera")))

    def test_unit_names_the_installed_paths(self):
        L = self.layout
        with open(L.staged(L.unitdir, "ephemera.service")) as f:
            unit = f.read()
        config = L.path(L.sysconfdir, "ephemera", "ephemera.toml")
        self.assertIn(f"ExecStartPre={L.path(L.sbindir, 'ephemera')} --check-config {config}\n",
                      unit)
        self.assertIn(f"ExecStartPre=+{L.path(L.libexecdir, 'ephemera/ephemera-hugepages')}\n",
                      unit)
        self.assertIn(f"ExecStart={L.path(L.libexecdir, 'ephemera/ephemera-start')}\n", unit)
        self.assertIn(f"EnvironmentFile=-{L.path(L.sysconfdir, 'default/ephemera')}\n", unit)
        self.assertIn("ExecReload=/bin/kill -HUP $MAINPID\n", unit)
        self.assertIn("Restart=on-failure\n", unit)
        self.assertIn("LimitMEMLOCK=infinity\n", unit)
        self.assertNotIn("@", unit.replace("multi-user", ""))  # every @VAR@ substituted
        with open(L.staged(L.libexecdir, "ephemera", "ephemera-start")) as f:
            start = f.read()
        self.assertIn(f"ephemera=${{EPHEMERA:-{L.path(L.sbindir, 'ephemera')}}}", start)
        self.assertIn(f"config=${{EPHEMERA_CONFIG:-{config}}}", start)

    def test_installed_config_passes_check_config(self):
        L = self.layout
        config = L.staged(L.sysconfdir, "ephemera", "ephemera.toml")
        r = subprocess.run([L.staged(L.sbindir, "ephemera"), "--check-config", config],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"ephemera: {config} is valid", r.stdout)

    def test_unit_passes_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("no systemd-analyze (apt package systemd)")
        L = self.layout
        # verify wants the programs the unit runs at their paths: a copy of the unit names
        # them under DESTDIR.
        with open(L.staged(L.unitdir, "ephemera.service")) as f:
            unit = f.read()
        for d in sorted({L.sbindir, L.libexecdir, L.sysconfdir}, key=len, reverse=True):
            unit = re.sub(r"(?<=[=+ -])" + re.escape(d) + "/", L.staged(d) + "/", unit)
        path = os.path.join(self.tmp.name, "ephemera.service")
        with open(path, "w") as f:
            f.write(unit)
        r = subprocess.run([analyze, "verify", "--man=no", path], capture_output=True,
                           text=True)
        own = [line for line in (r.stdout + r.stderr).splitlines() if "ephemera" in line]
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(own, [])

    def test_man_pages_render_without_warnings(self):
        L = self.layout
        for page in (L.staged(L.mandir, "man8", "ephemera.8"),
                     L.staged(L.mandir, "man1", "ephemeractl.1")):
            r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True,
                               text=True, env=dict(os.environ, MANWIDTH="80"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, "", page)
            self.assertIn("SYNOPSIS", r.stdout)

    def test_install_keeps_an_edited_config(self):
        L = self.layout
        destdir = os.path.join(self.tmp.name, "root")
        config = destdir + os.path.join(L.sysconfdir, "ephemera", "ephemera.toml")
        os.makedirs(os.path.dirname(config))
        with open(config, "w") as f:
            f.write("# edited\n")
        r = subprocess.run(["meson", "install", "-C", BUILD, "--destdir", destdir,
                            "--no-rebuild"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(config) as f:
            self.assertEqual(f.read(), "# edited\n")
        self.assertTrue(os.path.isfile(destdir + os.path.join(L.sysconfdir, "ephemera/eal.conf")))


class Hugepages(unittest.TestCase):
    """ephemera-hugepages against a copy of sysfs."""

    def setUp(self):
        layout, _ = install()
        self.helper = layout.staged(layout.libexecdir, "ephemera", "ephemera-hugepages")
        self.tmp = tempfile.TemporaryDirectory()
        self.sysfs = os.path.join(self.tmp.name, "hugepages-2048kB")
        self.runtime = os.path.join(self.tmp.name, "run")
        self.huge_dir = os.path.join(self.tmp.name, "huge")
        self.mounts = os.path.join(self.tmp.name, "mounts")
        with open(self.mounts, "w") as f:
            f.write("proc /proc proc rw 0 0\nhugetlbfs /elsewhere hugetlbfs rw 0 0\n")

    def tearDown(self):
        self.tmp.cleanup()

    def fake_sysfs(self, nr, free, resv):
        os.makedirs(self.sysfs, exist_ok=True)
        for name, value in (("nr_hugepages", nr), ("free_hugepages", free),
                            ("resv_hugepages", resv)):
            with open(os.path.join(self.sysfs, name), "w") as f:
                f.write(f"{value}\n")

    def read_sysfs(self, name):
        with open(os.path.join(self.sysfs, name)) as f:
            return int(f.read())

    def env(self, **extra):
        env = dict(os.environ, EPHEMERA_HUGEPAGES_SYSFS=self.sysfs, EPHEMERA_MOUNTS=self.mounts,
                   EPHEMERA_HUGE_DIR=self.huge_dir, RUNTIME_DIRECTORY=self.runtime)
        env.update(extra)
        return env

    def run_helper(self, *args, prefix=(), **env):
        return subprocess.run(list(prefix) + [self.helper, *args], capture_output=True,
                              text=True, env=self.env(**env))

    def memory_args(self):
        with open(os.path.join(self.runtime, "eal-memory")) as f:
            return f.read().splitlines()

    def test_dry_run_says_what_it_would_do_and_changes_nothing(self):
        self.fake_sysfs(nr=8, free=3, resv=1)
        r = self.run_helper("--dry-run", EPHEMERA_HUGEPAGES="512")
        self.assertEqual(r.returncode, 0, r.stderr)
        # 2 of 512 free: nr_hugepages goes up by the 510 missing, not to 512.
        self.assertEqual(r.stdout, (
            f"ephemera-hugepages: would write 518 to {self.sysfs}/nr_hugepages "
            f"(2 of 512 pages free)\n"
            f"ephemera-hugepages: would mount hugetlbfs (pagesize=2M) on {self.huge_dir}\n"
            f"ephemera-hugepages: EAL memory arguments: --huge-dir {self.huge_dir} "
            f"--huge-unlink\n"))
        self.assertEqual(self.read_sysfs("nr_hugepages"), 8)
        self.assertFalse(os.path.exists(self.runtime))
        self.assertFalse(os.path.exists(self.huge_dir))

    def test_enough_free_and_mounted_changes_nothing(self):
        self.fake_sysfs(nr=600, free=600, resv=0)
        r = self.run_helper(EPHEMERA_HUGEPAGES="512", EPHEMERA_HUGE_DIR="/elsewhere")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "ephemera-hugepages: 512 2 MB pages free, hugetlbfs on "
                                   "/elsewhere\n")
        self.assertEqual(self.read_sysfs("nr_hugepages"), 600)
        self.assertEqual(self.memory_args(), ["--huge-dir", "/elsewhere", "--huge-unlink"])

    def test_no_pages_asked_for_means_no_huge(self):
        r = self.run_helper(EPHEMERA_HUGEPAGES="0", EPHEMERA_NO_HUGE_MIB="768")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("no hugepages asked for", r.stdout)
        self.assertEqual(self.memory_args(), ["--no-huge", "-m", "768"])

    def test_falls_back_with_one_line_or_fails_when_required(self):
        # No such page size here (the sysfs copy is missing).
        r = self.run_helper(EPHEMERA_HUGEPAGES="64")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, (
            f"ephemera-hugepages: this kernel has no 2 MB hugepages ({self.sysfs}); falling "
            "back to --no-huge -m 1024 (4 KiB pages: slower, and physical NICs may not work)\n"))
        self.assertEqual(self.memory_args(), ["--no-huge", "-m", "1024"])
        os.unlink(os.path.join(self.runtime, "eal-memory"))
        r = self.run_helper(EPHEMERA_HUGEPAGES="64", EPHEMERA_HUGEPAGES_REQUIRED="yes")
        self.assertEqual(r.returncode, 1)
        self.assertIn("EPHEMERA_HUGEPAGES_REQUIRED=yes, so not starting", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.runtime, "eal-memory")))

    def test_refuses_a_bad_page_count(self):
        r = self.run_helper(EPHEMERA_HUGEPAGES="lots")
        self.assertEqual(r.returncode, 64)
        self.assertIn("EPHEMERA_HUGEPAGES must be a number", r.stderr)

    def test_reserves_the_missing_pages_and_mounts_in_a_private_namespace(self):
        skip_unless_root(self)
        if shutil.which("unshare") is None or shutil.which("findmnt") is None:
            self.skipTest("needs unshare and findmnt (util-linux)")
        self.fake_sysfs(nr=2, free=1, resv=0)
        # The real mount table: nothing is mounted on the temporary directory. The mount lives
        # and dies with the namespace; findmnt looks at it from inside.
        r = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "bash", "-c",
             '"$1" && findmnt -n -o FSTYPE,OPTIONS "$2"', "sh", self.helper, self.huge_dir],
            capture_output=True, text=True,
            env=self.env(EPHEMERA_HUGEPAGES="4", EPHEMERA_MOUNTS="/proc/self/mounts"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[:3], [
            "ephemera-hugepages: nr_hugepages raised from 2 to 5",
            f"ephemera-hugepages: mounted hugetlbfs on {self.huge_dir}",
            f"ephemera-hugepages: 4 2 MB pages free, hugetlbfs on {self.huge_dir}"])
        self.assertTrue(lines[3].startswith("hugetlbfs "), lines[3])
        self.assertIn("pagesize=2M", lines[3])
        self.assertEqual(self.read_sysfs("nr_hugepages"), 5)
        self.assertEqual(self.memory_args(), ["--huge-dir", self.huge_dir, "--huge-unlink"])
        # Gone with the namespace.
        with open("/proc/self/mounts") as f:
            self.assertNotIn(self.huge_dir, f.read())


class Service(unittest.TestCase):
    """ExecStart (ephemera-start) run by hand, with the example files as installed."""

    def setUp(self):
        self.layout, _ = install()
        L = self.layout
        self.libexec = L.staged(L.libexecdir, "ephemera")
        self.example_eal = L.staged(L.sysconfdir, "ephemera", "eal.conf")
        self.example_config = L.staged(L.sysconfdir, "ephemera", "ephemera.toml")
        self.tmp = tempfile.TemporaryDirectory()
        self.runtime = os.path.join(self.tmp.name, "run")
        self.prefix = f"svc-{os.getpid()}"
        self.proc = None

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.tmp.cleanup()
        shutil.rmtree(f"/var/run/dpdk/{self.prefix}", ignore_errors=True)

    def helper_then_start(self, eal_conf, config, *args, pages="0"):
        env = dict(os.environ, EPHEMERA_HUGEPAGES=pages, RUNTIME_DIRECTORY=self.runtime,
                   EPHEMERA=self.layout.staged(self.layout.sbindir, "ephemera"),
                   EPHEMERA_EAL_CONF=eal_conf, EPHEMERA_CONFIG=config)
        subprocess.run([os.path.join(self.libexec, "ephemera-hugepages")], check=True, env=env,
                       capture_output=True)
        return [os.path.join(self.libexec, "ephemera-start"), *args], env

    def test_command_line_from_the_example_eal_conf(self):
        cmd, env = self.helper_then_start(self.example_eal, "/etc/x.toml", "--print")
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        self.assertEqual(r.stdout.splitlines(), [
            env["EPHEMERA"], "-l", "2-4", "-a", "0000:03:00.0", "-a", "0000:03:00.1",
            "--file-prefix=ephemera", "--log-level=lib.eal:notice",
            "--no-huge", "-m", "1024", "--", "--config", "/etc/x.toml"])

    def lab_eal_conf(self):
        """The example eal.conf as its comments say for a lab: no -a lines, the vdev lines
        uncommented (net_null here, which needs no interfaces), two lcores on this host."""
        with open(self.example_eal) as f:
            lines = f.read().splitlines()
        out, skip_next = [], False
        for line in lines:
            if skip_next:
                skip_next = False
                continue
            if line == "-a":
                skip_next = True
                continue
            if line == "2-4":
                line = "0-1"
            elif line == "--file-prefix=ephemera":
                line = "--file-prefix=" + self.prefix
            elif line == "# --no-pci":
                line = "--no-pci"
            elif line.startswith("# --vdev=net_af_packet"):
                line = "--vdev=net_null" + line[len("# --vdev=net_af_packet")]
            out.append(line)
        self.assertIn("--vdev=net_null1", out)
        path = os.path.join(self.tmp.name, "eal.conf")
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")
        return path

    def lab_config(self):
        with open(self.example_config) as f:
            text = f.read()
        text = text.replace('"0000:03:00.0"', '"net_null0"').replace('"0000:03:00.1"',
                                                                     '"net_null1"')
        text = text.replace('"/var/log/ephemera"', json.dumps(os.path.join(self.tmp.name,
                                                                          "archive")))
        path = os.path.join(self.tmp.name, "ephemera.toml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_starts_reloads_on_sighup_and_stops_on_sigterm(self):
        skip_unless_root(self)
        config = self.lab_config()
        cmd, env = self.helper_then_start(self.lab_eal_conf(), config)
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        lines, cond = [], threading.Condition()

        def read():
            for line in self.proc.stdout:
                with cond:
                    lines.append(line)
                    cond.notify_all()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()

        def wait_for(text, timeout=60):
            with cond:
                ok = cond.wait_for(lambda: any(text in line for line in lines), timeout)
            self.assertTrue(ok, f"no {text!r} in:\n" + "".join(lines))

        wait_for("ephemera: running\n")
        # ephemera-start execs: the unit's $MAINPID is ephemera itself.
        self.assertEqual(os.path.realpath(f"/proc/{self.proc.pid}/exe"),
                         os.path.realpath(env["EPHEMERA"]))
        self.proc.send_signal(signal.SIGHUP)  # what ExecReload sends
        wait_for(f"ephemera: SIGHUP: applied reload of {config}")
        time.sleep(1)
        self.proc.send_signal(signal.SIGTERM)  # what systemctl stop sends
        self.assertEqual(self.proc.wait(timeout=30), 0, "".join(lines))
        reader.join(timeout=5)
        self.assertIn("ephemera: signal 15, stopping\n", lines)


if __name__ == "__main__":
    unittest.main(verbosity=2)
