// Benchmark peer: the same two endpoints as Starling's examples, written with websocketpp (Asio
// transport from Boost) the way its own examples are (echo_server for /echo, broadcast_server for
// /chat), on one thread.
//   /echo  sends every message back, text as text and binary as binary
//   /chat  sends every message to every connected client, the sender included
//   websocketpp_server --port N      prints `listening on N` (the real port, also for 0) once it listens
//
// Differences from the examples, each applied to every server in the comparison alike: logging is off
// (the examples log every frame), the broadcast runs inline on the one I/O thread instead of on a
// second thread behind a queue, and accepted sockets get TCP_NODELAY.

#define BOOST_BIND_GLOBAL_PLACEHOLDERS  // quiet Boost's note about websocketpp's use of boost::bind
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include <boost/asio/signal_set.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <string_view>

using server = websocketpp::server<websocketpp::config::asio>;
using websocketpp::connection_hdl;

namespace {

class bench_server {
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
        server_.set_message_handler([this](connection_hdl hdl, server::message_ptr msg) { on_message(hdl, msg); });
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
    void on_message(connection_hdl hdl, const server::message_ptr& msg) {
        websocketpp::lib::error_code ec;
        if (server_.get_con_from_hdl(hdl)->get_resource() == "/echo") {
            server_.send(hdl, msg->get_payload(), msg->get_opcode(), ec);  // as echo_server does
            return;
        }
        for (const connection_hdl& member : chat_) server_.send(member, msg, ec);  // as broadcast_server does
    }

    server server_;
    std::set<connection_hdl, std::owner_less<connection_hdl>> chat_;
};

std::uint16_t parse_port(int argc, char** argv) {
    if (argc != 3 || std::string_view(argv[1]) != "--port") {
        std::fprintf(stderr, "usage: %s --port N\n", argv[0]);
        std::exit(2);
    }
    const std::string_view text = argv[2];
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > 65535) {
        std::fprintf(stderr, "bad port: %s\n", argv[2]);
        std::exit(2);
    }
    return static_cast<std::uint16_t>(value);
}

}  // namespace

int main(int argc, char** argv) {
    bench_server s(parse_port(argc, argv));
    std::printf("listening on %u\n", static_cast<unsigned>(s.port()));
    std::fflush(stdout);
    s.run();
    return 0;
}
