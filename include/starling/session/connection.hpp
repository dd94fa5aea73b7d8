// A connection on one stream type: the reader and the writer over `Stream` (a TCP socket, an
// in-memory stream in tests; see session/tcp_stream.hpp for what a stream offers), on top of what
// every connection shares (session/connection_base.hpp).
//
// The reader is a coroutine, the only code that reads the stream: it parses frames, answers pings
// and fills the inbox. The writer is not a coroutine: at the end of each turn of the event loop it
// writes the outbound queue in gathered writes until the stream refuses, and only then waits for the
// stream to become writable.
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/buffer.hpp>                  // asio::buffer, asio::const_buffer
#include <asio/post.hpp>                    // asio::post: let the loop's others run
#include <asio/use_awaitable.hpp>           // asio::use_awaitable
#include <algorithm>                        // std::copy_n of the probe
#include <array>                            // std::array probe
#include <cstdint>                          // SIZE_MAX, std::uint64_t
#include <chrono>                           // std::chrono deadlines
#include <cstddef>                          // std::size_t
#include <optional>                         // std::optional direct-read result
#include <span>                             // std::span views of input
#include <string>                           // std::string carried input
#include <string_view>                      // std::string_view bytes behind the handshake
#include <utility>                          // std::move
#include <vector>                           // std::vector gathered buffers

#include "starling/protocol/message_reader.hpp"
#include "starling/session/connection_base.hpp"

namespace starling::detail {

template <class Stream>
class connection : public connection_base {
public:
    /// A connection on `stream`, whose operations complete on `context`; it begins in its handshake.
    connection(Stream stream, asio::io_context& context) : connection_base(context), stream_(std::move(stream)) {
        client_ = stream_.remote_address();
    }

    /// The stream, for the handshake (runtime/upgrade.hpp) before the connection runs.
    Stream& stream() noexcept { return stream_; }

    /// After upgraded(): `already_read` holds bytes the peer sent right behind its handshake (its
    /// first frames), which the reader parses before reading more. A client's connection reads as
    /// `role::client`: the server's frames must not be masked.
    void set_already_read(std::string_view already_read, role local = role::server) {
        reader_ = message_reader({local, options().max_message_size, options().max_frame_size, compressing()});
        carried_.assign(already_read.begin(), already_read.end());
    }

protected:
    // ---- reading ----
    // The reader waits for input with a read into probe_, a few hundred bytes of its own: a small
    // message arrives whole in it, at the cost of one system call, as with any buffer. When the probe
    // fills, the rest is read at once into the worker's shared buffer (session/worker_buffers.hpp)
    // behind a copy of the probe. (Waiting for readiness instead would cost an epoll_ctl per wait.)
    // Whatever was read is parsed before the reader next suspends. Only two things make it suspend
    // with bytes unparsed: a full inbox (bytes in the shared buffer move to carried_, this
    // connection's own, until the handler makes room) and the end of the connection (the rest no
    // longer matters). A large frame's payload is read straight into the message instead, in reads
    // that grow with what has arrived.

