"""TRex advanced stateful (ASTF) profile: subscribers and servers on both sides of ephemera,
UDP or TCP through the NAT both ways (docs/lab.md). This is how FD.io CSIT tests NAT44: the
clients send from the inside, the servers answer whatever source the NAT gave them, so no
mapping needs to be known in advance.

    ./t-rex-64 -i --astf --cfg /etc/trex_cfg.yaml      # port 0 -> ephemera inside,
    trex-console                                        # port 1 -> ephemera outside
    trex> start -f bench/lab/trex-astf-nat.py -m 100000 -t --subscribers 16384 --msgs 100

(tunables are parsed with argparse, as in TRex's own scripts/astf/udp1.py).

-m is new connections per second (RFC 9693 connection establishment rate); each connection
exchanges `msgs` request/response pairs (throughput over established sessions), then ends. TCP
connections open with SYN, end with FIN, and so walk ephemera's TCP state machine.
Subscribers 100.64.1.0 onwards, servers 198.18.16.0/24, server port 443.
"""

import argparse

from trex.astf.api import (ASTFAssociationRule, ASTFIPGen, ASTFIPGenDist, ASTFIPGenGlobal,
                           ASTFProfile, ASTFProgram, ASTFTCPClientTemplate,
                           ASTFTCPServerTemplate, ASTFTemplate)
import ipaddress


class EphemeraNat(object):
    def get_profile(self, tunables=(), **kwargs):
        ap = argparse.ArgumentParser(description="ephemera NAT44 profile")
        ap.add_argument("--subscribers", type=int, default=1024)
        ap.add_argument("--servers", type=int, default=256)
        ap.add_argument("--proto", choices=["udp", "tcp"], default="udp")
        ap.add_argument("--msgs", type=int, default=1, help="request/response pairs per flow")
        ap.add_argument("--size", type=int, default=18, help="payload bytes per message")
        args = ap.parse_args(list(tunables))

        udp = args.proto == "udp"
        req = b"q" * args.size
        resp = b"r" * args.size
        prog_c = ASTFProgram(stream=not udp)
        prog_s = ASTFProgram(stream=not udp)
        if args.msgs > 1:
            prog_c.set_var("n", args.msgs)
            prog_c.set_label("again:")
            prog_s.set_var("n", args.msgs)
            prog_s.set_label("again:")
        if udp:
            prog_c.send_msg(req)
            prog_c.recv_msg(1)
            prog_s.recv_msg(1)
            prog_s.send_msg(resp)
        else:
            prog_c.send(req)
            prog_c.recv(len(resp))
            prog_s.recv(len(req))
            prog_s.send(resp)
        if args.msgs > 1:
            prog_c.jmp_nz("n", "again:")
            prog_s.jmp_nz("n", "again:")

        first = ipaddress.IPv4Address("100.64.1.0")
        servers = ipaddress.IPv4Address("198.18.16.0")
        ip_gen = ASTFIPGen(
            glob=ASTFIPGenGlobal(ip_offset="1.0.0.0"),  # only used beyond the first port pair
            dist_client=ASTFIPGenDist(ip_range=[str(first), str(first + args.subscribers - 1)],
                                      distribution="seq"),
            dist_server=ASTFIPGenDist(ip_range=[str(servers), str(servers + args.servers - 1)],
                                      distribution="seq"))
        template = ASTFTemplate(
            client_template=ASTFTCPClientTemplate(program=prog_c, ip_gen=ip_gen, port=443),
            server_template=ASTFTCPServerTemplate(program=prog_s,
                                                  assoc=ASTFAssociationRule(port=443)))
        return ASTFProfile(default_ip_gen=ip_gen, templates=template)


def register():
    return EphemeraNat()
