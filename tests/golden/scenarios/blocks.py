"""Port-block allocation (`[pool] mode = "blocks"`): a subscriber's mappings take ports from its
blocks of its worker's slots, a full set of blocks opens another up to max_blocks, and past
that new flows are refused (drop_subscriber_blocks, ICMP 3/1). Which block a subscriber gets
and which port in it are computed by natmodel.BlockNat, never recorded from a run.
"""

from frames import A1, A2, C1, C2, POOL1, Tcp, Udp
from natmodel import BlockNat
from scenarios import Scenario, config, scenario, traffic

RANGE = (1024, 65535)


def _setup(workers, block_size, max_blocks):
    nat = BlockNat([POOL1], block_size, max_blocks, port_range=RANGE, workers=workers)
    sc = Scenario(config(port_range="%d-%d" % RANGE, mode="blocks",
                         mode_keys=dict(block_size=block_size, max_blocks=max_blocks)))
    return nat, sc


@scenario
def port_blocks_max_blocks(workers):
    """block_size = 64, max_blocks = 2. C2's first mapping opens a block, and its TCP flow from
    a port of that block keeps it. C1's 128 UDP flows from even source ports fill two blocks:
    in each, 32 even ports by the keyed search, then, none of that parity left, the 32 odd ones;
    the 65th flow opens the second block. The 129th is refused (drop_subscriber_blocks) with
    ICMP 3/1, while a TCP flow still gets a port of C1's first block. Every port lies in its
    subscriber's worker's share. Only the first frames' mappings get replies: more than 32
    inside frames, so later mappings could be made after the replies were read."""
    nat, sc = _setup(workers, 64, 2)
    c2_first = nat.map(C2.ip, 4000, 17)
    sc.send(C2, 4000, A1, 53, Udp(), c2_first)
    inside = nat.block_ports(C2.ip)[0][2]
    assert inside != c2_first.port
    c2_tcp = nat.map(C2.ip, inside, 6)
    assert c2_tcp == (POOL1, inside, True)
    sc.send(C2, inside, A1, 80, Tcp(), c2_tcp)
    flows = [10000 + 2 * i for i in range(128)]
    for port in flows:
        sc.send(C1, port, A2, 53, Udp(), nat.map(C1.ip, port, 17))
    # The replies (one outside burst) come out before the refusal's ICMP: it is in the fifth
    # inside burst, read after the first outside one.
    sc.reply(C2, 4000, A1, 53, Udp(), c2_first)
    sc.reply(C2, inside, A1, 80, Tcp(), c2_tcp)
    sc.reply(C1, flows[0], A2, 53, Udp(), nat.map(C1.ip, flows[0], 17))
    assert nat.map(C1.ip, 20000, 17) is None and nat.refusals["subscriber_blocks"] == 1
    sc.send_refused(C1, 20000, A2, 53, Udp(b"past max_blocks"))
    tcp = nat.map(C1.ip, 20002, 6)
    sc.send(C1, 20002, A2, 80, Tcp(), tcp)
    blocks = nat.block_ports(C1.ip)
    assert len(blocks) == 2 and tcp.port in blocks[0]
    for n, block in enumerate(blocks):
        got = [nat.map(C1.ip, p, 17).port for p in flows[64 * n:64 * (n + 1)]]
        assert sorted(got) == sorted(block)
        assert all(p % 2 == 0 for p in got[:32]) and all(p % 2 == 1 for p in got[32:])
    mine = nat.worker_of(C1.ip)
    assert all(nat.port_owner((POOL1, p)) == mine for b in blocks for p in b)
    assert nat.blocks_opened == 3
    mappings = len(nat.mappings)
    sc.counters = traffic(sc, out2in_translated=3, mappings_created=mappings,
                          sessions_created=mappings, port_preserved=nat.preserved(),
                          blocks_opened=3, drop_subscriber_blocks=1, icmp_unreachable_sent=1)
    sc.gauges = dict(live_mappings=mappings, live_sessions=mappings)
    return sc
