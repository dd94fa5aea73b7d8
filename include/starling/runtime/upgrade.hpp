// The opening handshake of one connection: read the request under the size and time limits, route
// it, validate it, check its origin, choose its subprotocol, resolve its typed parameters, run the
// endpoint's authentication hook, and answer 101, a page, or an error. The
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

#include "starling/api/handshake_request.hpp"
#include "starling/http/origin.hpp"
#include "starling/http/path_template.hpp"
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
#include "starling/protocol/subprotocol.hpp"
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

/// The endpoint serving `path`: the one registered at exactly that path, else the first template
/// (in the order of their paths) that matches it. Nothing: 404.
inline const std::shared_ptr<endpoint_state>* find_route(const route_table& routes, std::string_view path) {
    if (const auto exact = routes.find(path); exact != routes.end()) return &exact->second;
    for (const auto& [pattern, endpoint] : routes)
        if (http::is_path_template(pattern) && http::matches_path_template(pattern, path)) return &endpoint;
    return nullptr;
}

/// Runs handshakes for a server.
class upgrader {
public:
    explicit upgrader(upgrade_settings settings) noexcept : settings_(settings) {}

    /// Runs the handshake on `connection`'s stream, within the handshake timeout, which the caller
    /// armed (connection_base::begin_handshake) before the stream's own opening (a TLS handshake), so
    /// that one deadline covers both. Its buffers are gone when it returns: an idle connection costs
    /// only what it keeps.
    /// `over_ip_cap`: the client's address has more open connections than the server allows, so the
    /// request is answered 429 once it is routed.
    template <class Stream>
    task<upgrade_outcome> upgrade(endpoint_connection<Stream>& connection, bool over_ip_cap = false) const {
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
                co_await refuse(stream, parser.error());
                co_return upgrade_outcome{};
            }
            if (result.status == http::parse_status::complete) {
                after_head = chunk.substr(result.consumed);
                break;
            }
        }

        const http::request& request = parser.get();
        if (settings.stopping) {
            co_await refuse(stream, 503, make_response(503, "text/plain", "Server shutting down"));
            co_return upgrade_outcome{};
        }
        if (!request.fields.has_token("Upgrade", "websocket")) {
            if (const auto page = settings.pages.find(request.path()); page != settings.pages.end()) {
                co_await respond_and_close(stream, answer_page(page->second, request, settings.log));  // a page, not a refusal
                co_return upgrade_outcome{};
            }
        }
        const std::shared_ptr<endpoint_state>* route = find_route(settings.routes, request.path());
        if (!route) {
            co_await refuse(stream, make_error_code(error::not_found));
            co_return upgrade_outcome{};
        }
        if (const auto ec = validate_upgrade_request(request); ec) {
            co_await refuse(stream, ec);
            co_return upgrade_outcome{};
        }
        if (over_ip_cap) {
            co_await refuse(stream, 429, make_response(429, "text/plain; charset=utf-8", "Too many connections from this address"));
            co_return upgrade_outcome{};
        }
        endpoint_state& endpoint = **route;
        auto query = query_params::parse(request.query_string());
        const request_values values{&query, &request.fields, request.path(), endpoint.path};
        endpoint_checks checked = check_endpoint(endpoint, request, values);
        if (checked.refused_status != 0) {
            co_await refuse(stream, checked.refused_status, std::move(checked.refusal_response));
            co_return upgrade_outcome{};
        }
        state_slot state;
        if (endpoint.hook) {
            std::optional<hook_outcome> decided = co_await run_hook(endpoint, request, values, connection.client());
            if (!decided) {
                co_await refuse(stream, 500, make_response(500, "text/plain; charset=utf-8", "Internal Server Error"));
                co_return upgrade_outcome{};
            }
            if (decided->refused) {
                endpoint.metrics.for_worker(connection.context()).auth_refusals.add();
                co_await refuse(stream, *decided->refused);
                co_return upgrade_outcome{};
            }
            state = std::move(decided->state);
        }
        const int subprotocol = checked.subprotocol;
        std::string agreed;  // the 101's lines for what was agreed: the subprotocol, the compression
        if (subprotocol >= 0) agreed = "Sec-WebSocket-Protocol: " + endpoint.subprotocols[static_cast<std::size_t>(subprotocol)] + "\r\n";
        const auto compression = agree_compression(request, endpoint.options.compression);
        if (compression) agreed += deflate_response_field(*compression);
        const std::string accept = make_accept_response(*request.fields.get("Sec-WebSocket-Key"), agreed);
        auto [write_ec, written] = co_await asio::async_write(stream, asio::buffer(accept), as_tuple_awaitable);
        if (write_ec) co_return upgrade_outcome{};

        if (compression) connection.set_compression(*compression, role::server, tuning_of(endpoint.options.compression));
        connection.attach(*route, parser.release(), std::move(query), after_head, std::move(state), subprotocol);
        upgrade_outcome outcome{true, std::nullopt};
        if (checked.rejection)
            outcome.close_at_once = close_reason{static_cast<std::uint16_t>(close_code::policy_violation), std::move(*checked.rejection)};
        co_return outcome;
    }

