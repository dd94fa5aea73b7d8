#include <starling/logging.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

// The log channel: the level filter, structured fields passed through, and repeated warnings and
// errors held to a few per second with the count of the rest carried on the next one that passes.

using starling::log_level;
using starling::log_record;
using starling::detail::log_channel;

namespace {

struct seen {
    log_level level;
    std::string event, endpoint, connection_id, message;
};

}  // namespace

TEST_CASE("records below the level are not passed on; fields arrive as given") {
    std::vector<seen> got;
    const log_channel channel([&](const log_record& r) {
        got.push_back({r.level, std::string(r.event), std::string(r.endpoint), std::string(r.connection_id), std::string(r.message)});
    }, log_level::info);
    channel.write(log_level::debug, "noise", "/chat", "id-1", "not passed");
    channel.write(log_level::error, "handler_threw", "/chat", "id-2", "handler for /chat threw: boom");
    REQUIRE(got.size() == 1);
    CHECK(got[0].level == log_level::error);
    CHECK(got[0].event == "handler_threw");
    CHECK(got[0].endpoint == "/chat");
    CHECK(got[0].connection_id == "id-2");
    CHECK(got[0].message == "handler for /chat threw: boom");
}

TEST_CASE("a repeated error passes a few times per window; the next one carries the count of the rest") {
    std::vector<std::string> got;
    const log_channel channel([&](const log_record& r) { got.emplace_back(r.message); }, log_level::info);
    for (int i = 0; i < 1000; ++i) channel.write(log_level::error, "handler_threw", "/x", "", "boom");
    CHECK(got.size() == log_channel::burst);
    // Another event has its own allowance.
    channel.write(log_level::error, "on_close_threw", "/x", "", "other");
    CHECK(got.size() == log_channel::burst + 1);
    CHECK(got.back() == "other");
}

TEST_CASE("info records are never rate-limited") {
    int count = 0;
    const log_channel channel([&](const log_record&) { ++count; }, log_level::debug);
    for (int i = 0; i < 100; ++i) channel.write(log_level::info, "started", "", "", "hello");
    CHECK(count == 100);
}
