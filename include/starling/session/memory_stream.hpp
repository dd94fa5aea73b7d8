// Two connected in-memory streams, for driving a connection with no socket: unit tests of the engine
// (fragmentation, close, pings, backpressure, deadlines) and an in-process client. Each end offers
// what the engine asks of a stream (see session/tcp_stream.hpp), and behaves as a TCP socket does
// where the engine can tell: each direction holds at most `capacity` bytes, so a writer whose peer
// does not read is refused (would_block) and waits; an operation that can complete at once still
// completes later, through the executor, as a socket's does; shutdown_send gives the peer an end of
// stream after what was already written; close fails this end's operations and the peer's writes,
// and closing with input unread resets the connection (the peer's reads fail, as after a TCP RST).
// Unlike a socket, a pending operation ignores per-operation cancellation.
//
// Both ends run on one executor; nothing here is thread-safe, as nothing on one event loop needs to be.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/any_io_executor.hpp>         // asio::any_io_executor both ends complete on
#include <asio/buffer.hpp>                  // asio::buffer_copy between buffer sequences and the pipe
#include <asio/compose.hpp>                 // asio::async_compose for the waiting operations
#include <asio/error.hpp>                   // would_block, eof, broken_pipe, operation_aborted
#include <asio/post.hpp>                    // asio::post an immediate completion
#include <asio/steady_timer.hpp>            // asio::steady_timer as the wake-up of a waiting operation
#include <algorithm>                        // std::min
#include <chrono>                           // std::chrono::steady_clock::time_point::max
#include <cstddef>                          // std::size_t
#include <memory>                           // std::shared_ptr of the state both ends share
#include <span>                             // std::span of gathered buffers
#include <string>                           // std::string bytes in flight
#include <string_view>                      // std::string_view test helpers
#include <system_error>                     // std::error_code
#include <utility>                          // std::pair, std::move, std::exchange

#include "starling/session/tcp_stream.hpp"  // client_address

namespace starling::detail {

class memory_stream {
public:
    using executor_type = asio::any_io_executor;

    /// Two connected ends on `executor`; each direction buffers at most `capacity` bytes.
    static std::pair<memory_stream, memory_stream> make_pair(const asio::any_io_executor& executor,
                                                             std::size_t capacity = 1024 * 1024) {
        auto state = std::make_shared<shared_state>(executor, capacity);
        return {memory_stream(state, 0), memory_stream(state, 1)};
    }

    executor_type get_executor() const noexcept { return state_->executor; }

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        return asio::async_compose<Token, void(std::error_code, std::size_t)>(
            [state = state_, side = side_, buffers, first = true](auto& self, std::error_code = {}) mutable {
                direction& in = state->into(side);
                if (std::exchange(first, false)) return asio::post(state->executor, std::move(self));
                std::error_code ec;
                const std::size_t n = take(*state, side, buffers, ec);
                if (ec != asio::error::would_block) return self.complete(ec, n);
                in.readable.expires_at(std::chrono::steady_clock::time_point::max());
                in.readable.async_wait(std::move(self));
            },
            token, state_->executor);
    }

    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        return asio::async_compose<Token, void(std::error_code, std::size_t)>(
            [state = state_, side = side_, buffers, first = true](auto& self, std::error_code = {}) mutable {
                if (std::exchange(first, false)) return asio::post(state->executor, std::move(self));
                std::error_code ec;
                const std::size_t n = put(*state, side, buffers, ec);
                if (ec != asio::error::would_block) return self.complete(ec, n);
                direction& out = state->out_of(side);
                out.writable.expires_at(std::chrono::steady_clock::time_point::max());
                out.writable.async_wait(std::move(self));
            },
            token, state_->executor);
    }

    std::size_t read_some(asio::mutable_buffer buffer, std::error_code& ec) { return take(*state_, side_, buffer, ec); }

    std::size_t write_some(std::span<const asio::const_buffer> buffers, std::error_code& ec) {
        return put(*state_, side_, buffers, ec);
    }

    template <class Handler>
    void async_wait_writable(Handler&& handler) {
        asio::async_compose<Handler, void(std::error_code)>(
            [state = state_, side = side_, first = true](auto& self, std::error_code = {}) mutable {
                if (std::exchange(first, false)) return asio::post(state->executor, std::move(self));
                direction& out = state->out_of(side);
                if (state->closed[side]) return self.complete(asio::error::operation_aborted);
                if (out.reader_gone) return self.complete(asio::error::broken_pipe);
                if (out.bytes.size() < state->capacity) return self.complete({});
                out.writable.expires_at(std::chrono::steady_clock::time_point::max());
                out.writable.async_wait(std::move(self));
            },
            handler, state_->executor);
    }

    void shutdown_send(std::error_code& ec) {
        ec = state_->closed[side_] ? asio::error::bad_descriptor : std::error_code();
        direction& out = state_->out_of(side_);
        out.writer_shut = true;
        out.readable.cancel();
    }

    /// This end's pending operations complete with operation_aborted and later ones fail; the peer
    /// reads what was written, then an end of stream, and its writes fail with broken_pipe.
    void close(std::error_code& ec) {
        ec = {};
        if (state_->closed[side_]) return;
        state_->closed[side_] = true;
        direction& out = state_->out_of(side_);
        direction& in = state_->into(side_);
        out.writer_shut = true;
        out.reset = !in.bytes.empty();  // input left unread: the peer is reset, as by TCP
        in.reader_gone = true;
        in.bytes.clear();
        for (direction* d : {&out, &in}) {
            d->readable.cancel();
            d->writable.cancel();
        }
    }
    void close() {
        std::error_code ignored;
        close(ignored);
    }

    client_address remote_address() const { return {"memory", static_cast<std::uint16_t>(side_ == 0 ? 2 : 1)}; }

    // ---- for tests, on the far end ----

    /// Writes all of `bytes` at once, past the capacity if need be (a test's own input is never refused).
    void write_all(std::string_view bytes) {
        direction& out = state_->out_of(side_);
        out.bytes.append(bytes);
        out.readable.cancel();
    }
    /// Everything the peer wrote and this end has not read yet, taken.
    std::string take_all() {
        direction& in = state_->into(side_);
        std::string all = std::move(in.bytes);
        in.bytes.clear();
        in.writable.cancel();
        return all;
    }
    /// Bytes this end wrote that the peer has not read yet.
    std::size_t unread_by_peer() const noexcept { return state_->out_of(side_).bytes.size(); }
    /// Bytes waiting to be read by this end.
    std::size_t available() const noexcept { return state_->into(side_).bytes.size(); }
    /// True once the peer shut down its sending side or closed.
    bool peer_finished_sending() const noexcept { return state_->into(side_).writer_shut; }
    /// True once the peer closed its end.
    bool peer_closed() const noexcept { return state_->closed[1 - side_]; }

