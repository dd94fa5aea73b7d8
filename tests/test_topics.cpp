// Tests of starling/runtime/pubsub.hpp through a running app: topics across worker threads, publishes
// from a thread that is not the server's, topics left at shutdown, and two apps linked by the
// in-process backplane (publish, broadcast and send_to between them). Real sockets on loopback and
// blocking clients on the test's threads; built in every build, ThreadSanitizer's included.
#include <starling/runtime/pubsub.hpp>

#include <starling/app.hpp>
#include <starling/event_websocket.hpp>

#include <doctest/doctest.h>

#include <arpa/inet.h>    // htons, htonl
#include <netinet/in.h>   // sockaddr_in
#include <netinet/tcp.h>  // TCP_NODELAY
#include <sys/socket.h>   // socket, connect
#include <sys/time.h>     // timeval receive timeout
#include <unistd.h>       // read, write, close

#include <algorithm>  // std::sort
#include <cstdint>    // std::uint16_t ports
#include <memory>     // std::make_shared
#include <string>     // std::string messages
#include <thread>     // std::thread publishers
#include <vector>     // std::vector clients

namespace {

/// A blocking WebSocket client on a plain socket; every read gives up after 10 s, failing the test
/// instead of hanging it.
class client {
public:
    client(std::uint16_t port, const std::string& target) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        timeval limit{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        const std::string request = "GET " + target +
                                    " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        write_all(request.data(), request.size());
        std::string head;
        char c;
        while (!head.ends_with("\r\n\r\n")) {
            REQUIRE(::read(fd_, &c, 1) == 1);
            head += c;
        }
        REQUIRE(head.starts_with("HTTP/1.1 101"));
    }
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client() { ::close(fd_); }

    void send(const std::string& text) {
        std::string out;
        out.push_back(static_cast<char>(0x81));
        const std::size_t n = text.size();
        REQUIRE(n < 126);
        out.push_back(static_cast<char>(0x80 | n));
        const char key[4] = {0x11, 0x22, 0x33, 0x44};
        out.append(key, 4);
        for (std::size_t j = 0; j < n; ++j) out.push_back(static_cast<char>(text[j] ^ key[j % 4]));
        write_all(out.data(), out.size());
    }

    /// The next text message (pings and other control frames skipped).
    std::string receive() {
        for (;;) {
            unsigned char h[10];
            read_all(h, 2);
            std::size_t n = h[1] & 0x7f;
            if (n == 126) {
                read_all(h + 2, 2);
                n = (std::size_t{h[2]} << 8) | h[3];
            } else if (n == 127) {
                read_all(h + 2, 8);
                n = 0;
                for (int i = 2; i < 10; ++i) n = (n << 8) | h[i];
            }
            std::string payload(n, '\0');
            read_all(payload.data(), n);
            if ((h[0] & 0x0f) == 0x1) return payload;
            REQUIRE((h[0] & 0x08) != 0);  // only control frames are skipped
        }
    }

private:
    void write_all(const char* data, std::size_t n) {
        while (n > 0) {
            const ssize_t w = ::write(fd_, data, n);
            REQUIRE(w > 0);
            data += w;
            n -= static_cast<std::size_t>(w);
        }
    }
    void read_all(void* into, std::size_t n) {
        auto* p = static_cast<char*>(into);
        while (n > 0) {
            const ssize_t r = ::read(fd_, p, n);
            REQUIRE(r > 0);
            p += r;
            n -= static_cast<std::size_t>(r);
        }
    }

    int fd_ = -1;
};

/// Subscribes to "news", says "ready ID", then obeys: "pub TEXT" publishes to news, "bcast TEXT"
/// broadcasts, "to ID TEXT" sends to that id.
starling::task<> subscriber(starling::websocket& ws) {
    ws.subscribe("news");
    co_await ws.send_text("ready " + ws.id());
    for (;;) {
        const std::string line = co_await ws.receive_text();
        if (line.starts_with("pub "))
            co_await ws.publish("news", line.substr(4));
        else if (line.starts_with("bcast "))
            co_await ws.broadcast(line.substr(6));
        else if (line.starts_with("to ")) {
            const auto space = line.find(' ', 3);
            co_await ws.send_to(line.substr(3, space - 3), line.substr(space + 1));
        }
    }
}

std::string id_of(const std::string& ready) { return ready.substr(6); }

starling::server_options workers(unsigned n) {
    starling::server_options options;
    options.host = "127.0.0.1";
    options.port = 0;  // a free one
    options.workers = n;
    options.shutdown_timeout = std::chrono::milliseconds(300);  // blocking clients never answer 1001
    return options;
}

}  // namespace

TEST_CASE("a thread that is not the server's publishes to subscribers on every worker, in order") {
    starling::app app;
    app.websocket("/t", subscriber);
    const std::uint16_t port = app.start_in_background(workers(4));
    std::vector<std::unique_ptr<client>> clients;
    for (int i = 0; i < 8; ++i) {  // round-robin: two on each worker
        clients.push_back(std::make_unique<client>(port, "/t"));
        CHECK(clients.back()->receive().starts_with("ready "));
    }
    CHECK(app.topic_size("news") == 8);
    const auto listed = app.topics();
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].name == "news");
    CHECK(listed[0].size == 8);

    constexpr int count = 200;
    std::thread publisher([&app] {
        for (int i = 0; i < count; ++i) app.publish("news", std::to_string(i));
    });
    publisher.join();
    for (auto& c : clients)
        for (int i = 0; i < count; ++i) REQUIRE(c->receive() == std::to_string(i));
    app.stop();
}