    task<> read_loop() override {
        std::span<char> input(carried_.data(), carried_.size());  // first, the bytes behind the handshake
        bool input_is_shared = false;  // in the worker's buffer, which others reuse while we wait
        bool more_waiting = false;     // the last read filled its buffer: the stream may hold more now
        std::optional<read_result> direct;  // the outcome of a direct read, handled as read()'s are
        unsigned reads_in_a_row = 0;
        for (;;) {
            while (direct || !input.empty()) {
                read_result r{read_status::need_more, 0};
                if (direct) {
                    r = *direct;
                    direct.reset();
                } else {
                    r = reader_.read(input);
                    input = input.subspan(r.consumed);
                }
                switch (r.status) {
                case read_status::need_more: break;
                case read_status::message: {
                    message_ended();
                    if (!is_open()) break;  // closing: data is no longer delivered
                    std::error_code bad;
                    message m = take_message(bad);
                    if (bad) {
                        co_await protocol_failed(static_cast<std::uint16_t>(close_code_for(static_cast<error>(bad.value()))),
                                                 bad.message());
                        co_return;
                    }
                    deliver(std::move(m));
                    if (is_open() && inbox_full()) {
                        // Other connections of this worker read into the shared buffer while this one
                        // waits: what is left of the input must be this connection's own.
                        if (input_is_shared) {
                            carried_.assign(input.data(), input.size());
                            input = std::span<char>(carried_.data(), carried_.size());
                            input_is_shared = false;
                        }
                        co_await wait_for_inbox_space();
                    }
                    break;
                }
                case read_status::ping: answer_ping(reader_.payload()); break;
                case read_status::pong: pong_arrived(); break;  // any input counts as life
                case read_status::close: co_await peer_closed(reader_.close_frame()); co_return;
                case read_status::failed: {
                    const auto ec = reader_.error();
                    co_await protocol_failed(static_cast<std::uint16_t>(close_code_for(static_cast<error>(ec.value()))),
                                             ec.message());
                    co_return;
                }
                }
                if (r.status == read_status::need_more) break;
            }
            if (carried_.capacity() > sizeof(std::string)) std::string().swap(carried_);  // parsed: the storage goes
            if (reader_.in_message()) message_begun();
            // The rest of a large frame goes straight into the message.
            if (reader_.data_payload_remaining() >= direct_read_threshold) {
                // A spare buffer of this loop big enough for the whole frame, if there is one: memory
                // already resident, so lending it commits nothing new. Without one, the message's
                // storage grows with what arrives (message_reader::direct_buffer).
                const std::size_t whole = reader_.message_bytes_buffered() + static_cast<std::size_t>(reader_.data_payload_remaining());
                if (reader_.assembly_capacity() < whole) reader_.adopt_assembly(worker_.payloads().take(whole));
                const std::span<char> into = reader_.direct_buffer(direct_read_size);
                auto [ec, n] = co_await stream_.async_read_some(asio::buffer(into.data(), into.size()),
                                                                as_tuple_awaitable);
                if (ec) co_return;
                input_arrived();
                direct = reader_.commit_direct(n);
                continue;
            }
            if (more_waiting) {
                if (++reads_in_a_row > reads_before_yield) {
                    // A peer that always has more to send must not keep this worker's other
                    // connections and timers waiting.
                    reads_in_a_row = 0;
                    co_await asio::post(context_, asio::use_awaitable);
                }
                const std::span<char> buffer = worker_.read_buffer();
                std::error_code ec;
                const std::size_t n = stream_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
                if (!ec) {
                    input_arrived();
                    input = buffer.first(n);
                    input_is_shared = true;
                    more_waiting = n == buffer.size();
                    continue;
                }
                if (ec != asio::error::would_block && ec != asio::error::try_again) co_return;
            }
            reads_in_a_row = 0;
            auto [ec, n] = co_await stream_.async_read_some(asio::buffer(probe_), as_tuple_awaitable);
            if (ec) co_return;  // dropped, reset, or the close deadline closed the stream
            input_arrived();
            if (n < probe_.size()) {
                input = std::span<char>(probe_.data(), n);  // all there was
                input_is_shared = false;
                more_waiting = false;
                continue;
            }
            // The probe is full: it and what follows it go to the worker's buffer, read at once, so
            // that a message of up to 64 KiB is still parsed in place, without reassembly.
            const std::span<char> buffer = worker_.read_buffer();
            std::copy_n(probe_.data(), n, buffer.data());
            std::error_code rest_ec;
            std::size_t rest = stream_.read_some(asio::buffer(buffer.data() + n, buffer.size() - n), rest_ec);
            if (rest_ec) rest = 0;  // nothing more yet, or an error the next read reports
            input = buffer.first(n + rest);
            input_is_shared = true;
            more_waiting = n + rest == buffer.size();
        }
    }

