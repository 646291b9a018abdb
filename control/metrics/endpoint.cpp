#include "endpoint.hpp"

#include "gather.hpp"

#include <mutex>
#include <stdexcept>

namespace ephemera {

std::unique_ptr<MetricsEndpoint> MetricsEndpoint::start(App& app, const MetricsConfig& config) {
    if (!config.enabled()) {
        return nullptr;
    }
    std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint(app));
    auto server = metrics::HttpServer::start(config.address, config.port,
                                             [e = endpoint.get()] { return e->scrape(); });
    if (auto* why = std::get_if<std::string>(&server)) {
        throw std::runtime_error("metrics.listen: " + *why);
    }
    endpoint->server_ = std::move(std::get<std::unique_ptr<metrics::HttpServer>>(server));
    return endpoint;
}

std::optional<std::string> MetricsEndpoint::scrape() {
    std::shared_lock lock(gate_);
    if (app_ == nullptr) {
        return std::nullopt;
    }
    return metrics::exposition(metrics::gather(*app_));
}

void MetricsEndpoint::close() {
    {
        std::unique_lock lock(gate_); // waits for a scrape in progress
        app_ = nullptr;
    }
    if (server_) {
        server_->stop();
    }
}

} // namespace ephemera
