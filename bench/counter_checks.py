"""The equations ephemera's counters satisfy, and the generator's counters with them, once
traffic has stopped and every ring is empty. Read off the code (dataplane/worker.cpp,
translator.cpp, translator_icmp.cpp, lifecycle.cpp, fragments.cpp, worker_fragments.cpp); each
check says where its terms come from.

Every frame a worker takes in (from its RX queue, from a handoff ring, or turned back by a
hairpin) ends in exactly one "fate" counter: handed to its owner, translated, answered (ARP,
ping), held as a fragment, or dropped with a reason. That is check "fates". Two things give a
frame a second counter and are left out of these runs, so the equations say so instead of
modelling them: a held fragment that its first piece later releases (counted held, then
translated), and MTU splitting (one translated packet, several sent). The soak sends neither
(no fragments, 64-byte frames); the malformed flood sends later pieces whose first piece never
comes, so each held piece's second counter is timed out or evicted ("fragments" below).

Debian's /usr/bin/python3, standard library only.
"""


def _sum(c, names):
    return sum(c.get(n, 0) for n in names)


# Fates other than the drops: where a frame goes when it is not dropped.
FATES = ["handoff_tx", "in2out_translated", "out2in_translated", "icmp_errors_in2out",
         "icmp_errors_out2in", "arp_replies_sent", "arp_replies_received",
         "icmp_echo_replies_sent", "pool_echo_replies_sent", "fragments_held",
         "fragments_translated"]
# Drops that happen after a frame's fate was counted (a translated packet the port refused, an
# MTU split that failed): not fates.
AFTER_FATE = ["drop_tx_full", "drop_fragmentation_failed"]
# Frames ephemera sends of its own (answers and errors it builds).
ORIGINATED = ["arp_replies_sent", "arp_requests_sent", "icmp_echo_replies_sent",
              "pool_echo_replies_sent", "icmp_unreachable_sent", "icmp_too_big_sent",
              "icmp_time_exceeded_sent", "syn_unreachable_sent"]
EXPIRED = ["expired_udp", "expired_tcp_established", "expired_tcp_transitory", "expired_icmp"]


def drop_counters(c):
    return sorted(k for k in c if k.startswith("drop_") and k not in AFTER_FATE)


def check(name, lhs, rhs, lhs_terms, rhs_terms, source):
    return {"name": name, "holds": lhs == rhs, "lhs": lhs, "rhs": rhs,
            "equation": "%s == %s" % (" + ".join(lhs_terms), " + ".join(rhs_terms)),
            "source": source}


def ephemera_checks(c, flushed=0, fragments_settled=True):
    """c: /ephemera/stats (counter totals over the workers and the gauges), or the totals of
    ephemera's exit report (--stats-json) with live_sessions and live_mappings added, which
    has no gauges and skips the two checks that need them. flushed: sessions
    removed by `ephemeractl flush` (their count comes back in the command's reply, not in a
    counter). fragments_settled: every held piece has timed out by now."""
    out = []
    out.append(check("handoff", c["handoff_tx"], c["handoff_rx"], ["handoff_tx"], ["handoff_rx"],
                     "worker.cpp flush_handoff / poll_handoff: rings drained"))
    drops = drop_counters(c)
    lhs_terms = ["in2out_rx", "out2in_rx", "handoff_rx", "hairpinned"]
    out.append(check("fates", _sum(c, lhs_terms), _sum(c, FATES) + _sum(c, drops), lhs_terms,
                     FATES + ["every drop_* but " + ", ".join(AFTER_FATE)],
                     "worker.cpp process/translate_batch, translator.cpp in2out_burst/"
                     "out2in_burst, worker_fragments.cpp later_piece: one counter per frame"))
    split = ["fragments_sent", "packets_fragmented", "drop_fragmentation_failed"]
    sent_terms = ["in2out_translated", "out2in_translated", "icmp_errors_in2out",
                  "icmp_errors_out2in", "fragments_translated"] + ORIGINATED
    out.append(check("transmit", _sum(c, ["in2out_tx", "out2in_tx", "drop_tx_full"]),
                     _sum(c, sent_terms) - c.get("hairpinned", 0) + c.get("fragments_sent", 0)
                     - c.get("packets_fragmented", 0) - c.get("drop_fragmentation_failed", 0),
                     ["in2out_tx", "out2in_tx", "drop_tx_full"],
                     sent_terms + ["fragments_sent", "- hairpinned", "- packets_fragmented",
                                   "- drop_fragmentation_failed"],
                     "worker.cpp flush_tx: every frame queued for a port is sent or "
                     "drop_tx_full; " + ("no MTU split happened" if not _sum(c, split) else
                                         "MTU splits happened: approximate")))
    if fragments_settled:
        out.append(check("fragments", c.get("fragments_held", 0),
                         _sum(c, ["fragments_timed_out", "fragments_evicted"]),
                         ["fragments_held"], ["fragments_timed_out", "fragments_evicted"],
                         "fragments.cpp later/release_entry: every held piece is freed by its "
                         "timeout or by eviction when no first piece comes"))
    out.append(check("sessions", c["sessions_created"] - _sum(c, EXPIRED) - flushed,
                     c["live_sessions"], ["sessions_created", "- expired_*", "- flushed"],
                     ["live_sessions"], "translator.cpp in2out_miss, lifecycle.cpp "
                     "on_session_due/delete_session"))
    if "ports_in_hold_down" not in c:
        return out  # an exit report: no gauges (see gauge_checks in bench/soak.py)
    out.append(check("sessions by protocol",
                     _sum(c, ["live_sessions_udp", "live_sessions_tcp", "live_sessions_icmp"]),
                     c["live_sessions"], ["live_sessions_udp", "live_sessions_tcp",
                                          "live_sessions_icmp"], ["live_sessions"],
                     "worker.cpp refresh_gauges"))
    out.append(check("mappings", c["mappings_created"] - c["mappings_released"],
                     c["live_mappings"], ["mappings_created", "- mappings_released"],
                     ["live_mappings"], "translator.cpp create_mapping, lifecycle.cpp "
                     "release_mapping"))
    out.append(check("hold-down", c["ports_held"] - c["ports_returned"],
                     c["ports_in_hold_down"], ["ports_held", "- ports_returned"],
                     ["ports_in_hold_down"], "lifecycle.cpp release_mapping/expire"))
    return out


