"""RFC 4787 REQ-8 (and RFC 5382 REQ-3 for TCP): which remotes may reach a mapping.

After C:x -> A1:p, packets come from A1:p, A1:q and A2:p to the external endpoint:
endpoint-independent filtering delivers all three, address-dependent A1:p and A1:q,
address-and-port-dependent only A1:p. ICMP echo has no port: A1 passes, A2 only under EIF.
"""

import functools

from frames import A1, A2, C1, POOL1, Echo, Tcp, Udp
from natmodel import NatModel
from scenarios import REGISTRY, Scenario, config, traffic

EIF, ADF, APDF = "endpoint-independent", "address", "address-and-port"


def filtering(mode, workers):
    nat = NatModel([POOL1], workers=workers)
    sc = Scenario(config(filtering=mode))
    flows = [(4000, Udp(), 53, 54), (4001, Tcp(), 80, 81), (4002, Echo(), 0, None)]
    for port, l4, p, _ in flows:
        sc.send(C1, port, A1, p, l4, nat.map(C1.ip, port, l4.proto))
    filtered = 0
    for port, l4, p, q in flows:
        ext = nat.map(C1.ip, port, l4.proto)
        inbound = [(A1, p, True), (A2, p, mode == EIF)]
        if q is not None:
            inbound.insert(1, (A1, q, mode != APDF))
        for remote, rport, delivered in inbound:
            if delivered:
                sc.reply(C1, port, remote, rport, l4, ext)
            else:
                sc.reply_dropped(C1, port, remote, rport, l4, ext)
                filtered += 1
    assert filtered == {EIF: 0, ADF: 3, APDF: 5}[mode]
    sc.counters = traffic(sc, mappings_created=3, sessions_created=3, drop_filtered=filtered)
    return sc


for _mode, _suffix in ((EIF, "eif"), (ADF, "adf"), (APDF, "apdf")):
    REGISTRY["rfc4787_req8_filtering_" + _suffix] = functools.partial(filtering, _mode)
