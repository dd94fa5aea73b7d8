// What an endpoint is made of at run time: its path, handler and callbacks (already adapted to one
// calling convention), options, the registry of its open connections, and the app's topics.
#pragma once

#include <functional>  // std::function for type-erased handlers
#include <memory>      // std::shared_ptr<log_channel>
#include <optional>    // std::optional<std::string> callback results
#include <string>      // std::string path

#include "starling/runtime/connection_registry.hpp"
#include "starling/runtime/metrics.hpp"
#include "starling/runtime/pubsub.hpp"
#include "starling/session/connection_base.hpp"
#include "starling/api/admission.hpp"
#include "starling/api/connection_state.hpp"
#include "starling/api/dependencies.hpp"
#include "starling/api/signature.hpp"
#include "starling/logging.hpp"
#include "starling/options.hpp"
#include "starling/task.hpp"

namespace starling {

class websocket;

namespace detail {

using handler_function = std::function<task<>(websocket&)>;
/// on_connect / on_close after adaptation: the text to send, if any.
using text_callback = std::function<task<std::optional<std::string>>(websocket&)>;

/// What an authentication hook decided: refused, or admitted with the state its connection starts with.
struct hook_outcome {
    std::optional<refusal> refused;
    state_slot state;
};
/// The authentication hook after adaptation, called with the upgrade request's context.
using hook_function = std::function<task<hook_outcome>(const call_context&)>;

struct endpoint_state {
    std::string path;
    handler_function handler;
    text_callback on_connect;
    text_callback on_close;
    signature_checks handler_checks;
    signature_checks on_connect_checks;
    signature_checks on_close_checks;
    /// Runs before the upgrade; may refuse it or give the connection its state. None by default.
    hook_function hook;
    signature_checks hook_checks;
    /// The endpoint's subprotocols in order of preference (none: no Sec-WebSocket-Protocol answer).
    std::vector<std::string> subprotocols;
    /// A client that offers subprotocols, none of them ours: refused with 400 (true), or served
    /// without one.
    bool refuse_unknown_subprotocol = true;
    /// Origin patterns accepted (http/origin.hpp); empty accepts every origin.
    std::vector<std::string> allowed_origins;
    /// With an allow-list: whether a request without an Origin header (not from a browser) passes.
    bool allow_missing_origin = true;
    websocket_options options;
    bool options_set = false;  // set through endpoint.options(); otherwise the app's defaults apply
    connection_registry<connection_base> registry;
    endpoint_metrics metrics;  // its connections' counters, one block per worker
    std::shared_ptr<const log_channel> log;
    std::shared_ptr<global_dependencies> globals;
    /// The container of the router that registered this endpoint (the app's own for app.websocket).
    std::shared_ptr<starling::router_dependencies> router_deps;
    /// The app's topics and backplane, shared by all its endpoints (the app sets its own when it
    /// starts; this one serves an endpoint used without an app).
    std::shared_ptr<pubsub> hub = std::make_shared<pubsub>();
    /// With the app's backplane: whether this endpoint's broadcasts and send_to reach other processes.
    bool across_processes = true;

    /// Resolves every typed request parameter the handler and callbacks declare; the first problem's
    /// message, or nothing. Run before the upgrade.
    std::optional<std::string> check_request(const request_values& values) const {
        for (const signature_checks* checks : {&handler_checks, &on_connect_checks, &on_close_checks})
            if (checks->check_request)
                if (auto problem = checks->check_request(values)) return problem;
        return std::nullopt;
    }

    void log_line(log_level level, std::string_view event, std::string_view connection_id, std::string_view line) const noexcept {
        if (log) log->write(level, event, path, connection_id, line);
    }
};

}  // namespace detail
}  // namespace starling
