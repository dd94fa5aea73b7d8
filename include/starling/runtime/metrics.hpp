// Metrics: the per-worker counter blocks of each endpoint (session/counters.hpp), the server's
// handshake refusals, the backplane's link, a snapshot that sums them, and that snapshot in the
// Prometheus text exposition format (version 0.0.4).
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/io_context.hpp>              // asio::io_context: whose block
#include <algorithm>                        // std::max of high-water marks
#include <array>                            // std::array per-status counts
#include <atomic>                           // std::atomic refusal counts
#include <cstddef>                          // std::size_t
#include <cstdint>                          // std::uint64_t
#include <cstdio>                           // std::snprintf numbers
#include <memory>                           // std::unique_ptr blocks
#include <mutex>                            // std::mutex guarding the list of blocks
#include <optional>                         // std::optional backplane: only with one
#include <string>                           // std::string exposition text
#include <string_view>                      // std::string_view names
#include <vector>                           // std::vector blocks and endpoints

#include "starling/runtime/backplane.hpp"
#include "starling/session/counters.hpp"

namespace starling {

/// What app.metrics() reports about one endpoint: the sums over its workers.
struct endpoint_metrics_snapshot {
    std::string endpoint;
    std::int64_t connections_open = 0;
    std::uint64_t connections_opened = 0;
    std::array<std::uint64_t, detail::close_class_count> connections_closed{};  // by close class
    std::uint64_t messages_in = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t messages_out = 0;
    std::uint64_t bytes_out = 0;
    std::uint64_t deliveries = 0;
    std::uint64_t slow_consumer_closes = 0;
    std::uint64_t slow_consumer_drops = 0;
    std::int64_t queued_bytes = 0;
    std::int64_t queued_bytes_high_water = 0;  // the highest of one worker's
    std::uint64_t pings_sent = 0;
    std::array<std::uint64_t, detail::rtt_histogram::bounds.size() + 1> pong_rtt_buckets{};  // not cumulative
    std::uint64_t pong_rtt_count = 0;
    double pong_rtt_sum_seconds = 0;
    std::uint64_t auth_refusals = 0;
    std::uint64_t rate_limited_drops = 0;
    std::uint64_t rate_limited_closes = 0;
};

/// HTTP statuses a refused handshake is counted under; anything else is "other".
inline constexpr std::array<int, 10> refusal_statuses{400, 401, 403, 404, 405, 426, 429, 431, 500, 503};

struct metrics_snapshot {
    std::vector<endpoint_metrics_snapshot> endpoints;
    /// Refused handshakes by status (refusal_statuses, then one for any other status).
    std::array<std::uint64_t, refusal_statuses.size() + 1> handshakes_refused{};
    /// The backplane's link and counts, when the app has one (app.use_backplane).
    std::optional<backplane_stats> backplane;

    /// The Prometheus text exposition format, version 0.0.4.
    std::string to_prometheus() const;
};

namespace detail {

/// One endpoint's counters, one block per worker its connections live on.
class endpoint_metrics {
public:
    /// The block of the worker that runs `context`, made on first use. Called once per connection.
    endpoint_counters& for_worker(asio::io_context& context) {
        std::lock_guard lock(mutex_);
        for (const auto& b : blocks_)
            if (b->context == &context) return b->counters;
        blocks_.push_back(std::make_unique<block>(&context));
        return blocks_.back()->counters;
    }

