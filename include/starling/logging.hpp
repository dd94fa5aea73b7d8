// The logging hook: every app has a logger, stderr by default, replaceable with app.set_logger().
#pragma once

#include <cstdio>       // std::fwrite to stderr, without <iostream>'s static initialisation
#include <functional>   // std::function holding the user's logger
#include <string>       // std::string line buffer
#include <string_view>  // std::string_view messages

namespace starling {

enum class log_level { debug, info, warning, error };

constexpr std::string_view to_string(log_level level) noexcept {
    switch (level) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warning: return "warning";
    case log_level::error: return "error";
    }
    return "unknown";
}

/// Receives every line Starling logs. Called from worker threads: make it thread-safe.
using logger = std::function<void(log_level, std::string_view)>;

/// The default logger: one line per message on stderr, warnings and errors only.
inline void log_to_stderr(log_level level, std::string_view message) {
    if (level < log_level::warning) return;
    std::string line = "starling ";
    line += to_string(level);
    line += ": ";
    line += message;
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace starling
