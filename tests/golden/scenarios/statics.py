"""Static mappings (`[[static]]`): a port forward and 1:1, reached from outside with no earlier
outbound packet and by every remote, and the external endpoint of their inside endpoints' own
packets. Static endpoints need no model: the config names them. Their owner is the worker of
the inside host, whatever the port's bits say (the frames name it by subscriber).

The lab: UDP POOL1:5353 and TCP POOL1:8080 forward to C1:53 and C1:80; STATIC_IP is C2's
1:1 address. C1 and C2 first ask for the gateway by ARP, as hosts do: their workers learn
where they are from it (a host that is reached from outside before it has sent anything
needs that), and answer from their own queues.
"""

from frames import A1, A2, C1, C2, GATEWAY, INSIDE_MAC, POOL1, Tcp, Udp, arp_reply, arp_request
import frames
from scenarios import Frame, Scenario, by_subscriber, config, scenario, traffic

STATIC_IP = "198.18.0.150"   # not in the pool

STATICS = """
[[static]]
protocol = "udp"
external = "%(pool)s:5353"
inside = "%(c1)s:53"
[[static]]
protocol = "tcp"
external = "%(pool)s:8080"
inside = "%(c1)s:80"
[[static]]
external = "%(static)s"
inside = "%(c2)s"
""" % dict(pool=POOL1, c1=C1.ip, c2=C2.ip, static=STATIC_IP)


def _inbound(sc, host, port, remote, remote_port, l4, ext):
    """A remote's first packet to a static endpoint, delivered to (host, port)."""
    frame, expected = frames.out2in(host, port, remote, remote_port, l4, ext)
    sc.outside_in.append(Frame(frame, by_subscriber(host)))
    sc.inside_out.append(Frame(expected, by_subscriber(host)))


@scenario
def static_forward_and_one_to_one(workers):
    """RFC 4787 REQ-1 with the entry's endpoint: two remotes reach C1's DNS server through
    the UDP forward and one opens a TCP connection through the other, none of them answering
    an outbound packet; C1's answer leaves from POOL1:5353. C2 has STATIC_IP whole: a SYN to
    its port 22 reaches it, and its own UDP leaves from STATIC_IP with its port kept, the answer
    coming back the same way. A port of POOL1 that no entry names gets nothing
    (drop_no_mapping). Static mappings take no pool port: nothing is preserved or held."""
    sc = Scenario(config() + STATICS)
    for host in (C1, C2):
        sc.inside_in.append(Frame(arp_request(host.mac, host.ip, GATEWAY), by_subscriber(host)))
        sc.inside_out.append(Frame(arp_reply(INSIDE_MAC, GATEWAY, host.mac, host.ip),
                                   by_subscriber(host)))
    # Inside frames are all handled before any outside one (scenarios/__init__.py): C2's
    # packet and C1's answer make their mappings before the remotes' packets arrive, which
    # find them; the answer's session is the one A1's packet would have made.
    sc.send(C2, 7777, A1, 53, Udp(), (STATIC_IP, 7777))
    sc.send(C1, 53, A1, 4000, Udp(), (POOL1, 5353))
    _inbound(sc, C1, 53, A1, 4000, Udp(), (POOL1, 5353))
    _inbound(sc, C1, 53, A2, 4001, Udp(), (POOL1, 5353))
    _inbound(sc, C1, 80, A1, 5555, Tcp(reply_flags="S"), (POOL1, 8080))
    _inbound(sc, C2, 22, A2, 33, Tcp(reply_flags="S"), (STATIC_IP, 22))
    _inbound(sc, C2, 7777, A1, 53, Udp(), (STATIC_IP, 7777))
    unnamed, _ = frames.out2in(C1, 53, A1, 4002, Udp(), (POOL1, 5354))
    sc.outside_in.append(Frame(unnamed, ("port", POOL1, 5354)))
    sc.counters = traffic(sc, out2in_translated=len(sc.inside_out) - 2, arp_replies_sent=2,
                          mappings_created=4, static_mappings_created=4, sessions_created=5,
                          drop_no_mapping=1)
    sc.gauges = dict(live_mappings=4, live_sessions=5)
    return sc