    endpoint_metrics_snapshot snapshot(std::string_view endpoint) const {
        endpoint_metrics_snapshot s;
        s.endpoint = std::string(endpoint);
        std::lock_guard lock(mutex_);
        for (const auto& b : blocks_) {
            const endpoint_counters& c = b->counters;
            s.connections_open += c.open.value();
            s.connections_opened += c.opened.value();
            for (std::size_t i = 0; i < c.closed.size(); ++i) s.connections_closed[i] += c.closed[i].value();
            s.messages_in += c.messages_in.value();
            s.bytes_in += c.bytes_in.value();
            s.messages_out += c.messages_out.value();
            s.bytes_out += c.bytes_out.value();
            s.deliveries += c.deliveries.value();
            s.slow_consumer_closes += c.slow_consumer_closes.value();
            s.slow_consumer_drops += c.slow_consumer_drops.value();
            s.queued_bytes += c.queued_bytes.value();
            s.queued_bytes_high_water = std::max(s.queued_bytes_high_water, c.queued_bytes_high_water.value());
            s.pings_sent += c.pings_sent.value();
            for (std::size_t i = 0; i < c.pong_rtt.buckets.size(); ++i) s.pong_rtt_buckets[i] += c.pong_rtt.buckets[i].value();
            s.pong_rtt_count += c.pong_rtt.count.value();
            s.pong_rtt_sum_seconds += static_cast<double>(c.pong_rtt.sum_microseconds.value()) / 1e6;
            s.auth_refusals += c.auth_refusals.value();
            s.rate_limited_drops += c.rate_limited_drops.value();
            s.rate_limited_closes += c.rate_limited_closes.value();
        }
        return s;
    }

private:
    struct block {
        explicit block(asio::io_context* c) : context(c) {}
        asio::io_context* context;
        endpoint_counters counters;
    };

    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<block>> blocks_;  // never removed: connections point into them
};

/// Refused handshakes, server-wide (a refused request may match no endpoint). Not on any per-message
/// path, so one shared counter per status is enough.
class handshake_refusals {
public:
    void count(int status) noexcept {
        std::size_t i = 0;
        while (i < refusal_statuses.size() && refusal_statuses[i] != status) ++i;
        counts_[i].fetch_add(1, std::memory_order_relaxed);
    }
    void snapshot(metrics_snapshot& s) const noexcept {
        for (std::size_t i = 0; i < counts_.size(); ++i) s.handshakes_refused[i] = counts_[i].load(std::memory_order_relaxed);
    }

private:
    std::array<std::atomic<std::uint64_t>, refusal_statuses.size() + 1> counts_{};
};

/// A label value as the exposition format wants it: backslash, quote and newline escaped.
inline void append_label_value(std::string& out, std::string_view value) {
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
}

inline void append_number(std::string& out, double v) {
    char buffer[32];
    const int n = std::snprintf(buffer, sizeof buffer, "%.15g", v);  // 0.025, not 0.025000000000000001
    out.append(buffer, static_cast<std::size_t>(n));
}

}  // namespace detail

inline std::string metrics_snapshot::to_prometheus() const {
    std::string out;
    auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
        out += "# HELP ";
        out += name;
        out += ' ';
        out += help;
        out += "\n# TYPE ";
        out += name;
        out += ' ';
        out += type;
        out += '\n';
    };
    auto sample = [&](std::string_view name, const endpoint_metrics_snapshot& e, std::string_view extra_label,
                      std::string_view extra_value, double value) {
        out += name;
        out += "{endpoint=\"";
        detail::append_label_value(out, e.endpoint);
        out += '"';
        if (!extra_label.empty()) {
            out += ',';
            out += extra_label;
            out += "=\"";
            detail::append_label_value(out, extra_value);
            out += '"';
        }
        out += "} ";
        detail::append_number(out, value);
        out += '\n';
    };
    auto per_endpoint = [&](std::string_view name, std::string_view type, std::string_view help, auto field) {
        family(name, type, help);
        for (const auto& e : endpoints) sample(name, e, {}, {}, static_cast<double>(field(e)));
    };

