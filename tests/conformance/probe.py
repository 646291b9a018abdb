#!/usr/bin/python3
"""One-shot probes that run inside a lab namespace (ip netns exec NS probe.py ...) and print
one JSON line with what the kernel's sockets saw, errors included (errno names).

  probe.py udp --to A --port P [--bind A] [--bind-port X] [--data S | --size N]
               [--wait T] [--tries K] [--connect] [--recverr]
      Sends a datagram (K tries, T s apart) and waits for a reply. With --connect the socket is
      connected, so the kernel reports ICMP errors for it (ECONNREFUSED for 3/3, EHOSTUNREACH
      for 3/1 with --recverr: Linux counts host unreachable as a soft error and reports it only
      to sockets with IP_RECVERR). Output: local, reply (text), reply_len, from, error.

  probe.py tcp --to A --port P [--bind-port X] [--data S] [--timeout T]
      Connects, sends the data, half-closes, reads to EOF. Output: local, reply, error.

  probe.py tcp-echo-server --bind A --port P [--timeout T]
      Background server: each connection is answered with "echo <peer addr>:<port> <data>".
      First line {"ready": ...}; then one line per connection.

  probe.py tcp-hold --to A --port P [--bind-port X] [--timeout T]
      Connects and keeps the connection: reads lines from stdin ("send TEXT" sends TEXT and
      prints the reply the peer sends back, "close" ends). Used to keep a connection open
      while the test disturbs it (ICMP errors, RST).

  probe.py tcp-line-server --bind A --port P [--timeout T]
      Background server: each line of each connection is answered with "echo <peer> <line>";
      the line "reset" aborts that connection with a RST (SO_LINGER 0).

  probe.py icmp-echo --to A --id N [--count K] [--wait T]
      Echo requests with identifier N (raw socket). Output: replies (from, seq), errors.

  probe.py frag-flood --src A --to B --port P [--duration T] [--gap S]
      Raw fragments that never complete a datagram, each with a new IP identifier, for T
      seconds or until SIGTERM. Output: sent.

  probe.py tcp-simultaneous --bind-port X --to A --port P [--timeout T] [--attempt-timeout T]
                           [--name S]
      Hole punching: connect() from port X to A:P over and over (SO_REUSEADDR) until one
      connection forms (a simultaneous open or a plain one), then send "hello from S" and read
      what the other side sent. Output: local, peer, received, attempts, error.

  probe.py rawsend HEX [HEX ...] [--gap S]
      Sends complete IPv4 packets (hex) through a raw socket, in order: crafted ICMP errors and
      fragments. The kernel fills in only the outer IP checksum.

Only the standard library: it runs under Debian's /usr/bin/python3.
"""

import argparse
import errno
import json
import select
import signal
import socket
import struct
import sys
import time


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def err_name(e):
    return errno.errorcode.get(e.errno, str(e)) if isinstance(e, OSError) and e.errno else \
        "%s: %s" % (type(e).__name__, e)


def payload(args):
    if args.size:
        return (args.data + "." * args.size)[:args.size].encode()
    return args.data.encode()


