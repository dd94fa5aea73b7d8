#include <starling/session/connection.hpp>

#include <starling/session/memory_stream.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

// The engine of one connection driven through an in-memory stream: the test is the client, writing
// frames into its end and reading what the server wrote, with no socket and no thread.

using namespace std::chrono_literals;
using starling::close_reason;
using starling::message;
using starling::opcode;
using starling::task;
using starling::websocket_options;
using starling::detail::connection;
using starling::detail::memory_stream;

namespace {

const starling::masking_key key{0x11, 0x22, 0x33, 0x44};

std::string client_frame(opcode op, std::string_view payload, bool fin = true) {
    return starling::encode_frame(op, payload, fin, &key);
}

std::string close_frame(std::uint16_t code, std::string_view reason = {}) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    p.append(reason);
    return client_frame(opcode::close, p);
}

/// A connection whose user code is a function of the test's.
class scripted_connection final : public connection<memory_stream> {
public:
    using script = std::function<task<>(scripted_connection&)>;
    scripted_connection(memory_stream stream, asio::io_context& context, script handler)
        : connection(std::move(stream), context), handler_(std::move(handler)) {}

    int farewells = 0;
    bool ended = false;
    bool handler_ended = false;

private:
    task<std::optional<std::string>> greet() override { co_return std::nullopt; }
    void joined() override {}
    task<> handle() override {
        struct mark {
            bool& flag;
            ~mark() { flag = true; }
        } on_exit{handler_ended};
        co_await handler_(*this);
    }
    close_reason failed(std::exception_ptr) noexcept override { return {1011, "internal error"}; }
    task<std::optional<std::string>> farewell() override {
        ++farewells;
        co_return std::nullopt;
    }
    void left() override { ended = true; }
    script handler_;
};

/// What the client read from the server, frame by frame.
struct server_frame {
    starling::read_status status;
    std::string payload;
    close_reason close;
};

struct harness {
    asio::io_context context;
    std::pair<memory_stream, memory_stream> ends;
    memory_stream& client = ends.second;
    std::shared_ptr<scripted_connection> server;
    websocket_options options;
    starling::message_reader from_server{{starling::role::client, 1u << 26, 0}};
    std::vector<server_frame> frames;
    bool client_reads = true;
    starling::detail::endpoint_counters* counters = nullptr;  // none unless a test gives some

    harness(scripted_connection::script handler, websocket_options o = {}, std::size_t capacity = 1024 * 1024)
        : ends(memory_stream::make_pair(context.get_executor(), capacity)),
          server(std::make_shared<scripted_connection>(std::move(ends.first), context, std::move(handler))),
          options(o) {}

    void start() {
        server->upgraded(options, "/test", {}, {}, counters);
        server->set_already_read({});
        asio::co_spawn(context, server->run(), asio::detached);
    }

    /// Runs the loop (and, unless told not to, reads as the client) until `done` or `limit` passes.
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
        const auto give_up = std::chrono::steady_clock::now() + limit;
        for (;;) {
            if (client_reads) read_frames();
            if (done()) return true;
            if (std::chrono::steady_clock::now() >= give_up) return false;
            if (context.stopped()) context.restart();
            context.run_one_for(1ms);
        }
    }

    void read_frames() {
        std::string bytes = client.take_all();
        std::span<char> input(bytes.data(), bytes.size());
        while (!input.empty()) {
            const auto r = from_server.read(input);
            input = input.subspan(r.consumed);
            if (r.status == starling::read_status::need_more) break;
            server_frame f{r.status, {}, {}};
            if (r.status == starling::read_status::close) f.close = from_server.close_frame();
            else if (r.status != starling::read_status::failed) f.payload = std::string(from_server.payload());
            frames.push_back(std::move(f));
        }
    }

    std::vector<std::string> texts() const {
        std::vector<std::string> out;
        for (const auto& f : frames)
            if (f.status == starling::read_status::message) out.push_back(f.payload);
        return out;
    }
    const server_frame* close() const {
        for (const auto& f : frames)
            if (f.status == starling::read_status::close) return &f;
        return nullptr;
    }
    std::size_t count(starling::read_status s) const {
        std::size_t n = 0;
        for (const auto& f : frames) n += f.status == s;
        return n;
    }
};