    per_endpoint("starling_connections_open", "gauge", "Open WebSocket connections.",
                 [](const auto& e) { return e.connections_open; });
    per_endpoint("starling_connections_opened_total", "counter", "WebSocket connections upgraded.",
                 [](const auto& e) { return e.connections_opened; });
    family("starling_connections_closed_total", "counter", "WebSocket connections ended, by close code class.");
    for (const auto& e : endpoints)
        for (std::size_t i = 0; i < detail::close_class_count; ++i)
            sample("starling_connections_closed_total", e, "code_class", detail::to_label(static_cast<detail::close_class>(i)),
                   static_cast<double>(e.connections_closed[i]));
    per_endpoint("starling_messages_received_total", "counter", "Messages received from clients.",
                 [](const auto& e) { return e.messages_in; });
    per_endpoint("starling_received_bytes_total", "counter", "Payload bytes of messages received.",
                 [](const auto& e) { return e.bytes_in; });
    per_endpoint("starling_messages_sent_total", "counter", "Text and binary messages queued for clients.",
                 [](const auto& e) { return e.messages_out; });
    per_endpoint("starling_sent_bytes_total", "counter", "Payload bytes of messages queued for clients.",
                 [](const auto& e) { return e.bytes_out; });
    per_endpoint("starling_deliveries_total", "counter", "Messages from broadcast, publish or send_to queued for a receiver.",
                 [](const auto& e) { return e.deliveries; });
    per_endpoint("starling_slow_consumer_closes_total", "counter", "Receivers closed for falling behind (slow_consumer close).",
                 [](const auto& e) { return e.slow_consumer_closes; });
    per_endpoint("starling_slow_consumer_drops_total", "counter", "Messages skipped for receivers falling behind (slow_consumer drop).",
                 [](const auto& e) { return e.slow_consumer_drops; });
    per_endpoint("starling_queued_bytes", "gauge", "Bytes of memory the outbound queues hold.",
                 [](const auto& e) { return e.queued_bytes; });
    per_endpoint("starling_queued_bytes_high_water", "gauge", "The most bytes one worker's outbound queues held at once.",
                 [](const auto& e) { return e.queued_bytes_high_water; });
    per_endpoint("starling_pings_sent_total", "counter", "Pings sent to idle connections.",
                 [](const auto& e) { return e.pings_sent; });
    per_endpoint("starling_auth_refusals_total", "counter", "Upgrades the authentication hook refused.",
                 [](const auto& e) { return e.auth_refusals; });
    per_endpoint("starling_rate_limited_messages_dropped_total", "counter", "Messages over the rate limit, dropped.",
                 [](const auto& e) { return e.rate_limited_drops; });
    per_endpoint("starling_rate_limit_closes_total", "counter", "Connections closed for going over the rate limit.",
                 [](const auto& e) { return e.rate_limited_closes; });

    family("starling_pong_rtt_seconds", "histogram", "Round trip of pings answered by a pong.");
    for (const auto& e : endpoints) {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < e.pong_rtt_buckets.size(); ++i) {
            cumulative += e.pong_rtt_buckets[i];
            std::string le = "+Inf";
            if (i < detail::rtt_histogram::bounds.size()) {
                le.clear();
                detail::append_number(le, detail::rtt_histogram::bounds[i]);
            }
            sample("starling_pong_rtt_seconds_bucket", e, "le", le, static_cast<double>(cumulative));
        }
        sample("starling_pong_rtt_seconds_sum", e, {}, {}, e.pong_rtt_sum_seconds);
        sample("starling_pong_rtt_seconds_count", e, {}, {}, static_cast<double>(e.pong_rtt_count));
    }

    family("starling_handshakes_refused_total", "counter", "Upgrade requests answered with an HTTP error, by status.");
    for (std::size_t i = 0; i < handshakes_refused.size(); ++i) {
        out += "starling_handshakes_refused_total{status=\"";
        out += i < refusal_statuses.size() ? std::to_string(refusal_statuses[i]) : std::string("other");
        out += "\"} ";
        out += std::to_string(handshakes_refused[i]);
        out += '\n';
    }

    if (backplane) {
        auto node = [&](std::string_view name, std::string_view type, std::string_view help, std::uint64_t value) {
            family(name, type, help);
            out += name;
            out += ' ';
            out += std::to_string(value);
            out += '\n';
        };
        node("starling_backplane_connected", "gauge", "1 while the link to the backplane is up, else 0.",
             backplane->connected ? 1 : 0);
        node("starling_backplane_published_total", "counter", "Messages handed to the backplane.", backplane->published);
        node("starling_backplane_received_total", "counter", "Messages that arrived from the backplane.",
             backplane->received);
        node("starling_backplane_dropped_total", "counter", "Messages lost because the link was down.",
             backplane->dropped);
        node("starling_backplane_reconnects_total", "counter", "Links to the backplane made again after losing one.",
             backplane->reconnects);
    }
    return out;
}

}  // namespace starling
