#!/usr/bin/python3
"""Traffic endpoints that run inside a lab namespace (ip netns exec NS peer.py ...).

  peer.py agent
      A UDP agent driven by JSON lines on stdin, one JSON reply line on stdout per command:
        {"op": "open", "name": N, "addr": A, "port": P}     bind a socket (port 0: any)
        {"op": "send", "name": N, "to": [A, P], "data": S}
        {"op": "recv", "name": N, "timeout": T}             one datagram, or {"timeout": true}
        {"op": "drain", "name": N, "window": T}             every datagram until T s of silence
        {"op": "serve_echo", "name": N}                     background: answer each datagram
                                                            with "echo <from> <data>"
        {"op": "log", "name": N}                            what serve_echo has seen so far
        {"op": "quit"}
      A datagram is reported as {"from": [A, P], "data": S}.

  peer.py tcp-server --bind A --port P --connections K --send-bytes N [--timeout T]
      Accepts K connections (served concurrently). Each: read until EOF, then send N random
      bytes and close. One JSON line per connection: peer, received, received_sha256, sent,
      sent_sha256.

  peer.py tcp-client --to A --port P --send-bytes N [--bind-port X] [--timeout T]
      Connect, send N random bytes, half-close, read until EOF. One JSON line: local, sent,
      sent_sha256, received, received_sha256.

  Long-running streams, steered by lines on stdin ("status": one JSON progress line on
  stdout; "stop" or end of input: finish and print the final JSON line). The first stdout
  line says the process is ready. Times are time.monotonic(), comparable with the test's.

  peer.py udp-stream --to A --port P --rate R [--bind-port X] [--drain T]
      Sends "seq N" datagrams at R per second; counts the "echo <ext> seq N" replies. Final:
      sent, echoed, duplicates, foreign, missing (seq and send time, first 100), missing_first
      and missing_last (send times of the first and last datagram lost, null if none),
      missing_runs (each run of consecutive lost datagrams: first seq, its send time, last seq,
      its send time, count; first 200 runs), externals (the endpoints the server reported),
      max_rtt_ms, max_late_ms (sender schedule slip).

  peer.py udp-echo-counter --bind A --port P
      Echoes every datagram with "echo <from> <data>". Final: received, unique, duplicates,
      echoed, echo_errors, sources (endpoint -> datagrams).

  peer.py tcp-stream-server --bind A --port P --rate BYTES_PER_S [--timeout T]
      Accepts one connection and sends random bytes at the rate until told to stop; then
      half-closes and reads to EOF. Final: peer, sent, sent_sha256, received, received_sha256.

  peer.py tcp-stream-client --to A --port P [--upload-rate BYTES_PER_S] [--bind-port X]
      Reads (hashing) until EOF while uploading random bytes at the rate; at EOF stops the
      upload and half-closes. Final: local, received, received_sha256, sent, sent_sha256,
      max_gap_s (longest wait for data mid-stream).

Only the standard library: it runs under Debian's /usr/bin/python3 on a fresh machine.
"""

import argparse
import hashlib
import json
import os
import select
import socket
import sys
import threading
import time

CHUNK = 1 << 16


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------- UDP


class Agent:
    def __init__(self):
        self.socks = {}
        self.logs = {}
        self.lock = threading.Lock()

    def op_open(self, cmd):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((cmd.get("addr", "0.0.0.0"), int(cmd.get("port", 0))))
        self.socks[cmd["name"]] = s
        return {"port": s.getsockname()[1], "addr": s.getsockname()[0]}

    def op_send(self, cmd):
        s = self.socks[cmd["name"]]
        s.sendto(cmd["data"].encode(), (cmd["to"][0], int(cmd["to"][1])))
        return {}

    @staticmethod
    def _recv(s, timeout):
        r, _, _ = select.select([s], [], [], timeout)
        if not r:
            return None
        data, src = s.recvfrom(65535)
        return {"from": [src[0], src[1]], "data": data.decode(errors="replace")}

    def op_recv(self, cmd):
        got = self._recv(self.socks[cmd["name"]], float(cmd.get("timeout", 2.0)))
        return got if got is not None else {"timeout": True}

    def op_drain(self, cmd):
        s = self.socks[cmd["name"]]
        window = float(cmd.get("window", 1.0))
        out = []
        while True:
            got = self._recv(s, window)
            if got is None:
                return {"datagrams": out}
            out.append(got)

    def op_serve_echo(self, cmd):
        name = cmd["name"]
        s = self.socks[name]
        self.logs[name] = []

        def loop():
            while True:
                try:
                    data, src = s.recvfrom(65535)
                except OSError:
                    return
                text = data.decode(errors="replace")
                with self.lock:
                    self.logs[name].append({"from": [src[0], src[1]], "data": text})
                reply = "echo %s:%d %s" % (src[0], src[1], text)
                try:
                    s.sendto(reply.encode(), src)
                except OSError:
                    pass

        threading.Thread(target=loop, daemon=True).start()
        return {}

    def op_log(self, cmd):
        with self.lock:
            return {"datagrams": list(self.logs.get(cmd["name"], []))}

    def run(self):
        emit({"ok": True, "ready": True})
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                cmd = json.loads(line)
                if cmd["op"] == "quit":
                    emit({"ok": True})
                    return
                reply = getattr(self, "op_" + cmd["op"])(cmd)
                reply["ok"] = True
            except Exception as e:  # reported to the test, which fails with it
                reply = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
            emit(reply)


