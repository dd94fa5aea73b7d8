// Logging: every app has a sink that receives each record Starling reports, with its level, what
// happened (a short fixed event name), where (endpoint, connection id) and a message. The default
// writes warnings and errors to stderr as one line each; app.set_log_sink() routes records anywhere,
// app.set_log_level() sets the least level passed on, and app.set_logger() takes a plain
// (level, line) function. Nothing is logged per message, and a repeated warning or error is passed on
// at most a few times a second: the rest are counted and the count rides on the next one that passes.
#pragma once

#include <chrono>       // std::chrono::steady_clock rate windows
#include <cstddef>      // std::size_t
#include <cstdio>       // std::fwrite to stderr, without <iostream>'s static initialisation
#include <functional>   // std::function holding the user's sink
#include <mutex>        // std::mutex guarding the rate limiter
#include <string>       // std::string line buffer
#include <string_view>  // std::string_view fields
#include <utility>      // std::move
#include <vector>       // std::vector rate windows

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

/// One thing Starling reports. The views are valid only during the sink's call.
struct log_record {
    log_level level = log_level::info;
    /// What happened, a fixed name: "handler_threw", "on_close_threw", "page_threw", "accept_failed",
    /// "shutdown_incomplete", "tls_reloaded", "tls_reload_failed", "signal_action_threw".
    std::string_view event;
    std::string_view endpoint;       // the endpoint's path, when there is one
    std::string_view connection_id;  // the connection's id, when there is one
    std::string_view message;        // the whole line, for people
};

/// Receives every record at or above the app's log level. Called from worker threads: make it
/// thread-safe.
using log_sink = std::function<void(const log_record&)>;

/// The older, plain form: the level and the message line.
using logger = std::function<void(log_level, std::string_view)>;

/// The default: one line per message on stderr, warnings and errors only.
inline void log_to_stderr(log_level level, std::string_view message) {
    if (level < log_level::warning) return;
    std::string line = "starling ";
    line += to_string(level);
    line += ": ";
    line += message;
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
}
inline void log_to_stderr(const log_record& r) { log_to_stderr(r.level, r.message); }

namespace detail {

/// The app's sink, its level, and the rate limit on repeated warnings and errors.
class log_channel {
public:
    log_channel(log_sink sink, log_level least) : sink_(std::move(sink)), least_(least) {}

    bool enabled(log_level level) const noexcept { return sink_ && level >= least_; }

    /// Never throws: a sink that fails must not take a connection's end, or a shutdown, with it.
    void write(const log_record& r) const noexcept {
        try {
            pass_on(r);
        } catch (...) {
        }
    }

    void write(log_level level, std::string_view event, std::string_view endpoint, std::string_view connection_id,
               std::string_view message) const noexcept {
        write(log_record{level, event, endpoint, connection_id, message});
    }

    /// Records of one event passed on per window; the rest are counted.
    static constexpr std::size_t burst = 10;
    static constexpr std::chrono::seconds window{1};

private:
    void pass_on(const log_record& r) const {
        if (!enabled(r.level)) return;
        std::size_t suppressed = 0;
        if (r.level >= log_level::warning && !admit(r.event, suppressed)) return;
        if (suppressed == 0) return sink_(r);
        std::string message(r.message);
        message += " (" + std::to_string(suppressed) + " more like it suppressed)";
        log_record with_count = r;
        with_count.message = message;
        sink_(with_count);
    }

    struct rate {
        std::string event;
        std::chrono::steady_clock::time_point since;
        std::size_t passed = 0;
        std::size_t suppressed = 0;
    };

    /// True if a record of `event` may pass now; `suppressed` gets how many were held back before it.
    bool admit(std::string_view event, std::size_t& suppressed) const {
        const auto now = std::chrono::steady_clock::now();
        std::lock_guard lock(mutex_);
        rate* r = nullptr;
        for (rate& candidate : rates_)
            if (candidate.event == event) r = &candidate;
        if (r == nullptr) {
            rates_.push_back(rate{std::string(event), now, 0, 0});
            r = &rates_.back();
        }
        if (now - r->since >= window) {
            r->since = now;
            r->passed = 0;
        }
        if (r->passed >= burst) {
            ++r->suppressed;
            return false;
        }
        ++r->passed;
        suppressed = r->suppressed;
        r->suppressed = 0;
        return true;
    }

    log_sink sink_;
    log_level least_;
    mutable std::mutex mutex_;
    mutable std::vector<rate> rates_;  // one per event name: a handful
};

}  // namespace detail
}  // namespace starling
