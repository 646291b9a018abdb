#include "app.hpp"

#include <rte_cycles.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <csignal>
#include <cstdio>
#include <cstring>

namespace ephemera {

namespace {

volatile std::sig_atomic_t g_signal = 0;
volatile std::sig_atomic_t g_reload = 0;

extern "C" void on_signal(int sig) {
    g_signal = sig;
}
extern "C" void on_hangup(int) {
    g_reload = 1;
}

void learn_next_hop(App& app) {
    ArpEvent ev{};
    for (rte_ring* ring : app.shared.arp_events) {
        while (rte_ring_sc_dequeue_elem(ring, &ev, sizeof ev) == 0) {
            MacAddr mac;
            std::memcpy(mac.bytes, ev.mac, 6);
            const std::uint64_t packed = pack_mac(mac);
            const std::uint64_t old = app.shared.next_hop_mac.load(std::memory_order_relaxed);
            if (old != packed) {
                app.shared.next_hop_mac.store(packed, std::memory_order_release);
                std::printf("ephemera: next hop %s is at %s\n",
                            app.config.outside.next_hop.to_string().c_str(),
                            mac.to_string().c_str());
                std::fflush(stdout);
            }
        }
    }
}

} // namespace

void install_signal_handlers() {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGHUP, on_hangup);
}

void run_control_loop(App& app) {
    while (g_signal == 0) {
        learn_next_hop(app);
        if (app.pool_alarms != nullptr) {
            app.pool_alarms->tick(app, unix_ms_now());
        }
        if (g_reload != 0) {
            g_reload = 0;
            // The same validation as at start; a refused file leaves the running config as is.
            const ChangeResult r = app.runtime->reload();
            std::printf("ephemera: SIGHUP: %s%s\n", r.ok ? "" : "refused: ", r.message.c_str());
            std::fflush(stdout);
        }
        rte_delay_us_sleep(10 * 1000);
    }
    std::printf("ephemera: signal %d, stopping\n", static_cast<int>(g_signal));
    std::fflush(stdout);
}

} // namespace ephemera
