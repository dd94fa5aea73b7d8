// The opening handshake of one connection: read the request under the size and time limits, route
// it, validate it, resolve its typed query parameters, and answer 101, a page, or an error. The
// time limit is the connection's own deadline (session/connection_base.hpp), armed by the server
// before a TLS handshake if there is one: when it passes, the stream is closed under the handshake,
// whatever the client does.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/buffer.hpp>                  // asio::buffer
#include <asio/write.hpp>                   // asio::async_write answers
#include <algorithm>                        // std::min
#include <atomic>                           // std::atomic<bool> stopping flag
#include <exception>                        // std::exception of a page handler
#include <functional>                       // std::less<> for heterogeneous route lookup
#include <map>                              // std::map routes and pages
#include <memory>                           // std::shared_ptr endpoints
#include <optional>                         // std::optional results
#include <string>                           // std::string responses
#include <string_view>                      // std::string_view bytes behind the request

#include "starling/http/request_parser.hpp"
#include "starling/http/response.hpp"
#include "starling/logging.hpp"
#include "starling/options.hpp"
#include "starling/protocol/close.hpp"
#include "starling/protocol/close_code.hpp"
#include "starling/protocol/deflate_codec.hpp"
#include "starling/protocol/permessage_deflate.hpp"
#include "starling/protocol/error.hpp"
#include "starling/protocol/handshake.hpp"
#include "starling/protocol/query.hpp"
#include "starling/runtime/endpoint_connection.hpp"
#include "starling/runtime/endpoint_state.hpp"
#include "starling/runtime/metrics.hpp"
#include "starling/task.hpp"

namespace starling::detail {

using route_table = std::map<std::string, std::shared_ptr<endpoint_state>, std::less<>>;
using page_table = std::map<std::string, http::page_handler, std::less<>>;

/// What the handshake needs of the server.
struct upgrade_settings {
    const route_table& routes;
    const page_table& pages;
    const server_options& options;
    const std::atomic<bool>& stopping;
    const log_channel* log;
    handshake_refusals& refusals;
};

/// How a handshake ended.
struct upgrade_outcome {
    bool upgraded = false;  // answered 101: the connection is attached to its endpoint and can run
    /// Upgraded, but to be closed at once: typed query parameters that did not resolve, on an endpoint
    /// that accepts and then closes (1008).
    std::optional<close_reason> close_at_once;
};

/// Writes `response`, ends the stream and closes it.
template <class Stream>
task<> respond_and_close(Stream& stream, std::string response) {
    co_await asio::async_write(stream, asio::buffer(response), as_tuple_awaitable);
    std::error_code ec;
    stream.shutdown_send(ec);
    stream.close(ec);
}

/// A page's answer: GET only (HEAD gets the head without the body); a handler that throws is a 500.
inline std::string answer_page(const http::page_handler& page, const http::request& request, const log_channel* log) {
    if (request.method != "GET" && request.method != "HEAD")
        return make_response(405, "text/plain; charset=utf-8", "Method Not Allowed", "Allow: GET, HEAD\r\n");
    http::response answer;
    try {
        answer = page(request);
    } catch (const std::exception& e) {
        if (log) log->write(log_level::error, "page_threw", request.path(), {}, "page " + std::string(request.path()) + " threw: " + e.what());
        return make_response(500, "text/plain; charset=utf-8", "Internal Server Error");
    } catch (...) {
        if (log) log->write(log_level::error, "page_threw", request.path(), {}, "page " + std::string(request.path()) + " threw a non-exception");
        return make_response(500, "text/plain; charset=utf-8", "Internal Server Error");
    }
    std::string out = make_response(answer.status, answer.content_type, answer.body);
    if (request.method == "HEAD") out.resize(out.size() - answer.body.size());
    return out;
}

/// The permessage-deflate agreement for `request`, if compression is on, built in, and offered.
inline std::optional<deflate_agreement> agree_compression(const http::request& request, const compression_options& options) {
    if constexpr (!deflate_available) return std::nullopt;
    return negotiate_deflate(request.fields.get_all("Sec-WebSocket-Extensions"), options);
}

/// Runs handshakes for a server.
class upgrader {
public:
    explicit upgrader(upgrade_settings settings) noexcept : settings_(settings) {}

