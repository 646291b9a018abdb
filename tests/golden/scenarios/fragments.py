"""Fragments (RFC 4787 REQ-14) and the MTU (REQ-13).

Pieces are never joined: the first piece (which carries the ports) is translated as any packet,
and the later ones get the same address rewrite, byte for byte what scapy's fragment() makes of
the translated datagram. The transport checksum lives in the first piece and covers the whole
datagram, so its incremental update is right for the datagram scapy builds whole.

With several workers, an outside piece goes first to its datagram's fragment owner (a hash of
source, destination, IP id and protocol), which hands it to the port's owner when that is
another worker. `ephemera --owner` does not answer for fragment owners, so these scenarios
check that handoff_tx equals handoff_rx and is at least what the subscribers' and ports'
owners alone make.
"""

from scapy.layers.inet import ICMP, IP, UDP, fragment
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from frames import (A1, A2, C1, C2, GATEWAY, INSIDE_MAC, NEXT_HOP_MAC, OUTSIDE_MAC, POOL1,
                    Echo, Tcp, Udp)
from natmodel import NatModel
from scenarios import Frame, Scenario, by_port, by_subscriber, config, scenario, subscriber_of

PIECE = 520  # payload bytes per piece (a multiple of 8)


def _pieces(eth, ip, size=PIECE):
    return [bytes(eth / p) for p in fragment(ip, fragsize=size)]


def _datagrams(sub, port, remote, rport, l4, ext, ip_id, outbound):
    """(pieces as sent, pieces as ephemera should send them) for one fragmented datagram."""
    if outbound:
        sent = IP(src=sub.ip, dst=remote, id=ip_id, ttl=64) / l4.outbound(port, rport)
        want = IP(src=ext[0], dst=remote, id=ip_id, ttl=63) / l4.outbound(ext[1], rport)
        return (_pieces(Ether(src=sub.mac, dst=INSIDE_MAC), sent),
                _pieces(Ether(src=OUTSIDE_MAC, dst=NEXT_HOP_MAC), want))
    sent = IP(src=remote, dst=ext[0], id=ip_id, ttl=64) / l4.inbound(rport, ext[1])
    want = IP(src=remote, dst=sub.ip, id=ip_id, ttl=63) / l4.inbound(rport, port)
    return (_pieces(Ether(src=NEXT_HOP_MAC, dst=OUTSIDE_MAC), sent),
            _pieces(Ether(src=INSIDE_MAC, dst=sub.mac), want))


def _flows():
    big = bytes(range(256)) * 6  # 1536 bytes: 3 or 4 pieces
    return [
        (51000, A1, 5001, Udp(big)),
        (51002, A2, 80, Tcp(flags="PA", reply_flags="PA", options=[], payload=big)),
        (51004, A1, 0, Echo(payload=big)),
    ]


BURST = 32  # frames a worker reads per port and loop iteration (the timing model)
OTHER_MAC = "02:00:00:00:00:99"


def _filler(outbound, count):
    """Frames for another host's MAC (drop_not_for_us, by the worker that reads them): they
    end a burst, so that what follows arrives in the next one."""
    src = C1.mac if outbound else NEXT_HOP_MAC
    return [Frame(bytes(Ether(src=src, dst=OTHER_MAC) / IP(src=A1, dst=A2) /
                        UDP(sport=1, dport=2)))] * count


