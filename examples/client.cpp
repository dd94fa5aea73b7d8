// A command-line WebSocket client: connects to URL (ws:// or wss://), sends each MESSAGE as a text
// message, prints each reply on its own line, then closes with 1000 and waits for the server's answer.
//   build/examples/client URL [MESSAGE...]
// A wss:// server's certificate is checked against the system's trusted authorities; OpenSSL's
// SSL_CERT_FILE variable names another file of them (a test's own authority, say).
// Exits 0 once closed cleanly; 1 with the error on stderr when the connection fails (or the server
// closes before replying); 2 for a bad command line.
#include <cstdio>       // std::fprintf, std::fwrite
#include <exception>    // std::exception_ptr
#include <string>       // std::string messages
#include <vector>       // std::vector messages

#include <starling.hpp>
#include <starling/tls.hpp>  // wss:// URLs

namespace {

starling::task<> talk(std::string url, std::vector<std::string> messages) {
    starling::client_websocket ws = co_await starling::connect(url);
    for (std::string& text : messages) {
        co_await ws.send_text(std::move(text));
        const starling::message reply = co_await ws.receive();
        std::fwrite(reply.data.data(), 1, reply.data.size(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
    }
    co_await ws.close(starling::close_code::normal);
    co_await ws.wait_closed();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s URL [MESSAGE...]\n", argv[0]);
        return 2;
    }
    asio::io_context io;
    int status = 0;
    asio::co_spawn(io, talk(argv[1], std::vector<std::string>(argv + 2, argv + argc)), [&](std::exception_ptr error) {
        if (!error) return;
        status = 1;
        try {
            std::rethrow_exception(error);
        } catch (const starling::websocket_disconnect& e) {
            std::fprintf(stderr, "client: the connection closed before a reply (code %u%s%s)\n",
                         static_cast<unsigned>(e.code()), e.reason().empty() ? "" : ": ", e.reason().c_str());
        } catch (const std::exception& e) {
            std::fprintf(stderr, "client: %s\n", e.what());
        }
    });
    io.run();
    return status;
}
