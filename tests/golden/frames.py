"""The lab the golden scenarios share, and builders for input and expected frames.

Every frame is built from scratch by scapy, with its length and checksum fields left for scapy
to compute, so an expected frame carries checksums computed over its own bytes: when ephemera's
incrementally updated output matches it byte for byte, the RFC 1624 update is right.

Two builders exist per direction: the frame as it arrives at ephemera and the frame ephemera
should send. An L4 description (Udp, Tcp, Echo) builds the transport header for either side
given the port (or ICMP identifier) on the NAT side and the remote port.
"""

from dataclasses import dataclass, field

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

INSIDE_MAC = "02:70:63:61:70:00"    # net_pcap0, the inside port
OUTSIDE_MAC = "02:70:63:61:70:01"   # net_pcap1, the outside port
NEXT_HOP = "198.18.0.2"
NEXT_HOP_MAC = "02:00:00:00:00:fe"
GATEWAY = "100.64.0.1"
POOL1 = "198.18.0.100"
POOL2 = "198.18.0.101"
A1 = "198.18.1.1"                   # servers beyond the next hop
A2 = "198.18.1.2"
BROADCAST = "ff:ff:ff:ff:ff:ff"


@dataclass(frozen=True)
class Sub:
    """A subscriber host on the inside."""
    ip: str
    mac: str


C1 = Sub("100.64.0.10", "02:00:00:00:01:0a")
C2 = Sub("100.64.0.11", "02:00:00:00:01:0b")
C3 = Sub("100.64.0.12", "02:00:00:00:01:0c")


@dataclass
class Udp:
    payload: bytes = b"golden udp"
    chksum: int | None = None       # None: computed; 0: "no checksum" (RFC 768)
    proto = 17

    def outbound(self, nat_port, remote_port):
        return UDP(sport=nat_port, dport=remote_port, chksum=self.chksum) / Raw(self.payload)

    def inbound(self, remote_port, nat_port):
        return UDP(sport=remote_port, dport=nat_port, chksum=self.chksum) / Raw(self.payload)


@dataclass
class Tcp:
    flags: str = "S"
    reply_flags: str = "SA"
    seq: int = 1000
    payload: bytes = b""
    options: list = field(default_factory=lambda: [("MSS", 1460), ("NOP", None),
                                                   ("WScale", 7)])
    proto = 6

    def outbound(self, nat_port, remote_port):
        return TCP(sport=nat_port, dport=remote_port, flags=self.flags, seq=self.seq,
                   window=64240, options=self.options) / Raw(self.payload)

    def inbound(self, remote_port, nat_port):
        return TCP(sport=remote_port, dport=nat_port, flags=self.reply_flags, seq=7000,
                   ack=self.seq + 1, window=65160, options=self.options) / Raw(self.payload)


@dataclass
class Echo:
    """ICMP echo: the identifier is the NAT-side "port"; the remote port is ignored."""
    seq: int = 1
    payload: bytes = b"golden ping payload"
    proto = 1

    def outbound(self, nat_port, remote_port=0):
        return ICMP(type=8, id=nat_port, seq=self.seq) / Raw(self.payload)

    def inbound(self, remote_port, nat_port):
        return ICMP(type=0, id=nat_port, seq=self.seq) / Raw(self.payload)


def ip_fields(ip_id, ttl, **kw):
    return dict(id=ip_id, ttl=ttl, **kw)


def in2out(sub, port, remote, remote_port, l4, ext, ttl=64, ip_id=1, pad=b"", **ip_kw):
    """(frame from `sub` on the inside, frame ephemera should send on the outside).

    `ext` is the external (address, port) the NAT should use; `pad` is Ethernet padding after
    the IP packet, which must pass through unchanged.
    """
    frame = (Ether(src=sub.mac, dst=INSIDE_MAC)
             / IP(src=sub.ip, dst=remote, **ip_fields(ip_id, ttl, **ip_kw))
             / l4.outbound(port, remote_port))
    expected = (Ether(src=OUTSIDE_MAC, dst=NEXT_HOP_MAC)
                / IP(src=ext[0], dst=remote, **ip_fields(ip_id, ttl - 1, **ip_kw))
                / l4.outbound(ext[1], remote_port))
    return bytes(frame) + pad, bytes(expected) + pad


