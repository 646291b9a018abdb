"""An independent Python model of ephemera's external endpoint choice.

The golden scenarios use it to compute, not record, the external address and port of every
mapping whose source port is not kept. It follows the documented behaviour:

- SipHash-2-4 (Aumasson and Bernstein), written here from the paper for a byte message; the
  C++ siphash_2x64(key, m0, m1) is SipHash-2-4 of the 16 bytes m0 || m1, little endian.
- Ownership: bucket = bits 1..6 of the port; with one worker every bucket is worker 0's.
- Slots: one per port of the worker's port pairs, in port order, slot = 2 * pair_rank + parity.
- A source port is kept when it is in the range, not reserved and free on the subscriber's
  pool address for that protocol.
- Otherwise RFC 6056 Algorithm 4, counted in port pairs so that the parity bit is kept
  (RFC 4787 REQ-4): offset F = SipHash(secret, who, proto), table index G = SipHash(secret, who,
  proto | 1 << 8) % 1024, start pair = (F + table[G]) % pairs, then the first free slot of the
  source port's parity from there upwards, wrapping to the start of the class interval; the
  other parity only when none is left. Classes: ports 0-1023 and 1024-65535 (REQ-3a).
- Class spill-over: when the source port's class has no free port, or the range none of that
  class, the same search runs over the other class (a non-empty interval's search moves the
  counter on each time): a mapping beats no mapping while the range has ports.
- Paired pooling (RFC 4787 REQ-2): a new subscriber is anchored to pool address
  SipHash(secret, inside, "anchor") % pool size, or the next address that still has a free
  port for the protocol; it keeps that address while it has mappings.

The search here is a plain linear scan over ports, not a bitmap walk, so that it checks the
C++ bitmap and summary code instead of repeating it.
"""

import ipaddress
from collections import namedtuple

MASK64 = (1 << 64) - 1
ICMP, TCP, UDP = 1, 6, 17
ALG4_TABLE_SIZE = 1024
ANCHOR_DOMAIN = 0x616E63686F72  # "anchor": the anchor hash's second SipHash word

# The --port-secret the runner passes to ephemera, as (k0, k1).
SECRET = (0x0123456789ABCDEF, 0xFEDCBA9876543210)
SECRET_ARG = "%016x:%016x" % SECRET


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK64


def siphash24(key, message):
    """SipHash-2-4 of `message` (bytes) with a 16-byte key, as in the paper."""
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:16], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D,
         k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def sipround():
        v[0] = (v[0] + v[1]) & MASK64
        v[1] = _rotl(v[1], 13) ^ v[0]
        v[0] = _rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & MASK64
        v[3] = _rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & MASK64
        v[3] = _rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & MASK64
        v[1] = _rotl(v[1], 17) ^ v[2]
        v[2] = _rotl(v[2], 32)

    def compress(m):
        v[3] ^= m
        sipround()
        sipround()
        v[0] ^= m

    whole = len(message) - len(message) % 8
    for i in range(0, whole, 8):
        compress(int.from_bytes(message[i:i + 8], "little"))
    tail = message[whole:] + bytes(7 - len(message) % 8)
    compress(int.from_bytes(tail, "little") | (len(message) & 0xFF) << 56)
    v[2] ^= 0xFF
    for _ in range(4):
        sipround()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def siphash_2x64(secret, m0, m1):
    key = secret[0].to_bytes(8, "little") + secret[1].to_bytes(8, "little")
    return siphash24(key, m0.to_bytes(8, "little") + m1.to_bytes(8, "little"))


def ip_int(address):
    return int(ipaddress.IPv4Address(address))


Ext = namedtuple("Ext", "ip port preserved")


