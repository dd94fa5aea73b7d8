// What the connections of one event loop share: one receive buffer, and the spare payload strings
// that finished messages leave behind.
//
// A connection reads into the shared receive buffer only when it can parse what arrives at once, and
// keeps for itself only what it cannot parse yet (bytes behind a message its handler has no room
// for). So an idle connection, or one between messages, holds no receive buffer of its own: what a
// connection costs follows what it is doing, not how many connections there are.
//
// Spare payloads close the loop that would otherwise allocate a string per message: an echo hands the
// received string to send_text, the writer gives it back here once written, and the reader fills it
// with the next message of any connection of the loop. Kept per loop, not per connection, so a
// drained connection holds none, and large ones are reused rather than freed and faulted in again
// (an allocator that returns a freed 1 MiB block to the kernel makes the next one cost 256 page
// faults).
#pragma once

#include "starling/detail/asio_config.hpp"  // before any Asio header
#include <asio/execution_context.hpp>       // asio::execution_context::service: state per event loop
#include <cstddef>                          // std::size_t
#include <span>                             // std::span view of the buffer
#include <vector>                           // std::vector storage

#include "starling/session/payload_pool.hpp"

namespace starling::detail {

/// Found with `asio::use_service<worker_buffers>(context)`. Everything on one loop runs on one thread,
/// and a connection uses the receive buffer only between two suspensions, so one buffer serves all.
class worker_buffers : public asio::execution_context::service {
public:
    using key_type = worker_buffers;
    static inline asio::execution_context::id id;

    explicit worker_buffers(asio::execution_context& context) : asio::execution_context::service(context) {}

    /// The receive buffer, allocated on first use. Its contents are only good until the user's next
    /// suspension: another connection of the loop may read into it then.
    std::span<char> read_buffer() {
        if (read_buffer_.empty()) read_buffer_.resize(read_buffer_size);
        return read_buffer_;
    }

    payload_pool& payloads() noexcept { return payloads_; }

    /// Big enough for many small frames, or a large frame's first 64 KiB, per read.
    static constexpr std::size_t read_buffer_size = 64 * 1024;
    /// Spare payloads kept per loop: a few large messages' worth.
    static constexpr std::size_t spare_payload_strings = 4096;  // many connections with messages in flight
    static constexpr std::size_t spare_payload_bytes = 4 * 1024 * 1024;

private:
    void shutdown() override {}

    std::vector<char> read_buffer_;
    payload_pool payloads_{spare_payload_strings, spare_payload_bytes};
};

}  // namespace starling::detail
