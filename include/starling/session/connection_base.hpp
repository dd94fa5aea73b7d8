// The part of a connection that does not depend on its stream: where it is in its life (one status),
// the inbox the reader fills and receive() empties, the outbound queue every send goes through, the
// close handshake and on_close, and the one timer that keeps every time limit. session/connection.hpp
// adds the reader and the writer for one stream type; the runtime adds what the user's code is
// (runtime/endpoint_connection.hpp), through the hooks at the end of this class.
//
// How a connection begins and ends (greeting first, on_close exactly once, the close handshake within
// its timeout) lives in run().
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/co_spawn.hpp>        // asio::co_spawn for the handler and server-initiated closes
#include <asio/detached.hpp>        // asio::detached
#include <asio/io_context.hpp>      // asio::io_context, the worker's event loop
#include <asio/post.hpp>            // asio::post: deliveries, flushes and abort() onto the connection's thread
#include <asio/use_awaitable.hpp>   // asio::use_awaitable for a posted hop
#include <algorithm>                // std::min of the deadlines, std::max of statuses
#include <array>                    // std::array close payload
#include <chrono>                   // std::chrono deadlines
#include <cstdint>                  // std::uint16_t close codes, std::uint8_t status
#include <exception>                // std::exception_ptr of a handler that threw
#include <memory>                   // std::shared_ptr, std::enable_shared_from_this
#include <optional>                 // std::optional receive-with-deadline results
#include <string>                   // std::string payloads
#include <string_view>              // std::string_view views
#include <utility>                  // std::move

#include "starling/http/headers.hpp"
#include "starling/logging.hpp"
#include "starling/options.hpp"
#include "starling/protocol/close.hpp"
#include "starling/protocol/close_code.hpp"
#include "starling/protocol/message.hpp"
#include "starling/protocol/query.hpp"
#include "starling/protocol/websocket_disconnect.hpp"
#include "starling/session/async_event.hpp"
#include "starling/session/counters.hpp"
#include "starling/session/engine_clock.hpp"  // the one deadline's timer and clock
#include "starling/session/inbox.hpp"
#include "starling/session/message_compression.hpp"
#include "starling/session/rate_limiter.hpp"
#include "starling/session/tcp_stream.hpp"  // client_address
#include "starling/session/uuid.hpp"
#include "starling/session/worker_buffers.hpp"
#include "starling/session/write_queue.hpp"
#include "starling/task.hpp"

namespace starling {

/// What ws.stats() reports about one connection.
struct connection_stats {
    std::size_t buffered_bytes = 0;   // the outbound queue and the inbox, in bytes of memory
    std::uint64_t messages_in = 0;    // messages received
    std::uint64_t messages_out = 0;   // text and binary messages queued for the client
    /// The round trip of the last ping the client answered (the server pings idle connections).
    std::optional<std::chrono::steady_clock::duration> last_rtt;
    std::chrono::steady_clock::duration age{};  // since the upgrade
};

}  // namespace starling

namespace starling::detail {

/// Where a connection is in its life. It only ever moves forward (see advance()).
enum class connection_status : std::uint8_t {
    handshake,     // reading the upgrade request: only the handshake deadline applies
    open,          // messages flow both ways
    closing,       // a close has begun (either side): nothing new is delivered to the handler
    close_queued,  // our close frame is queued: nothing may be sent after it
    tearing_down,  // the reader has ended and on_close has run (a dropped peer gets here without a
                   // close frame): the writer sends what is left, then the stream closes
    closed,        // over (or aborted, while run() still finishes): the stream is closed, the timer off
};

/// The writer's state: see session/connection.hpp.
enum class writer_status : std::uint8_t {
    idle,               // nothing to write, or a flush is due at the end of this turn
    awaiting_writable,  // the kernel refused bytes; waiting until it takes more
    finished,           // the queue is written up to our close frame, or teardown emptied it
    failed,             // the stream failed: what is queued can never be written
};

class connection_base : public std::enable_shared_from_this<connection_base> {
public:
    connection_base(const connection_base&) = delete;
    connection_base& operator=(const connection_base&) = delete;
    virtual ~connection_base() = default;

    // ---- Identity (set by upgraded()) -------------------------------------------------------------

