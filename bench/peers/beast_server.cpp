// Benchmark peer: the same two endpoints as Starling's examples, written with Boost.Beast the way
// Beast's own examples are (websocket_server_async for /echo, chat-multi for /chat), on one thread.
//   /echo  sends every message back, text as text and binary as binary
//   /chat  sends every message to every connected client, the sender included
//   beast_server --port N [--deflate]   prints `listening on N` (the real port, also for 0) once it
//                                       listens; --deflate accepts permessage-deflate as Starling's
//                                       default does (no context takeover either way, level 1,
//                                       memLevel 8), for the compression rows
//
// Like those examples: an HTTP session reads the upgrade request and routes it by target; a WebSocket
// session reads one message at a time; a chat message becomes one shared immutable string queued on
// every session, each session writing its queue in order.
//
// Two deviations from the examples. TCP_NODELAY on accepted sockets, as every server in the comparison
// has. And auto_fragment(false): by default Beast splits every outgoing message into 4 KiB frames, one
// write each, which halves its 16 KiB and 1 MiB echo throughput here; a user who cares about speed turns
// that off, so the comparison does too.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

bool deflate_enabled = false;  // --deflate

websocket::permessage_deflate deflate_options() {
    websocket::permessage_deflate pmd;
    pmd.server_enable = true;
    pmd.server_no_context_takeover = true;
    pmd.client_no_context_takeover = true;
    pmd.compLevel = 1;
    pmd.memLevel = 8;
    return pmd;
}

class chat_session;

/// The chat room: every session on /chat. One thread, so no lock.
class chat_room {
public:
    void join(chat_session* s) { sessions_.insert(s); }
    void leave(chat_session* s) { sessions_.erase(s); }
    void send(std::string message, bool text);

private:
    std::unordered_set<chat_session*> sessions_;
};

struct outgoing {
    std::shared_ptr<const std::string> data;
    bool text;
};

/// /echo: read a message, write it back with the same type, repeat (websocket_server_async).
class echo_session : public std::enable_shared_from_this<echo_session> {
public:
    explicit echo_session(tcp::socket&& socket) : ws_(std::move(socket)) {}

    void run(http::request<http::string_body> req) {
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.auto_fragment(false);
        if (deflate_enabled) ws_.set_option(deflate_options());
        ws_.async_accept(req, beast::bind_front_handler(&echo_session::on_accept, shared_from_this()));
    }

private:
    void on_accept(beast::error_code ec) {
        if (ec) return;
        do_read();
    }
    void do_read() { ws_.async_read(buffer_, beast::bind_front_handler(&echo_session::on_read, shared_from_this())); }
    void on_read(beast::error_code ec, std::size_t) {
        if (ec) return;
        ws_.text(ws_.got_text());
        ws_.async_write(buffer_.data(), beast::bind_front_handler(&echo_session::on_write, shared_from_this()));
    }
    void on_write(beast::error_code ec, std::size_t) {
        if (ec) return;
        buffer_.consume(buffer_.size());
        do_read();
    }

    websocket::stream<beast::tcp_stream> ws_;
    beast::flat_buffer buffer_;
};

/// /chat: read messages and hand them to the room; write the session's queue one message at a time
/// (chat-multi's websocket_session).
class chat_session : public std::enable_shared_from_this<chat_session> {
public:
    chat_session(tcp::socket&& socket, chat_room& room) : ws_(std::move(socket)), room_(room) {}
    ~chat_session() { room_.leave(this); }

    void run(http::request<http::string_body> req) {
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.auto_fragment(false);
        if (deflate_enabled) ws_.set_option(deflate_options());
        ws_.async_accept(req, beast::bind_front_handler(&chat_session::on_accept, shared_from_this()));
    }

    void send(const outgoing& message) {
        queue_.push_back(message);
        if (queue_.size() > 1) return;  // already writing
        do_write();
    }

private:
    void on_accept(beast::error_code ec) {
        if (ec) return;
        room_.join(this);
        do_read();
    }
    void do_read() { ws_.async_read(buffer_, beast::bind_front_handler(&chat_session::on_read, shared_from_this())); }
    void on_read(beast::error_code ec, std::size_t) {
        if (ec) return;
        room_.send(beast::buffers_to_string(buffer_.data()), ws_.got_text());
        buffer_.consume(buffer_.size());
        do_read();
    }
    void do_write() {
        ws_.text(queue_.front().text);
        ws_.async_write(net::buffer(*queue_.front().data),
                        beast::bind_front_handler(&chat_session::on_write, shared_from_this()));
    }
    void on_write(beast::error_code ec, std::size_t) {
        if (ec) return;
        queue_.erase(queue_.begin());
        if (!queue_.empty()) do_write();
    }