private:
    /// What the endpoint's own checks that need no waiting decided about a valid upgrade request.
    struct endpoint_checks {
        int refused_status = 0;  // non-zero: refused, with this status and `refusal_response`
        std::string refusal_response;
        int subprotocol = -1;  // the index of the chosen one in the endpoint's list, or none
        /// Typed parameters that did not resolve, on an endpoint whose invalid_query policy is to
        /// accept and close with 1008.
        std::optional<std::string> rejection;
    };

    /// Origin (403), subprotocol (400), typed parameters (400: the hook's always, the others per
    /// invalid_query). Not a coroutine: an endpoint without a hook adds no frame to the handshake,
    /// whose freed frames Asio's allocator would hand on to the connection's long-lived ones.
    static endpoint_checks check_endpoint(const endpoint_state& endpoint, const http::request& request,
                                          const request_values& values) {
        endpoint_checks checks;
        const auto refuse_with = [&](int status, std::string body, const char* type = "text/plain; charset=utf-8") {
            checks.refused_status = status;
            checks.refusal_response = make_response(status, type, body);
            return std::move(checks);
        };
        if (!origin_accepted(endpoint, request)) return refuse_with(403, "Origin not allowed");
        if (!endpoint.subprotocols.empty()) {
            const subprotocol_choice choice = choose_subprotocol(request.fields, endpoint.subprotocols);
            if (choice.chosen) checks.subprotocol = static_cast<int>(*choice.chosen);
            else if (choice.offered && endpoint.refuse_unknown_subprotocol)
                return refuse_with(400, unsupported_subprotocol_message(endpoint.subprotocols));
        }
        // The hook's own parameters are needed before the upgrade, whatever invalid_query says.
        if (endpoint.hook_checks.check_request)
            if (auto problem = endpoint.hook_checks.check_request(values)) return refuse_with(400, std::move(*problem), "text/plain");
        if (auto problem = endpoint.check_request(values)) {
            if (endpoint.options.invalid_query == invalid_query_policy::reject) return refuse_with(400, std::move(*problem), "text/plain");
            checks.rejection = std::move(problem);  // accepted, then closed with 1008
        }
        return checks;
    }

    /// Answers an upgrade request with an HTTP error, counted under its status.
    template <class Stream>
    task<> refuse(Stream& stream, int status, std::string response) const {
        settings_.refusals.count(status);
        co_await respond_and_close(stream, std::move(response));
    }
    template <class Stream>
    task<> refuse(Stream& stream, std::error_code ec) const {
        return refuse(stream, error_response_status(ec), make_error_response(ec));
    }
    /// The hook's refusal as an answer. HTTP requires a 401 to say how to authenticate: one that does
    /// not gets "WWW-Authenticate: Bearer".
    template <class Stream>
    task<> refuse(Stream& stream, refusal& refused) const {
        const int status = refused.status >= 400 && refused.status <= 599 ? refused.status : 500;
        std::string extra = std::move(refused.headers);
        if (!extra.empty() && !extra.ends_with("\r\n")) extra += "\r\n";
        if (status == 401 && !http::detail::iequals(extra.substr(0, 17), "WWW-Authenticate:") &&
            extra.find("\r\nWWW-Authenticate:") == std::string::npos)
            extra += "WWW-Authenticate: Bearer\r\n";
        return refuse(stream, status, make_response(status, "text/plain; charset=utf-8", refused.body, extra));
    }

    static bool origin_accepted(const endpoint_state& endpoint, const http::request& request) {
        if (endpoint.allowed_origins.empty()) return true;
        const auto origin = request.fields.get("Origin");
        if (!origin) return endpoint.allow_missing_origin;
        return http::origin_allowed(endpoint.allowed_origins, *origin);
    }

    /// Runs the endpoint's hook; nothing when it threw (logged: the client gets a 500).
    task<std::optional<hook_outcome>> run_hook(const endpoint_state& endpoint, const http::request& request,
                                               const request_values& values, const client_address& client) const {
        const auto query = values.query;
        const handshake_request seen(request, *query, client);
        call_context ctx;
        ctx.request = values;
        ctx.handshake = &seen;
        ctx.globals = endpoint.globals.get();
        ctx.router = endpoint.router_deps.get();
        std::string line;
        try {
            co_return co_await endpoint.hook(ctx);
        } catch (const std::exception& e) {
            line = "authentication hook for " + endpoint.path + " threw: " + e.what();
        } catch (...) {
            line = "authentication hook for " + endpoint.path + " threw a non-exception";
        }
        endpoint.log_line(log_level::error, "hook_threw", {}, line);
        co_return std::nullopt;
    }

    upgrade_settings settings_;
};

}  // namespace starling::detail
