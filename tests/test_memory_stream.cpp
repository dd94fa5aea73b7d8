#include <starling/session/memory_stream.hpp>

#include <asio/io_context.hpp>
#include <doctest/doctest.h>

#include <array>
#include <string>

// The in-memory stream behaves as a TCP socket does where a connection can tell: bounded in flight,
// an end of stream after shutdown, failures after close.

using starling::detail::memory_stream;

namespace {

std::size_t write_text(memory_stream& s, std::string_view text, std::error_code& ec) {
    const asio::const_buffer b(text.data(), text.size());
    return s.write_some(std::span<const asio::const_buffer>(&b, 1), ec);
}

}  // namespace

TEST_CASE("bytes written at one end are read at the other, up to the capacity") {
    asio::io_context context;
    auto [a, b] = memory_stream::make_pair(context.get_executor(), 8);
    std::error_code ec;
    CHECK(write_text(a, "hello, world", ec) == 8);  // only the capacity is taken
    CHECK(!ec);
    CHECK(write_text(a, "more", ec) == 0);
    CHECK(ec == asio::error::would_block);

    std::array<char, 5> in{};
    CHECK(b.read_some(asio::buffer(in), ec) == 5);
    CHECK(std::string(in.data(), 5) == "hello");
    CHECK(b.take_all() == ", w");
    CHECK(b.read_some(asio::buffer(in), ec) == 0);
    CHECK(ec == asio::error::would_block);
}

TEST_CASE("a waiting read completes when bytes arrive, and a waiting writer when room is made") {
    asio::io_context context;
    auto [a, b] = memory_stream::make_pair(context.get_executor(), 4);
    std::array<char, 16> in{};
    std::size_t got = 0;
    b.async_read_some(asio::buffer(in), [&](std::error_code ec, std::size_t n) {
        CHECK(!ec);
        got = n;
    });
    context.poll();
    CHECK(got == 0);
    a.write_all("abc");
    context.poll();
    CHECK(got == 3);

    std::error_code ec;
    write_text(a, "wxyz", ec);  // fills it
    bool writable = false;
    a.async_wait_writable([&](std::error_code wait_ec) { writable = !wait_ec; });
    context.restart();
    context.poll();
    CHECK(!writable);
    b.take_all();
    context.restart();
    context.poll();
    CHECK(writable);
}

TEST_CASE("shutdown gives the peer an end of stream after the data; close fails both sides' operations") {
    asio::io_context context;
    auto [a, b] = memory_stream::make_pair(context.get_executor());
    std::error_code ec;
    write_text(a, "last", ec);
    a.shutdown_send(ec);
    std::array<char, 16> in{};
    CHECK(b.read_some(asio::buffer(in), ec) == 4);
    b.read_some(asio::buffer(in), ec);
    CHECK(ec == asio::error::eof);

    std::error_code pending;
    bool done = false;
    a.async_read_some(asio::buffer(in), [&](std::error_code e, std::size_t) {
        pending = e;
        done = true;
    });
    context.poll();
    CHECK(!done);
    a.close();
    context.restart();
    context.poll();
    CHECK(done);
    CHECK(pending == asio::error::operation_aborted);
    CHECK(b.peer_closed());
    write_text(b, "anyone?", ec);
    CHECK(ec == asio::error::broken_pipe);
}
