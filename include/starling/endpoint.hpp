// The handle app.websocket() returns: attach on_connect / on_close, set per-endpoint options.
#pragma once

#include <cstddef>  // std::size_t
#include <memory>   // std::shared_ptr endpoint state
#include <initializer_list>  // subprotocol and origin lists
#include <stdexcept>         // std::invalid_argument for unusable lists
#include <string>            // std::string path
#include <utility>           // std::move
#include <vector>            // std::vector lists

#include "starling/api/callbacks.hpp"
#include "starling/runtime/endpoint_state.hpp"
#include "starling/http/headers.hpp"
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

    /// Runs before the upgrade, once per connection: declares what it reads (the request, typed
    /// headers, cookies, query and path parameters, dependencies), may be a coroutine, and returns a
    /// starling::admission<T>. A refusal (starling::refuse(401, "...")) answers the upgrade request
    /// with that status and body, and nothing else runs: no on_connect, no handler, no registration.
    /// An admission's T becomes the connection's state, which every callback can declare as
    /// starling::state<T> or read with ws.state<T>(). Like a handler, the hook runs on the worker of
    /// its connection, so connections on different workers run it at once: what it shares must be
    /// safe to use that way. Call before the app starts.
    template <class F>
    endpoint& authenticate(F hook) {
        detail::adapt_hook(std::move(hook), *state_);
        return *this;
    }

    /// What a client that offers subprotocols none of which is ours gets.
    enum class unknown_subprotocol { refuse, serve_without };

    /// The subprotocols this endpoint speaks, most preferred first. Of those the client offers, the
    /// first in this list is chosen and answered in Sec-WebSocket-Protocol (ws.subprotocol() reads it).
    /// A client offering none of them gets 400 naming these (or, with serve_without, is served with
    /// no subprotocol); a client offering none at all is served without one.
    endpoint& subprotocols(std::vector<std::string> supported, unknown_subprotocol policy = unknown_subprotocol::refuse) {
        for (const std::string& name : supported)
            if (!http::detail::is_token(name))
                throw std::invalid_argument("starling: a subprotocol name must be an HTTP token: \"" + name + "\"");
        if (supported.size() > 1000) throw std::invalid_argument("starling: too many subprotocols");
        state_->subprotocols = std::move(supported);
        state_->refuse_unknown_subprotocol = policy == unknown_subprotocol::refuse;
        return *this;
    }

    /// Browsers' origins this endpoint accepts, as exact origins ("https://example.com") or with a
    /// wildcard for subdomains ("https://*.example.com"); any other Origin gets 403 before the upgrade.
    /// Without a list (the default) every origin is accepted. A request with no Origin header (a
    /// program, not a browser page, which could send any Origin it likes) passes unless
    /// `allow_missing` is false.
    endpoint& allow_origins(std::vector<std::string> patterns, bool allow_missing = true) {
        state_->allowed_origins = std::move(patterns);
        state_->allow_missing_origin = allow_missing;
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