    /// The message the reader just completed, in storage of its own; inflated if it came compressed
    /// (`bad` then says why one could not be: over the size limit, not deflate data, not UTF-8).
    message take_message(std::error_code& bad) {
        message m;
        m.type = reader_.message_type() == opcode::binary ? message_type::binary : message_type::text;
        if (reader_.message_compressed()) {
            m.data = worker_.payloads().take(4 * reader_.payload().size() + 64);
            const auto limit = static_cast<std::size_t>(std::min<std::uint64_t>(options().max_message_size, SIZE_MAX));
            switch (compression_.inflate(reader_.payload(), m.data, limit)) {
            case inflate_status::ok: break;
            case inflate_status::too_big: bad = make_error_code(error::message_too_big); break;
            case inflate_status::corrupt: bad = make_error_code(error::invalid_compressed_data); break;
            }
            if (!bad && m.type == message_type::text) {
                utf8_validator utf8;
                if (!utf8.write(m.data) || !utf8.finish()) bad = make_error_code(error::invalid_utf8);
            }
            if (reader_.assembly_capacity() > kept_assembly) worker_.payloads().give(reader_.release_assembly());
            return m;
        }
        // A message in place is copied into a pooled string that fits it; a reassembled one hands over
        // the reader's buffer, and the reader gets a small one back.
        m.data = worker_.payloads().take(reader_.payload_assembled() ? 0 : reader_.payload().size());
        reader_.take_payload(m.data);
        // Between messages the reader keeps no large buffer: it goes back to the loop's spares, for
        // the next large message of any of its connections.
        if (reader_.assembly_capacity() > kept_assembly) worker_.payloads().give(reader_.release_assembly());
        return m;
    }

    // ---- writing ----
    // Everything queued during one turn of the event loop is written at the end of it, synchronously,
    // for as long as the stream takes bytes. Only when it refuses (the client reads slower than we
    // send) does the writer wait for it to become writable, which is also what marks a consumer as
    // slow. No buffer list is kept across that wait: the next attempt gathers afresh from the queue,
    // whose storage may have moved.

    /// Writes what is queued until the queue is empty (then, once the connection is tearing down, the
    /// writer is done), a close frame has gone out, or the stream takes no more.
    void flush() override {
        if (writer_ != writer_status::idle) return;
        while (!queue_.empty()) {
            gathered_.clear();
            queue_.gather(gathered_, max_buffers_per_write, max_bytes_per_write);
            std::error_code ec;
            const std::size_t n = stream_.write_some(std::span<const asio::const_buffer>(gathered_), ec);
            if (ec == asio::error::would_block || ec == asio::error::try_again) return await_writable();
            if (ec) return fail_writer();
            if (n == 0) return await_writable();  // nothing taken, no error: wait rather than spin
            if (written(n)) return;               // nothing may follow a close frame
        }
        if (status() >= connection_status::tearing_down) finish_writer();
    }

    void await_writable() {
        stalled();
        stream_.async_wait_writable([self = shared_from_this(), this](std::error_code ec) {
            if (writer_ == writer_status::awaiting_writable) writer_ = writer_status::idle;
            if (ec) return fail_writer();
            flush();
        });
    }

    // ---- ending ----

    /// Ends the stream politely: stop sending, read (and discard) until the peer closes or the close
    /// deadline passes (the deadline closes the stream under the read), then close. Closing with
    /// unread input would reset a TCP connection and could destroy our close frame before the peer
    /// reads it.
    task<> linger_and_close() override {
        std::error_code ec;
        stream_.shutdown_send(ec);
        if (!ec && engine_clock::now() < hard_deadline_) {
            char sink[512];
            for (;;) {
                auto [read_ec, n] = co_await stream_.async_read_some(asio::buffer(sink), as_tuple_awaitable);
                if (read_ec) break;
            }
        }
        stream_.close(ec);
    }

    void close_stream() noexcept override {
        std::error_code ignored;
        stream_.close(ignored);
    }

private:
    static constexpr unsigned reads_before_yield = 4;  // reads that found data, before letting others run
    static constexpr std::size_t probe_size = 512;     // holds a typical small message whole
    static constexpr std::size_t kept_assembly = 64 * 1024;  // reassembly buffer kept between messages
    static constexpr std::size_t direct_read_threshold = 64 * 1024;  // frame payload left to read
    static constexpr std::size_t direct_read_size = 256 * 1024;      // at most per direct read
    static constexpr std::size_t max_buffers_per_write = 64;  // what Asio hands to one sendmsg
    static constexpr std::size_t max_bytes_per_write = 256 * 1024;

    Stream stream_;
    message_reader reader_{{role::server, default_max_message_size, 0}};
    std::string carried_;  // input not parsed yet that must outlive a suspension (usually empty)
    std::array<char, probe_size> probe_;  // where the reader waits for input: see read_loop()
    std::vector<asio::const_buffer> gathered_;  // the buffer list of one write, reused
};

}  // namespace starling::detail