private:
    /// Bytes travelling one way.
    struct direction {
        explicit direction(const asio::any_io_executor& executor) : readable(executor), writable(executor) {}
        std::string bytes;
        bool writer_shut = false;  // the writing end shut down or closed: an end of stream after `bytes`
        bool reader_gone = false;  // the reading end closed: writes fail
        bool reset = false;        // the writing end closed with input unread: reads fail
        asio::steady_timer readable;  // cancelled when bytes arrive or the writer shuts
        asio::steady_timer writable;  // cancelled when room is made or the reader goes
    };

    struct shared_state {
        shared_state(const asio::any_io_executor& ex, std::size_t cap)
            : executor(ex), capacity(cap), directions{direction(ex), direction(ex)} {}
        asio::any_io_executor executor;
        std::size_t capacity;
        direction directions[2];  // [0]: written by end 0, read by end 1
        bool closed[2] = {false, false};
        direction& out_of(int side) noexcept { return directions[side]; }
        direction& into(int side) noexcept { return directions[1 - side]; }
    };

    memory_stream(std::shared_ptr<shared_state> state, int side) : state_(std::move(state)), side_(side) {}

    template <class Buffers>
    static std::size_t take(shared_state& state, int side, const Buffers& buffers, std::error_code& ec) {
        ec = {};
        if (state.closed[side]) {
            ec = asio::error::operation_aborted;
            return 0;
        }
        direction& in = state.into(side);
        if (in.reset) {
            ec = asio::error::connection_reset;
            return 0;
        }
        if (asio::buffer_size(buffers) == 0) return 0;
        if (in.bytes.empty()) {
            ec = in.writer_shut ? std::error_code(asio::error::eof) : std::error_code(asio::error::would_block);
            return 0;
        }
        const std::size_t n = asio::buffer_copy(buffers, asio::buffer(in.bytes));
        in.bytes.erase(0, n);
        in.writable.cancel();
        return n;
    }

    template <class Buffers>
    static std::size_t put(shared_state& state, int side, const Buffers& buffers, std::error_code& ec) {
        ec = {};
        if (state.closed[side]) {
            ec = asio::error::bad_descriptor;
            return 0;
        }
        direction& out = state.out_of(side);
        if (out.reader_gone) {
            ec = asio::error::broken_pipe;
            return 0;
        }
        const std::size_t wanted = asio::buffer_size(buffers);
        if (wanted == 0) return 0;
        const std::size_t room = state.capacity > out.bytes.size() ? state.capacity - out.bytes.size() : 0;
        if (room == 0) {
            ec = asio::error::would_block;
            return 0;
        }
        const std::size_t n = std::min(room, wanted);
        const std::size_t old = out.bytes.size();
        out.bytes.resize(old + n);
        asio::buffer_copy(asio::buffer(out.bytes.data() + old, n), buffers);
        out.readable.cancel();
        return n;
    }

    std::shared_ptr<shared_state> state_;
    int side_;
};

}  // namespace starling::detail