    const std::string& id() const noexcept { return id_; }
    const starling::query_params& query_params() const noexcept { return query_; }
    const http::headers& headers() const noexcept { return headers_; }
    const client_address& client() const noexcept { return client_; }
    std::string_view path() const noexcept { return path_; }
    /// True from the upgrade until the connection starts closing (either side).
    bool is_open() const noexcept { return status_ == connection_status::open; }
    connection_status status() const noexcept { return status_; }
    const websocket_options& options() const noexcept { return *options_; }
    /// The event loop this connection lives on; its coroutines must run there.
    asio::io_context& context() const noexcept { return context_; }
    /// Bytes of memory the outbound queue holds (what max_queued_bytes limits).
    std::size_t queued_bytes() const noexcept { return queue_.memory(); }

    connection_stats stats() const {
        connection_stats s;
        s.buffered_bytes = queue_.memory() + inbox_.bytes();
        s.messages_in = messages_in_;
        s.messages_out = messages_out_;
        if (last_rtt_.count() >= 0) s.last_rtt = last_rtt_;
        s.age = engine_clock::now() - opened_at_;
        return s;
    }

    // ---- Receiving --------------------------------------------------------------------------------
    // One receive at a time per connection. Messages the peer sent before it closed are still
    // delivered; after them, and at once when the server closed, receives throw websocket_disconnect.

    task<message> receive() {
        caught_up();
        for (;;) {
            if (auto m = pop_inbox()) co_return std::move(*m);
            co_await inbox_ready_.wait();
        }
    }

    /// The next text message. One coroutine from the handler's call to its wait, not three: an idle
    /// connection keeps this chain alive all the time.
    task<std::string> receive_text() {
        caught_up();
        for (;;) {
            if (auto m = pop_inbox()) {
                if (m->is_text()) co_return std::move(m->data);
                co_await close(static_cast<std::uint16_t>(close_code::unsupported_data), "expected a text message");
                throw websocket_disconnect(close_code_, close_reason_);
            }
            co_await inbox_ready_.wait();
        }
    }

    task<std::optional<message>> receive_for(engine_clock::duration timeout) {
        caught_up();
        const auto deadline = engine_clock::now() + timeout;
        for (;;) {
            if (auto m = pop_inbox()) co_return std::move(*m);
            if (!co_await inbox_ready_.wait_until(deadline)) {
                if (auto m = pop_inbox()) co_return std::move(*m);
                co_return std::nullopt;
            }
        }
    }

    /// The text of `m`. A binary message where text was expected is a protocol mismatch: the
    /// connection closes with 1003 (unsupported data) and this throws websocket_disconnect.
    task<std::string> expect_text(message m) {
        if (m.is_text()) co_return std::move(m.data);
        co_await close(static_cast<std::uint16_t>(close_code::unsupported_data), "expected a text message");
        throw websocket_disconnect(close_code_, close_reason_);
    }

    // ---- Sending ----------------------------------------------------------------------------------

    /// Queues the frame, then waits while the queue is over its high-water mark: a handler that sends
    /// faster than its client reads is slowed to the client's pace instead of growing the queue.
    task<> send_frame(opcode op, std::string payload) {
        if (!can_send()) throw websocket_disconnect(close_code_, close_reason_);
        enqueue(data_frame(op, std::move(payload)));
        while (queue_.memory() > options_->max_queued_bytes && can_send()) co_await queue_drained_.wait();
        if (!can_send()) throw websocket_disconnect(close_code_, close_reason_);
    }

    /// Queues a text frame without waiting (send_to this connection itself). False when it is gone.
    bool queue_text(std::string text) {
        if (!can_send()) return false;
        enqueue(data_frame(opcode::text, std::move(text)));
        return true;
    }

    /// False once the connection is gone for sending, however it went: our close frame is queued, the
    /// stream failed, or the connection is being torn down (the peer dropped TCP). A send then throws,
    /// so a handler that only sends (a timer loop) ends too.
    bool can_send() const noexcept { return status_ < connection_status::close_queued && writer_ != writer_status::failed; }

    /// A broadcast frame arriving on this connection's thread (the registry delivers it), in the form
    /// this connection takes: plain, compressed once for every receiver with the same setting, or
    /// (with server context takeover) compressed here, in this connection's own stream.
    void receive_broadcast(const shared_frame& frame) {
        const std::string_view payload = frame->payload();
        if (!compression_.worth_compressing(payload.size())) return receive_from_another(outbound_frame::broadcast(frame->plain()));
#ifndef STARLING_NO_DEFLATE
        if (compression_.shares_compressed_broadcasts())
            return receive_from_another(outbound_frame::broadcast(frame->compressed(compression_.setting())));
#endif
        receive_from_another(sizeof(outbound_frame) + payload.size(),
                             [&] { return data_frame(frame->op(), std::string(payload)); });
    }

