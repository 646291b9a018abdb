#!/usr/bin/python3
"""Counts test cases across meson test logs and prints the closing "N passed, N failed" line.

A GoogleTest binary counts as its individual test cases (from the JUnit XML meson asks it
to write); every other meson test counts as one case. Exit status 1 if anything failed or no
test ran at all.
"""
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def gtest_counts(xml_path):
    root = ET.parse(xml_path).getroot()
    passed = failed = skipped = 0
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.get("result") == "skipped" or case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def main(build_dirs):
    passed = failed = skipped = 0
    for build in build_dirs:
        log = Path(build) / "meson-logs" / "testlog.json"
        if not log.exists():
            continue
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            result = entry.get("result")
            name = entry.get("name", "?")
            # Meson names tests "project:suite / name" in some versions, "name" in others;
            # the GoogleTest XML file is named after the bare name.
            xml = Path(build) / f"{name.split(' / ')[-1]}.xml"
            if xml.exists() and result in ("OK", "FAIL"):
                p, f, s = gtest_counts(xml)
                if result == "FAIL" and f == 0:
                    f = 1  # the binary failed outside any test case (crash, sanitizer)
                passed, failed, skipped = passed + p, failed + f, skipped + s
            elif result == "OK":
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                print(f"FAILED: {build}: {name} ({result})")
                failed += 1
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
