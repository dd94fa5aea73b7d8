// A connection made by a client: the engine (session/connection.hpp) with a client's rules. Its
// frames are masked, the server's must not be; no handler runs inside it (the user's code drives it
// from outside, through a client_websocket); it owns its limits, since there is no endpoint to hold
// them; and its end can be awaited.
#pragma once

#include <memory>       // std::shared_ptr
#include <optional>     // std::optional greeting and farewell (none)
#include <string>       // std::string path
#include <string_view>  // std::string_view bytes behind the handshake
#include <utility>      // std::move

#include "starling/http/headers.hpp"
#include "starling/options.hpp"
#include "starling/protocol/permessage_deflate.hpp"
#include "starling/protocol/query.hpp"
#include "starling/session/async_event.hpp"
#include "starling/session/connection.hpp"

namespace starling::detail {

/// What a client's handle needs of its connection whatever the stream: to await its end.
class client_end {
public:
    /// Returns once the connection is over: the close handshake done (or given up), the stream closed.
    virtual task<> wait_over() = 0;
    virtual bool is_over() const noexcept = 0;

protected:
    ~client_end() = default;
};

template <class Stream>
class client_connection final : public connection<Stream>, public client_end {
public:
    client_connection(Stream stream, asio::io_context& context, const websocket_options& options)
        : connection<Stream>(std::move(stream), context), options_(options), over_(context.get_executor()) {
        this->queue_.mask_frames();
    }

    /// The server accepted the upgrade: the connection opens, its limits and the compression agreed
    /// (if any) in force, `already_read` (frames the server sent right behind its 101) its first input.
    void opened(std::string path, http::headers response_fields, std::string_view already_read,
                const std::optional<deflate_agreement>& compression, const client_compression_options& offered) {
        if (compression) this->set_compression(*compression, role::client, tuning_of(offered));
        this->upgraded(options_, std::move(path), starling::query_params{}, std::move(response_fields));
        this->set_already_read(already_read, role::client);
    }

    task<> wait_over() override {
        auto self = this->shared_from_this();  // the handle may go while this waits
        while (!is_over_) co_await over_.wait();
    }
    bool is_over() const noexcept override { return is_over_; }

private:
    bool has_handler() const noexcept override { return false; }
    task<std::optional<std::string>> greet() override { co_return std::nullopt; }
    void joined() override {}
    task<> handle() override { co_return; }
    close_reason failed(std::exception_ptr) noexcept override {
        return {static_cast<std::uint16_t>(close_code::internal_error), "internal error"};
    }
    task<std::optional<std::string>> farewell() override { co_return std::nullopt; }
    void left() override {
        is_over_ = true;
        over_.notify();
    }

    websocket_options options_;  // the connection points at its limits: they live here
    async_event over_;
    bool is_over_ = false;
};

}  // namespace starling::detail
