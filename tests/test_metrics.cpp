#include <starling/runtime/metrics.hpp>

#include <asio/io_context.hpp>
#include <doctest/doctest.h>

#include <string>

// Counter blocks per worker summed into a snapshot, and the snapshot in the Prometheus text format.

using starling::detail::classify_close;
using starling::detail::close_class;
using starling::detail::endpoint_metrics;

TEST_CASE("close codes fall into their classes") {
    CHECK(classify_close(1000) == close_class::normal);
    CHECK(classify_close(1001) == close_class::going_away);
    CHECK(classify_close(1002) == close_class::protocol_error);
    CHECK(classify_close(1007) == close_class::protocol_error);
    CHECK(classify_close(1008) == close_class::policy);
    CHECK(classify_close(1009) == close_class::too_big);
    CHECK(classify_close(1011) == close_class::server_error);
    CHECK(classify_close(1006) == close_class::abnormal);
    CHECK(classify_close(4000) == close_class::other);
}

TEST_CASE("each worker has its own block, and a snapshot sums them") {
    asio::io_context a(1), b(1);
    endpoint_metrics metrics;
    auto& on_a = metrics.for_worker(a);
    auto& on_b = metrics.for_worker(b);
    CHECK(&on_a != &on_b);
    CHECK(&metrics.for_worker(a) == &on_a);
    on_a.messages_in.add(3);
    on_b.messages_in.add(4);
    on_a.open.add(2);
    on_b.open.add(1);
    on_a.queued_bytes_high_water.set(100);
    on_b.queued_bytes_high_water.set(250);
    on_a.pong_rtt.observe(std::chrono::microseconds(800));  // under 1 ms
    on_b.pong_rtt.observe(std::chrono::milliseconds(30));   // under 50 ms
    const auto s = metrics.snapshot("/room");
    CHECK(s.endpoint == "/room");
    CHECK(s.messages_in == 7);
    CHECK(s.connections_open == 3);
    CHECK(s.queued_bytes_high_water == 250);  // the highest one worker saw, not a sum
    CHECK(s.pong_rtt_count == 2);
    CHECK(s.pong_rtt_buckets[0] == 1);
    CHECK(s.pong_rtt_buckets[4] == 1);
}

TEST_CASE("the exposition: types, labels escaped, cumulative histogram buckets") {
    starling::metrics_snapshot s;
    starling::endpoint_metrics_snapshot e;
    e.endpoint = "/a\"b";
    e.connections_open = 2;
    e.messages_in = 5;
    e.connections_closed[static_cast<std::size_t>(close_class::abnormal)] = 1;
    e.pong_rtt_buckets[0] = 1;
    e.pong_rtt_buckets[3] = 2;
    e.pong_rtt_count = 3;
    e.auth_refusals = 6;
    e.rate_limited_drops = 7;
    e.rate_limited_closes = 8;
    s.endpoints.push_back(e);
    s.handshakes_refused[1] = 9;  // 401
    s.handshakes_refused[3] = 4;  // 404
    const std::string text = s.to_prometheus();
    CHECK(text.find("# TYPE starling_connections_open gauge\n") != std::string::npos);
    CHECK(text.find("starling_connections_open{endpoint=\"/a\\\"b\"} 2\n") != std::string::npos);
    CHECK(text.find("starling_messages_received_total{endpoint=\"/a\\\"b\"} 5\n") != std::string::npos);
    CHECK(text.find("starling_connections_closed_total{endpoint=\"/a\\\"b\",code_class=\"abnormal\"} 1\n") != std::string::npos);
    CHECK(text.find("starling_pong_rtt_seconds_bucket{endpoint=\"/a\\\"b\",le=\"0.001\"} 1\n") != std::string::npos);
    CHECK(text.find("starling_pong_rtt_seconds_bucket{endpoint=\"/a\\\"b\",le=\"0.025\"} 3\n") != std::string::npos);
    CHECK(text.find("starling_pong_rtt_seconds_bucket{endpoint=\"/a\\\"b\",le=\"+Inf\"} 3\n") != std::string::npos);
    CHECK(text.find("starling_handshakes_refused_total{status=\"404\"} 4\n") != std::string::npos);
    CHECK(text.find("starling_handshakes_refused_total{status=\"401\"} 9\n") != std::string::npos);
    CHECK(text.find("starling_auth_refusals_total{endpoint=\"/a\\\"b\"} 6\n") != std::string::npos);
    CHECK(text.find("starling_rate_limited_messages_dropped_total{endpoint=\"/a\\\"b\"} 7\n") != std::string::npos);
    CHECK(text.find("starling_rate_limit_closes_total{endpoint=\"/a\\\"b\"} 8\n") != std::string::npos);
    CHECK(text.back() == '\n');
}

TEST_CASE("the backplane's families appear only with a backplane") {
    starling::metrics_snapshot s;
    CHECK(s.to_prometheus().find("starling_backplane") == std::string::npos);
    s.backplane = starling::backplane_stats{.connected = false, .published = 7, .received = 3, .dropped = 2, .reconnects = 1};
    const std::string text = s.to_prometheus();
    CHECK(text.find("# TYPE starling_backplane_connected gauge\nstarling_backplane_connected 0\n") != std::string::npos);
    CHECK(text.find("# TYPE starling_backplane_dropped_total counter\nstarling_backplane_dropped_total 2\n") != std::string::npos);
    CHECK(text.find("starling_backplane_published_total 7\n") != std::string::npos);
    CHECK(text.find("starling_backplane_received_total 3\n") != std::string::npos);
    CHECK(text.find("starling_backplane_reconnects_total 1\n") != std::string::npos);
}
