// Fuzzes a whole server session over loopback TCP: one starling::app (started once, in the
// background) with a few endpoints; for each input, a fresh connection performs a valid opening
// handshake and then sends the input as the client's byte stream. Whatever the server answers is read
// and discarded under a bounded deadline. The server must never crash (the sanitizers watch its
// threads, which live in this process), never hang (a connection the server does not finish within
// the deadline traps), and must stay healthy: every 64th input, and after the first, a normal echo
// round trip and close must work and every endpoint's connection count must return to zero.
//
// Input layout: byte 0 is a control byte, the rest is the stream.
//   bits 0-1  endpoint: /echo (receive + echo), /text (receive_text: binary is 1003), /small (64-byte
//             messages, 16-byte frames), /json (receive_json + send_json: invalid JSON is 1007)
//   bit  2    masked: the stream is read as frames (2-byte header, extended length, payload) and
//             re-encoded with the MASK bit set and the payload masked, so mutations reach past the
//             "unmasked client frame" check; otherwise the bytes go out exactly as given
//   bits 3-5  TCP write size: everything at once, or 1, 2, 3, 7, 16, 64, 256-byte writes
//   bit  6    leave with a reset (SO_LINGER 0) right after sending, instead of a half-close and
//             reading until the server closes
//   bit  7    send the first bytes of the stream in the same write as the handshake request
#include <starling.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// Far above anything a healthy server needs on loopback (its close timeout is 500 ms), far below
// libFuzzer's own -timeout.
constexpr auto deadline_after = 5s;
constexpr std::size_t health_every = 64;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_session: %s\n", what);
    __builtin_trap();
}

struct server {
    starling::app app;
    std::vector<starling::endpoint> endpoints;
    std::uint16_t port = 0;

    server() {
        app.set_logger([](starling::log_level, std::string_view) {});  // errors are expected here
        starling::websocket_options options;
        options.close_timeout = 500ms;
        app.set_websocket_options(options);

        endpoints.push_back(app.websocket("/echo", [](starling::websocket& ws) -> starling::task<> {
            for (;;) {
                starling::message m = co_await ws.receive();
                if (m.is_text())
                    co_await ws.send_text(std::move(m.data));
                else
                    co_await ws.send_bytes(std::move(m.data));
            }
        }));
        endpoints.push_back(app.websocket("/text", [](starling::websocket& ws) -> starling::task<> {
            for (;;) co_await ws.send_text(co_await ws.receive_text());
        }));
        starling::websocket_options small = options;
        small.max_message_size = 64;
        small.max_frame_size = 16;
        small.inbox_messages = 2;
        endpoints.push_back(app.websocket("/small", [](starling::websocket& ws) -> starling::task<> {
            for (;;) {
                std::string bytes = co_await ws.receive_bytes();
                co_await ws.send_bytes(std::move(bytes));
            }
        }));
        endpoints.back().options(small);
        endpoints.push_back(app.websocket("/json", [](starling::websocket& ws) -> starling::task<> {
            for (;;) {
                starling::json_document doc = co_await ws.receive_json();
                co_await ws.send_json(doc);
            }
        }));

        starling::server_options server_options;
        server_options.host = "127.0.0.1";
        server_options.port = 0;
        server_options.workers = 2;
        server_options.handshake_timeout = 2s;
        server_options.shutdown_timeout = 1s;
        port = app.start_in_background(server_options);
    }
};

server& the_server() {
    static server s;
    return s;
}

constexpr const char* paths[] = {"/echo", "/text", "/small", "/json"};

std::string handshake_request(const char* path, std::uint16_t port) {
    return std::string("GET ") + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n";
}

/// The stream re-encoded as masked frames: each frame's header is taken from the input (FIN, RSV,
/// opcode, length), the MASK bit set, a key inserted and the payload masked. A frame longer than the
/// input that is left goes out as announced, truncated: the server then waits for more, until EOF.
std::string mask_frames(const std::uint8_t* data, std::size_t size) {
    std::string out;
    std::size_t pos = 0;
    std::uint8_t key_seed = 0x5a;
    while (pos < size) {
        const std::uint8_t b0 = data[pos++];
        if (pos >= size) {
            out.push_back(static_cast<char>(b0));
            break;
        }
        const std::uint8_t b1 = data[pos++];
        out.push_back(static_cast<char>(b0));
        out.push_back(static_cast<char>(b1 | 0x80));
        std::uint64_t length = b1 & 0x7f;
        const std::size_t extended = length == 126 ? 2 : length == 127 ? 8 : 0;
        if (extended != 0) {
            length = 0;
            for (std::size_t i = 0; i < extended; ++i) {
                const std::uint8_t byte = pos < size ? data[pos++] : 0;
                out.push_back(static_cast<char>(byte));
                length = (length << 8) | byte;
            }
        }
        const std::uint8_t key[4] = {key_seed, static_cast<std::uint8_t>(key_seed * 3 + 1),
                                     static_cast<std::uint8_t>(key_seed ^ 0xc3), 0x17};
        key_seed = static_cast<std::uint8_t>(key_seed * 5 + 7);
        out.append(reinterpret_cast<const char*>(key), 4);
        const std::size_t available = std::min<std::uint64_t>(length, size - pos);
        for (std::size_t i = 0; i < available; ++i) out.push_back(static_cast<char>(data[pos + i] ^ key[i % 4]));
        pos += available;
    }
    return out;
}

