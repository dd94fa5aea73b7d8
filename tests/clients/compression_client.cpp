// A client for tests/integration/test_client.py: Starling's client with the compression settings a
// test asks for, sending messages of given sizes and checking that each comes back unchanged.
//
//   compression_client URL [--off] [--client-no-context-takeover] [--server-no-context-takeover]
//                      [--no-client-window-offer] [--client-max-window-bits N]
//                      [--server-max-window-bits N] [--threshold N]
//                      [--max-message-size N] MESSAGE...
//
// Each MESSAGE is text:N or binary:N, a message of N bytes (compressible, but not one repeated
// byte), sent and expected back as it went. It prints, on stdout:
//   extensions: VALUE       the Sec-WebSocket-Extensions the server answered ("none" without one)
//   echo N ok               for each reply equal to what was sent ("echo N differs" otherwise)
//   closed CODE REASON      when the connection closed instead of replying (then exits 1)
// then closes with 1000 and exits 0. A connect_error goes to stderr, exit 1; a bad command line, 2.
#include <starling.hpp>

#include <charconv>     // std::from_chars numbers
#include <cstdio>       // std::printf
#include <cstdlib>      // std::exit
#include <exception>    // std::exception_ptr
#include <string>       // std::string messages
#include <string_view>  // std::string_view arguments
#include <vector>       // std::vector messages

namespace {

struct planned_message {
    bool binary = false;
    std::size_t size = 0;
};

/// N bytes of words from a small vocabulary in a varying order: deflate shrinks them a few times over,
/// as it does real text, and a wrong byte anywhere shows.
std::string message_of(std::size_t size, std::size_t seed) {
    static constexpr std::string_view words[] = {"starling ", "murmur ", "flock ", "wing ", "evening ", "sky ", "turn "};
    std::string out;
    out.reserve(size + 16);
    std::size_t state = seed * 2654435761u + 1;
    while (out.size() < size) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        out += words[(state >> 33) % std::size(words)];
        if ((state >> 20) % 11 == 0) out += std::to_string(state % 1000);
    }
    out.resize(size);
    return out;
}

starling::task<int> talk(std::string url, starling::client_options options, std::vector<planned_message> plan) {
    starling::client_websocket ws = co_await starling::connect(url, options);
    const auto extensions = ws.response_headers().get("Sec-WebSocket-Extensions");
    std::printf("extensions: %s\n", extensions ? std::string(*extensions).c_str() : "none");
    std::fflush(stdout);
    std::size_t seed = 0;
    bool closed = false;
    try {
        for (const planned_message& m : plan) {
            std::string sent = message_of(m.size, ++seed);
            if (m.binary)
                co_await ws.send_bytes(sent);
            else
                co_await ws.send_text(sent);
            const starling::message reply = co_await ws.receive();
            const bool same = reply.is_binary() == m.binary && reply.data == sent;
            std::printf("echo %zu %s\n", m.size, same ? "ok" : "differs");
            std::fflush(stdout);
        }
    } catch (const starling::websocket_disconnect& e) {
        std::printf("closed %u %s\n", static_cast<unsigned>(e.code()), e.reason().c_str());
        std::fflush(stdout);
        closed = true;  // awaited below: no co_await inside a handler
    }
    if (closed) {
        co_await ws.wait_closed();
        co_return 1;
    }
    co_await ws.close(starling::close_code::normal);
    co_await ws.wait_closed();
    co_return 0;
}

[[noreturn]] void usage(const char* program) {
    std::fprintf(stderr, "usage: %s URL [options] MESSAGE... (see its source)\n", program);
    std::exit(2);
}

std::size_t number(std::string_view text, const char* program) {
    std::size_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) usage(program);
    return value;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) usage(argv[0]);
    starling::client_options options;
    std::vector<planned_message> plan;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&] {
            if (i + 1 >= argc) usage(argv[0]);
            return number(argv[++i], argv[0]);
        };
        if (arg == "--off")
            options.compression.enabled = false;
        else if (arg == "--client-no-context-takeover")
            options.compression.client_no_context_takeover = true;
        else if (arg == "--server-no-context-takeover")
            options.compression.server_no_context_takeover = true;
        else if (arg == "--no-client-window-offer")
            options.compression.offer_client_max_window_bits = false;
        else if (arg == "--client-max-window-bits")
            options.compression.client_max_window_bits = static_cast<int>(value());
        else if (arg == "--server-max-window-bits")
            options.compression.server_max_window_bits = static_cast<int>(value());
        else if (arg == "--threshold")
            options.compression.threshold = value();
        else if (arg == "--max-message-size")
            options.websocket.max_message_size = value();
        else if (arg.starts_with("text:"))
            plan.push_back({false, number(arg.substr(5), argv[0])});
        else if (arg.starts_with("binary:"))
            plan.push_back({true, number(arg.substr(7), argv[0])});
        else
            usage(argv[0]);
    }
    asio::io_context io;
    int status = 0;
    asio::co_spawn(io, talk(argv[1], options, std::move(plan)), [&](std::exception_ptr error, int result) {
        status = result;
        if (!error) return;
        status = 1;
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "compression_client: %s\n", e.what());
        }
    });
    io.run();
    return status;
}
