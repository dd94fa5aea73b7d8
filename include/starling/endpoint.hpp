// The handle app.websocket() returns: attach on_connect / on_close, set per-endpoint options.
#pragma once

#include <cstddef>  // std::size_t
#include <memory>   // std::shared_ptr endpoint state
#include <string>   // std::string path
#include <utility>  // std::move

#include "starling/api/callbacks.hpp"
#include "starling/runtime/endpoint_state.hpp"
#include "starling/options.hpp"

namespace starling {

class endpoint {
public:
    explicit endpoint(std::shared_ptr<detail::endpoint_state> state) : state_(std::move(state)) {}

    /// Runs when a client connects, before the handler; its returned text is the client's first
    /// message. A plain function or a coroutine; may return text, an optional, or nothing.
    template <class F>
    endpoint& on_connect(F callback) {
        detail::adapt_text_callback(std::move(callback), state_->on_connect, state_->on_connect_checks);
        return *this;
    }

    /// Runs exactly once when the connection ends, however it ends. Its returned text is sent as the
    /// final message when the server is the side that closes.
    template <class F>
    endpoint& on_close(F callback) {
        detail::adapt_text_callback(std::move(callback), state_->on_close, state_->on_close_checks);
        return *this;
    }

    /// This endpoint's limits (message size, queues, timeouts).
    endpoint& options(const websocket_options& options) {
        state_->options = options;
        state_->options_set = true;
        return *this;
    }
    const websocket_options& options() const noexcept { return state_->options; }

    const std::string& path() const noexcept { return state_->path; }

    /// With a backplane (app.use_backplane), this endpoint's broadcasts and send_to reach the
    /// endpoint in every process; `false` keeps them to this process. Topics are the app's and cross
    /// processes either way. Call before the app starts.
    endpoint& across_processes(bool shared) {
        state_->across_processes = shared;
        return *this;
    }

    /// Open connections right now.
    std::size_t connection_count() const { return state_->registry.size(); }

private:
    std::shared_ptr<detail::endpoint_state> state_;
};

}  // namespace starling