    /// Queues a text message another connection sent to this one (send_to), from any thread: hops to
    /// this connection's thread first. A unicast frame, encoded here, but under the same
    /// slow_consumer policy as a broadcast, since the sender cannot wait for this client.
    void deliver_text(std::string text) {
        if (context_.get_executor().running_in_this_thread()) {
            receive_from_another(sizeof(outbound_frame) + text.capacity(), [&] { return data_frame(opcode::text, std::move(text)); });
            return;
        }
        asio::post(context_, [self = shared_from_this(), text = std::move(text)]() mutable {
            self->receive_from_another(sizeof(outbound_frame) + text.capacity(),
                                       [&] { return self->data_frame(opcode::text, std::move(text)); });
        });
    }

    // ---- Closing ----------------------------------------------------------------------------------

    /// Starts the close handshake: on_close runs (its text is sent), then a close frame with `code` and
    /// `reason`. Pending and later receives throw websocket_disconnect. Does nothing if already closing.
    task<> close(std::uint16_t code = 1000, std::string_view reason = {}) {
        if (status_ != connection_status::open) co_return;
        begin_closing(code, reason);
        co_await run_on_close(/*server_closing=*/true);
        queue_close_frame(code, reason);
        arm_close_deadline();
    }

    /// Drops the connection at once, from any thread: the stream closed without a close handshake,
    /// pending receives and sends woken, on_close run with 1006. What graceful shutdown does to
    /// connections still open at its deadline, so that every coroutine of theirs ends before the loops
    /// stop.
    void abort() {
        asio::post(context_, [self = shared_from_this()] {
            if (self->status_ <= connection_status::open)
                self->begin_closing(static_cast<std::uint16_t>(close_code::abnormal), {}, false);
            self->writer_ = writer_status::failed;  // nothing more is written or queued
            self->close_stream();
            self->advance(connection_status::closed);
            self->deadline_.cancel();
            self->queue_.clear();
            self->queue_changed();
            self->queue_drained_.notify_all();
            self->writer_finished_.notify();
            self->handler_caught_up_.notify();
        });
    }

    // ---- Life -------------------------------------------------------------------------------------

    /// The handshake has begun: the stream is closed at `deadline` unless upgraded() comes first.
    void begin_handshake(engine_clock::time_point deadline) {
        hard_deadline_ = deadline;
        update_deadline();
    }
    /// The same with a deadline in real time, as a client's dial measures it.
    void begin_handshake(std::chrono::steady_clock::time_point deadline) { begin_handshake(engine_clock::from_real(deadline)); }

    /// The handshake agreed to permessage-deflate (before upgraded()); this end is `local`.
    void set_compression(const deflate_agreement& agreement, role local, const compressor_tuning& tuning) {
        compression_.agree(agreement, local, tuning);
    }
    bool compressing() const noexcept { return compression_.active(); }

    /// The handshake succeeded: the connection gets its identity and limits and becomes open. Its
    /// handshake deadline no longer applies.
    void upgraded(const websocket_options& options, std::string path, starling::query_params query,
                  http::headers headers, endpoint_counters* counters = nullptr) {
        options_ = &options;
        counters_ = counters;
        opened_at_ = engine_clock::now();
        if (counters_) {
            counters_->opened.add();
            counters_->open.add(1);
        }
        id_ = make_uuid_v4();
        path_ = std::move(path);
        query_ = std::move(query);
        headers_ = std::move(headers);
        inbox_.set_limits(options.inbox_messages, options.max_inbox_bytes);
        if (options.rate_limit.enabled()) limiter_ = std::make_unique<message_rate_limiter>(options.rate_limit, opened_at_);
        hard_deadline_ = no_deadline;
        last_input_ = engine_clock::now();
        advance(connection_status::open);
        on_upgraded();
    }

    /// The handshake ended without an upgrade (answered, failed or timed out): the stream is closed and
    /// the timer stops, so nothing keeps the connection alive.
    void discard() noexcept {
        close_stream();
        advance(connection_status::closed);
        deadline_.cancel();
    }