def _fragment_scenario(first_last, workers):
    """A subscriber of worker 0 (with one worker, C1) sends the datagrams and gets replies:
    the replies' pieces may travel through their fragment owner, another worker, so their
    mapping must be one worker 0 made itself before it handed them on. With several workers,
    a subscriber of the last worker sends the same datagrams too (no replies), each of its
    pieces handed to its worker.

    In order, all in one burst: a worker translates a burst's packets and first pieces, then
    its later pieces (the pieces pass), so each worker sends its first pieces ahead of its
    later ones. First piece last: every later piece comes in one burst, before any first
    piece can (filler frames end it); they are held until their first piece comes in the next
    burst, and leave right after it, in the order they came."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config())
    subs = [(subscriber_of(workers, 0), 100, True)]
    if workers > 1:
        subs.append((subscriber_of(workers, workers - 1), 300, False))
    later = 0
    held = 0
    held_by_worker0 = 0  # the first subscriber's own pieces: worker 0 reads and holds them
    filler = 0
    # [outbound]: (first pieces in, later pieces in, first pieces out, later pieces out)
    parts = {True: ([], [], [], []), False: ([], [], [], [])}
    for sub, first_id, replies in subs:
        for n, (port, remote, rport, l4) in enumerate(_flows()):
            ext = nat.map(sub.ip, port, l4.proto)
            for outbound, ip_id in ((True, first_id + n), (False, first_id + 100 + n)):
                if not (outbound or replies):
                    continue
                sent, want = _datagrams(sub, port, remote, rport, l4, ext, ip_id, outbound)
                assert len(sent) == len(want) >= 3
                owner = by_subscriber(sub) if outbound else by_port(ext)
                firsts_in, laters_in, firsts_out, laters_out = parts[outbound]
                # One ordering stream per datagram: its pieces leave in order (first piece
                # first), while datagrams that reach a worker by different rings, or that one
                # worker receives together or apart as the rings happen to be drained, may
                # interleave.
                out = lambda f: Frame(f, owner, stream=(outbound, ip_id))  # noqa: E731
                if first_last:  # the later pieces, last one first; the first in a later burst
                    laters_in += [Frame(f, owner) for f in sent[:0:-1]]
                    firsts_in.append(Frame(sent[0], owner))
                    # each first piece, then the pieces held for it
                    firsts_out += [out(f) for f in want[:1] + want[:0:-1]]
                    held += len(sent) - 1
                    if outbound and sub is subs[0][0]:
                        held_by_worker0 += len(sent) - 1
                else:
                    laters_in += [Frame(f, owner) for f in sent]  # as they come, in order
                    firsts_out.append(out(want[0]))
                    laters_out += [out(f) for f in want[1:]]
                later += len(sent) - 1
    for outbound in (True, False):
        firsts_in, laters_in, firsts_out, laters_out = parts[outbound]
        if first_last:
            pad = _filler(outbound, BURST - len(laters_in))
            assert pad and len(firsts_in) <= BURST
            frames_in = laters_in + pad + firsts_in
            filler += len(pad)
        else:
            frames_in = laters_in
            assert len(frames_in) <= BURST
        (sc.inside_in if outbound else sc.outside_in).extend(frames_in)
        (sc.outside_out if outbound else sc.inside_out).extend(firsts_out + laters_out)
    flows = len(_flows())
    sc.counters = dict(in2out_rx=len(sc.inside_in), out2in_rx=len(sc.outside_in),
                       in2out_tx=len(sc.outside_out), out2in_tx=len(sc.inside_out),
                       in2out_translated=flows * len(subs), out2in_translated=flows,
                       fragments_translated=later, mappings_created=flows * len(subs),
                       sessions_created=flows * len(subs), port_preserved=nat.preserved())
    if held and workers > 1:
        # A later piece is held only if its worker sees it before its first piece's burst:
        # the pieces that crossed a ring may come in one batch with their first piece,
        # which then decides them at once. At least the pieces worker 0 held itself.
        sc.counter_bounds["fragments_held"] = (held_by_worker0, held)
    elif held:
        sc.counters["fragments_held"] = held
    if filler:
        sc.counters["drop_not_for_us"] = filler
    sc.extra_handoffs = None  # fragment owners: see the top of this file
    return sc


@scenario
def rfc4787_req14_fragments_in_order(workers):
    """UDP, TCP and ICMP echo datagrams in pieces, both ways, pieces in order: the first piece
    makes the mapping and every later piece follows it (RFC 4787 REQ-14)."""
    return _fragment_scenario(False, workers)


@scenario
def rfc4787_req14_fragments_first_last(workers):
    """The same datagrams with the first piece arriving last, in a later burst (the rest in
    reverse order): the later pieces are held until it comes, then sent after it in the order
    they came."""
    return _fragment_scenario(True, workers)


def _too_big(frame, mtu, source, our_mac):
    """The 3/4 answer to `frame` (RFC 1191): next-hop MTU in the second half of the ICMP
    header, quoting the packet as it came, up to a 576-byte ICMP datagram."""
    eth = Ether(frame)
    original = bytes(eth[IP])[:576 - 28]
    error = (Ether(src=our_mac, dst=eth.src)
             / IP(src=source, dst=eth[IP].src, tos=0xC0, id=0, ttl=64)
             / ICMP(type=3, code=4, nexthopmtu=mtu) / Raw(original))
    return bytes(error)


@scenario
def rfc4787_req13_df_too_big(workers):
    """A DF packet larger than the MTU of the port it would leave by is answered with ICMP 3/4
    and that MTU (RFC 4787 REQ-13, RFC 1191): from the inside gateway to a subscriber (outside
    MTU 1280), from the pool address to a remote (inside MTU 1000). Smaller ones pass."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config(inside_mtu=1000, outside_mtu=1280))
    ext = nat.map(C1.ip, 52000, 17)
    fits = Udp(b"f" * (1280 - 28))
    sc.send(C1, 52000, A1, 53, fits, ext, flags="DF")
    big = Udp(b"b" * 1400)
    frame, _ = _in2out_frame(C1, 52000, A1, 53, big, flags="DF")
    sc.inside_in.append(Frame(frame, by_subscriber(C1)))
    sc.inside_out.append(Frame(_too_big(frame, 1280, GATEWAY, INSIDE_MAC), by_subscriber(C1)))
    # Back: 1000 bytes fit the inside MTU, 1001 do not.
    sc.reply(C1, 52000, A1, 53, Udp(b"r" * (1000 - 28)), ext, flags="DF")
    inbound = bytes(Ether(src=NEXT_HOP_MAC, dst=OUTSIDE_MAC)
                    / IP(src=A1, dst=ext[0], id=9, ttl=64, flags="DF")
                    / UDP(sport=53, dport=ext[1]) / Raw(b"R" * (1001 - 28)))
    sc.outside_in.append(Frame(inbound, by_port(ext)))
    sc.outside_out.append(Frame(_too_big(inbound, 1000, POOL1, OUTSIDE_MAC), by_port(ext)))
    sc.counters = dict(in2out_rx=2, out2in_rx=2, in2out_tx=2, out2in_tx=2, in2out_translated=1,
                       out2in_translated=1, mappings_created=1, sessions_created=1,
                       port_preserved=nat.preserved(), drop_too_big=2, icmp_too_big_sent=2)
    return sc


