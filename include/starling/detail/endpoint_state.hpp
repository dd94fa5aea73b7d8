// What an endpoint is made of at run time: its path, handler and callbacks (already adapted to one
// calling convention), options, and the registry of its open connections.
#pragma once

#include <functional>  // std::function for type-erased handlers
#include <memory>      // std::shared_ptr<logger>
#include <optional>    // std::optional<std::string> callback results
#include <string>      // std::string path

#include "starling/connection_registry.hpp"
#include "starling/logging.hpp"
#include "starling/options.hpp"
#include "starling/task.hpp"

namespace starling {

class websocket;

namespace detail {

using handler_function = std::function<task<>(websocket&)>;
/// on_connect / on_close after adaptation: the text to send, if any.
using text_callback = std::function<task<std::optional<std::string>>(websocket&)>;

struct endpoint_state {
    std::string path;
    handler_function handler;
    text_callback on_connect;
    text_callback on_close;
    websocket_options options;
    connection_registry registry;
    std::shared_ptr<const logger> log;

    void log_line(log_level level, std::string_view line) const {
        if (log && *log) (*log)(level, line);
    }
};

}  // namespace detail
}  // namespace starling