    /// Runs the connection from just after the handshake to its end, and returns when it is over:
    /// the stream closed, on_close run, left().
    /// With `close_at_once`, the connection is closed at once with that code and reason; no callback
    /// runs (typed query parameters that did not resolve: 1008; the server began shutting down during
    /// the handshake: 1001).
    task<> run(std::optional<close_reason> close_at_once = std::nullopt) {
        auto self = shared_from_this();
        if (close_at_once) {
            on_close_state_ = callback_state::done;
            co_await close(close_at_once->code, close_at_once->reason);
        } else {
            if (has_handler()) asio::co_spawn(context_, handler_loop(self), asio::detached);
            update_deadline();  // the idle check
        }
        co_await read_loop();
        if (status_ == connection_status::open)
            begin_closing(static_cast<std::uint16_t>(close_code::abnormal), {}, false);
        inbox_ready_.notify();
        co_await run_on_close(/*server_closing=*/false);
        // Let the writer send what is queued (our close frame among it), within the close timeout.
        advance(connection_status::tearing_down);
        flush();
        arm_close_deadline();
        while (writer_ != writer_status::finished && writer_ != writer_status::failed)
            if (!co_await writer_finished_.wait_until(hard_deadline_)) break;
        co_await linger_and_close();
        advance(connection_status::closed);
        deadline_.cancel();  // the connection is over: nothing it checks for may keep it alive
        if (counters_) {
            counters_->open.add(-1);
            counters_->closed[static_cast<std::size_t>(classify_close(close_code_))].add();
            queue_.clear();
            queue_changed();
        }
        left();
    }

    /// Where the registry keeps this connection in its worker's list, and whether it is in it.
    std::size_t& registry_slot() noexcept { return registry_slot_; }
    bool registered = false;

protected:
    explicit connection_base(asio::io_context& context)
        : context_(context),
          worker_(asio::use_service<worker_buffers>(static_cast<asio::execution_context&>(context))),
          inbox_ready_(context.get_executor()),
          inbox_space_(context.get_executor()),
          writer_finished_(context.get_executor()),
          on_close_finished_(context.get_executor()),
          handler_caught_up_(context.get_executor()),
          queue_drained_(context.get_executor()),
          deadline_(context.get_executor()) {}

    // ---- What the stream part provides (session/connection.hpp) ----

    /// Reads and parses until the connection ends; returns when the reader is done.
    virtual task<> read_loop() = 0;
    /// Writes what is queued now, as far as the stream takes it.
    virtual void flush() = 0;
    /// Ends the stream politely within the close deadline, then closes it.
    virtual task<> linger_and_close() = 0;
    /// Closes the stream under whatever still uses it.
    virtual void close_stream() noexcept = 0;

    // ---- What the user's code is (runtime/endpoint_connection.hpp) ----

    /// The greeting to send first, if any (on_connect). May throw, as handle() may.
    virtual task<std::optional<std::string>> greet() = 0;
    /// After the greeting: the connection can be reached by others now (joins its endpoint's registry).
    virtual void joined() = 0;
    /// The handler. When it returns, the connection closes with 1000.
    virtual task<> handle() = 0;
    /// greet() or handle() threw this (not a websocket_disconnect): the close code and reason to end
    /// with. Reports it as it sees fit.
    virtual close_reason failed(std::exception_ptr error) noexcept = 0;
    /// The text to send on a server-side close, if any (on_close). Runs once.
    virtual task<std::optional<std::string>> farewell() = 0;
    /// The connection is over (leaves its endpoint's registry).
    virtual void left() = 0;
    /// The connection became open.
    virtual void on_upgraded() {}
    /// False for a connection whose user drives it from outside (a client's): no handler runs, and
    /// closes wait for nobody to catch up.
    virtual bool has_handler() const noexcept { return true; }

    // ---- for the stream part ----

    void advance(connection_status s) noexcept { status_ = std::max(status_, s); }

    std::optional<message> pop_inbox() {
        if (auto m = inbox_.pop()) {
            inbox_space_.notify();
            processing_message_ = true;
            return m;
        }
        if (status_ != connection_status::open) throw websocket_disconnect(close_code_, close_reason_);
        return std::nullopt;
    }

    /// A whole message from the reader.
    void deliver(message m) {
        ++messages_in_;
        if (counters_) {
            counters_->messages_in.add();
            counters_->bytes_in.add(m.data.size());
        }
        if (limiter_ && !limiter_->admit(m.data.size(), engine_clock::now())) return over_rate_limit();
        inbox_.push(std::move(m));
        inbox_ready_.notify();
    }

    bool inbox_full() const noexcept { return inbox_.full(); }

