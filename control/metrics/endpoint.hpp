// The /metrics endpoint over a running App: started once the App is built, closed before it
// goes. As with TelemetryRegistration, a scrape holds the gate shared while it reads the App;
// close() takes it exclusively and forgets the App, then stops the server (joining its
// threads), so no scrape outlives the App.
#pragma once

#include "http_server.hpp"

#include "ephemera/config.hpp"

#include <memory>
#include <shared_mutex>

namespace ephemera {

struct App;

class MetricsEndpoint {
public:
    // nullptr when [metrics] is off. A listener that cannot be opened throws std::runtime_error
    // naming metrics.listen and the address: a start-up error.
    static std::unique_ptr<MetricsEndpoint> start(App& app, const MetricsConfig& config);
    ~MetricsEndpoint() { close(); }
    MetricsEndpoint(const MetricsEndpoint&) = delete;
    MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

    // Waits for a scrape in progress; idempotent.
    void close();

private:
    explicit MetricsEndpoint(App& app) : app_(&app) {}
    std::optional<std::string> scrape();

    std::shared_mutex gate_;
    App* app_; // guarded by gate_
    std::unique_ptr<metrics::HttpServer> server_;
};

} // namespace ephemera