def _in2out_frame(sub, port, remote, rport, l4, **ip_kw):
    ip = IP(src=sub.ip, dst=remote, id=7, ttl=64, **ip_kw) / l4.outbound(port, rport)
    return bytes(Ether(src=sub.mac, dst=INSIDE_MAC) / ip), ip


@scenario
def rfc4787_req13_fragmented_for_mtu(workers):
    """A packet without DF that is larger than the MTU of the port it leaves by is translated,
    then split to fit (RFC 4787 REQ-13, RFC 791): UDP out (outside MTU 576) and a reply in
    (inside MTU 600)."""
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config(inside_mtu=600, outside_mtu=576))
    ext = nat.map(C2.ip, 53000, 17)
    payload = bytes(range(200)) * 6  # 1208 bytes of UDP: 3 pieces of at most 552
    frame, _ = _in2out_frame(C2, 53000, A1, 9, Udp(payload))
    sc.inside_in.append(Frame(frame, by_subscriber(C2)))
    want = IP(src=ext[0], dst=A1, id=7, ttl=63) / UDP(sport=ext[1], dport=9) / Raw(payload)
    out = _pieces(Ether(src=OUTSIDE_MAC, dst=NEXT_HOP_MAC), want, size=552)
    sc.outside_out.extend(Frame(f, by_subscriber(C2)) for f in out)

    reply = IP(src=A1, dst=ext[0], id=8, ttl=64) / UDP(sport=9, dport=ext[1]) / Raw(payload)
    sc.outside_in.append(Frame(Ether(src=NEXT_HOP_MAC, dst=OUTSIDE_MAC) / reply, by_port(ext)))
    back = IP(src=A1, dst=C2.ip, id=8, ttl=63) / UDP(sport=9, dport=53000) / Raw(payload)
    back_pieces = _pieces(Ether(src=INSIDE_MAC, dst=C2.mac), back, size=576)
    sc.inside_out.extend(Frame(f, by_port(ext)) for f in back_pieces)
    sc.counters = dict(in2out_rx=1, out2in_rx=1, in2out_tx=len(out), out2in_tx=len(back_pieces),
                       in2out_translated=1, out2in_translated=1, mappings_created=1,
                       sessions_created=1, port_preserved=nat.preserved(), packets_fragmented=2,
                       fragments_sent=len(out) + len(back_pieces))
    return sc