# ---------------------------------------------------------------------------------------- TCP


def send_random(sock, total):
    h = hashlib.sha256()
    left = total
    while left > 0:
        chunk = os.urandom(min(CHUNK * 4, left))
        sock.sendall(chunk)
        h.update(chunk)
        left -= len(chunk)
    return h.hexdigest()


def recv_all(sock):
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = sock.recv(CHUNK * 4)
        if not chunk:
            return n, h.hexdigest()
        h.update(chunk)
        n += len(chunk)


def tcp_server(args):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((args.bind, args.port))
    ls.listen(64)
    emit({"listening": [args.bind, args.port]})
    deadline = time.monotonic() + args.timeout
    threads = []
    out_lock = threading.Lock()

    def serve(conn, peer):
        conn.settimeout(max(1.0, deadline - time.monotonic()))
        rec = {"peer": [peer[0], peer[1]]}
        try:
            rec["received"], rec["received_sha256"] = recv_all(conn)
            rec["sent_sha256"] = send_random(conn, args.send_bytes)
            rec["sent"] = args.send_bytes
            conn.shutdown(socket.SHUT_WR)
            conn.close()
        except OSError as e:
            rec["error"] = str(e)
        with out_lock:
            emit(rec)

    for _ in range(args.connections):
        ls.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            conn, peer = ls.accept()
        except socket.timeout:
            emit({"error": "accept timed out"})
            break
        t = threading.Thread(target=serve, args=(conn, peer))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))


def tcp_client(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if args.bind_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", args.bind_port))
    s.settimeout(args.timeout)
    rec = {}
    try:
        s.connect((args.to, args.port))
        rec["local"] = list(s.getsockname())
        start = time.monotonic()
        rec["sent_sha256"] = send_random(s, args.send_bytes)
        rec["sent"] = args.send_bytes
        s.shutdown(socket.SHUT_WR)
        rec["received"], rec["received_sha256"] = recv_all(s)
        rec["seconds"] = round(time.monotonic() - start, 3)
    except OSError as e:
        rec["error"] = "%s: %s" % (type(e).__name__, e)
    s.close()
    emit(rec)


# ------------------------------------------------------------------------------------ streams

_emit_lock = threading.Lock()


def emit_locked(obj):
    with _emit_lock:
        emit(obj)


def big_buffers(sock):
    """Room for a few seconds of stream in the kernel, should this process be descheduled."""
    for opt, name in ((socket.SO_RCVBUF, "SO_RCVBUFFORCE"), (socket.SO_SNDBUF, "SO_SNDBUFFORCE")):
        force = getattr(socket, name, None)
        try:
            sock.setsockopt(socket.SOL_SOCKET, force if force is not None else opt, 4 << 20)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)


