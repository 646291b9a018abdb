// A small HTTP server for /metrics on civetweb's own threads (never a worker lcore): GET
// /metrics answers with what `body` returns, anything else is 404. Stopping joins civetweb's
// threads, so once stop() returns `body` is no longer called.
#pragma once

#include "ephemera/types.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

struct mg_context;
struct mg_connection;

namespace ephemera::metrics {

class HttpServer {
public:
    // The exposition text, or nothing while the process is stopping (then 503).
    using Body = std::function<std::optional<std::string>()>;

    // Listens on address:port; on failure, why (civetweb's words, with the address).
    static std::variant<std::unique_ptr<HttpServer>, std::string>
    start(Ipv4Addr address, std::uint16_t port, Body body);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Waits for requests in progress; idempotent.
    void stop();

private:
    explicit HttpServer(Body body) : body_(std::move(body)) {}
    static int handle(mg_connection* conn, void* self);

    Body body_;
    mg_context* context_ = nullptr;
};

} // namespace ephemera::metrics
