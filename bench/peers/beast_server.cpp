// Benchmark peer: the same two endpoints as Starling's examples, written with Boost.Beast the way
// Beast's own examples are (websocket_server_async for /echo, chat-multi for /chat), on one thread.
//   /echo  sends every message back, text as text and binary as binary
//   /chat  sends every message to every connected client, the sender included
//   beast_server --port N [--deflate] [--tls-cert FILE --tls-key FILE]
//       prints `listening on N` (the real port, also for 0) once it listens; --deflate accepts
//       permessage-deflate as Starling's default does (no context takeover either way, level 1,
//       memLevel 8), for the compression rows; with a PEM certificate chain and key it serves wss://
//       (boost::asio::ssl over OpenSSL, its defaults, as Beast's advanced_server_flex example does)
//
// Like those examples: an HTTP session reads the upgrade request and routes it by target; a WebSocket
// session reads one message at a time; a chat message becomes one shared immutable string queued on
// every session, each session writing its queue in order. The sessions are templates over the stream
// under the WebSocket (TCP, or TLS over TCP), as in advanced_server_flex; a process serves one kind.
//
// Two deviations from the examples. TCP_NODELAY on accepted sockets, as every server in the comparison
// has. And auto_fragment(false): by default Beast splits every outgoing message into 4 KiB frames, one
// write each, which halves its 16 KiB and 1 MiB echo throughput here; a user who cares about speed turns
// that off, so the comparison does too.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

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

struct outgoing {
    std::shared_ptr<const std::string> data;
    bool text;
};

/// What the room sees of a chat session, whichever stream it runs on.
class chat_member {
public:
    virtual void send(const outgoing& message) = 0;

protected:
    ~chat_member() = default;
};

/// The chat room: every session on /chat. One thread, so no lock.
class chat_room {
public:
    void join(chat_member* s) { sessions_.insert(s); }
    void leave(chat_member* s) { sessions_.erase(s); }
    void send(std::string message, bool text);

private:
    std::unordered_set<chat_member*> sessions_;
};

/// /echo: read a message, write it back with the same type, repeat (websocket_server_async).
template <class Next>
class echo_session : public std::enable_shared_from_this<echo_session<Next>> {
public:
    explicit echo_session(Next&& stream) : ws_(std::move(stream)) {}

    void run(http::request<http::string_body> req) {
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.auto_fragment(false);
        if (deflate_enabled) ws_.set_option(deflate_options());
        ws_.async_accept(req, beast::bind_front_handler(&echo_session::on_accept, this->shared_from_this()));
    }

private:
    void on_accept(beast::error_code ec) {
        if (ec) return;
        do_read();
    }
    void do_read() { ws_.async_read(buffer_, beast::bind_front_handler(&echo_session::on_read, this->shared_from_this())); }
    void on_read(beast::error_code ec, std::size_t) {
        if (ec) return;
        ws_.text(ws_.got_text());
        ws_.async_write(buffer_.data(), beast::bind_front_handler(&echo_session::on_write, this->shared_from_this()));
    }
    void on_write(beast::error_code ec, std::size_t) {
        if (ec) return;
        buffer_.consume(buffer_.size());
        do_read();
    }

    websocket::stream<Next> ws_;
    beast::flat_buffer buffer_;
};

/// /chat: read messages and hand them to the room; write the session's queue one message at a time
/// (chat-multi's websocket_session).
template <class Next>
class chat_session final : public chat_member, public std::enable_shared_from_this<chat_session<Next>> {
public:
    chat_session(Next&& stream, chat_room& room) : ws_(std::move(stream)), room_(room) {}
    ~chat_session() { room_.leave(this); }

    void run(http::request<http::string_body> req) {
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.auto_fragment(false);
        if (deflate_enabled) ws_.set_option(deflate_options());
        ws_.async_accept(req, beast::bind_front_handler(&chat_session::on_accept, this->shared_from_this()));
    }

    void send(const outgoing& message) override {
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
    void do_read() { ws_.async_read(buffer_, beast::bind_front_handler(&chat_session::on_read, this->shared_from_this())); }
    void on_read(beast::error_code ec, std::size_t) {
        if (ec) return;
        room_.send(beast::buffers_to_string(buffer_.data()), ws_.got_text());
        buffer_.consume(buffer_.size());
        do_read();
    }
    void do_write() {
        ws_.text(queue_.front().text);
        ws_.async_write(net::buffer(*queue_.front().data),
                        beast::bind_front_handler(&chat_session::on_write, this->shared_from_this()));
    }
    void on_write(beast::error_code ec, std::size_t) {
        if (ec) return;
        queue_.erase(queue_.begin());
        if (!queue_.empty()) do_write();
    }

    websocket::stream<Next> ws_;
    chat_room& room_;
    beast::flat_buffer buffer_;
    std::vector<outgoing> queue_;
};

void chat_room::send(std::string message, bool text) {
    const outgoing shared{std::make_shared<const std::string>(std::move(message)), text};
    for (chat_member* s : sessions_) s->send(shared);
}

/// Completes the TLS handshake (on a TLS stream), reads the upgrade request and hands the stream to
/// the session for its target.
template <class Next>
class http_session : public std::enable_shared_from_this<http_session<Next>> {
public:
    http_session(Next&& stream, chat_room& room) : stream_(std::move(stream)), room_(room) {}

