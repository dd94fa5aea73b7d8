// Steady state allocates nothing per message: a real server (one worker) echoes
// over loopback to a blocking client on the test's thread, and a replaced global operator new counts
// every allocation made on any other thread, that is, by the server. After a warm-up (buffers grown,
// Asio's recycled operation memory primed), a bounded loop of echoes must not allocate at all.
//
// Its own executable: replacing operator new affects the whole program.
#include <starling.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

namespace {

std::atomic<long> server_allocations{0};
thread_local bool on_client_thread = false;

void* counted_allocation(std::size_t size, std::size_t alignment = 0) {
    if (!on_client_thread) server_allocations.fetch_add(1, std::memory_order_relaxed);
    if (size == 0) size = 1;
    void* p = alignment > alignof(std::max_align_t) ? std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment)
                                                    : std::malloc(size);
    if (!p) throw std::bad_alloc();
    return p;
}

}  // namespace

void* operator new(std::size_t size) { return counted_allocation(size); }
void* operator new[](std::size_t size) { return counted_allocation(size); }
void* operator new(std::size_t size, std::align_val_t a) { return counted_allocation(size, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t size, std::align_val_t a) { return counted_allocation(size, static_cast<std::size_t>(a)); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

/// A blocking WebSocket client on a plain socket: sends masked frames, reads unmasked ones. Kept
/// free of heap allocation in its loop so that only the server is measured (and it runs on the
/// client thread, which is not counted anyway).
class blocking_client {
public:
    explicit blocking_client(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        const std::string request =
            "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
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
    ~blocking_client() { ::close(fd_); }

    /// Sends `count` masked text frames of `payload` in one write (pipelined when count > 1).
    void send_frames(std::string_view payload, int count) {
        out_.clear();
        for (int i = 0; i < count; ++i) {
            out_.push_back(static_cast<char>(0x81));
            const std::size_t n = payload.size();
            if (n < 126) {
                out_.push_back(static_cast<char>(0x80 | n));
            } else {
                out_.push_back(static_cast<char>(0x80 | 126));
                out_.push_back(static_cast<char>(n >> 8));
                out_.push_back(static_cast<char>(n & 0xff));
            }
            const char key[4] = {0x11, 0x22, 0x33, 0x44};
            out_.append(key, 4);
            for (std::size_t j = 0; j < n; ++j) out_.push_back(static_cast<char>(payload[j] ^ key[j % 4]));
        }
        write_all(out_.data(), out_.size());
    }

    /// Reads `count` text frames and checks each carries `payload`.
    void expect_frames(std::string_view payload, int count) {
        for (int i = 0; i < count; ++i) {
            unsigned char h[4];
            read_all(h, 2);
            REQUIRE(h[0] == 0x81);
            std::size_t n = h[1] & 0x7f;
            if (n == 126) {
                read_all(h + 2, 2);
                n = (std::size_t{h[2]} << 8) | h[3];
            }
            REQUIRE(n == payload.size());
            in_.resize(n);
            read_all(in_.data(), n);
            REQUIRE(std::string_view(in_) == payload);
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
    std::string out_;
    std::string in_;
};

/// Server allocations over `rounds` echo rounds of `pipelined` messages of `size` bytes, after as
/// many warm-up rounds.
long allocations_per_echo_loop(std::size_t size, int pipelined, int rounds) {
    on_client_thread = true;
    starling::app app;
    app.websocket("/echo", [](starling::websocket& ws) -> starling::task<> {
        for (;;) {
            starling::message m = co_await ws.receive();
            co_await ws.send_text(std::move(m.data));
        }
    });
    starling::server_options options;
    options.port = 0;
    options.workers = 1;
    const std::uint16_t port = app.start_in_background(options);
    const std::string payload(size, 'a');
    long during = 0;
    {
        blocking_client client(port);
        for (int i = 0; i < rounds; ++i) {
            client.send_frames(payload, pipelined);
            client.expect_frames(payload, pipelined);
        }
        const long before = server_allocations.load();
        for (int i = 0; i < rounds; ++i) {
            client.send_frames(payload, pipelined);
            client.expect_frames(payload, pipelined);
        }
        during = server_allocations.load() - before;
    }  // the client leaves first, so that stop() has no close handshake to wait for
    app.stop();
    return during;
}

}  // namespace

TEST_CASE("echo of 64-byte messages allocates nothing in steady state") {
    CHECK(allocations_per_echo_loop(64, 1, 2000) == 0);
}

TEST_CASE("pipelined echo (16 messages per write) allocates nothing in steady state") {
    CHECK(allocations_per_echo_loop(64, 16, 500) == 0);
}

TEST_CASE("echo of 16 KiB messages allocates nothing in steady state") {
    CHECK(allocations_per_echo_loop(16 * 1024, 1, 500) == 0);
}
