// The workers' longest pauses (dataplane/pause_meter.hpp) in telemetry: per worker in
// /ephemera/worker, the maximum over workers in /ephemera/stats, and /ephemera/pauses, which
// lists them per worker and restarts their windows ("reset").
#pragma once

#include "app.hpp"

struct rte_tel_data;

namespace ephemera {

// longest_iteration_us, longest_plan_iteration_us, plans_taken, pause_window_ms of one worker.
void add_pause_gauges(rte_tel_data* d, const Worker& worker);
// The longest of each over all workers (plans_taken summed, the shortest window).
void add_pause_totals(rte_tel_data* d, const App& app);

// /ephemera/pauses: no parameters lists each worker's figures column-wise ("worker",
// "longest_iteration_us", ... as arrays in worker order); "reset" restarts every worker's
// window and answers once all have (result ok), or says which did not within `timeout`.
int pauses_command(App& app, const char* params, rte_tel_data* d);

} // namespace ephemera
