// Benchmark peer: the same two endpoints as Starling's examples, written with websocketpp (Asio
// transport from Boost) the way its own examples are (echo_server for /echo, broadcast_server for
// /chat), on one thread.
//   /echo  sends every message back, text as text and binary as binary
//   /chat  sends every message to every connected client, the sender included
//   websocketpp_server --port N [--deflate]
//       prints `listening on N` (the real port, also for 0) once it listens. --deflate: the same
//       server with websocketpp's permessage_deflate extension (a second configuration, chosen at
//       start, so the plain server carries none of it), for the compression rows.
//
// What websocketpp 0.8.2 (Debian's) offers for compression, and what it does not: it accepts
// server_no_context_takeover and client_no_context_takeover, and honours them by ending each message
// with a full flush (the dictionary is emptied, the zlib state kept). The zlib level (6, zlib's
// default) and memLevel (4) are fixed in the extension's code, so it cannot be set to Starling's and
// Beast's level 1; every connection that agrees to compression gets its own compressor and inflater
// at the handshake, whether it ever sends anything, and keeps them; there is no size threshold. A
// broadcast compresses once per receiver: a message is compressed when each connection prepares its
// frame, and only messages flagged as compressed are (echo's send(payload, opcode) flags its own;
// the broadcast flags the received message before handing it to every member).
//
// Differences from the examples, each applied to every server in the comparison alike: logging is off
// (the examples log every frame), the broadcast runs inline on the one I/O thread instead of on a
// second thread behind a queue, and accepted sockets get TCP_NODELAY.

#define BOOST_BIND_GLOBAL_PLACEHOLDERS  // quiet Boost's note about websocketpp's use of boost::bind
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/extensions/permessage_deflate/enabled.hpp>
#include <websocketpp/server.hpp>

#include <boost/asio/signal_set.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <string_view>

using websocketpp::connection_hdl;

namespace {

/// websocketpp's Asio configuration with the permessage_deflate extension switched in.
struct deflate_config : websocketpp::config::asio {
    using type = deflate_config;
    struct permessage_deflate_config {};
    using permessage_deflate_type = websocketpp::extensions::permessage_deflate::enabled<permessage_deflate_config>;
};

template <class Config>
class bench_server {
    using server = websocketpp::server<Config>;

public:
    explicit bench_server(std::uint16_t port) {
        server_.clear_access_channels(websocketpp::log::alevel::all);
        server_.clear_error_channels(websocketpp::log::elevel::all);
        server_.set_error_channels(websocketpp::log::elevel::fatal);
        server_.init_asio();
        server_.set_reuse_addr(true);
        // Runs once the connection is accepted (the socket init handler runs before, on a closed socket).
        server_.set_tcp_pre_init_handler([this](connection_hdl hdl) {
            boost::system::error_code ignored;
            server_.get_con_from_hdl(hdl)->get_socket().set_option(boost::asio::ip::tcp::no_delay(true), ignored);
        });
        server_.set_validate_handler([this](connection_hdl hdl) {
            const std::string& resource = server_.get_con_from_hdl(hdl)->get_resource();
            return resource == "/echo" || resource == "/chat";
        });
        server_.set_open_handler([this](connection_hdl hdl) {
            if (server_.get_con_from_hdl(hdl)->get_resource() == "/chat") chat_.insert(hdl);
        });
        server_.set_close_handler([this](connection_hdl hdl) { chat_.erase(hdl); });
        server_.set_fail_handler([this](connection_hdl hdl) { chat_.erase(hdl); });
        server_.set_message_handler([this](connection_hdl hdl, typename server::message_ptr msg) { on_message(hdl, msg); });
        server_.listen(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
        server_.start_accept();
    }

    std::uint16_t port() {
        websocketpp::lib::asio::error_code ec;
        return server_.get_local_endpoint(ec).port();
    }

    void run() {
        boost::asio::signal_set signals(server_.get_io_service(), SIGINT, SIGTERM);
        signals.async_wait([this](const boost::system::error_code&, int) { server_.stop(); });
        server_.run();
    }

private:
    void on_message(connection_hdl hdl, const typename server::message_ptr& msg) {
        websocketpp::lib::error_code ec;
        if (server_.get_con_from_hdl(hdl)->get_resource() == "/echo") {
            server_.send(hdl, msg->get_payload(), msg->get_opcode(), ec);  // as echo_server does
            return;
        }
        // Compressed for each member that agreed to it; sent as it came to the others.
        msg->set_compressed(true);
        for (const connection_hdl& member : chat_) server_.send(member, msg, ec);  // as broadcast_server does
    }

    server server_;
    std::set<connection_hdl, std::owner_less<connection_hdl>> chat_;
};

[[noreturn]] void usage(const char* program) {
    std::fprintf(stderr, "usage: %s --port N [--deflate]\n", program);
    std::exit(2);
}

template <class Config>
int serve(std::uint16_t port) {
    bench_server<Config> s(port);
    std::printf("listening on %u\n", static_cast<unsigned>(s.port()));
    std::fflush(stdout);
    s.run();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    bool deflate = false;
    const char* port_text = nullptr;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--deflate") deflate = true;
        else if (a == "--port" && i + 1 < argc) port_text = argv[++i];
        else usage(argv[0]);
    }
    if (!port_text) usage(argv[0]);
    const std::string_view text = port_text;
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > 65535) {
        std::fprintf(stderr, "bad port: %s\n", port_text);
        return 2;
    }
    const auto port = static_cast<std::uint16_t>(value);
    return deflate ? serve<deflate_config>(port) : serve<websocketpp::config::asio>(port);
}