    /// The reader waits here while the inbox is full. Silence meanwhile is ours, not the peer's.
    task<> wait_for_inbox_space() {
        reader_paused_ = true;
        while (status_ == connection_status::open && inbox_.full()) co_await inbox_space_.wait();
        reader_paused_ = false;
        last_input_ = engine_clock::now();
    }

    /// A ping from the peer: answered with a pong, unless our close frame is already queued.
    void answer_ping(std::string_view payload) {
        if (status_ >= connection_status::close_queued) return;
        queue_.push_pong(payload);
        queue_changed();
        schedule_flush();
    }

    /// A pong from the peer: the answer to our idle ping, if one is outstanding.
    void pong_arrived() {
        if (!ping_outstanding_) return;
        ping_outstanding_ = false;
        last_rtt_ = engine_clock::now() - ping_sent_at_;
        if (counters_) counters_->pong_rtt.observe(last_rtt_);
    }

    /// The peer's close frame: the handler first handles what arrived before it, then the close is
    /// echoed.
    task<> peer_closed(const close_reason& peer) {
        if (status_ == connection_status::open) co_await let_handler_catch_up();
        if (status_ != connection_status::open) co_return;
        begin_closing(peer.code, peer.reason, false);
        queue_close_frame(peer.code == static_cast<std::uint16_t>(close_code::no_status)
                              ? static_cast<std::uint16_t>(close_code::normal)
                              : peer.code,
                          {});
    }

    /// The peer broke the protocol: fail the connection (RFC 6455 7.1.7) with a close frame carrying
    /// the matching code, without waiting for its answer.
    task<> protocol_failed(std::uint16_t code, std::string reason) {
        if (status_ == connection_status::open) co_await let_handler_catch_up();
        co_await close(code, reason);
    }

    /// A message began and did not end with this read: from now on it has message_timeout.
    void message_begun() {
        if (message_started_ != no_deadline) return;
        message_started_ = engine_clock::now();
        update_deadline();
    }
    void message_ended() noexcept { message_started_ = no_deadline; }
    void input_arrived() noexcept { last_input_ = engine_clock::now(); }

    // ---- for the writer ----

    /// A text or binary frame of this connection's own: compressed when that was negotiated and the
    /// payload is worth it. Made just before it is queued, since with context takeover the order of
    /// compression is the order on the wire.
    outbound_frame data_frame(opcode op, std::string payload) {
        if (!compression_.worth_compressing(payload.size())) return outbound_frame::unicast(op, std::move(payload));
        compression_.compress(payload, worker_.payloads());
        return outbound_frame::unicast(op, std::move(payload), true);
    }

    void enqueue(outbound_frame frame) {
        if (writer_ == writer_status::failed || (status_ >= connection_status::close_queued && !frame.is_close)) return;
        if (frame.is_data()) {
            ++messages_out_;
            if (counters_) {
                counters_->messages_out.add();
                counters_->bytes_out.add(frame.payload_size());
            }
        }
        queue_.push(std::move(frame));
        queue_changed();
        schedule_flush();
    }

    /// Writes at the end of this turn, unless the writer is waiting for the stream or already due.
    void schedule_flush() {
        if (writer_ != writer_status::idle || flush_scheduled_) return;
        flush_scheduled_ = true;
        asio::post(context_, [self = shared_from_this()] {
            self->flush_scheduled_ = false;
            self->flush();
        });
    }

    /// The stream took `written` bytes of the queue. True when that finished the writer (our close
    /// frame went out: nothing may follow it).
    bool written(std::size_t n) {
        const bool close_written = queue_.consume(n, worker_.payloads());
        queue_changed();
        if (queue_.memory() <= options_->max_queued_bytes) queue_drained_.notify_all();
        if (close_written) finish_writer();
        return close_written;
    }

    void stalled() {
        writer_ = writer_status::awaiting_writable;
        stall_since_ = engine_clock::now();
        update_deadline();  // the write-stall timeout
    }

    /// The stream failed (or was closed under the writer): what is queued can never be written.
    void fail_writer() {
        writer_ = writer_status::failed;
        queue_.clear();
        queue_changed();
        queue_drained_.notify_all();
        writer_finished_.notify();
    }

