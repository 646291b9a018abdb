"""Replays the S x F flow pcap of bench/gen-lab-pcap.py from a TRex stateless server (pcap mode)
and prints ephemera's counters next to TRex's port counters (docs/lab.md).

    /usr/bin/python3 bench/gen-lab-pcap.py -S 16384 -F 64 --dst-mac <ephemera inside MAC> \
        -o /tmp/flows-1m.pcap                         # the file must be readable by the server
    ./t-rex-64 -i                                     # on the TRex host
    PYTHONPATH=<trex>/automation/trex_control_plane/interactive \
        python3 bench/lab/trex-stl-pcap.py --pcap /tmp/flows-1m.pcap --ipg-usec 0.1 \
        --duration 30 --prefix nat

--prefix is ephemera's EAL --file-prefix: the script reads /ephemera/stats from its telemetry
socket when run on the ephemera host (omit it otherwise). The first pass over the pcap creates
every session; later passes are established traffic.
"""

import argparse
import json
import socket
import time

from trex.stl.api import STLClient


def ephemera_stats(prefix):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(2)
    try:
        s.connect("/var/run/dpdk/%s/dpdk_telemetry.v2" % prefix)
        info = json.loads(s.recv(4096).decode())
        s.send(b"/ephemera/stats")
        return json.loads(s.recv(int(info.get("max_output_len", 16384)) + 1024).decode())[
            "/ephemera/stats"]
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="127.0.0.1")
    ap.add_argument("--pcap", required=True, help="path on the TRex server")
    ap.add_argument("--ipg-usec", type=float, default=1.0,
                    help="gap between frames; 0.1 is 10 Mpps if the server keeps up")
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--prefix", help="ephemera's --file-prefix, to read its counters")
    args = ap.parse_args()

    c = STLClient(server=args.server)
    c.connect()
    try:
        c.reset(ports=[0, 1])
        c.clear_stats()
        c.push_remote(args.pcap, ports=[0], ipg_usec=args.ipg_usec, count=0,
                      duration=args.duration)
        last = None
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            time.sleep(1)
            st = c.get_stats()
            eph = ephemera_stats(args.prefix) if args.prefix else {}
            now = (time.monotonic(), st[0]["opackets"], st[1]["ipackets"],
                   eph.get("in2out_translated", 0))
            if last:
                dt = now[0] - last[0]
                print("tx %.3f Mpps  rx(outside) %.3f Mpps  ephemera in2out %.3f Mpps  "
                      "sessions %s  drops %s" % (
                          (now[1] - last[1]) / dt / 1e6, (now[2] - last[2]) / dt / 1e6,
                          (now[3] - last[3]) / dt / 1e6, eph.get("live_sessions", "?"),
                          {k: v for k, v in eph.items() if k.startswith("drop_") and v}))
            last = now
        c.wait_on_traffic(ports=[0])
    finally:
        c.disconnect()


if __name__ == "__main__":
    main()
