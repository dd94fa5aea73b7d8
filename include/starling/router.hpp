// Routers: a path prefix with its own endpoints and its own dependency container, included into an
// app (or into another router, joining prefixes).
//
//     starling::router rooms("/rooms");
//     rooms.inject(room_directory{});
//     rooms.websocket("/ws", handler);          // served at /rooms/ws with rooms' dependencies
//     app.include_router(rooms);
#pragma once

#include <memory>     // std::shared_ptr router state
#include <stdexcept>  // std::invalid_argument
#include <string>     // std::string prefixes and paths
#include <utility>    // std::move
#include <vector>     // std::vector endpoints and children

#include "starling/api/dependencies.hpp"
#include "starling/http/path_template.hpp"
#include "starling/api/callbacks.hpp"
#include "starling/runtime/endpoint_state.hpp"
#include "starling/endpoint.hpp"

namespace starling {

namespace detail {

/// Joins path pieces with single slashes: ("/sub_router", "/nested/", "ws") -> "/sub_router/nested/ws".
inline std::string join_paths(std::string_view prefix, std::string_view path) {
    std::string joined(prefix);
    while (!joined.empty() && joined.back() == '/') joined.pop_back();
    while (!path.empty() && path.front() == '/') path.remove_prefix(1);
    joined += '/';
    joined += path;
    return joined;
}

struct router_state {
    std::string prefix;
    std::shared_ptr<starling::router_dependencies> dependencies = std::make_shared<starling::router_dependencies>();
    /// Endpoints with their paths relative to prefix (an included endpoint's state holds its full path).
    std::vector<std::pair<std::string, std::shared_ptr<endpoint_state>>> endpoints;
    std::vector<std::shared_ptr<router_state>> children;

    std::shared_ptr<endpoint_state> add_endpoint(std::string path) {
        if (path.empty() || path.front() != '/')
            throw std::invalid_argument("starling: endpoint path must start with '/': \"" + path + "\"");
        if (const std::string problem = http::path_template_problem(path); !problem.empty())
            throw std::invalid_argument("starling: " + problem);
        for (const auto& [existing, state] : endpoints)
            if (existing == path)
                throw std::invalid_argument("starling: an endpoint is already registered at " +
                                            join_paths(prefix, path));
        auto state = std::make_shared<endpoint_state>();
        state->path = join_paths(prefix, path);
        state->router_deps = dependencies;
        endpoints.emplace_back(std::move(path), state);
        return state;
    }
};

}  // namespace detail

class router {
public:
    explicit router(std::string prefix) : state_(std::make_shared<detail::router_state>()) {
        if (prefix.empty() || prefix.front() != '/')
            throw std::invalid_argument("starling: router prefix must start with '/': \"" + prefix + "\"");
        state_->prefix = std::move(prefix);
    }

    /// Registers a coroutine endpoint at prefix + path, with this router's dependencies.
    template <class Handler>
    endpoint websocket(std::string path, Handler handler) {
        auto state = state_->add_endpoint(std::move(path));
        detail::adapt_handler(std::move(handler), *state);
        return endpoint(state);
    }

    /// Adds a dependency to this router's container, found by type.
    template <class T>
    router& inject(T&& value) {
        state_->dependencies->add(std::forward<T>(value));
        return *this;
    }
    /// Adds a dependency found by name (and by type).
    template <class T>
    router& inject(std::string name, T&& value) {
        state_->dependencies->add(std::move(name), std::forward<T>(value));
        return *this;
    }

    /// Nests `child`: its endpoints are served under this router's prefix followed by its own.
    router& include_router(const router& child) {
        state_->children.push_back(child.state_);
        return *this;
    }

    router_dependencies& dependencies() noexcept { return *state_->dependencies; }
    const std::string& prefix() const noexcept { return state_->prefix; }

    /// For the app: what this router holds.
    const std::shared_ptr<detail::router_state>& state() const noexcept { return state_; }

private:
    std::shared_ptr<detail::router_state> state_;
};

}  // namespace starling