    /// Runs the handshake on `connection`'s stream, within the handshake timeout, which the caller
    /// armed (connection_base::begin_handshake) before the stream's own opening (a TLS handshake), so
    /// that one deadline covers both. Its buffers are gone when it returns: an idle connection costs
    /// only what it keeps.
    template <class Stream>
    task<upgrade_outcome> upgrade(endpoint_connection<Stream>& connection) const {
        const upgrade_settings& settings = settings_;
        Stream& stream = connection.stream();

        http::request_parser parser(settings.options.max_header_bytes);
        std::string buffer(std::min<std::size_t>(settings.options.max_header_bytes, 4096), '\0');
        std::string_view after_head;
        for (;;) {
            auto [ec, n] = co_await stream.async_read_some(asio::buffer(buffer), as_tuple_awaitable);
            if (ec) co_return upgrade_outcome{};  // dropped, or too slow (the deadline closed the stream)
            const std::string_view chunk(buffer.data(), n);
            const auto result = parser.put(chunk);
            if (result.status == http::parse_status::failed) {
                co_await refuse(stream, make_error_response(parser.error()));
                co_return upgrade_outcome{};
            }
            if (result.status == http::parse_status::complete) {
                after_head = chunk.substr(result.consumed);
                break;
            }
        }

        const http::request& request = parser.get();
        if (settings.stopping) {
            co_await refuse(stream, make_response(503, "text/plain", "Server shutting down"));
            co_return upgrade_outcome{};
        }
        if (!request.fields.has_token("Upgrade", "websocket")) {
            if (const auto page = settings.pages.find(request.path()); page != settings.pages.end()) {
                co_await respond_and_close(stream, answer_page(page->second, request, settings.log));  // a page, not a refusal
                co_return upgrade_outcome{};
            }
        }
        const auto route = settings.routes.find(request.path());
        if (route == settings.routes.end()) {
            co_await refuse(stream, make_error_response(make_error_code(error::not_found)));
            co_return upgrade_outcome{};
        }
        if (const auto ec = validate_upgrade_request(request); ec) {
            co_await refuse(stream, make_error_response(ec));
            co_return upgrade_outcome{};
        }
        const endpoint_state& endpoint = *route->second;
        auto query = query_params::parse(request.query_string());
        std::optional<std::string> rejection = endpoint.check_query(query);
        if (rejection && endpoint.options.invalid_query == invalid_query_policy::reject) {
            co_await refuse(stream, make_response(400, "text/plain", *rejection));
            co_return upgrade_outcome{};
        }
        const auto compression = agree_compression(request, endpoint.options.compression);
        const std::string accept = make_accept_response(*request.fields.get("Sec-WebSocket-Key"),
                                                        compression ? deflate_response_field(*compression) : std::string());
        auto [write_ec, written] = co_await asio::async_write(stream, asio::buffer(accept), as_tuple_awaitable);
        if (write_ec) co_return upgrade_outcome{};

        if (compression) connection.set_compression(*compression, endpoint.options.compression);
        connection.attach(route->second, parser.release(), std::move(query), after_head);
        upgrade_outcome outcome{true, std::nullopt};
        if (rejection) outcome.close_at_once = close_reason{static_cast<std::uint16_t>(close_code::policy_violation), std::move(*rejection)};
    co_return outcome;
    }

private:
    /// Answers an upgrade request with an HTTP error, counted under its status.
    template <class Stream>
    task<> refuse(Stream& stream, std::string response) const {
        // "HTTP/1.1 NNN ...": the status is the three digits after the version.
        const int status = response.size() > 12 ? (response[9] - '0') * 100 + (response[10] - '0') * 10 + (response[11] - '0') : 0;
        settings_.refusals.count(status);
        co_await respond_and_close(stream, std::move(response));
    }

    upgrade_settings settings_;
};

}  // namespace starling::detail
