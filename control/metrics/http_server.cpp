#include "http_server.hpp"

#include "exposition.hpp"

#include <civetweb.h>

#include <array>
#include <cstring>

namespace ephemera::metrics {

namespace {

// Two threads: Prometheus scrapes one request at a time, and a second lets a curl in while a
// scrape waits for the workers' port figures.
constexpr const char* kThreads = "2";
// A client that stops reading must not hold a thread for long.
constexpr const char* kTimeoutMs = "5000";

} // namespace

std::variant<std::unique_ptr<HttpServer>, std::string>
HttpServer::start(Ipv4Addr address, std::uint16_t port, Body body) {
    const std::string where = address.to_string() + ":" + std::to_string(port);
    std::unique_ptr<HttpServer> server(new HttpServer(std::move(body)));
    const char* options[] = {"listening_ports",    where.c_str(), "num_threads", kThreads,
                             "request_timeout_ms", kTimeoutMs,    nullptr};
    mg_callbacks callbacks{};
    mg_init_data init{};
    init.callbacks = &callbacks;
    init.user_data = server.get();
    init.configuration_options = options;
    std::array<char, 256> text{};
    unsigned code = 0;
    mg_error_data error{};
    error.code = &code;
    error.text = text.data();
    error.text_buffer_size = text.size();
    server->context_ = mg_start2(&init, &error);
    if (server->context_ == nullptr) {
        return "cannot listen on " + where + ": " +
               (text[0] != '\0' ? std::string(text.data()) : "civetweb refused to start");
    }
    // "/" matches every path: the handler answers 404 for all but /metrics itself.
    mg_set_request_handler(server->context_, "/", &HttpServer::handle, server.get());
    return server;
}

HttpServer::~HttpServer() {
    stop();
}

void HttpServer::stop() {
    if (context_ != nullptr) {
        mg_stop(context_);
        context_ = nullptr;
    }
}

int HttpServer::handle(mg_connection* conn, void* self) {
    const mg_request_info* request = mg_get_request_info(conn);
    const char* uri = request->local_uri != nullptr ? request->local_uri : "";
    if (std::strcmp(uri, "/metrics") != 0) {
        mg_send_http_error(conn, 404, "%s", "not found: ephemera serves /metrics only\n");
        return 404;
    }
    if (std::strcmp(request->request_method, "GET") != 0 &&
        std::strcmp(request->request_method, "HEAD") != 0) {
        mg_send_http_error(conn, 405, "%s", "GET /metrics\n");
        return 405;
    }
    const std::optional<std::string> body = static_cast<HttpServer*>(self)->body_();
    if (!body) {
        mg_send_http_error(conn, 503, "%s", "ephemera is stopping\n");
        return 503;
    }
    mg_send_http_ok(conn, std::string(kContentType).c_str(), static_cast<long long>(body->size()));
    if (std::strcmp(request->request_method, "GET") == 0) {
        mg_write(conn, body->data(), body->size());
    }
    return 200;
}

} // namespace ephemera::metrics
