"""An independent Python model of ephemera's external endpoint choice, for 1 to 64 workers.

The golden scenarios use it to compute, not record, the external address and port of every
mapping whose source port is not kept. It follows the documented behaviour:

- SipHash-2-4 (Aumasson and Bernstein), written here from the paper for a byte message; the
  C++ siphash_2x64(key, m0, m1) is SipHash-2-4 of the 16 bytes m0 || m1, little endian.
- Ownership is not modelled: the ephemera binary answers it (`ephemera --owner`, see Owners),
  because the ownership function exists once, in C++ (include/ephemera/ownership.hpp). A
  subscriber's mappings are all made by its owner, from the ports that worker owns.
- Each worker has its own ports, slots and Algorithm 4 table. Slots: the ports the worker owns
  on the pool address, from the range's first port pair to its last, in port order (so a
  slot's parity is its port's).
- A source port is kept when the subscriber's worker owns it, it is in the range, not
  reserved and free on the subscriber's pool address for that protocol. A free port owned by
  another worker is not kept: a mapping is only ever made of its owner's ports.
- Otherwise RFC 6056 Algorithm 4, counted in port pairs so that the parity bit is kept
  (RFC 4787 REQ-4): the subscriber's port key K = SipHash(secret, inside << 32 | pool address,
  "alg4"); per protocol h = K rotated left by 21 bits times the protocol's index (udp 0,
  tcp 1, icmp 2), offset F = the low 32 bits of h, table index G = the high 32 bits % 1024 into the
  worker's table, start pair = ((F + table[G]) mod 2^32) % pairs of the class interval, then the first free slot of the source port's parity from there upwards,
  wrapping to the start of the interval; the other parity only when none is left. Classes:
  ports 0-1023 and 1024-65535 (REQ-3a).
- Class spill-over: when the source port's class has no free port, or the range none of that
  class, the same search runs over the other class (a non-empty interval's search moves the
  counter on each time): a mapping beats no mapping while the range has ports.
- Paired pooling (RFC 4787 REQ-2): a new subscriber is anchored to pool address
  SipHash(secret, inside, "anchor") % pool size, or the next address that still has a free
  port for the protocol on the subscriber's worker; it keeps that address while it has
  mappings.

The search here is a plain linear scan over ports, not a bitmap walk, so that it checks the
C++ bitmap and summary code instead of repeating it.
"""

import collections
import ipaddress
import subprocess
import tempfile
from collections import namedtuple

MASK64 = (1 << 64) - 1
ICMP, TCP, UDP = 1, 6, 17
PROTO_INDEX = {UDP: 0, TCP: 1, ICMP: 2}  # types.hpp's ProtoIndex
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


PORT_KEY_DOMAIN = 0x616c6734  # "alg4"
MASK32 = (1 << 32) - 1


def ip_int(address):
    return int(ipaddress.IPv4Address(address))


Ext = namedtuple("Ext", "ip port preserved")

_ephemera = None    # the ephemera executable that answers ownership questions
_owners = {}        # (worker count, config text or None) -> Owners


def use_ephemera(path):
    """Names the ephemera binary Owners asks (golden.py passes its --ephemera)."""
    global _ephemera
    _ephemera = path
    _owners.clear()


def owners(workers, config=None):
    """The (cached) Owners for `workers` workers; with `config` (TOML text), the ownership of
    that config's mode (in deterministic mode a port belongs to its subscriber's worker)."""
    if (workers, config) not in _owners:
        _owners[(workers, config)] = Owners(workers, config)
    return _owners[(workers, config)]