    /// Keeps the worker's queued-bytes gauge (and its high-water mark) in step with this queue.
    void queue_changed() noexcept {
        if (!counters_) return;
        const auto now = static_cast<std::int64_t>(queue_.memory());
        if (now == counted_queue_) return;
        counters_->queued_bytes.add(now - counted_queue_);
        counted_queue_ = now;
        if (counters_->queued_bytes.value() > counters_->queued_bytes_high_water.value())
            counters_->queued_bytes_high_water.set(counters_->queued_bytes.value());
    }

    void finish_writer() {
        if (writer_ != writer_status::failed) writer_ = writer_status::finished;
        writer_finished_.notify();
    }

    static constexpr auto no_deadline = engine_clock::time_point::max();

    asio::io_context& context_;
    worker_buffers& worker_;  // the receive buffer and spare payloads of this loop
    message_compression compression_;  // permessage-deflate, if the handshake agreed to it
    write_queue queue_;
    writer_status writer_ = writer_status::idle;
    bool flush_scheduled_ = false;  // a flush is posted for the end of this turn
    engine_clock::time_point hard_deadline_ = no_deadline;  // the stream is closed then

private:
    enum class callback_state : std::uint8_t { not_run, running, done };

    // ---- keeping replies in order with the close ----

    /// The handler asks for its next message, or has finished: whatever it had to say about the
    /// previous one is queued.
    void caught_up() {
        processing_message_ = false;
        handler_caught_up_.notify();
    }

    /// Before the server answers a peer's close frame or fails the connection, the handler gets to
    /// handle the messages that arrived before it (an echo server echoes them), within the close
    /// timeout.
    task<> let_handler_catch_up() {
        const auto give_up = engine_clock::now() + options_->close_timeout;
        while (handler_running_ && (!inbox_.empty() || processing_message_) && status_ < connection_status::closed)
            if (!co_await handler_caught_up_.wait_until(give_up)) break;
    }

    /// Marks the connection closing and wakes a waiting receive. Messages already received stay
    /// deliverable when the peer ended the connection; when the server closes, they are dropped.
    void begin_closing(std::uint16_t code, std::string_view reason, bool server_closing = true) {
        advance(connection_status::closing);
        close_code_ = code;
        close_reason_ = std::string(reason);
        if (server_closing) inbox_.clear();
        inbox_ready_.notify();
        inbox_space_.notify();
        queue_drained_.notify_all();
    }

    void queue_close_frame(std::uint16_t code, std::string_view reason) {
        if (status_ >= connection_status::close_queued) return;
        std::array<char, max_control_payload> payload{};
        const std::size_t n = write_close_payload(code, reason, payload);
        enqueue(outbound_frame::unicast(opcode::close, std::string(payload.data(), n)));
        advance(connection_status::close_queued);
        queue_drained_.notify_all();  // a send waiting for room now throws: nothing may follow the close
    }

    /// on_close runs exactly once, whichever path ends the connection first; a second caller waits for
    /// the first. Its text is sent only when the server is the closing side and has not sent its
    /// close frame yet.
    task<> run_on_close(bool server_closing) {
        if (on_close_state_ == callback_state::done) co_return;
        if (on_close_state_ == callback_state::running) {
            while (on_close_state_ != callback_state::done) co_await on_close_finished_.wait();
            co_return;
        }
        on_close_state_ = callback_state::running;
        auto text = co_await farewell();
        if (text && server_closing && status_ < connection_status::close_queued)
            enqueue(data_frame(opcode::text, std::move(*text)));
        on_close_state_ = callback_state::done;
        on_close_finished_.notify();
    }

    /// Starts the close timeout, once: the whole closing (waiting for the peer's close frame, flushing
    /// our queue, waiting for TCP's end) shares one deadline, after which the stream is closed under
    /// whatever still uses it, however much the peer keeps sending.
    void arm_close_deadline() {
        if (closing_deadline_armed_) return;
        closing_deadline_armed_ = true;
        hard_deadline_ = engine_clock::now() + options_->close_timeout;
        update_deadline();
    }

    /// A frame another connection sent (broadcast or send_to), on this connection's thread. One that
    /// would take the queue over the high-water mark while the kernel refuses this client's bytes
    /// meets the endpoint's slow_consumer policy. Only then: a queue that grew while this thread was
    /// busy elsewhere (a burst of broadcasts, a long handler on the same worker) says nothing about
    /// the client, and is written at the end of the turn.
    void receive_from_another(outbound_frame frame) {
        const std::size_t memory = frame.memory();
        receive_from_another(memory, [&] { return std::move(frame); });
    }