    void run() {
        beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
        if constexpr (std::is_same_v<Next, tls_stream>)
            stream_.async_handshake(net::ssl::stream_base::server,
                                    beast::bind_front_handler(&http_session::on_handshake, this->shared_from_this()));
        else
            do_read();
    }

private:
    void on_handshake(beast::error_code ec) {
        if (!ec) do_read();
    }
    void do_read() {
        http::async_read(stream_, buffer_, req_, beast::bind_front_handler(&http_session::on_read, this->shared_from_this()));
    }
    void on_read(beast::error_code ec, std::size_t) {
        if (ec) return;
        beast::get_lowest_layer(stream_).expires_never();
        if (websocket::is_upgrade(req_)) {
            if (req_.target() == "/echo") return std::make_shared<echo_session<Next>>(std::move(stream_))->run(std::move(req_));
            if (req_.target() == "/chat") return std::make_shared<chat_session<Next>>(std::move(stream_), room_)->run(std::move(req_));
        }
        auto res = std::make_shared<http::response<http::string_body>>(http::status::not_found, req_.version());
        res->set(http::field::content_type, "text/plain");
        res->body() = "not found";
        res->keep_alive(false);
        res->prepare_payload();
        http::async_write(stream_, *res, [self = this->shared_from_this(), res](beast::error_code, std::size_t) {
            beast::error_code ignored;
            beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
        });
    }

    Next stream_;
    chat_room& room_;
    beast::flat_buffer buffer_;
    http::request<http::string_body> req_;
};

/// Accepts connections (websocket_server_async's listener).
class listener : public std::enable_shared_from_this<listener> {
public:
    listener(net::io_context& ioc, tcp::endpoint endpoint, chat_room& room, net::ssl::context* tls)
        : ioc_(ioc), acceptor_(ioc), room_(room), tls_(tls) {
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
            if (tls_)
                std::make_shared<http_session<tls_stream>>(tls_stream(std::move(socket), *tls_), room_)->run();
            else
                std::make_shared<http_session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), room_)->run();
        }
        do_accept();
    }

    net::io_context& ioc_;
    tcp::acceptor acceptor_;
    chat_room& room_;
    net::ssl::context* tls_;  // null: plain ws://
};

struct options {
    unsigned short port = 0;
    std::string tls_cert, tls_key;  // both or neither
};

[[noreturn]] void usage(const char* program) {
    std::fprintf(stderr, "usage: %s --port N [--deflate] [--tls-cert FILE --tls-key FILE]\n", program);
    std::exit(2);
}

options parse_options(int argc, char** argv) {
    options o;
    bool have_port = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--deflate") {
            deflate_enabled = true;
        } else if (a == "--port" && has_value) {
            const std::string_view text = argv[++i];
            unsigned value = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
            if (ec != std::errc() || end != text.data() + text.size() || value > 65535) {
                std::fprintf(stderr, "bad port: %s\n", argv[i]);
                std::exit(2);
            }
            o.port = static_cast<unsigned short>(value);
            have_port = true;
        } else if (a == "--tls-cert" && has_value) {
            o.tls_cert = argv[++i];
        } else if (a == "--tls-key" && has_value) {
            o.tls_key = argv[++i];
        } else {
            usage(argv[0]);
        }
    }
    if (!have_port || o.tls_cert.empty() != o.tls_key.empty()) usage(argv[0]);
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    const options o = parse_options(argc, argv);
    std::optional<net::ssl::context> tls;
    if (!o.tls_cert.empty()) {
        tls.emplace(net::ssl::context::tls_server);
        tls->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                         net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
        beast::error_code ec;
        tls->use_certificate_chain_file(o.tls_cert, ec);
        if (!ec) tls->use_private_key_file(o.tls_key, net::ssl::context::pem, ec);
        if (ec) {
            std::fprintf(stderr, "tls: %s\n", ec.message().c_str());
            return 1;
        }
    }
    net::io_context ioc{1};
    chat_room room;
    auto l = std::make_shared<listener>(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), o.port), room,
                                        tls ? &*tls : nullptr);
    l->run();
    std::printf("listening on %u\n", static_cast<unsigned>(l->port()));
    std::fflush(stdout);
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
    ioc.run();
    return 0;
}