def udp(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.recverr:  # soft errors too (3/1 is soft: without this Linux reports it nowhere)
        s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVERR", 11), 1)  # linux/in.h
    s.bind((args.bind, args.bind_port))
    out = {"local": list(s.getsockname()), "reply": None, "from": None, "error": None}
    data = payload(args)
    try:
        if args.connect:
            s.connect((args.to, args.port))
        for _ in range(args.tries):
            if args.connect:
                s.send(data)
            else:
                s.sendto(data, (args.to, args.port))
            r, _, _ = select.select([s], [], [], args.wait)
            if r:
                got, src = s.recvfrom(65535)
                out.update(reply=got.decode(errors="replace"), reply_len=len(got),
                           **{"from": list(src)})
                break
    except OSError as e:
        out["error"] = err_name(e)
    emit(out)


def tcp(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.bind_port:
        s.bind(("0.0.0.0", args.bind_port))
    s.settimeout(args.timeout)
    out = {"local": None, "reply": None, "error": None}
    try:
        s.connect((args.to, args.port))
        out["local"] = list(s.getsockname())
        s.sendall(args.data.encode())
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
        out["reply"] = b"".join(chunks).decode(errors="replace")
    except (OSError, socket.timeout) as e:
        out["error"] = err_name(e) if not isinstance(e, socket.timeout) else "timeout"
    s.close()
    emit(out)


def tcp_echo_server(args):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((args.bind, args.port))
    ls.listen(16)
    emit({"ready": list(ls.getsockname())})
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([ls], [], [], 0.5)
        if not r:
            continue
        conn, peer = ls.accept()
        conn.settimeout(5)
        try:
            data = b""
            while True:
                c = conn.recv(65536)
                if not c:
                    break
                data += c
            conn.sendall(b"echo %s:%d %s" % (peer[0].encode(), peer[1], data))
            conn.shutdown(socket.SHUT_WR)
        except OSError as e:
            emit({"peer": list(peer), "error": err_name(e)})
        conn.close()
        emit({"peer": list(peer), "data": data.decode(errors="replace")})


def tcp_hold(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.bind_port:
        s.bind(("0.0.0.0", args.bind_port))
    s.settimeout(args.timeout)
    try:
        s.connect((args.to, args.port))
    except OSError as e:
        emit({"error": err_name(e)})
        return
    emit({"ready": list(s.getsockname())})
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "close":
            break
        if cmd.startswith("send "):
            try:
                s.sendall(cmd[5:].encode() + b"\n")
                reply = s.recv(65536)
                emit({"reply": reply.decode(errors="replace"), "error": None if reply else
                      "EOF"})
            except (OSError, socket.timeout) as e:
                emit({"reply": None, "error": err_name(e) if not isinstance(
                    e, socket.timeout) else "timeout"})
    s.close()
    emit({"closed": True})


def tcp_line_server(args):
    """Answers each line of each connection with "echo <line>"; a line "reset" makes the server
    abort the connection with a RST (SO_LINGER 0)."""
    import threading
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((args.bind, args.port))
    ls.listen(16)
    emit({"ready": list(ls.getsockname())})

    def serve(conn, peer):
        f = conn.makefile("rb")
        for line in f:
            text = line.decode(errors="replace").strip()
            if text == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                return
            try:
                conn.sendall(("echo %s:%d %s\n" % (peer[0], peer[1], text)).encode())
            except OSError:
                return
        conn.close()

    ls.settimeout(args.timeout)
    while True:
        try:
            conn, peer = ls.accept()
        except (socket.timeout, OSError):
            return
        emit({"peer": list(peer)})
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()


def tcp_simultaneous(args):
    deadline = time.monotonic() + args.timeout
    attempts = 0
    last = None
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", args.bind_port))
        s.settimeout(args.attempt_timeout)
        attempts += 1
        try:
            s.connect((args.to, args.port))
        except (OSError, socket.timeout) as e:
            last = "timeout" if isinstance(e, socket.timeout) else err_name(e)
            s.close()
            time.sleep(0.2)
            continue
        out = {"local": list(s.getsockname()), "peer": list(s.getpeername()),
               "attempts": attempts, "error": None}
        try:
            s.settimeout(max(1.0, deadline - time.monotonic()))
            s.sendall(("hello from %s" % args.name).encode())
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                c = s.recv(4096)
                if not c:
                    break
                got += c
            out["received"] = got.decode(errors="replace")
        except (OSError, socket.timeout) as e:
            out["error"] = "after connect: %s" % ("timeout" if isinstance(e, socket.timeout)
                                                 else err_name(e))
        s.close()
        emit(out)
        return
    emit({"error": "no connection after %d attempts (last: %s)" % (attempts, last),
          "attempts": attempts})


def checksum16(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmp_echo(args):
    """Echo requests with a chosen identifier through a raw socket; replies are matched by
    identifier and sequence."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    out = {"replies": [], "errors": []}
    for seq in range(1, args.count + 1):
        body = b"conformance echo"
        hdr = struct.pack("!BBHHH", 8, 0, 0, args.id, seq)
        csum = checksum16(hdr + body)
        s.sendto(struct.pack("!BBHHH", 8, 0, csum, args.id, seq) + body, (args.to, 0))
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            pkt, src = s.recvfrom(65535)
            ihl = (pkt[0] & 15) * 4
            typ, code, _, ident, rseq = struct.unpack("!BBHHH", pkt[ihl:ihl + 8])
            if typ == 0 and ident == args.id and rseq == seq:
                out["replies"].append({"from": src[0], "seq": rseq})
                break
            if typ in (3, 11):
                out["errors"].append({"from": src[0], "type": typ, "code": code})
    emit(out)


def frag_flood(args):
    """Fragments that never complete a datagram (first pieces with more-fragments set, and
    later pieces whose first never comes), each with a fresh IP identifier, for a while."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    src = socket.inet_aton(args.src)
    dst = socket.inet_aton(args.to)
    sent = 0
    ident = 1
    deadline = time.monotonic() + args.duration
    # SIGTERM ends the flood cleanly, so a test can flood for exactly as long as it needs.
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    while time.monotonic() < deadline and not stop:
        for first in (True, False):
            if first:  # offset 0, MF: a UDP header and 64 bytes
                body = struct.pack("!HHHH", 7777, args.port, 8 + 1400, 0) + b"f" * 64
                frag = 0x2000
            else:  # offset 800 bytes, MF
                body = b"m" * 64
                frag = 0x2000 | (800 // 8)
            hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident & 0xFFFF, frag,
                              64, 17, 0, src, dst)
            hdr = hdr[:10] + struct.pack("!H", checksum16(hdr)) + hdr[12:]
            s.sendto(hdr + body, (args.to, 0))
            sent += 1
            ident += 1
        if args.gap:
            time.sleep(args.gap)
    emit({"sent": sent})


def rawsend(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent = 0
    for h in args.packets:
        pkt = bytes.fromhex(h)
        dst = socket.inet_ntoa(pkt[16:20])
        s.sendto(pkt, (dst, 0))
        sent += 1
        if args.gap:
            time.sleep(args.gap)
    emit({"sent": sent})


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("udp")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--bind-port", type=int, default=0)
    p.add_argument("--data", default="probe")
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--wait", type=float, default=2.0)
    p.add_argument("--tries", type=int, default=1)
    p.add_argument("--connect", action="store_true")
    p.add_argument("--recverr", action="store_true")
    p = sub.add_parser("tcp")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bind-port", type=int, default=0)
    p.add_argument("--data", default="probe")
    p.add_argument("--timeout", type=float, default=5.0)
    for name in ("tcp-echo-server", "tcp-line-server"):
        p = sub.add_parser(name)
        p.add_argument("--bind", default="0.0.0.0")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--timeout", type=float, default=60.0)
    p = sub.add_parser("tcp-hold")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bind-port", type=int, default=0)
    p.add_argument("--timeout", type=float, default=5.0)
    p = sub.add_parser("tcp-simultaneous")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bind-port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=15.0)
    p.add_argument("--attempt-timeout", type=float, default=1.0)
    p.add_argument("--name", default="?")
    p = sub.add_parser("rawsend")
    p.add_argument("packets", nargs="+")
    p.add_argument("--gap", type=float, default=0.0)
    p = sub.add_parser("icmp-echo")
    p.add_argument("--to", required=True)
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--wait", type=float, default=2.0)
    p = sub.add_parser("frag-flood")
    p.add_argument("--src", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--gap", type=float, default=0.0005)
    args = ap.parse_args()
    {"udp": udp, "tcp": tcp, "tcp-echo-server": tcp_echo_server, "tcp-hold": tcp_hold,
     "tcp-line-server": tcp_line_server, "tcp-simultaneous": tcp_simultaneous,
     "rawsend": rawsend, "icmp-echo": icmp_echo, "frag-flood": frag_flood}[args.cmd](args)


if __name__ == "__main__":
    main()
