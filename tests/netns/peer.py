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
    args = ap.parse_args()
    if args.cmd == "agent":
        Agent().run()
    elif args.cmd == "tcp-server":
        tcp_server(args)
    else:
        tcp_client(args)


if __name__ == "__main__":
    main()
