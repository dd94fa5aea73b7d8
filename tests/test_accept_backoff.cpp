// The accept loop's pause and log throttle after failed accepts (starling/runtime/accept_backoff.hpp):
// pauses double from 10 ms to at most a second and start over after a success; failures get at most
// one log line per 10 s, which counts the ones left out.
#include <starling/runtime/accept_backoff.hpp>

#include <doctest/doctest.h>

#include <chrono>    // durations and time points
#include <cstddef>   // std::size_t
#include <optional>  // std::optional reports

using starling::detail::accept_backoff;
using namespace std::chrono_literals;

TEST_CASE("accept backoff: pauses double from 10 ms up to a second") {
    accept_backoff backoff;
    CHECK(backoff.failed() == 10ms);
    CHECK(backoff.failed() == 20ms);
    CHECK(backoff.failed() == 40ms);
    CHECK(backoff.failed() == 80ms);
    CHECK(backoff.failed() == 160ms);
    CHECK(backoff.failed() == 320ms);
    CHECK(backoff.failed() == 640ms);
    CHECK(backoff.failed() == 1000ms);
    for (int i = 0; i < 100; ++i) CHECK(backoff.failed() == 1000ms);
}

TEST_CASE("accept backoff: a success starts the pauses over") {
    accept_backoff backoff;
    for (int i = 0; i < 20; ++i) backoff.failed();
    backoff.succeeded();
    CHECK(backoff.failed() == 10ms);
    CHECK(backoff.failed() == 20ms);
    backoff.succeeded();
    backoff.succeeded();
    CHECK(backoff.failed() == 10ms);
}

TEST_CASE("accept backoff: a second of failures costs a handful of retries, not a million") {
    accept_backoff backoff;
    std::chrono::milliseconds waited{0};
    int retries = 0;
    while (waited < 1s) {
        waited += backoff.failed();
        ++retries;
    }
    CHECK(retries <= 8);
}

TEST_CASE("accept backoff: the first failure is logged, then at most one line per 10 s") {
    accept_backoff backoff;
    const auto start = accept_backoff::clock::time_point{} + 1h;
    REQUIRE(backoff.report(start) == std::optional<std::size_t>(0));
    // A failure every millisecond for just under 10 s: none logged.
    for (int ms = 1; ms < 10000; ++ms) CHECK_FALSE(backoff.report(start + std::chrono::milliseconds(ms)));
    // At 10 s the next line says how many were left out.
    CHECK(backoff.report(start + 10s) == std::optional<std::size_t>(9999));
    CHECK_FALSE(backoff.report(start + 10s + 1ms));
    CHECK(backoff.report(start + 25s) == std::optional<std::size_t>(1));
    // After a quiet spell the first failure is logged at once, with nothing left out.
    CHECK(backoff.report(start + 1h) == std::optional<std::size_t>(0));
}

TEST_CASE("accept backoff: a success does not reset the log throttle") {
    // A shortage that comes and goes (accept, fail, accept, fail...) must not log every failure.
    accept_backoff backoff;
    const auto start = accept_backoff::clock::time_point{} + 1h;
    REQUIRE(backoff.report(start));
    backoff.succeeded();
    CHECK_FALSE(backoff.report(start + 1ms));
    backoff.succeeded();
    CHECK_FALSE(backoff.report(start + 2ms));
    CHECK(backoff.report(start + 10s) == std::optional<std::size_t>(2));
}