def out2in(sub, port, remote, remote_port, l4, ext, ttl=64, ip_id=2, pad=b"", **ip_kw):
    """(frame from `remote` to the external endpoint, frame ephemera should deliver to `sub`)."""
    frame = (Ether(src=NEXT_HOP_MAC, dst=OUTSIDE_MAC)
             / IP(src=remote, dst=ext[0], **ip_fields(ip_id, ttl, **ip_kw))
             / l4.inbound(remote_port, ext[1]))
    expected = (Ether(src=INSIDE_MAC, dst=sub.mac)
                / IP(src=remote, dst=sub.ip, **ip_fields(ip_id, ttl - 1, **ip_kw))
                / l4.inbound(remote_port, port))
    return bytes(frame) + pad, bytes(expected) + pad


def originated_error(src_mac, dst_mac, src_ip, dst_ip, icmp_type, icmp_code, frame):
    """An ICMP error ephemera originates about `frame`: quoting the original IP packet up to a
    576-byte ICMP datagram (RFC 1812 4.3.2.3), padded to the Ethernet minimum."""
    original = bytes(Ether(frame)[IP])[:576 - 28]
    error = bytes(Ether(src=src_mac, dst=dst_mac)
                  / IP(src=src_ip, dst=dst_ip, tos=0xC0, id=0, ttl=64)
                  / ICMP(type=icmp_type, code=icmp_code) / Raw(original))
    return error + bytes(max(0, 60 - len(error)))


def unreachable(sub, frame):
    """The ICMP destination unreachable 3/1 ephemera answers `frame` with (RFC 6888 REQ-11),
    from the inside gateway."""
    return originated_error(INSIDE_MAC, sub.mac, GATEWAY, sub.ip, 3, 1, frame)


def time_exceeded_inside(sub, frame):
    """Time Exceeded 11/0 for a subscriber's packet whose TTL ran out here (RFC 5508 section
    7.2), from the inside gateway, as a router on the path would send it."""
    return originated_error(INSIDE_MAC, sub.mac, GATEWAY, sub.ip, 11, 0, frame)


def time_exceeded_outside(pool_ip, remote, frame):
    """Time Exceeded 11/0 for an outside packet to `pool_ip` whose TTL ran out here, from the
    pool address it was sent to, back to the next hop."""
    return originated_error(OUTSIDE_MAC, NEXT_HOP_MAC, pool_ip, remote, 11, 0, frame)


def ip_bytes(frame):
    """The IP packet in an Ethernet frame (no padding), as an ICMP error quotes it."""
    ip = Ether(frame)[IP]
    return bytes(ip)[:ip.len]


def icmp_error(src_mac, dst_mac, src_ip, dst_ip, icmp, quote, ttl=64, ip_id=0x5555):
    """An ICMP error (`icmp` is the scapy ICMP header: type, code, MTU or pointer) quoting
    `quote` (bytes of an IP packet)."""
    return bytes(Ether(src=src_mac, dst=dst_mac)
                 / IP(src=src_ip, dst=dst_ip, id=ip_id, ttl=ttl) / icmp / Raw(quote))


def inbound_only(remote, remote_port, l4, dst_ip, dst_port, ttl=64, ip_id=3,
                 dst_mac=OUTSIDE_MAC):
    """A frame arriving on the outside that ephemera should drop."""
    return bytes(Ether(src=NEXT_HOP_MAC, dst=dst_mac)
                 / IP(src=remote, dst=dst_ip, id=ip_id, ttl=ttl)
                 / l4.inbound(remote_port, dst_port))


def arp_request(src_mac, src_ip, target_ip, pad=b""):
    return bytes(Ether(src=src_mac, dst=BROADCAST)
                 / ARP(op=1, hwsrc=src_mac, psrc=src_ip, hwdst="00:00:00:00:00:00",
                       pdst=target_ip)) + pad


def arp_reply(src_mac, src_ip, dst_mac, dst_ip, pad=b""):
    return bytes(Ether(src=src_mac, dst=dst_mac)
                 / ARP(op=2, hwsrc=src_mac, psrc=src_ip, hwdst=dst_mac, pdst=dst_ip)) + pad