def wire_checks(c, lg, inside_flood=0, outside_flood=0):
    """What went over the memif rings: a frame the sender's port took is received by the other
    side (memif copies it into the shared ring; nothing drops it after that), so once both
    sides have drained, the generator's and ephemera's counts agree exactly. lg: the
    generator's counters; inside_flood/outside_flood: flood frames it sent on each side."""
    out = []
    lg_in_terms = ["sub_tx", "sub_tx_probe", "flood frames inside"]
    out.append(check("inside wire", lg["sub_tx"] + lg["sub_tx_probe"] + inside_flood,
                     c["in2out_rx"], lg_in_terms, ["in2out_rx"],
                     "generator -> ephemera, inside ring"))
    out.append(check("outside wire", lg["out_reply_tx"] + outside_flood, c["out2in_rx"],
                     ["out_reply_tx", "flood frames outside"], ["out2in_rx"],
                     "generator -> ephemera, outside ring"))
    out.append(check("out of ephemera, outside", c["in2out_tx"], lg["out_rx"], ["in2out_tx"],
                     ["out_rx"], "ephemera -> generator, outside ring"))
    out.append(check("out of ephemera, inside", c["out2in_tx"], lg["in_rx"], ["out2in_tx"],
                     ["in_rx"], "ephemera -> generator, inside ring"))
    return out


def ethdev_checks(c, ethdev):
    """ephemera's counts against its ports' own (DPDK's /ethdev/stats), both read at one quiet
    moment; and nothing lost in the port before ephemera saw it (imissed, ierrors,
    rx_nombuf)."""
    out = []
    for port, rx, tx in ((0, "in2out_rx", "out2in_tx"), (1, "out2in_rx", "in2out_tx")):
        st = ethdev.get(port) or ethdev.get(str(port))
        if not st:
            continue
        out.append(check("ethdev port %d rx" % port, st.get("ipackets", 0), c[rx],
                         ["ipackets"], [rx], "the memif PMD's own count"))
        out.append(check("ethdev port %d tx" % port, st.get("opackets", 0), c[tx],
                         ["opackets"], [tx], "the memif PMD's own count"))
        lost = ["imissed", "ierrors", "rx_nombuf"]
        out.append(check("ethdev port %d lost" % port, _sum(st, lost), 0, lost, ["0"],
                         "frames the port lost before ephemera read them"))
    return out


def flood_groups(kinds):
    """Kinds whose expected counters overlap, joined: within a group the frames sent and the
    counters they may land in must add up, though not kind by kind."""
    groups = []
    for k in kinds:
        names = set(k["expect"].split("|"))
        joined = [g for g in groups if g["counters"] & names]
        merged = {"kinds": [k["name"]], "counters": set(names), "sent": k["sent"]}
        for g in joined:
            merged["kinds"] += g["kinds"]
            merged["counters"] |= g["counters"]
            merged["sent"] += g["sent"]
            groups.remove(g)
        groups.append(merged)
    return groups


def flood_checks(c, lg, kinds):
    """Every flood frame is accounted for by the counters its kind names. The flows' own frames
    land in some of the same counters (translated, or dropped on a full handoff ring), so they
    join as kinds of their own: the subscribers' packets (sub_tx), the servers' replies and ARP
    answers (out_reply_tx) and the readiness probes (sub_tx_probe, answered by ARP)."""
    flows = [{"name": "flows inside", "sent": lg["sub_tx"],
              "expect": "in2out_translated|drop_handoff_congestion"},
             {"name": "flows outside", "sent": lg["out_reply_tx"],
              "expect": "out2in_translated|drop_handoff_congestion"},
             {"name": "probes", "sent": lg["sub_tx_probe"], "expect": "arp_replies_sent"}]
    out = []
    for g in flood_groups(kinds + flows):
        if not any(k in g["kinds"] for k in (k["name"] for k in kinds)):
            continue
        counters = sorted(g["counters"])
        out.append(check("flood " + ", ".join(sorted(g["counters"])), g["sent"],
                         _sum(c, counters), ["frames sent: " + ", ".join(sorted(g["kinds"]))],
                         counters, "flood.hpp kFloodKinds"))
    return out