task<> echo(scripted_connection& c) {
    for (;;) {
        message m = co_await c.receive();
        co_await c.send_frame(m.is_text() ? opcode::text : opcode::binary, std::move(m.data));
    }
}

}  // namespace

TEST_CASE("a message is echoed, and a close frame is answered with the same code") {
    harness h(echo);
    h.start();
    h.client.write_all(client_frame(opcode::text, "hello"));
    REQUIRE(h.run_until([&] { return h.texts().size() == 1; }));
    CHECK(h.texts()[0] == "hello");

    h.client.write_all(close_frame(1000, "bye"));
    REQUIRE(h.run_until([&] { return h.close() != nullptr; }));
    CHECK(h.close()->close.code == 1000);
    // The server ends its side; once the client closes too, the connection is over.
    REQUIRE(h.run_until([&] { return h.client.peer_finished_sending(); }));
    h.client.close();
    REQUIRE(h.run_until([&] { return h.server->ended; }));
    CHECK(h.server->farewells == 1);
    CHECK(h.server->handler_ended);
}

TEST_CASE("fragments arriving in separate reads, with a ping between them, make one message") {
    harness h(echo);
    h.start();
    h.client.write_all(client_frame(opcode::text, "Hel", false));
    h.run_until([] { return false; }, 20ms);
    h.client.write_all(client_frame(opcode::ping, "are you there"));
    h.client.write_all(client_frame(opcode::continuation, "lo, ", false));
    h.run_until([] { return false; }, 20ms);
    h.client.write_all(client_frame(opcode::continuation, "world"));
    REQUIRE(h.run_until([&] { return h.texts().size() == 1; }));
    CHECK(h.texts()[0] == "Hello, world");
    REQUIRE(h.count(starling::read_status::pong) == 1);
    CHECK(h.frames[0].status == starling::read_status::pong);
    CHECK(h.frames[0].payload == "are you there");
}

TEST_CASE("a protocol error closes with 1002 and the handler's receive throws") {
    harness h(echo);
    h.start();
    h.client.write_all(starling::encode_frame(opcode::text, "unmasked"));
    REQUIRE(h.run_until([&] { return h.close() != nullptr; }));
    CHECK(h.close()->close.code == 1002);
    h.client.write_all(close_frame(1002));
    REQUIRE(h.run_until([&] { return h.server->handler_ended && h.client.peer_finished_sending(); }));
    h.client.close();
    REQUIRE(h.run_until([&] { return h.server->ended; }));
}

TEST_CASE("a ping flood from a client that never reads keeps a bounded number of pongs") {
    websocket_options o;
    harness h(echo, o, /*capacity=*/256);
    h.client_reads = false;
    h.start();
    std::string pings;
    for (int i = 0; i < 5000; ++i) pings += client_frame(opcode::ping, "ping " + std::to_string(i));
    h.client.write_all(pings);
    h.run_until([&] { return h.client.unread_by_peer() == 0; });
    CHECK(h.client.unread_by_peer() == 0);  // the server read every ping
    CHECK(h.server->queued_bytes() < 16 * 1024);
    // Once the client reads, the latest ping's payload is among the pongs.
    h.client_reads = true;
    REQUIRE(h.run_until([&] { return !h.frames.empty() && h.frames.back().payload == "ping 4999"; }));
    CHECK(h.count(starling::read_status::pong) < 100);
}