int connect_loopback(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket() failed");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) fail("connect() failed");
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

void reset_and_close(int fd) {
    const linger abort_now{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
    ::close(fd);
}

int remaining_ms(clock_type::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

/// Sends `out` in writes of `chunk` bytes (0: all at once) while reading and keeping what the server
/// sends, then half-closes and reads until the server closes. Traps if that takes past the deadline.
/// Returns what the server sent.
std::string exchange(int fd, const std::string& out, std::size_t chunk) {
    const auto deadline = clock_type::now() + deadline_after;
    std::string in;
    std::size_t sent = 0;
    bool write_open = true;
    char buffer[16384];
    for (;;) {
        if (write_open && sent == out.size()) {
            ::shutdown(fd, SHUT_WR);
            write_open = false;
        }
        pollfd p{fd, static_cast<short>(POLLIN | (write_open ? POLLOUT : 0)), 0};
        const int ready = ::poll(&p, 1, remaining_ms(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) fail("the server did not finish a connection within 5 s of the client's end of stream");
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n == 0) return in;                                                // the server closed
            if (n < 0 && (errno == ECONNRESET || errno == EPIPE)) return in;      // or reset
            if (n < 0 && errno != EAGAIN && errno != EINTR) return in;
            if (n > 0) in.append(buffer, static_cast<std::size_t>(n));
            if (in.size() > (64u << 20)) fail("the server sent more than 64 MiB for one input");
        }
        if (write_open && (p.revents & POLLOUT)) {
            const std::size_t n = chunk == 0 ? out.size() - sent : std::min(chunk, out.size() - sent);
            const ssize_t w = ::send(fd, out.data() + sent, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                sent += static_cast<std::size_t>(w);
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                write_open = false;  // the server closed (or reset) while we were still sending
            }
        }
    }
}

void check(bool ok, const char* what) {
    if (!ok) fail(what);
}

/// A normal client: handshake on /echo, one masked text message echoed, close 1000 answered, EOF.
/// Then every endpoint's connection count returns to zero within the deadline.
void health_check(server& s, std::size_t round) {
    const int fd = connect_loopback(s.port);
    std::string out = handshake_request("/echo", s.port);
    const std::string text = "health check " + std::to_string(round);
    const std::uint8_t key[4] = {1, 2, 3, 4};
    out.push_back(static_cast<char>(0x81));
    out.push_back(static_cast<char>(0x80 | text.size()));
    out.append(reinterpret_cast<const char*>(key), 4);
    for (std::size_t i = 0; i < text.size(); ++i) out.push_back(static_cast<char>(text[i] ^ key[i % 4]));
    out += std::string("\x88\x82\x01\x02\x03\x04", 6);
    out.push_back(static_cast<char>(0x03 ^ 1));  // code 1000 = 0x03e8, masked
    out.push_back(static_cast<char>(0xe8 ^ 2));
    const std::string in = exchange(fd, out, 0);
    ::close(fd);

    const auto head_end = in.find("\r\n\r\n");
    check(head_end != std::string::npos && in.starts_with("HTTP/1.1 101 "), "health check: no 101 answer");
    std::string expected = "\x81";
    expected.push_back(static_cast<char>(text.size()));
    expected += text;
    expected += std::string("\x88\x02\x03\xe8", 4);
    check(in.substr(head_end + 4) == expected, "health check: the echo and close answer were not as expected");

    const auto deadline = clock_type::now() + deadline_after;
    for (;;) {
        std::size_t open = 0;
        for (const auto& e : s.endpoints) open += e.connection_count();
        if (open == 0) break;
        check(clock_type::now() < deadline, "health check: connection counts did not return to zero");
        std::this_thread::sleep_for(1ms);  // polling a counter the server threads update
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    server& s = the_server();
    static std::size_t inputs = 0;
    if (inputs++ % health_every == 1) health_check(s, inputs);
    if (size == 0) return 0;

    const std::uint8_t control = data[0];
    const char* path = paths[control & 3];
    const bool masked = (control & 4) != 0;
    constexpr std::size_t chunks[] = {0, 1, 2, 3, 7, 16, 64, 256};
    const std::size_t chunk = chunks[(control >> 3) & 7];
    const bool reset = (control & 0x40) != 0;
    const bool early = (control & 0x80) != 0;

    const std::string stream = masked ? mask_frames(data + 1, size - 1)
                                      : std::string(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::string request = handshake_request(path, s.port);
    const int fd = connect_loopback(s.port);
    if (reset) {
        const std::string out = early ? request + stream : request;
        (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
        if (!early) (void)::send(fd, stream.data(), stream.size(), MSG_NOSIGNAL);
        reset_and_close(fd);
        return 0;
    }
    std::string out = request + stream;
    if (!early) {
        // The handshake first and alone: wait for the 101 before the stream.
        (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
        std::string head;
        const auto deadline = clock_type::now() + deadline_after;
        while (head.find("\r\n\r\n") == std::string::npos) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, remaining_ms(deadline)) <= 0) fail("no answer to a valid handshake within 5 s");
            char buffer[512];
            const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0) fail("the server closed the connection instead of answering a valid handshake");
            head.append(buffer, static_cast<std::size_t>(n));
        }
        check(head.starts_with("HTTP/1.1 101 "), "a valid handshake was not answered 101");
        out = stream;
    }
    const std::string in = exchange(fd, out, chunk);
    ::close(fd);
    if (early) check(in.starts_with("HTTP/1.1 101 "), "a valid handshake was not answered 101");
    return 0;
}
