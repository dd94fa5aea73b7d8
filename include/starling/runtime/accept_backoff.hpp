// What the accept loop does when accepting fails, sans I/O: how long to pause before the next try,
// and which failures to log. A failure that repeats (out of file descriptors, say: the waiting
// connection stays in the backlog and every retry fails at once) must cost neither a spinning core
// nor a flood of log lines, and the server must resume at full speed as soon as accepting works again.
#pragma once

#include <algorithm>  // std::min
#include <chrono>     // std::chrono durations and time points
#include <cstddef>    // std::size_t
#include <optional>   // std::optional report

namespace starling::detail {

class accept_backoff {
public:
    using clock = std::chrono::steady_clock;

    /// The first pause is short, so a passing shortage costs a client little; each failure in a row
    /// doubles it up to a second, so a lasting one costs the server next to nothing.
    static constexpr std::chrono::milliseconds first_pause{10};
    static constexpr std::chrono::milliseconds longest_pause{1000};
    /// At most one log line per this interval.
    static constexpr std::chrono::seconds report_interval{10};

    /// An accept failed: how long to pause before the next one.
    std::chrono::milliseconds failed() noexcept {
        const std::chrono::milliseconds pause = pause_;
        pause_ = std::min(pause_ * 2, longest_pause);
        return pause;
    }

    /// An accept succeeded: the next failure pauses briefly again.
    void succeeded() noexcept { pause_ = first_pause; }

    /// Whether the failure that happened at `now` gets a log line. If it does, the result is how many
    /// failures went unlogged since the last line; if not, this one is counted among them.
    std::optional<std::size_t> report(clock::time_point now) noexcept {
        if (reported_ && now - last_report_ < report_interval) {
            ++unreported_;
            return std::nullopt;
        }
        reported_ = true;
        last_report_ = now;
        const std::size_t skipped = unreported_;
        unreported_ = 0;
        return skipped;
    }

private:
    std::chrono::milliseconds pause_ = first_pause;
    bool reported_ = false;
    clock::time_point last_report_{};
    std::size_t unreported_ = 0;
};

}  // namespace starling::detail