TEST_CASE("a send waits while the queue is over its limit, and goes on when the client reads") {
    websocket_options o;
    o.max_queued_bytes = 16 * 1024;
    o.write_timeout = 0ms;
    int sent = 0;
    harness h(
        [&](scripted_connection& c) -> task<> {
            for (;;) {
                co_await c.send_frame(opcode::binary, std::string(8 * 1024, 'x'));
                ++sent;
            }
        },
        o, /*capacity=*/4096);
    h.client_reads = false;
    h.start();
    h.run_until([] { return false; }, 50ms);
    const int stalled_at = sent;
    CHECK(stalled_at < 8);  // the stream holds 4 KiB, the queue at most 16 KiB more (plus one send)
    CHECK(h.server->queued_bytes() <= o.max_queued_bytes + 9 * 1024);
    h.client_reads = true;
    REQUIRE(h.run_until([&] { return sent > stalled_at + 20; }));
}

TEST_CASE("a client that stops reading is closed with 1008 after the write timeout") {
    websocket_options o;
    o.write_timeout = 50ms;
    o.close_timeout = 2000ms;
    harness h(
        [](scripted_connection& c) -> task<> {
            for (;;) co_await c.send_frame(opcode::binary, std::string(1024, 'x'));
        },
        o, /*capacity=*/4096);
    h.client_reads = false;
    h.start();
    REQUIRE(h.run_until([&] { return !h.server->is_open(); }, 2000ms));
    CHECK(h.run_until([&] { return h.server->handler_ended; }));  // its send throws once the close began
    h.client_reads = true;  // now the close frame can go out
    REQUIRE(h.run_until([&] { return h.close() != nullptr; }));
    CHECK(h.close()->close.code == 1008);
    CHECK(h.close()->close.reason.starts_with("write timeout"));
}

TEST_CASE("an idle client is pinged, then closed with 1001, then dropped at the close deadline") {
    websocket_options o;
    o.idle_timeout = 40ms;
    o.close_timeout = 100ms;
    harness h(echo, o);
    h.start();
    REQUIRE(h.run_until([&] { return h.count(starling::read_status::ping) == 1; }, 2000ms));
    REQUIRE(h.run_until([&] { return h.close() != nullptr; }, 2000ms));
    CHECK(h.close()->close.code == 1001);
    CHECK(h.close()->close.reason == "idle timeout");
    // The client never answers the close: the deadline closes the stream.
    REQUIRE(h.run_until([&] { return h.server->ended; }, 2000ms));
    CHECK(h.client.peer_closed());
}

TEST_CASE("the close deadline holds whatever the peer keeps sending") {
    websocket_options o;
    o.close_timeout = 100ms;
    harness h([](scripted_connection& c) -> task<> { co_await c.close(1000, "done"); }, o);
    h.start();
    REQUIRE(h.run_until([&] { return h.close() != nullptr; }));
    // The client never sends its close frame, only more data, all the time.
    const std::string frame = client_frame(opcode::text, "still here");
    const bool ended = h.run_until([&] {
        h.client.write_all(frame);
        return h.server->ended;
    }, 3000ms);
    CHECK(ended);
}

TEST_CASE("a message that does not arrive whole in time is closed with 1008") {
    websocket_options o;
    o.message_timeout = 50ms;
    harness h(echo, o);
    h.start();
    // A frame header announcing 1000 bytes, and only 10 of them.
    const std::string frame = client_frame(opcode::binary, std::string(1000, 'y'));
    h.client.write_all(frame.substr(0, 8 + 10));
    REQUIRE(h.run_until([&] { return h.close() != nullptr; }, 2000ms));
    CHECK(h.close()->close.code == 1008);
    CHECK(h.close()->close.reason.starts_with("message timeout"));
}

TEST_CASE("a send after the peer vanished throws, so a handler that only sends ends") {
    harness h([](scripted_connection& c) -> task<> {
        asio::steady_timer timer(c.context());
        for (int i = 0;; ++i) {
            co_await c.send_frame(opcode::text, "tick " + std::to_string(i));
            timer.expires_after(5ms);
            co_await timer.async_wait(asio::use_awaitable);
        }
    });
    h.start();
    REQUIRE(h.run_until([&] { return h.texts().size() >= 3; }));
    h.client.close();  // gone without a close frame
    REQUIRE(h.run_until([&] { return h.server->handler_ended && h.server->ended; }));
    CHECK(h.server->farewells == 1);
}