def control_thread(status, stop):
    """Reads stdin: "status" -> status() is emitted; "stop" or EOF -> stop.set()."""

    def loop():
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "status":
                emit_locked(dict(status(), status=True))
            elif cmd == "stop":
                break
        stop.set()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def udp_stream(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    big_buffers(s)
    s.bind(("0.0.0.0", args.bind_port))
    s.settimeout(0.2)
    lock = threading.Lock()
    sent_at = []  # by seq: monotonic send time
    echoed = set()
    st = {"duplicates": 0, "foreign": 0, "send_errors": 0, "max_rtt": 0.0, "max_late": 0.0,
          "last_echo": None}
    externals = {}
    stop, rx_stop = threading.Event(), threading.Event()

    def receive():
        while not rx_stop.is_set():
            try:
                data, _src = s.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            parts = data.decode(errors="replace").split()
            # "echo A:P seq N"
            if len(parts) != 4 or parts[0] != "echo" or parts[2] != "seq":
                with lock:
                    st["foreign"] += 1
                continue
            seq = int(parts[3])
            with lock:
                if seq in echoed or seq >= len(sent_at):
                    st["duplicates"] += 1
                    continue
                echoed.add(seq)
                externals[parts[1]] = externals.get(parts[1], 0) + 1
                st["max_rtt"] = max(st["max_rtt"], now - sent_at[seq])
                st["last_echo"] = now

    def status():
        with lock:
            return {"sent": len(sent_at), "echoed": len(echoed), "last_echo": st["last_echo"],
                    "externals": dict(externals)}

    rx = threading.Thread(target=receive, daemon=True)
    rx.start()
    emit_locked({"ready": list(s.getsockname())})
    control_thread(status, stop)
    start = time.monotonic()
    interval = 1.0 / args.rate
    seq = 0
    while not stop.is_set():
        due = start + seq * interval
        now = time.monotonic()
        if due > now:
            stop.wait(due - now)
            if stop.is_set():
                break
            now = time.monotonic()
        with lock:
            st["max_late"] = max(st["max_late"], now - due)
            sent_at.append(now)
        try:
            s.sendto(("seq %d" % seq).encode(), (args.to, args.port))
        except OSError:
            st["send_errors"] += 1
        seq += 1
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:
        with lock:
            if len(echoed) == len(sent_at):
                break
        time.sleep(0.05)
    rx_stop.set()
    rx.join(1.0)
    with lock:
        missing = [[n, round(sent_at[n], 3)] for n in range(len(sent_at)) if n not in echoed]
        runs = []
        for n, t in missing:
            if runs and runs[-1][2] == n - 1:
                runs[-1][2:5] = [n, t, runs[-1][4] + 1]
            else:
                runs.append([n, t, n, t, 1])
        emit_locked({"final": True, "sent": len(sent_at), "echoed": len(echoed),
                     "duplicates": st["duplicates"], "foreign": st["foreign"],
                     "send_errors": st["send_errors"], "missing_count": len(missing),
                     "missing": missing[:100],
                     "missing_first": missing[0][1] if missing else None,
                     "missing_last": missing[-1][1] if missing else None,
                     "missing_runs": runs[:200],
                     "externals": dict(externals),
                     "first_sent": round(sent_at[0], 3) if sent_at else None,
                     "max_rtt_ms": round(st["max_rtt"] * 1000, 1),
                     "max_late_ms": round(st["max_late"] * 1000, 1)})


def udp_echo_counter(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    big_buffers(s)
    s.bind((args.bind, args.port))
    s.settimeout(0.2)
    lock = threading.Lock()
    seen = set()
    st = {"received": 0, "duplicates": 0, "echoed": 0, "echo_errors": 0, "max_seq": -1}
    sources = {}
    stop = threading.Event()

    def status():
        with lock:
            return {"received": st["received"], "unique": len(seen), "echoed": st["echoed"],
                    "sources": dict(sources)}

    emit_locked({"ready": list(s.getsockname())})
    control_thread(status, stop)
    while not stop.is_set():
        try:
            data, src = s.recvfrom(2048)
        except socket.timeout:
            continue
        text = data.decode(errors="replace")
        ep = "%s:%d" % src
        parts = text.split()
        with lock:
            st["received"] += 1
            sources[ep] = sources.get(ep, 0) + 1
            if len(parts) == 2 and parts[0] == "seq":
                seq = int(parts[1])
                if seq in seen:
                    st["duplicates"] += 1
                seen.add(seq)
                st["max_seq"] = max(st["max_seq"], seq)
        try:
            s.sendto(("echo %s %s" % (ep, text)).encode(), src)
            with lock:
                st["echoed"] += 1
        except OSError:
            with lock:
                st["echo_errors"] += 1
    with lock:
        emit_locked(dict(st, final=True, unique=len(seen), sources=dict(sources)))


def paced_sender(sock, rate, stop, result):
    """Sends random bytes at `rate` B/s until stop is set; result: sent, sent_sha256, error."""
    h = hashlib.sha256()
    tick = 0.02
    chunk = max(1, int(rate * tick))
    sent = 0
    start = time.monotonic()
    k = 0
    try:
        while not stop.is_set():
            due = start + k * tick
            now = time.monotonic()
            if due > now and stop.wait(due - now):
                break
            data = os.urandom(chunk)
            sock.sendall(data)
            h.update(data)
            sent += len(data)
            result["sent"] = sent
            k += 1
    except OSError as e:
        result["error"] = "send: %s: %s" % (type(e).__name__, e)
    result["sent"] = sent
    result["sent_sha256"] = h.hexdigest()


def counting_receiver(sock, result):
    """Reads to EOF; result: received, received_sha256, max_gap_s, error."""
    h = hashlib.sha256()
    n = 0
    max_gap = 0.0
    last = time.monotonic()
    try:
        while True:
            chunk = sock.recv(CHUNK * 4)
            now = time.monotonic()
            if not chunk:
                break
            max_gap = max(max_gap, now - last)
            last = now
            h.update(chunk)
            n += len(chunk)
            result["received"] = n
    except OSError as e:
        result["error"] = "recv: %s: %s" % (type(e).__name__, e)
    result["received"] = n
    result["received_sha256"] = h.hexdigest()
    result["max_gap_s"] = round(max_gap, 3)


def tcp_stream_server(args):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((args.bind, args.port))
    ls.listen(4)
    ls.settimeout(args.timeout)
    emit_locked({"ready": [args.bind, args.port]})
    try:
        conn, peer = ls.accept()
    except socket.timeout:
        emit_locked({"final": True, "error": "accept timed out"})
        return
    conn.settimeout(args.timeout)
    tx, rx = {"sent": 0}, {"received": 0}
    stop = threading.Event()
    control_thread(lambda: {"sent": tx.get("sent", 0), "received": rx.get("received", 0)}, stop)
    reader = threading.Thread(target=counting_receiver, args=(conn, rx), daemon=True)
    reader.start()
    paced_sender(conn, args.rate, stop, tx)
    try:
        conn.shutdown(socket.SHUT_WR)
    except OSError as e:
        tx.setdefault("error", "shutdown: %s" % e)
    reader.join(args.timeout)
    conn.close()
    out = {"final": True, "peer": [peer[0], peer[1]]}
    out.update(rx)
    out.update(tx)
    if "error" in rx and "error" in tx:
        out["error"] = "%s; %s" % (tx["error"], rx["error"])
    emit_locked(out)


def tcp_stream_client(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if args.bind_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", args.bind_port))
    s.settimeout(args.timeout)
    try:
        s.connect((args.to, args.port))
    except OSError as e:
        emit_locked({"final": True, "error": "connect: %s: %s" % (type(e).__name__, e)})
        return
    start = time.monotonic()
    local = list(s.getsockname())
    emit_locked({"ready": local})
    tx, rx = {"sent": 0}, {"received": 0}
    stop = threading.Event()  # the upload's: set at EOF from the server
    control_thread(lambda: {"sent": tx.get("sent", 0), "received": rx.get("received", 0)},
                   threading.Event())
    writer = threading.Thread(target=paced_sender, args=(s, args.upload_rate, stop, tx),
                              daemon=True)
    if args.upload_rate > 0:
        writer.start()
    counting_receiver(s, rx)
    stop.set()
    if args.upload_rate > 0:
        writer.join(args.timeout)
    else:
        tx["sent_sha256"] = hashlib.sha256().hexdigest()
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        tx.setdefault("error", "shutdown: %s" % e)
    s.close()
    out = {"final": True, "local": local, "seconds": round(time.monotonic() - start, 3)}
    out.update(rx)
    out.update(tx)
    if "error" in rx and "error" in tx:
        out["error"] = "%s; %s" % (tx["error"], rx["error"])
    emit_locked(out)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("agent")
    p = sub.add_parser("tcp-server")
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--send-bytes", type=int, default=0)
    p.add_argument("--timeout", type=float, default=120.0)
    p = sub.add_parser("tcp-client")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--send-bytes", type=int, default=0)
    p.add_argument("--bind-port", type=int, default=0)
    p.add_argument("--timeout", type=float, default=120.0)
    p = sub.add_parser("udp-stream")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--bind-port", type=int, default=0)
    p.add_argument("--drain", type=float, default=3.0)
    p = sub.add_parser("udp-echo-counter")
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--port", type=int, required=True)
    p = sub.add_parser("tcp-stream-server")
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    p = sub.add_parser("tcp-stream-client")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upload-rate", type=float, default=0.0)
    p.add_argument("--bind-port", type=int, default=0)
    p.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    if args.cmd == "agent":
        Agent().run()
    elif args.cmd == "tcp-server":
        tcp_server(args)
    elif args.cmd == "tcp-client":
        tcp_client(args)
    else:
        {"udp-stream": udp_stream, "udp-echo-counter": udp_echo_counter,
         "tcp-stream-server": tcp_stream_server,
         "tcp-stream-client": tcp_stream_client}[args.cmd](args)


if __name__ == "__main__":
    main()
