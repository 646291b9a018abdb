"""A client of DPDK's telemetry socket (v2), shared by the test harnesses and the load run.

The socket is SOCK_SEQPACKET at /var/run/dpdk/<file-prefix>/dpdk_telemetry.v2: on connect it
sends an info message (with max_output_len), then answers each command string with one JSON
object keyed by the command's name (the part before the first comma).
"""

import json
import socket


def socket_path(prefix):
    return "/var/run/dpdk/%s/dpdk_telemetry.v2" % prefix


def query(prefix, cmd, timeout=5.0):
    """The reply to `cmd` from the process started with --file-prefix `prefix`. Raises OSError
    when the socket does not answer, ValueError on a reply that is not JSON and KeyError when
    the reply is not about `cmd` (an unknown command answers null under its own name)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(timeout)
    try:
        s.connect(socket_path(prefix))
        info = json.loads(s.recv(4096).decode())
        s.send(cmd.encode())
        reply = json.loads(s.recv(int(info.get("max_output_len", 16384)) + 1024).decode())
    finally:
        s.close()
    return reply[cmd.split(",", 1)[0]]
