"""Hugepages for the benchmarks: made available when they can be had, given back afterwards.

Used by the load run (bench/load_run.py, as a library) and by the micro-benchmark
(bench/run-bench.sh, through the `exec` command below). One Reservation:

  1. reads the free pages of the size asked for (2 MB by default) from
     /sys/kernel/mm/hugepages/hugepages-<size>kB (free_hugepages - resv_hugepages, i.e.
     HugePages_Free - HugePages_Rsvd of /proc/meminfo for the default size);
  2. when fewer are free than the budget needs, raises nr_hugepages (vm.nr_hugepages for the
     default size) by the difference only, and checks what the kernel granted;
  3. mounts a hugetlbfs of that page size, capped at the budget (size=), on a private directory
     /run/ephemera-huge/<tag>-<pid>-<n>, which the DPDK processes get as --huge-dir (each with its
     own --file-prefix, so several processes can share the mount);
  4. on release (also on an exception, Ctrl-C or SIGTERM: the caller's `with` or the exec
     wrapper's finally): removes the page files left in the mount, unmounts it, removes the
     directory and lowers nr_hugepages by what it added.

A state file per reservation (/run/ephemera-huge/<name>.json) records what was changed, so a
reservation whose process died without releasing (SIGKILL) is released by the next one.

When hugepages cannot be had (not root, no such page size, nr_hugepages refused or not enough
free memory, the mount refused) or --no-huge is asked for, the reservation falls back to 4 KiB
pages (`--no-huge -m MIB`) and `note` says why, in one line.

EAL arguments: with hugepages `--huge-dir DIR --single-file-segments` (memory on demand from the
mount, one file per memory segment list, so no open file per page; --huge-unlink, which would
free the pages when a process exits, cannot be combined with it in DPDK 22.11, so the files a
process leaves are removed by remove_page_files() or at release); without, `--no-huge -m MIB` as
before (4 KiB pages, -m mapped up front, touched as used).

Command line (what run-bench.sh uses):
  hugepages.py exec --mib N [--no-huge-mib M] [--no-huge] [--page-size 2M|1G] [--tag T] --
                    COMMAND ARGS...
runs COMMAND with EPHEMERA_EAL_MEMORY (the EAL memory arguments, space-separated),
EPHEMERA_MEMORY (what was used, e.g. "hugepages 2 MB" or "4 KiB pages (--no-huge)") and
EPHEMERA_MEMORY_NOTE (the fallback reason, or empty) in its environment, and releases everything
when it ends; exits with COMMAND's status.
  hugepages.py cleanup
releases reservations left by processes that are gone.

Debian's /usr/bin/python3, standard library only.
"""

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time

STATE_DIR = "/run/ephemera-huge"
PAGE_SIZES_KIB = {"2M": 2048, "1G": 1048576}
MARGIN_MIB = 2048  # MemAvailable left to everything else


def _mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def _sysfs(page_kib):
    return "/sys/kernel/mm/hugepages/hugepages-%dkB" % page_kib


def _read_int(path):
    with open(path) as f:
        return int(f.read().strip())


def _pool(page_kib):
    """(nr_hugepages, pages free and not reserved) of one page size."""
    d = _sysfs(page_kib)
    nr = _read_int(d + "/nr_hugepages")
    free = _read_int(d + "/free_hugepages") - _read_int(d + "/resv_hugepages")
    return nr, max(free, 0)


def _write_nr(page_kib, value):
    with open(_sysfs(page_kib) + "/nr_hugepages", "w") as f:
        f.write("%d\n" % value)