TEST_CASE("a full inbox stops the reader: what the handler has not asked for stays in the stream") {
    websocket_options o;
    o.inbox_messages = 4;
    bool go = false;
    std::vector<std::string> got;
    harness h([&](scripted_connection& c) -> task<> {
        asio::steady_timer wait(c.context());
        while (!go) {
            wait.expires_after(1ms);
            co_await wait.async_wait(asio::use_awaitable);
        }
        for (;;) got.push_back((co_await c.receive()).data);
    }, o);
    h.start();
    std::string many;
    for (int i = 0; i < 1000; ++i) many += client_frame(opcode::text, std::string(600, 'a') + std::to_string(i));
    h.client.write_all(many);
    h.run_until([] { return false; }, 50ms);
    // The reader took at most one read's worth (its probe and the worker's 64 KiB buffer) and paused
    // with the inbox full.
    CHECK(h.client.unread_by_peer() > many.size() - 70 * 1024);
    go = true;
    REQUIRE(h.run_until([&] { return got.size() == 1000; }));
    CHECK(got.back() == std::string(600, 'a') + "999");
}

TEST_CASE("the handshake deadline closes a stream that never upgrades") {
    asio::io_context context;
    auto [server_end, client_end] = memory_stream::make_pair(context.get_executor());
    auto server = std::make_shared<scripted_connection>(std::move(server_end), context,
                                                        [](scripted_connection&) -> task<> { co_return; });
    server->begin_handshake(std::chrono::steady_clock::now() + 30ms);
    const auto give_up = std::chrono::steady_clock::now() + 2s;
    while (!client_end.peer_closed() && std::chrono::steady_clock::now() < give_up) context.run_one_for(1ms);
    CHECK(client_end.peer_closed());
}

TEST_CASE("the counters and the connection's stats follow its traffic, and an idle ping's round trip") {
    starling::detail::endpoint_counters counters;
    websocket_options o;
    o.idle_timeout = 30ms;
    harness h(echo, o);
    h.counters = &counters;
    h.start();
    CHECK(counters.open.value() == 1);
    h.client.write_all(client_frame(opcode::text, "one"));
    h.client.write_all(client_frame(opcode::binary, "three"));
    REQUIRE(h.run_until([&] { return h.frames.size() >= 2; }));
    CHECK(counters.messages_in.value() == 2);
    CHECK(counters.bytes_in.value() == 8);
    CHECK(counters.messages_out.value() == 2);
    CHECK(counters.bytes_out.value() == 8);
    CHECK(counters.queued_bytes_high_water.value() > 0);
    CHECK(h.server->stats().messages_in == 2);
    CHECK(h.server->stats().messages_out == 2);
    CHECK(!h.server->stats().last_rtt);
    // Silence: the server pings; the client answers; the round trip is recorded.
    REQUIRE(h.run_until([&] { return h.count(starling::read_status::ping) == 1; }, 2000ms));
    h.client.write_all(client_frame(opcode::pong, ""));
    REQUIRE(h.run_until([&] { return counters.pong_rtt.count.value() == 1; }, 2000ms));
    CHECK(counters.pings_sent.value() >= 1);
    CHECK(h.server->stats().last_rtt.has_value());
    h.client.write_all(close_frame(1000));
    REQUIRE(h.run_until([&] { return h.client.peer_finished_sending(); }));
    h.client.close();
    REQUIRE(h.run_until([&] { return h.server->ended; }));
    CHECK(counters.open.value() == 0);
    CHECK(counters.closed[static_cast<std::size_t>(starling::detail::close_class::normal)].value() == 1);
    CHECK(counters.queued_bytes.value() == 0);
}