    /// The same for a frame made only if it is going to be queued (`memory` is what it will cost, or
    /// near): a message compressed with context takeover must reach the wire once compressed.
    template <class Make>
    void receive_from_another(std::size_t memory, Make&& make) {
        // Once a close is due, nothing from others may land behind the backlog it dropped.
        if (status_ != connection_status::open || close_pending_ || writer_ == writer_status::failed) return;
        if (writer_ == writer_status::awaiting_writable && queue_.memory() + memory > options_->max_queued_bytes) {
            if (options_->slow_consumer == slow_consumer_policy::drop) {
                if (counters_) counters_->slow_consumer_drops.add();
                return;
            }
            // The backlog not yet begun on the wire is dropped, so the close frame goes out next and
            // the memory is released now, not when (if ever) the client catches up.
            queue_.drop_unsent();
            queue_changed();
            if (counters_) counters_->slow_consumer_closes.add();
            return close_soon(close_code::policy_violation, "slow consumer: outbound queue over its limit");
        }
        if (counters_) counters_->deliveries.add();
        enqueue(make());
    }

    // ---- the deadline ----
    // One timer per connection serves every time limit: the handshake timeout, the close timeout,
    // idle pings and the idle close, the write-stall timeout and the message timeout. It is armed for
    // the earliest of them; when it fires it checks them all against the clock and re-arms for the
    // next. Moving a time forward (more input arrived) costs nothing: the timer fires at the old time
    // and finds nothing due yet.

    /// The earliest time something must be checked, or no_deadline.
    engine_clock::time_point next_check() const noexcept {
        auto due = hard_deadline_;
        if (status_ == connection_status::open) {
            const websocket_options& o = *options_;
            if (o.idle_timeout.count() > 0)
                due = std::min(due, (ping_outstanding_ ? ping_sent_at_ : last_input_) + o.idle_timeout);
            if (o.write_timeout.count() > 0 && writer_ == writer_status::awaiting_writable)
                due = std::min(due, stall_since_ + o.write_timeout);
            if (o.message_timeout.count() > 0 && message_started_ != no_deadline)
                due = std::min(due, message_started_ + o.message_timeout);
        }
        return due;
    }

    /// Arms the timer for next_check() if that is earlier than what it is armed for.
    void update_deadline() {
        if (status_ == connection_status::closed) return;
        const auto due = next_check();
        if (due >= armed_for_) return;
        armed_for_ = due;
        deadline_.expires_at(due);  // replaces a later wait, whose handler sees operation_aborted
        deadline_.async_wait([self = shared_from_this()](std::error_code ec) {
            if (ec) return;
            self->armed_for_ = no_deadline;
            self->check_deadlines();
            self->update_deadline();
        });
    }

    void check_deadlines() {
        if (status_ == connection_status::closed) return;
        const auto now = engine_clock::now();
        if (now >= hard_deadline_) {
            // The handshake or the closing took too long: the stream goes, and with it every read
            // and write still using it. That deadline is spent: the timer must not fire for it again.
            close_stream();
            hard_deadline_ = no_deadline;
            return;
        }
        if (status_ != connection_status::open) return;
        const websocket_options& o = *options_;
        if (o.write_timeout.count() > 0 && writer_ == writer_status::awaiting_writable &&
            now - stall_since_ >= o.write_timeout) {
            // The client stopped reading: what it has not begun to receive is dropped, so the close
            // frame is next in line and the memory is released now.
            queue_.drop_unsent();
            queue_changed();
            return close_soon(close_code::policy_violation, "write timeout: the client stopped reading");
        }
        if (o.message_timeout.count() > 0 && message_started_ != no_deadline && now - message_started_ >= o.message_timeout)
            return close_soon(close_code::policy_violation, "message timeout: a message did not arrive whole in time");
        if (o.idle_timeout.count() > 0) check_idle(now, o.idle_timeout);
    }

    /// A connection silent for idle_timeout is pinged; one still silent idle_timeout after the ping is
    /// closed with 1001. While the reader is paused (the handler is behind and the inbox full),
    /// silence is ours, not the peer's: it does not count.
    void check_idle(engine_clock::time_point now, engine_clock::duration idle) {
        if (reader_paused_) last_input_ = now;
        if (ping_outstanding_) {
            if (last_input_ > ping_sent_at_) {
                ping_outstanding_ = false;
            } else if (now - ping_sent_at_ >= idle) {
                return close_soon(close_code::going_away, "idle timeout");
            } else {
                return;
            }
        }
        if (now - last_input_ >= idle) {
            enqueue(outbound_frame::unicast(opcode::ping, std::string()));
            ping_outstanding_ = true;
            ping_sent_at_ = now;
            if (counters_) counters_->pings_sent.add();
        }
    }