    websocket::stream<beast::tcp_stream> ws_;
    chat_room& room_;
    beast::flat_buffer buffer_;
    std::vector<outgoing> queue_;
};

void chat_room::send(std::string message, bool text) {
    const outgoing shared{std::make_shared<const std::string>(std::move(message)), text};
    for (chat_session* s : sessions_) s->send(shared);
}

/// Reads the upgrade request and hands the socket to the session for its target.
class http_session : public std::enable_shared_from_this<http_session> {
public:
    http_session(tcp::socket&& socket, chat_room& room) : stream_(std::move(socket)), room_(room) {}

    void run() {
        stream_.expires_after(std::chrono::seconds(30));
        http::async_read(stream_, buffer_, req_, beast::bind_front_handler(&http_session::on_read, shared_from_this()));
    }

private:
    void on_read(beast::error_code ec, std::size_t) {
        if (ec) return;
        stream_.expires_never();
        if (websocket::is_upgrade(req_)) {
            if (req_.target() == "/echo") return std::make_shared<echo_session>(stream_.release_socket())->run(std::move(req_));
            if (req_.target() == "/chat") return std::make_shared<chat_session>(stream_.release_socket(), room_)->run(std::move(req_));
        }
        auto res = std::make_shared<http::response<http::string_body>>(http::status::not_found, req_.version());
        res->set(http::field::content_type, "text/plain");
        res->body() = "not found";
        res->keep_alive(false);
        res->prepare_payload();
        http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code, std::size_t) {
            beast::error_code ignored;
            self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        });
    }

    beast::tcp_stream stream_;
    chat_room& room_;
    beast::flat_buffer buffer_;
    http::request<http::string_body> req_;
};

/// Accepts connections (websocket_server_async's listener).
class listener : public std::enable_shared_from_this<listener> {
public:
    listener(net::io_context& ioc, tcp::endpoint endpoint, chat_room& room) : ioc_(ioc), acceptor_(ioc), room_(room) {
        acceptor_.open(endpoint.protocol());
        acceptor_.set_option(net::socket_base::reuse_address(true));
        acceptor_.bind(endpoint);
        acceptor_.listen(net::socket_base::max_listen_connections);
    }

    unsigned short port() const { return acceptor_.local_endpoint().port(); }
    void run() { do_accept(); }

private:
    void do_accept() {
        acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&listener::on_accept, shared_from_this()));
    }
    void on_accept(beast::error_code ec, tcp::socket socket) {
        if (!ec) {
            socket.set_option(tcp::no_delay(true), ec);
            std::make_shared<http_session>(std::move(socket), room_)->run();
        }
        do_accept();
    }

    net::io_context& ioc_;
    tcp::acceptor acceptor_;
    chat_room& room_;
};

unsigned short parse_port(int argc, char** argv) {
    if (argc == 4 && std::string_view(argv[3]) == "--deflate") {
        deflate_enabled = true;
        argc = 3;
    }
    if (argc != 3 || std::string_view(argv[1]) != "--port") {
        std::fprintf(stderr, "usage: %s --port N [--deflate]\n", argv[0]);
        std::exit(2);
    }
    const std::string_view text = argv[2];
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > 65535) {
        std::fprintf(stderr, "bad port: %s\n", argv[2]);
        std::exit(2);
    }
    return static_cast<unsigned short>(value);
}

}  // namespace

int main(int argc, char** argv) {
    const unsigned short port = parse_port(argc, argv);
    net::io_context ioc{1};
    chat_room room;
    auto l = std::make_shared<listener>(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), port), room);
    l->run();
    std::printf("listening on %u\n", static_cast<unsigned>(l->port()));
    std::fflush(stdout);
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
    ioc.run();
    return 0;
}