class Owners:
    """Which worker owns a subscriber or an external port, as `ephemera --owner --workers N
    [--config FILE]` prints it. Answers are cached; a pool address's 65536 ports are asked in
    one run."""

    def __init__(self, workers, config=None):
        self.workers = workers
        self.config = config
        self._subscribers = {}   # inside address -> worker
        self._ports = {}         # pool address -> [worker of port 0, 1, ..., 65535]

    def _ask(self, queries):
        if _ephemera is None:
            raise RuntimeError("natmodel.use_ephemera(PATH) first: ownership comes from "
                               "`ephemera --owner`")
        with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
            config = []
            if self.config is not None:
                f.write(self.config)
                f.flush()
                config = ["--config", f.name]
            run = subprocess.run([_ephemera, "--owner", "--workers", str(self.workers), *config,
                                  *queries], capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise RuntimeError("ephemera --owner failed (%d): %s"
                               % (run.returncode, run.stderr.strip()))
        answers = []
        for line in run.stdout.splitlines():
            kind, what, label, worker = line.split()
            assert label == "worker" and 0 <= int(worker) < self.workers, line
            answers.append((what, int(worker)))
        return answers

    def subscriber(self, inside_ip):
        if inside_ip not in self._subscribers:
            self.ask_subscribers([inside_ip])
        return self._subscribers[inside_ip]

    def ask_subscribers(self, addresses):
        """Asks for many subscribers in one run (each later subscriber() is then cached)."""
        todo = [a for a in dict.fromkeys(addresses) if a not in self._subscribers]
        if todo:
            answers = self._ask(todo)
            assert [what for what, _ in answers] == todo
            self._subscribers.update(answers)

    def port(self, pool_ip, port):
        if pool_ip not in self._ports:
            answers = self._ask(["%s:0-65535" % pool_ip])
            assert len(answers) == 65536
            self._ports[pool_ip] = [worker for _, worker in answers]
        return self._ports[pool_ip][port]


class WorkerPorts:
    """One worker's ports of one range: its slots and free ports per (pool index, protocol),
    and its Algorithm 4 table."""

    def __init__(self, worker, port_range, reserved, pool, owned_by, secret):
        lo, hi = port_range
        self.worker = worker
        self.secret = secret
        self.table = [0] * ALG4_TABLE_SIZE
        self.wraps = 0              # searches that wrapped to the start of the interval
        self.parity_fallbacks = 0   # ports of the other parity, none of the right one left
        self.slots = []             # per pool index: the worker's ports, whole pairs, ascending
        self.classes = []           # per pool index: {system?: (first slot, last slot)}
        self.free = {}
        for index, pool_ip in enumerate(pool):
            ports = [p for p in range(lo & ~1, (hi | 1) + 1) if owned_by(pool_ip, p) == worker]
            usable = {p for p in ports if lo <= p <= hi
                      and not any(r_lo <= p <= r_hi for r_lo, r_hi in reserved)}
            first_user = sum(1 for p in ports if p < 1024)
            self.slots.append(ports)
            self.classes.append({
                True: (0, first_user - 1),              # system ports 0-1023
                False: (first_user, len(ports) - 1),    # user ports 1024-65535
            })
            for proto in (ICMP, TCP, UDP):
                self.free[(index, proto)] = set(usable)

    def free_count(self, pool_index, proto):
        return len(self.free[(pool_index, proto)])

    def allocate(self, inside_ip, inside_port, proto, pool_index, pool_ip):
        free = self.free[(pool_index, proto)]
        if not free:
            return None
        if inside_port in free:     # free means owned by this worker, usable and unused
            free.remove(inside_port)
            return inside_port, True
        # Class first (REQ-3a), then parity (REQ-4): a port of the other class, or of the other
        # parity, beats no mapping while the range still has ports.
        system = inside_port < 1024
        for cls in (system, not system):
            found = self._search(free, self.slots[pool_index], inside_ip, pool_ip, proto,
                                 inside_port & 1, *self.classes[pool_index][cls])
            if found is not None:
                return found, False
        return None

    def _search(self, free, ports, inside_ip, pool_ip, proto, parity, lo, hi):
        """Algorithm 4 over slots lo..hi of `ports`; each search of a non-empty interval moves
        the table's counter on."""
        found = alg4_search(self.table, self.secret, inside_ip, pool_ip, proto, parity, lo, hi,
                            ports, free)
        if found is None:
            return None
        slot, wrapped, fallback = found
        free.remove(ports[slot])
        self.wraps += wrapped
        self.parity_fallbacks += fallback
        return ports[slot]


def alg4_search(table, secret, inside_ip, pool_ip, proto, parity, lo, hi, ports, free):
    """RFC 6056 Algorithm 4 over slots lo..hi of `ports` (slot -> port) with a worker's
    `table`, counted in slot pairs: (slot, wrapped, other parity) for the first slot whose port
    is in `free` and of `parity`, from the keyed start upwards, wrapping to lo, then the same
    for the other parity; None when none is free. Each search of a non-empty interval moves the
    table's counter on."""
    if lo > hi:
        return None
    h = _alg4_hash(secret, inside_ip, pool_ip, proto)
    f, g = h & MASK32, h >> 32
    counter = table[g % ALG4_TABLE_SIZE]
    table[g % ALG4_TABLE_SIZE] = (counter + 1) & MASK32
    pairs = (hi - lo) // 2 + 1
    start_pair = ((f + counter) & MASK32) % pairs
    start = max(lo, min(hi, (lo & ~1) + start_pair * 2 + parity))

    order = list(range(start, hi + 1)) + list(range(lo, start))
    for want in (parity, parity ^ 1):
        for slot in order:
            if ports[slot] & 1 == want and ports[slot] in free:
                return slot, slot < start, want != parity
    return None


class MappingsView:
    """What every model answers from its mappings ((inside ip, inside port, proto) -> Ext)."""

    def preserved(self):
        """How many mappings kept their source port (ephemera's port_preserved counter)."""
        return sum(e.preserved for e in self.mappings.values())

    def is_mapped(self, ext_ip, ext_port, proto):
        return any(e.ip == ext_ip and e.port == ext_port and k[2] == proto
                   for k, e in self.mappings.items())


class NatModel(MappingsView):
    """Mappings as ephemera should make them with `workers` workers (mappings never expire
    here; limits are the scenarios' business)."""

    def __init__(self, pool, port_range=(49152, 65535), reserved=(), secret=SECRET, workers=1):
        self.pool = list(pool)
        self.secret = secret
        self.owners = owners(workers)
        self.workers = [WorkerPorts(w, port_range, reserved, self.pool, self.owners.port, secret)
                        for w in range(workers)]
        self.mappings = {}      # (inside ip, inside port, proto) -> Ext
        self.subscribers = {}   # inside ip -> [pool index, mapping count]

    def worker_of(self, inside_ip):
        """The worker that owns the subscriber, hence all of its mappings."""
        return self.owners.subscriber(inside_ip)

    def port_owner(self, ext):
        """The worker that owns an external endpoint (address, port)."""
        return self.owners.port(ext[0], ext[1])

    @property
    def wraps(self):
        return sum(w.wraps for w in self.workers)

    @property
    def parity_fallbacks(self):
        return sum(w.parity_fallbacks for w in self.workers)

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
        ports = self.workers[self.worker_of(inside_ip)]
        sub = self.subscribers.get(inside_ip)
        if sub is None:
            n = len(self.pool)
            first = self.preferred_index(inside_ip)
            anchor = first
            for i in range(n):
                if ports.free_count((first + i) % n, proto) > 0:
                    anchor = (first + i) % n
                    break
            sub = [anchor, 0]
        grant = ports.allocate(inside_ip, inside_port, proto, sub[0], self.pool[sub[0]])
        if grant is None:
            return None
        self.subscribers[inside_ip] = sub
        sub[1] += 1
        ext = Ext(self.pool[sub[0]], grant[0], grant[1])
        self.mappings[key] = ext
        return ext


Run = namedtuple("Run", "pool_ip lo hi")


class DeterministicNat(MappingsView):
    """Deterministic NAT (RFC 7422), as `[pool] mode = "deterministic"` should make mappings.

    Subscriber i (its offset in the prefix) gets pool address i // ratio and the run of ports
    lo + (i % ratio) * pps .. + pps - 1, where ratio = ceil(subscribers / pool size) and pps =
    floor(port_range size / ratio). Its inside port is kept when it lies in the run and is free
    for the protocol; otherwise Algorithm 4 (alg4_search) over the run, with the Algorithm 4
    table of the subscriber's worker: every worker numbers every port, so a slot is its port,
    and the port key is the subscriber's with the run's pool address. An address outside the
    prefix gets no mapping. Ownership comes from `ephemera --owner --config` with the
    scenario's config (`config`): a port belongs to the worker of the subscriber whose run
    holds it."""

    def __init__(self, pool, subscribers, port_range, config, workers=1, secret=SECRET):
        prefix, length = subscribers.split("/")
        self.pool = list(pool)
        self.prefix = ip_int(prefix)
        self.count = 1 << (32 - int(length))
        self.lo, self.hi = port_range
        self.ratio = -(-self.count // len(self.pool))
        self.pps = (self.hi - self.lo + 1) // self.ratio
        self.secret = secret
        self.owners = owners(workers, config)
        self.tables = [[0] * ALG4_TABLE_SIZE for _ in range(workers)]
        self.used = {}          # (pool address, protocol) -> ports in use
        self.mappings = {}      # (inside ip, inside port, proto) -> Ext

    def run_of(self, inside_ip):
        """The subscriber's Run (pool address, first and last port), or None outside the
        prefix."""
        offset = ip_int(inside_ip) - self.prefix
        if not 0 <= offset < self.count:
            return None
        lo = self.lo + (offset % self.ratio) * self.pps
        return Run(self.pool[offset // self.ratio], lo, lo + self.pps - 1)

    def holder(self, pool_ip, port):
        """The subscriber whose run holds (pool address, port), or None."""
        if pool_ip not in self.pool or not self.lo <= port <= self.hi:
            return None
        run = (port - self.lo) // self.pps
        offset = self.pool.index(pool_ip) * self.ratio + run
        if run >= self.ratio or offset >= self.count:
            return None
        return str(ipaddress.IPv4Address(self.prefix + offset))

    def worker_of(self, inside_ip):
        return self.owners.subscriber(inside_ip)

    def port_owner(self, ext):
        return self.owners.port(ext[0], ext[1])

    def map(self, inside_ip, inside_port, proto):
        """The external endpoint of (inside_ip, inside_port, proto), or None when refused."""
        key = (inside_ip, inside_port, proto)
        if key in self.mappings:
            return self.mappings[key]
        run = self.run_of(inside_ip)
        if run is None:
            return None
        used = self.used.setdefault((run.pool_ip, proto), set())
        if run.lo <= inside_port <= run.hi and inside_port not in used:
            ext = Ext(run.pool_ip, inside_port, True)
        else:
            free = set(range(run.lo, run.hi + 1)) - used
            found = alg4_search(self.tables[self.worker_of(inside_ip)], self.secret, inside_ip,
                                run.pool_ip, proto, inside_port & 1, run.lo, run.hi,
                                range(65536), free)
            if found is None:
                return None
            ext = Ext(run.pool_ip, found[0], False)
        used.add(ext.port)
        self.mappings[key] = ext
        return ext


def mix32(h):
    """MurmurHash3's 32-bit finaliser."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK32
    return h ^ (h >> 16)


GRANULE = 64    # slots: blocks are whole granules of a worker's slots


class BlockNat(MappingsView):
    """Port-block allocation (`[pool] mode = "blocks"`, fixed block_size), as it should make
    mappings with `workers` workers.

    Slots here are the slots of the C++ slice: every port 0-65535 the worker owns, in port
    order (so granule g is slots 64g..64g+63 of that numbering, whatever the range). Blocks lie
    on a grid of whole granules inside the slots of the range's ports from 1024 up, cut from
    the first whole granule. A subscriber's first mapping (and one whose blocks are all full
    for the protocol) opens a block if it holds fewer than max_blocks: a keyed start
    mix32(F ^ counter * 0x9e3779b9) % blocks on the grid, with F and the counter of the ICMP
    Algorithm 4 seed of its port key (the counter moves on), then the first block from there,
    wrapping, whose granules nobody holds. Within its blocks, oldest first, the inside port is
    kept when its slot lies in the block and is free; otherwise Algorithm 4 over the block's
    slots (alg4_search: the table counter moves on for each block tried). Blocks are per
    address, shared by the protocols; ports in use are per protocol. Nothing expires here.
    Anchoring: the subscriber's preferred address (NatModel.preferred_index), or the next one
    with a free block on its worker."""

    def __init__(self, pool, block_size, max_blocks, port_range=(49152, 65535), workers=1,
                 secret=SECRET):
        self.pool = list(pool)
        self.granules = block_size // GRANULE
        self.max_blocks = max_blocks
        self.secret = secret
        self.owners = owners(workers)
        lo, hi = port_range
        self.tables = [[0] * ALG4_TABLE_SIZE for _ in range(workers)]
        self.slots = []         # per worker: its ports, ascending (slot -> port)
        self.grid = []          # per worker: (first granule, blocks)
        self.allowed = []       # per worker: its ports inside the range
        for w in range(workers):
            ports = [p for p in range(65536) if self.owners.port(self.pool[0], p) == w]
            user = [i for i, p in enumerate(ports) if max(lo & ~1, 1024) <= p <= (hi | 1)]
            first = -(-user[0] // GRANULE) if user else 0
            end = (user[-1] + 1) // GRANULE if user else 0
            self.slots.append(ports)
            self.grid.append((first, max(0, end - first) // self.granules))
            self.allowed.append({p for p in ports if lo <= p <= hi})
        self.holder = {}        # (worker, pool index, granule) -> inside address
        self.used = {}          # (worker, pool index, proto) -> ports in use
        self.subscribers = {}   # inside address -> [pool index, [first granules of blocks]]
        self.mappings = {}      # (inside ip, inside port, proto) -> Ext
        self.blocks_opened = 0
        self.refusals = collections.Counter()   # "subscriber_blocks", "no_free_block"

    def worker_of(self, inside_ip):
        return self.owners.subscriber(inside_ip)

    def port_owner(self, ext):
        return self.owners.port(ext[0], ext[1])

    def _free_block(self, worker, pool_index, first):
        return not any((worker, pool_index, g) in self.holder
                       for g in range(first, first + self.granules))

    def _grid_blocks(self, worker):
        first, count = self.grid[worker]
        return [first + k * self.granules for k in range(count)]

    def block_ports(self, inside_ip):
        """The ports of each of the subscriber's blocks, oldest first."""
        w = self.worker_of(inside_ip)
        return [self.slots[w][g * GRANULE:(g + self.granules) * GRANULE]
                for g in self.subscribers[inside_ip][1]]

    def map(self, inside_ip, inside_port, proto):
        """The external endpoint of (inside_ip, inside_port, proto), or None when refused
        (counted in self.refusals)."""
        key = (inside_ip, inside_port, proto)
        if key in self.mappings:
            return self.mappings[key]
        w = self.worker_of(inside_ip)
        sub = self.subscribers.get(inside_ip)
        if sub is None:
            n = len(self.pool)
            first = siphash_2x64(self.secret, ip_int(inside_ip), ANCHOR_DOMAIN) % n
            anchor = next((i % n for i in range(first, first + n)
                           if any(self._free_block(w, i % n, b) for b in self._grid_blocks(w))),
                          first)
            sub = [anchor, []]
        pool_ip = self.pool[sub[0]]
        used = self.used.setdefault((w, sub[0], proto), set())
        free = self.allowed[w] - used
        ports = self.slots[w]
        table = self.tables[w]

        def take(first):
            lo, hi = first * GRANULE, (first + self.granules) * GRANULE - 1
            if inside_port in free and lo <= ports.index(inside_port) <= hi:
                return inside_port, True
            found = alg4_search(table, self.secret, inside_ip, pool_ip, proto, inside_port & 1,
                                lo, hi, ports, free)
            return (ports[found[0]], False) if found else None

        grant = None
        for first in sub[1]:
            grant = take(first)
            if grant:
                break
        if grant is None:
            if len(sub[1]) >= self.max_blocks:
                self.refusals["subscriber_blocks"] += 1
                return None
            blocks = self._grid_blocks(w)
            h = _alg4_hash(self.secret, inside_ip, pool_ip, ICMP)
            offset, index = h & MASK32, (h >> 32) % ALG4_TABLE_SIZE
            start = mix32(offset ^ (table[index] * 0x9E3779B9 & MASK32)) % len(blocks) \
                if blocks else 0
            table[index] = (table[index] + 1) & MASK32
            first = next((b for b in blocks[start:] + blocks[:start]
                          if self._free_block(w, sub[0], b)), None)
            if first is None:
                self.refusals["no_free_block"] += 1
                return None
            for g in range(first, first + self.granules):
                self.holder[(w, sub[0], g)] = inside_ip
            sub[1].append(first)
            self.blocks_opened += 1
            grant = take(first)
        self.subscribers[inside_ip] = sub
        used.add(grant[0])
        ext = Ext(pool_ip, grant[0], grant[1])
        self.mappings[key] = ext
        return ext


def _alg4_hash(secret, inside_ip, pool_ip, proto):
    """The 64-bit Algorithm 4 hash of a subscriber, pool address and protocol: F is its low 32
    bits, G its high 32 (alg4_search)."""
    who = ip_int(inside_ip) << 32 | ip_int(pool_ip)
    key = siphash_2x64(secret, who, PORT_KEY_DOMAIN)
    return _rotl(key, 21 * PROTO_INDEX[proto])


def self_test(worker_counts=(1,)):
    """The model's own checks; raises AssertionError on failure. Known answers for SipHash;
    for each worker count, the shape of the per-worker port search (with ownership from the
    ephemera binary, see use_ephemera)."""
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
    for workers in worker_counts:
        _self_test_workers(workers)


def _self_test_workers(workers):
    pool = ["198.18.0.100"]
    lo, hi = 40000, 40255   # 256 ports: every bucket twice
    what = "%d workers: " % workers

    def fresh():
        return NatModel(pool, port_range=(lo, hi), workers=workers)

    nat = fresh()
    own = nat.owners
    # Slots: every port of the range is in exactly one worker's slots, by its owner, in port
    # order, parity twins together; the 64 buckets share out within one bucket of even.
    slots = [w.slots[0] for w in nat.workers]
    assert sorted(p for s in slots for p in s) == list(range(lo, hi + 1)), what + "partition"
    for w, ports in enumerate(slots):
        assert ports == sorted(ports) and all(own.port(pool[0], p) == w for p in ports), what
        assert all(p ^ 1 in ports for p in ports), what + "parity twins split"
    assert max(map(len, slots)) - min(map(len, slots)) <= 4, what + "a bucket is 4 ports here"

    # One subscriber per worker, from 100.64.0.10 up.
    candidates = ["100.64.0.%d" % i for i in range(10, 250)]
    own.ask_subscribers(candidates)
    subs = [next(a for a in candidates if own.subscriber(a) == w) for w in range(workers)]

    # A free port in the range is kept only by its owner's subscriber; any other subscriber
    # gets a port of its own worker, with the same parity.
    for w, sub in enumerate(subs):
        theirs = [p for p in range(lo + 1, hi + 1, 2) if own.port(pool[0], p) != w][:1]
        mine = next(p for p in range(lo + 2, hi + 1, 2) if own.port(pool[0], p) == w)
        for port in theirs:
            ext = nat.map(sub, port, UDP)
            assert not ext.preserved and ext.port % 2 == 1, what + str(ext)
            assert own.port(pool[0], ext.port) == w, what + "mapped to another worker's port"
        assert nat.map(sub, mine, UDP) == (pool[0], mine, True), what + "not kept"

    # A worker's ports run out on their own: its subscriber gets exactly its slots, then
    # nothing, while the next worker's subscriber still gets a port.
    nat = fresh()
    first = subs[0]
    granted = [nat.map(first, 1000 + i, TCP) for i in range(len(slots[0]) + 3)]
    assert all(granted[:len(slots[0])]) and granted[len(slots[0]):] == [None] * 3, what
    assert sorted(e.port for e in granted[:len(slots[0])]) == slots[0], what
    if workers > 1:
        assert nat.map(subs[1], 1000, TCP) is not None, what + "another worker's ports gone"

    # Each worker has its own Algorithm 4 table: what one worker's subscriber got does not
    # change when another worker's subscriber mapped first.
    if workers > 1:
        a, b = fresh(), fresh()
        a.map(subs[0], 4000, UDP)
        b.map(subs[1], 4000, UDP)
        b.map(subs[0], 4000, UDP)
        assert a.map(subs[0], 4000, UDP) == b.map(subs[0], 4000, UDP), what + "shared table"