TEST_CASE("publishers on two threads at once: each one's messages arrive in its order, none twice") {
    starling::app app;
    app.websocket("/t", subscriber);
    const std::uint16_t port = app.start_in_background(workers(2));
    client a(port, "/t"), b(port, "/t");
    a.receive();
    b.receive();
    constexpr int count = 300;
    auto publish = [&app](char who) {
        for (int i = 0; i < count; ++i) app.publish("news", who + std::to_string(i));
    };
    std::thread x(publish, 'x'), y(publish, 'y');
    x.join();
    y.join();
    for (client* c : {&a, &b}) {
        int next_x = 0, next_y = 0;
        for (int i = 0; i < 2 * count; ++i) {
            const std::string m = c->receive();
            int& next = m[0] == 'x' ? next_x : next_y;
            REQUIRE(m.substr(1) == std::to_string(next));
            ++next;
        }
        CHECK(next_x == count);
        CHECK(next_y == count);
    }
    app.stop();
}

TEST_CASE("shutdown takes every connection out of every topic") {
    starling::app app;
    app.websocket("/t", subscriber);
    const std::uint16_t port = app.start_in_background(workers(2));
    client a(port, "/t"), b(port, "/t"), c(port, "/t");
    for (client* x : {&a, &b, &c}) x->receive();
    CHECK(app.topic_size("news") == 3);
    app.stop();
    CHECK(app.topic_size("news") == 0);
    CHECK(app.topics().empty());
    CHECK(app.publish("news", "nobody") == 0);
}

TEST_CASE("two apps on one in-process backplane: publish, broadcast and send_to reach the other, once") {
    auto bus = std::make_shared<starling::in_process_bus>();
    starling::app first, second;
    first.use_backplane(std::make_shared<starling::in_process_backplane>(bus));
    second.use_backplane(std::make_shared<starling::in_process_backplane>(bus));
    first.websocket("/t", subscriber);
    second.websocket("/t", subscriber);
    const std::uint16_t port1 = first.start_in_background(workers(2));
    const std::uint16_t port2 = second.start_in_background(workers(2));
    client here(port1, "/t"), there(port2, "/t");
    here.receive();
    const std::string there_id = id_of(there.receive());
    CHECK(first.backplane_status().connected);

    here.send("pub hello");
    CHECK(here.receive() == "hello");  // its own publish, once: not again from the backplane
    CHECK(there.receive() == "hello");
    here.send("bcast all");
    CHECK(here.receive() == "all");
    CHECK(there.receive() == "all");
    here.send("to " + there_id + " psst");
    CHECK(there.receive() == "psst");

    std::thread outside([&second] { second.publish("news", "from a plain thread"); });
    outside.join();
    CHECK(here.receive() == "from a plain thread");
    CHECK(there.receive() == "from a plain thread");
    // A marker after everything: nothing else arrived in between (no duplicates).
    here.send("pub end");
    CHECK(here.receive() == "end");
    CHECK(there.receive() == "end");
    CHECK(first.topic_size("news") == 1);  // sizes are per process
    first.stop();
    second.stop();
}

TEST_CASE("the event API's connector subscribes and publishes as the coroutine API does") {
    starling::app app;
    starling::WebSocket events(app, "/events");
    events.on("connect", [](starling::connector& ws) {
        ws.subscribe("ev");
        return "in " + ws.topics().front();
    });
    events.on("message", [](starling::connector& ws, std::string_view text) {
        ws.sync_publish("ev", text, starling::recipients::others);
        return std::string("published");
    });
    const std::uint16_t port = app.start_in_background(workers(2));
    client a(port, "/events"), b(port, "/events");
    CHECK(a.receive() == "in ev");
    CHECK(b.receive() == "in ev");
    CHECK(app.topic_size("ev") == 2);
    a.send("hi");
    CHECK(a.receive() == "published");  // not "hi": recipients::others
    CHECK(b.receive() == "hi");
    app.stop();
}

TEST_CASE("an endpoint kept to its process broadcasts there only; topics still cross") {
    auto bus = std::make_shared<starling::in_process_bus>();
    starling::app first, second;
    first.use_backplane(std::make_shared<starling::in_process_backplane>(bus));
    second.use_backplane(std::make_shared<starling::in_process_backplane>(bus));
    first.websocket("/t", subscriber).across_processes(false);
    second.websocket("/t", subscriber).across_processes(false);
    const std::uint16_t port1 = first.start_in_background(workers(1));
    const std::uint16_t port2 = second.start_in_background(workers(1));
    client here(port1, "/t"), there(port2, "/t");
    here.receive();
    const std::string there_id = id_of(there.receive());
    here.send("bcast mine");
    CHECK(here.receive() == "mine");
    here.send("to " + there_id + " lost");  // not here, and this endpoint does not look elsewhere
    here.send("pub crosses");
    CHECK(here.receive() == "crosses");
    CHECK(there.receive() == "crosses");  // first: neither the broadcast nor the send_to came
    first.stop();
    second.stop();
}