    /// A message over the rate limit (session/rate_limiter.hpp): dropped and counted, or the close.
    void over_rate_limit() {
        if (options_->rate_limit.policy == rate_limit_policy::drop) {
            if (counters_) counters_->rate_limited_drops.add();
            return;
        }
        if (!close_pending_ && counters_) counters_->rate_limited_closes.add();
        close_soon(close_code::policy_violation, "rate limit exceeded");
    }

    /// Starts a close from a timer or a delivery, which cannot wait for it themselves.
    void close_soon(close_code code, std::string_view reason) {
        if (close_pending_) return;
        close_pending_ = true;
        asio::co_spawn(context_, close_from_server(shared_from_this(), code, std::string(reason)), asio::detached);
    }

    /// close() started by the server itself (a timeout, a slow consumer), keeping the connection alive
    /// until it is done.
    static task<> close_from_server(std::shared_ptr<connection_base> self, close_code code, std::string reason) {
        // Later, not inside the caller: co_spawn starts a coroutine at once on its own thread, and the
        // caller may be walking a registry's list or checking deadlines; on_close is user code.
        co_await asio::post(self->context_, asio::use_awaitable);
        co_await self->close(static_cast<std::uint16_t>(code), reason);
    }

    // ---- the user's code ----

    task<> handler_loop(std::shared_ptr<connection_base> self) {
        handler_running_ = true;
        close_reason ending{static_cast<std::uint16_t>(close_code::normal), {}};
        try {
            auto greeting = co_await greet();
            if (greeting && status_ == connection_status::open)
                enqueue(data_frame(opcode::text, std::move(*greeting)));
            // Reachable by others only now: nothing reaches a client before its greeting.
            if (status_ == connection_status::open) joined();
            if (status_ == connection_status::open) co_await handle();
        } catch (const websocket_disconnect&) {
            // The connection is over; run() finishes it.
        } catch (...) {
            ending = failed(std::current_exception());
        }
        handler_running_ = false;
        caught_up();
        // A handler that returns closes with 1000; one that threw, with the code it chose.
        co_await self->close(ending.code, ending.reason);
    }

    // Identity
    std::string id_;
    std::string path_;
    starling::query_params query_;
    http::headers headers_;

protected:
    client_address client_;

private:
    static inline const websocket_options default_options{};
    const websocket_options* options_ = &default_options;

    connection_status status_ = connection_status::handshake;
    callback_state on_close_state_ = callback_state::not_run;
    bool handler_running_ = false;
    bool processing_message_ = false;  // the handler holds a message it may still answer
    bool reader_paused_ = false;       // waiting for inbox space, not reading the stream
    bool ping_outstanding_ = false;
    bool closing_deadline_armed_ = false;
    bool close_pending_ = false;  // close_soon() posted a close that has not begun yet
    std::uint16_t close_code_ = static_cast<std::uint16_t>(close_code::abnormal);
    std::string close_reason_;
    std::size_t registry_slot_ = 0;

    detail::inbox inbox_{64, 1024 * 1024};

    async_event inbox_ready_;
    async_event inbox_space_;
    async_event writer_finished_;
    async_event on_close_finished_;
    async_event handler_caught_up_;
    async_signal queue_drained_;  // the outbound queue fell back to its high-water mark

    engine_timer deadline_;  // the one timer: see next_check()
    engine_clock::time_point armed_for_ = no_deadline;
    engine_clock::time_point stall_since_;  // when the writer began waiting for the stream
    engine_clock::time_point message_started_ = no_deadline;  // a message is arriving since
    engine_clock::time_point last_input_ = engine_clock::now();
    engine_clock::time_point ping_sent_at_;

    std::unique_ptr<message_rate_limiter> limiter_;  // only with a rate limit: one pointer otherwise
    endpoint_counters* counters_ = nullptr;  // this endpoint's on this worker; none in unit tests
    std::int64_t counted_queue_ = 0;          // queue_.memory() as the gauge last saw it
    std::uint64_t messages_in_ = 0;
    std::uint64_t messages_out_ = 0;
    engine_clock::time_point opened_at_;
    engine_clock::duration last_rtt_{-1};  // negative: no ping answered yet
};

}  // namespace starling::detail
