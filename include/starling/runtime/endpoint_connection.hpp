// A connection of an endpoint: the engine (session/connection.hpp) joined to what the user wrote for
// that endpoint. It owns the connection's one `websocket` handle, calls on_connect, the handler and
// on_close through it, turns what they throw into a close code, and keeps the connection in the
// endpoint's registry (what broadcasts reach) and its topics from its greeting to its end.
#pragma once

#include <exception>    // std::exception_ptr, std::rethrow_exception
#include <memory>       // std::shared_ptr of the endpoint
#include <optional>     // std::optional handle, made at the upgrade
#include <string>       // std::string texts
#include <string_view>  // std::string_view bytes behind the handshake
#include <utility>      // std::move

#include "starling/api/json.hpp"  // invalid_json, closed with 1007
#include "starling/api/websocket.hpp"
#include "starling/http/request.hpp"
#include "starling/protocol/close.hpp"
#include "starling/runtime/endpoint_state.hpp"
#include "starling/session/connection.hpp"

namespace starling::detail {

template <class Stream>
class endpoint_connection final : public connection<Stream> {
public:
    endpoint_connection(Stream stream, asio::io_context& context) : connection<Stream>(std::move(stream), context) {}

    /// The handshake routed `request` to `endpoint` and answered 101: the connection opens, with
    /// `already_read` (bytes behind the request) as its first input.
    /// The handshake's decisions come along: the state the authentication hook gave it, and the
    /// index of the chosen subprotocol (or -1).
    void attach(std::shared_ptr<endpoint_state> endpoint, http::request request, starling::query_params query,
                std::string_view already_read, state_slot state = {}, int subprotocol = -1) {
        endpoint_ = std::move(endpoint);
        const std::string path(request.path());
        this->upgraded(endpoint_->options, path, std::move(query), std::move(request.fields),
                       &endpoint_->metrics.for_worker(this->context()));
        this->set_already_read(already_read);
        handle_.emplace(*this, *endpoint_);
        handle_->adopt_handshake(std::move(state), subprotocol);
    }

private:
    task<std::optional<std::string>> greet() override {
        if (!endpoint_->on_connect) co_return std::nullopt;
        co_return co_await endpoint_->on_connect(*handle_);
    }

    void joined() override {
        endpoint_->registry.add(this->context(), this->id(), this->shared_from_this());
        this->registered = true;
        handle_->topics_reachable();
    }

    // The handler's own coroutine, handed back: no frame of ours stays alive beside it.
    task<> handle() override { return endpoint_->handler(*handle_); }

    close_reason failed(std::exception_ptr error) noexcept override {
        std::string line;
        try {
            std::rethrow_exception(error);
        } catch (const invalid_json& e) {
            return {static_cast<std::uint16_t>(close_code::invalid_payload), e.what()};
        } catch (const std::exception& e) {
            line = "handler for " + endpoint_->path + " threw: " + e.what();
        } catch (...) {
            line = "handler for " + endpoint_->path + " threw a non-exception";
        }
        endpoint_->log_line(log_level::error, "handler_threw", this->id(), line);  // never throws
        return {static_cast<std::uint16_t>(close_code::internal_error), "internal error"};
    }

    task<std::optional<std::string>> farewell() override {
        if (!endpoint_ || !endpoint_->on_close) co_return std::nullopt;
        try {
            co_return co_await endpoint_->on_close(*handle_);
        } catch (const std::exception& e) {
            endpoint_->log_line(log_level::error, "on_close_threw", this->id(), "on_close for " + endpoint_->path + " threw: " + e.what());
        } catch (...) {
            endpoint_->log_line(log_level::error, "on_close_threw", this->id(), "on_close for " + endpoint_->path + " threw a non-exception");
        }
        co_return std::nullopt;
    }

    void left() override {
        if (this->registered) endpoint_->registry.remove(this->context(), this->id(), *this);
        if (handle_) handle_->leave_topics();  // every topic, however the connection ended
    }

    std::shared_ptr<endpoint_state> endpoint_;
    std::optional<starling::websocket> handle_;
};

}  // namespace starling::detail