def _is_mounted(path):
    try:
        with open("/proc/mounts") as f:
            return any(line.split()[1] == path for line in f)
    except OSError:
        return False


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _size_label(page_kib):
    return "%d GB" % (page_kib // 1048576) if page_kib >= 1048576 else "%d MB" % (page_kib // 1024)


def _warn(msg):
    print("hugepages: " + msg, file=sys.stderr, flush=True)


def _release_state(state):
    """Undoes one reservation: page files, mount, directory, nr_hugepages. Returns the problems
    (empty when everything was given back)."""
    problems = []
    mount = state.get("mount")
    if mount and os.path.isdir(mount):
        if _is_mounted(mount):
            # Page files left by the DPDK processes (rtemap files, or <prefix>map_N with
            # --single-file-segments): removing them gives their pages back.
            for entry in os.listdir(mount):
                try:
                    os.unlink(os.path.join(mount, entry))
                except OSError as e:
                    problems.append("cannot remove %s: %s" % (entry, e.strerror))
            for attempt in range(50):
                r = subprocess.run(["umount", mount], capture_output=True, text=True)
                if r.returncode == 0:
                    break
                if attempt == 49:
                    # A process still maps it: detach it now, the pages go when it exits.
                    subprocess.run(["umount", "-l", mount], capture_output=True)
                    problems.append("%s was busy (%s): detached lazily" % (
                        mount, r.stderr.strip()))
                time.sleep(0.1)
        try:
            os.rmdir(mount)
        except OSError as e:
            problems.append("cannot remove %s: %s" % (mount, e.strerror))
    added = state.get("added", 0)
    if added:
        page_kib = state["page_kib"]
        try:
            nr, _ = _pool(page_kib)
            # Lower by what this reservation added, not to an absolute value: whatever others
            # raised in the meantime stays theirs.
            _write_nr(page_kib, max(nr - added, 0))
            state["added"] = 0
        except OSError as e:
            problems.append("cannot lower nr_hugepages by %d: %s" % (added, e.strerror))
    return problems


def cleanup_stale():
    """Releases reservations whose process is gone (killed before it could release)."""
    try:
        names = os.listdir(STATE_DIR)
    except OSError:
        return
    for name in names:
        if not name.endswith(".json"):
            continue
        path = os.path.join(STATE_DIR, name)
        try:
            with open(path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            continue
        if _alive(state.get("pid", 0)):
            continue
        added = state.get("added", 0)
        problems = _release_state(state)
        _warn("released a reservation left by process %s (%d pages added, %s)%s" % (
            state.get("pid"), added, state.get("mount"),
            ": " + "; ".join(problems) if problems else ""))
        if not problems:
            os.unlink(path)


class Reservation:
    """Hugepages for DPDK processes that together need at most `mib` MiB of EAL memory.

    with Reservation(2048, tag="bench") as mem:
        args = mem.eal_args(1024)   # for one process of at most 1024 MiB
        print(mem.label, mem.note)
    """

    _count = 0

    def __init__(self, mib, tag="ephemera", want_huge=True, page_size="2M", quiet=False):
        self.mib = int(mib)
        self.tag = tag
        self.want_huge = want_huge
        self.page_kib = PAGE_SIZES_KIB[page_size]
        self.quiet = quiet
        self.huge = False
        self.note = ""
        self.pages = 0
        self.mount = None
        self.state_path = None
        self.state = None
        self._old_handlers = {}

    # ---- setup ---------------------------------------------------------------------------

    def __enter__(self):
        self._install_signal_handlers()
        try:
            self.setup()
        except BaseException:
            self.release()
            self._restore_signal_handlers()
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.release()
        finally:
            self._restore_signal_handlers()
        return False

    def setup(self):
        if not self.want_huge:
            self._fall_back("--no-huge asked for")
            return self
        why = self._try_huge()
        if why:
            self.state = None
            self._fall_back(why)
        elif not self.quiet:
            print("memory: %s (%d page(s) reserved for at most %d MiB, %s; %s)" % (
                self.label, self.pages, self.mib, self.mount,
                "nr_hugepages raised by %d" % self.state["added"] if self.state["added"]
                else "nr_hugepages unchanged, pages were free"), flush=True)
        return self

    def _fall_back(self, why):
        self.huge = False
        self.note = "using 4 KiB pages (--no-huge): %s" % why
        if not self.quiet:
            print("memory: " + self.note, flush=True)

    def _try_huge(self):
        """Sets the reservation up; returns why not (and leaves nothing changed) or None."""
        size = _size_label(self.page_kib)
        if os.geteuid() != 0:
            return "hugepages need root"
        if not os.path.isdir(_sysfs(self.page_kib)):
            return "the kernel has no %s hugepages" % size
        try:
            os.makedirs(STATE_DIR, exist_ok=True)
        except OSError as e:
            return "cannot create %s: %s" % (STATE_DIR, e.strerror)
        cleanup_stale()
        self.pages = math.ceil(self.mib * 1024 / self.page_kib)
        Reservation._count += 1
        name = "%s-%d-%d" % (self.tag, os.getpid(), Reservation._count)
        self.mount = os.path.join(STATE_DIR, name)
        self.state_path = self.mount + ".json"
        self.state = {"pid": os.getpid(), "page_kib": self.page_kib, "added": 0,
                      "mount": self.mount}
        try:
            nr, free = _pool(self.page_kib)
        except (OSError, ValueError) as e:
            return "cannot read the %s hugepage pool: %s" % (size, e)
        if free < self.pages:
            want = nr + self.pages - free
            # Do not even try to take memory that others are using or about to: the pages to
            # add must fit in MemAvailable with MARGIN_MIB to spare.
            available_kib = _mem_available_kib()
            if (self.pages - free) * self.page_kib > available_kib - MARGIN_MIB * 1024:
                return "%d more %s pages (%d MiB) do not fit in the %d MiB available " \
                    "(keeping %d MiB free)" % (self.pages - free, size,
                                               (self.pages - free) * self.page_kib // 1024,
                                               available_kib // 1024, MARGIN_MIB)
            self._save_state(dict(self.state, added=self.pages - free))  # before the change
            try:
                _write_nr(self.page_kib, want)
            except OSError as e:
                self._forget_state()
                return "nr_hugepages refused (%s)" % (e.strerror or e)
            got, free = _pool(self.page_kib)
            self.state["added"] = max(got - nr, 0)
            self._save_state(self.state)
            if free < self.pages:
                problems = _release_state(self.state)
                self._forget_state()
                return "the kernel granted %d of the %d %s pages asked for (%d free of %d " \
                    "needed; not enough free memory)%s" % (
                        got - nr, want - nr, size, free, self.pages,
                        "; " + "; ".join(problems) if problems else "")
        self._save_state(self.state)
        try:
            os.mkdir(self.mount, 0o700)
        except OSError as e:
            _release_state(self.state)
            self._forget_state()
            return "cannot create %s: %s" % (self.mount, e.strerror)
        r = subprocess.run(["mount", "-t", "hugetlbfs", "-o",
                            "pagesize=%dK,size=%dK,mode=0700" % (
                                self.page_kib, self.pages * self.page_kib),
                            "nodev", self.mount], capture_output=True, text=True)
        if r.returncode != 0:
            _release_state(self.state)
            self._forget_state()
            return "mounting hugetlbfs refused (%s)" % (r.stderr.strip() or r.returncode)
        self.huge = True
        return None

    def _save_state(self, state):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self.state_path)

    def _forget_state(self):
        if self.state_path and os.path.exists(self.state_path):
            os.unlink(self.state_path)

    # ---- what the DPDK processes get -----------------------------------------------------

    @property
    def label(self):
        return "hugepages %s" % _size_label(self.page_kib) if self.huge \
            else "4 KiB pages (--no-huge)"

    def eal_args(self, mib):
        """EAL memory arguments for one process of at most `mib` MiB (--file-prefix is the
        caller's, and must be unique)."""
        if self.huge:
            return ["--huge-dir", self.mount, "--single-file-segments"]
        return ["--no-huge", "-m", str(int(mib))]

    def remove_page_files(self, prefixes=None):
        """Removes the page files that processes with these --file-prefix values (default: all)
        left in the mount. With --single-file-segments the EAL leaves <prefix>map_N behind when
        it exits, holding their pages: call this once the processes have ended, before the
        next ones start. (A file still mapped is only unlinked: its pages go with the mapping.)"""
        if not self.huge:
            return
        for entry in os.listdir(self.mount):
            if prefixes is None or any(entry.startswith(p + "map_") for p in prefixes):
                try:
                    os.unlink(os.path.join(self.mount, entry))
                except FileNotFoundError:
                    pass

    def describe(self):
        """For JSON reports."""
        return {"memory": self.label, "hugepages": self.huge, "note": self.note,
                "page_kib": self.page_kib if self.huge else 4,
                "reserved_pages": self.pages if self.huge else 0,
                "budget_mib": self.mib, "huge_dir": self.mount if self.huge else None}

    # ---- release -------------------------------------------------------------------------

    def release(self):
        """Gives back everything; safe to call twice. Call it after the DPDK processes have
        ended (a mapped mount cannot be unmounted)."""
        if self.state is None:
            return
        problems = _release_state(self.state)
        if problems:
            _warn("release: " + "; ".join(problems))
        else:
            self._forget_state()
        self.state = None
        self.huge = False

    def _install_signal_handlers(self):
        # SIGTERM and SIGHUP end the caller through an exception, so its finally blocks (stop
        # the DPDK processes) and then this reservation's release run.
        def handler(signum, frame):
            raise KeyboardInterrupt("signal %d" % signum)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                self._old_handlers[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass

    def _restore_signal_handlers(self):
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers = {}


def _exec(args):
    if not args.command:
        sys.exit("hugepages.py exec: no command given (hugepages.py exec --mib N -- CMD ...)")
    rc = 1
    with Reservation(args.mib, tag=args.tag, want_huge=not args.no_huge,
                     page_size=args.page_size) as mem:
        env = dict(os.environ,
                   EPHEMERA_EAL_MEMORY=" ".join(mem.eal_args(args.no_huge_mib or args.mib)),
                   EPHEMERA_MEMORY=mem.label,
                   EPHEMERA_MEMORY_NOTE=mem.note)
        try:
            child = subprocess.Popen(args.command, env=env)
        except OSError as e:
            sys.exit("hugepages.py exec: cannot run %s: %s" % (args.command[0], e.strerror))
        while True:
            try:
                rc = child.wait()
                break
            except KeyboardInterrupt:
                # Ctrl-C reaches the child too (same process group); SIGTERM or SIGHUP sent to
                # this wrapper alone is passed on. Either way: wait for it, then release.
                if child.poll() is None:
                    try:
                        child.send_signal(signal.SIGTERM)
                    except ProcessLookupError:
                        pass
    return 128 - rc if rc < 0 else rc


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("exec", help="run a command with hugepages made available")
    ex.add_argument("--mib", type=int, required=True,
                    help="EAL memory the command needs at most (MiB): the hugepages reserved")
    ex.add_argument("--no-huge-mib", type=int,
                    help="-m for 4 KiB pages (default: --mib)")
    ex.add_argument("--no-huge", action="store_true", help="4 KiB pages, as before")
    ex.add_argument("--page-size", default="2M", choices=sorted(PAGE_SIZES_KIB))
    ex.add_argument("--tag", default="exec", help="names the mount directory")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("cleanup", help="release reservations left by processes that are gone")
    args = ap.parse_args()
    if args.cmd == "cleanup":
        if os.geteuid() != 0:
            sys.exit("hugepages.py cleanup: needs root")
        cleanup_stale()
        return 0
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    return _exec(args)


if __name__ == "__main__":
    sys.exit(main())
