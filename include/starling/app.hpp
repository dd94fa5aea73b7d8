// starling::app: register endpoints, then start the server.
#pragma once

#include <cstdint>    // std::uint16_t port
#include <memory>     // std::shared_ptr, std::unique_ptr
#include <stdexcept>  // std::invalid_argument, std::logic_error for set-up mistakes
#include <string>     // std::string paths
#include <utility>    // std::move

#include "starling/detail/callbacks.hpp"
#include "starling/detail/endpoint_state.hpp"
#include "starling/endpoint.hpp"
#include "starling/logging.hpp"
#include "starling/options.hpp"
#include "starling/server.hpp"

namespace starling {

class app {
public:
    app() = default;
    app(const app&) = delete;
    app& operator=(const app&) = delete;
    ~app() { stop(); }

    /// Registers a coroutine endpoint: `handler` is a coroutine taking `starling::websocket&`. Returns
    /// the endpoint, for on_connect / on_close / options. Throws std::invalid_argument if the path is
    /// not absolute or already taken.
    template <class Handler>
    endpoint websocket(std::string path, Handler handler) {
        auto state = add_endpoint(std::move(path));
        state->handler = detail::adapt_handler(std::move(handler));
        return endpoint(state);
    }

    /// Replaces the logger (stderr by default). Call before start().
    void set_logger(logger log) { log_ = std::make_shared<const logger>(std::move(log)); }

    /// Default limits for endpoints registered after this call.
    void set_websocket_options(const websocket_options& options) { default_options_ = options; }

    /// Serves on `port` until SIGINT, SIGTERM or stop(): blocks.
    void start(std::uint16_t port) {
        server_options options;
        options.port = port;
        start(options);
    }
    void start(const server_options& options) {
        listen(options);
        run();
    }

    /// start() in two steps: listen() binds (throwing if the address is taken) and returns the port,
    /// so a program can announce it; run() then serves until SIGINT, SIGTERM or stop().
    std::uint16_t listen(const server_options& options) { return make_server(options).listen(); }
    void run() {
        if (!server_) throw std::logic_error("starling: app.run() needs app.listen() first");
        server_->run(/*block=*/true);
    }

    /// Serves in background threads and returns the bound port at once (port 0 picks a free one).
    std::uint16_t start_in_background(const server_options& options) {
        const std::uint16_t bound = make_server(options).listen();
        server_->run(/*block=*/false);
        return bound;
    }
    std::uint16_t start_in_background(std::uint16_t port = 0) {
        server_options options;
        options.port = port;
        return start_in_background(options);
    }

    /// Graceful shutdown: closes every connection with 1001, waits for the close handshakes (up to
    /// server_options::shutdown_timeout), runs every on_close, and makes start() return.
    void stop() {
        if (server_) server_->stop();
    }

    /// The port the server listens on (useful after starting on port 0).
    std::uint16_t port() const noexcept { return server_ ? server_->port() : 0; }

private:
    std::shared_ptr<detail::endpoint_state> add_endpoint(std::string path) {
        if (server_) throw std::logic_error("starling: cannot add endpoint " + path + " after the app started");
        if (path.empty() || path.front() != '/')
            throw std::invalid_argument("starling: endpoint path must start with '/': \"" + path + "\"");
        if (routes_.contains(path))
            throw std::invalid_argument("starling: an endpoint is already registered at " + path);
        auto state = std::make_shared<detail::endpoint_state>();
        state->path = path;
        state->options = default_options_;
        state->log = log_;
        routes_.emplace(std::move(path), state);
        return state;
    }

    detail::server& make_server(const server_options& options) {
        if (server_) throw std::logic_error("starling: the app is already started");
        for (auto& [path, state] : routes_) state->log = log_;
        server_ = std::make_unique<detail::server>(routes_, options, log_);
        return *server_;
    }

    detail::route_table routes_;
    websocket_options default_options_;
    std::shared_ptr<const logger> log_ = std::make_shared<const logger>(log_to_stderr);
    std::unique_ptr<detail::server> server_;
};

}  // namespace starling
