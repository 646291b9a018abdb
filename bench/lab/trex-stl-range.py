"""TRex stateless (STL) profile: S x F UDP flows into ephemera's inside (docs/lab.md).

    ./t-rex-64 -i --cfg /etc/trex_cfg.yaml          # ports: 0 -> ephemera inside,
    trex-console                                     #        1 <- ephemera outside
    trex> start -f /path/to/bench/lab/trex-stl-range.py -p 0 -m 1mpps -t subscribers=1024,flows=64
    trex> update -p 0 -m 100%                        # once /ephemera/stats shows S x F sessions

A tuple generator walks every (source address, source port) pair: subscribers 100.64.1.0
onwards, ports 1024 .. 1024+F-1, towards one server 198.18.16.1:443. Stateless: TRex only counts
what comes out of ephemera's outside on port 1 (inside-to-outside throughput); it cannot answer.
For both directions use trex-astf-nat.py.
"""

from trex_stl_lib.api import (STLPktBuilder, STLProfile, STLScVmRaw, STLStream, STLTXCont,
                              STLVmFixIpv4, STLVmTupleGen, STLVmWrFlowVar)
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

import ipaddress


class EphemeraRange(object):
    def get_streams(self, direction=0, subscribers=1024, flows=64, size=64,
                    dst_mac="02:45:50:00:00:01", **kwargs):
        subscribers, flows, size = int(subscribers), int(flows), int(size)
        first = ipaddress.IPv4Address("100.64.1.0")
        last = first + subscribers - 1
        # UDP checksum 0 ("none", RFC 768): TRex rewrites addresses and ports per packet, and
        # ephemera keeps a zero checksum zero.
        base = Ether(dst=dst_mac) / IP(src=str(first), dst="198.18.16.1", ttl=64) / \
            UDP(sport=1024, dport=443, chksum=0)
        pad = b"\0" * max(0, size - 4 - len(base))
        vm = STLScVmRaw([
            STLVmTupleGen(ip_min=str(first), ip_max=str(last),
                          port_min=1024, port_max=1024 + flows - 1, name="tuple"),
            STLVmWrFlowVar(fv_name="tuple.ip", pkt_offset="IP.src"),
            STLVmFixIpv4(offset="IP"),
            STLVmWrFlowVar(fv_name="tuple.port", pkt_offset="UDP.sport"),
        ])
        return [STLStream(packet=STLPktBuilder(pkt=base / pad, vm=vm), mode=STLTXCont())]


def register():
    return EphemeraRange()