class PortModel:
    """One worker's ports of one range: free ports per (pool index, protocol), Alg 4 table."""

    def __init__(self, port_range, reserved, pool_size, secret):
        lo, hi = port_range
        self.base = lo & ~1         # port of slot 0 (one worker owns every pair)
        self.slots = (hi | 1) - self.base + 1
        usable = {p for p in range(lo, hi + 1)
                  if not any(r_lo <= p <= r_hi for r_lo, r_hi in reserved)}
        self.free = {(i, proto): set(usable)
                     for i in range(pool_size) for proto in (ICMP, TCP, UDP)}
        self.secret = secret
        self.table = [0] * ALG4_TABLE_SIZE
        self.wraps = 0              # searches that wrapped to the start of the interval
        self.parity_fallbacks = 0   # ports of the other parity, none of the right one left
        first_user = min(max(0, 1024 - self.base), self.slots)
        self.classes = {
            True: (0, first_user - 1),              # system ports 0-1023
            False: (first_user, self.slots - 1),    # user ports 1024-65535
        }

    def free_count(self, pool_index, proto):
        return len(self.free[(pool_index, proto)])

    def allocate(self, inside_ip, inside_port, proto, pool_index, pool_ip):
        free = self.free[(pool_index, proto)]
        if not free:
            return None
        if inside_port in free:
            free.remove(inside_port)
            return inside_port, True
        # Class first (REQ-3a), then parity (REQ-4): a port of the other class, or of the other
        # parity, beats no mapping while the range still has ports.
        system = inside_port < 1024
        for cls in (system, not system):
            found = self._search(free, inside_ip, pool_ip, proto, inside_port & 1,
                                 *self.classes[cls])
            if found is not None:
                return found, False
        return None

    def _search(self, free, inside_ip, pool_ip, proto, parity, lo, hi):
        """Algorithm 4 over slots lo..hi of `free`; each search of a non-empty interval moves
        the table's counter on."""
        if lo > hi:
            return None
        who = ip_int(inside_ip) << 32 | ip_int(pool_ip)
        f = siphash_2x64(self.secret, who, proto)
        g = siphash_2x64(self.secret, who, proto | 1 << 8)
        counter = self.table[g % ALG4_TABLE_SIZE]
        self.table[g % ALG4_TABLE_SIZE] = counter + 1
        pairs = (hi - lo) // 2 + 1
        start_pair = ((f + counter) & MASK64) % pairs
        start = max(lo, min(hi, (lo & ~1) + start_pair * 2 + parity))

        order = list(range(start, hi + 1)) + list(range(lo, start))
        for want in (parity, parity ^ 1):
            for slot in order:
                port = self.base + slot
                if port & 1 == want and port in free:
                    free.remove(port)
                    self.wraps += slot < start
                    self.parity_fallbacks += want != parity
                    return port
        return None


class NatModel:
    """Mappings as ephemera should make them with one worker (mappings never expire here)."""

    def __init__(self, pool, port_range=(49152, 65535), reserved=(), secret=SECRET):
        self.pool = list(pool)
        self.secret = secret
        self.ports = PortModel(port_range, reserved, len(self.pool), secret)
        self.mappings = {}      # (inside ip, inside port, proto) -> Ext
        self.subscribers = {}   # inside ip -> [pool index, mapping count]

    def preferred_index(self, inside_ip):
        return siphash_2x64(self.secret, ip_int(inside_ip), ANCHOR_DOMAIN) % len(self.pool)

    def anchor_of(self, inside_ip):
        """The pool address a new subscriber prefers (before any port runs out)."""
        return self.pool[self.preferred_index(inside_ip)]

    def map(self, inside_ip, inside_port, proto):
        """The external endpoint of (inside_ip, inside_port, proto), or None when dropped."""
        key = (inside_ip, inside_port, proto)
        if key in self.mappings:
            return self.mappings[key]
        sub = self.subscribers.get(inside_ip)
        new_subscriber = sub is None
        if new_subscriber:
            n = len(self.pool)
            first = self.preferred_index(inside_ip)
            anchor = first
            for i in range(n):
                if self.ports.free_count((first + i) % n, proto) > 0:
                    anchor = (first + i) % n
                    break
            sub = [anchor, 0]
        grant = self.ports.allocate(inside_ip, inside_port, proto, sub[0], self.pool[sub[0]])
        if grant is None:
            return None
        self.subscribers[inside_ip] = sub
        sub[1] += 1
        ext = Ext(self.pool[sub[0]], grant[0], grant[1])
        self.mappings[key] = ext
        return ext

    def is_mapped(self, ext_ip, ext_port, proto):
        return any(e.ip == ext_ip and e.port == ext_port and k[2] == proto
                   for k, e in self.mappings.items())


def self_test():
    """Known-answer checks of the SipHash code; raises AssertionError on failure."""
    # The paper's appendix A: key 00..0f, message 00..0e.
    key = bytes(range(16))
    assert siphash24(key, bytes(range(15))) == 0xA129CA6149BE45E5, "SipHash-2-4 paper vector"
    # Reference implementation's vectors.h (vectors_sip64), empty message and 16 bytes.
    assert siphash24(key, b"") == 0x726FDB47DD0E0E31, "SipHash-2-4 empty message"
    assert siphash24(key, bytes(range(16))) == 0x3F2ACC7F57C29BDB, "SipHash-2-4 16 bytes"
    # siphash_2x64 is SipHash-2-4 over m0 || m1, little endian.
    m0 = int.from_bytes(bytes(range(8)), "little")
    m1 = int.from_bytes(bytes(range(8, 16)), "little")
    k = (int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little"))
    assert siphash_2x64(k, m0, m1) == 0x3F2ACC7F57C29BDB, "siphash_2x64 word order"
